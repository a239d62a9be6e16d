import { strict as assert } from 'node:assert';
import { controlplaneCommand } from '../../../src/cli/controlplane.js';
import { placementFlags } from '../../../src/cli/region-flags.js';
import { UsageError } from '../../../src/cli/types.js';

/** `controlplane serve`: where sidecar registrations come from is one explicit choice. */
describe('controlplane serve: registration source flags', () => {
  const serve = (...flags: string[]): Promise<number> => controlplaneCommand.run(['serve', '--policies', 'policies', '--signing-key', 'unused.pem', ...flags]);
  const refused = async (flags: string[], re: RegExp): Promise<void> => {
    await assert.rejects(serve(...flags), (e: unknown) => e instanceof UsageError && re.test(e.message), flags.join(' '));
  };

  it('refuses a file and the API server together, the API server without xDS, and names the choice when neither is given', async () => {
    await refused(['--registrations', 'r.yaml', '--registrations-from-kube', '--xds-cert', 'c', '--xds-key', 'k', '--mesh-ca', 'ca'], /--registrations FILE or --registrations-from-kube, not both/);
    await refused(['--registrations-from-kube', '--no-xds'], /cannot be combined with --no-xds or --once/);
    await refused(['--xds-cert', 'c'], /give --xds-key, --mesh-ca, --registrations \(or --registrations-from-kube\)/);
    // With the API server as the source no file is asked for; the files it does need must exist.
    await refused(['--registrations-from-kube', '--xds-cert', 'missing.crt', '--xds-key', 'k', '--mesh-ca', 'ca'], /--xds-cert: missing\.crt does not exist/);
  });

  it('--workload-cert-lifetime goes with --workload-certs and is a duration of at least 1 s', async () => {
    await refused(['--workload-cert-lifetime', '1h', '--no-xds'], /--workload-cert-lifetime goes with --workload-certs/);
    const certs = ['--workload-certs', '127.0.0.1:0', '--ca-dir', 'ca', '--xds-cert', 'c', '--xds-key', 'k', '--mesh-ca', 'ca', '--registrations-from-kube'];
    await refused([...certs, '--workload-cert-lifetime', '500ms'], /--workload-cert-lifetime must be at least 1s/);
    await refused([...certs, '--workload-cert-lifetime', 'soon'], /./);
  });
});

describe('controlplane serve: region placement flags', () => {
  it('reads the home region and the budget regions, and refuses names that are no NATS cluster name', () => {
    assert.deepEqual(placementFlags(undefined, undefined), { home: null, budgetRegions: [] });
    assert.deepEqual(placementFlags('east', 'east, west,west'), { home: 'east', budgetRegions: ['east', 'west'] });
    assert.throws(() => placementFlags('us east', undefined), (e: unknown) => e instanceof UsageError && /--region: "us east" is not a region name/.test(e.message));
    assert.throws(() => placementFlags(undefined, 'east,*'), /--budget-regions: "\*" is not a region name/);
    assert.throws(() => placementFlags(undefined, ' , '), /needs at least one region name/);
  });
});
