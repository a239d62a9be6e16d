import { buildServerImage } from '../servers/build-server.js';
import { DEFAULT_SERVER_IMAGE_PREFIX } from '../servers/image-contract.js';
import { parseSource, SourceError } from '../registry/source.js';
import { parseCommandArgs } from './args.js';
import { UsageError, type Command } from './types.js';
import { unknownSubcommand } from './subcommands.js';

const USAGE = `Usage: tollgate images build-server SOURCE [--prefix P] [--from IMAGE]

Builds the image an MCPServer with spec.source runs from, with podman and no network during the
build: the tollgate image plus the package, installed now (npm or PyPI), in /opt/server and
/opt/server/tollgate-launch.json naming its stdio command. The tag is the name the operator
derives from the same source:

  npx:@scope/name@1.2.3  ->  P/tollgate-server-npm/scope/name:1.2.3
  uvx:name==1.2.3        ->  P/tollgate-server-pypi/name:1.2.3

Push it to your registry (podman push) and start the operator with --server-image-prefix P.
See docs/kubernetes.md, "Servers from a package".

  --prefix P     registry prefix (default ${DEFAULT_SERVER_IMAGE_PREFIX})
  --from IMAGE   image with the tollgate CLI to build on (default the tollgate image, $TOLLGATE_IMAGE)
`;

export const imagesCommand: Command = {
  name: 'images',
  summary: 'Build server images for MCPServer spec.source (images build-server SOURCE)',
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, { prefix: { type: 'string' }, from: { type: 'string' } }, true);
    if (values.help || positionals.length === 0) { process.stdout.write(USAGE); return values.help ? 0 : 2; }
    const [sub, src, ...extra] = positionals;
    if (sub !== 'build-server') throw new UsageError(unknownSubcommand(sub!, ['build-server']));
    if (!src || extra.length) throw new UsageError('build-server takes exactly one SOURCE (npx:PKG@VER or uvx:PKG@VER)');
    let source;
    try { source = parseSource(src); } catch (e) { if (e instanceof SourceError) throw new UsageError(e.message); throw e; }
    if (source.kind !== 'npx' && source.kind !== 'uvx') throw new UsageError('build-server builds npx: and uvx: sources; an image: source must already follow the contract (docs/kubernetes.md)');
    if (values.prefix !== undefined && !/^[a-z0-9][a-z0-9._:/-]*$/.test(values.prefix)) throw new UsageError(`--prefix "${values.prefix}" is not a registry prefix`);
    const built = await buildServerImage(source, values.prefix, values.from);
    process.stdout.write(`${built.image}\n`);
    return 0;
  },
};
