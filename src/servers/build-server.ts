import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tollgateImage } from '../containers/images.js';
import { buildServerLayer, npmImageCommand, pypiForImage } from './image.js';
import { LAUNCH_FILE, serverImageName } from './image-contract.js';
import { installNpm } from './install.js';
import type { LaunchFile } from './launch-file.js';
import { formatSource, type ServerSource } from '../registry/source.js';

/**
 * Builds the image an MCPServer spec.source runs from (the image contract in
 * src/servers/image-contract.ts): the tollgate image (CLI + bridge) with the package installed in
 * /opt/server and the launch file naming its stdio command, tagged with the name the operator
 * derives from the same source and prefix.
 */

export interface BuiltServerImage { image: string; launch: LaunchFile }

export async function buildServerImage(source: Extract<ServerSource, { kind: 'npx' | 'uvx' }>, prefix?: string, from = tollgateImage()): Promise<BuiltServerImage> {
  const image = serverImageName(source, prefix);
  const { dir, command } = source.kind === 'npx'
    ? await installNpm(source.pkg, source.version).then((i) => ({ dir: i.dir, command: npmImageCommand(i) }))
    : await pypiForImage(source.pkg, source.version);
  const launch: LaunchFile = { command, source: formatSource(source) };
  // The launch file lives in the install directory, which the build copies to /opt/server.
  writeFileSync(join(dir, LAUNCH_FILE.split('/').pop()!), JSON.stringify(launch, null, 2) + '\n');
  await buildServerLayer(image, dir, from, true);
  return { image, launch };
}
