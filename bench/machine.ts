import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What the numbers were measured on: results are only comparable within one run on one machine. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  hostname: string;
  node: string;
  go: string;
  tools: Record<string, string>;
  /** Load average when the run started: other work on the machine skews everything. */
  loadavg: number[];
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: 15_000 });
    return (stdout || stderr).split('\n').find((l) => l.trim())?.trim() ?? 'unknown';
  } catch (e) {
    return `unavailable (${(e as Error).message.split('\n')[0]})`;
  }
}

/** `opa-envoy-plugin version` prints several lines; the first is "Version: x.y.z". */
async function versionField(cmd: string, field: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, ['version'], { timeout: 15_000 });
    const line = stdout.split('\n').find((l) => l.startsWith(`${field}:`));
    return line ? line.slice(field.length + 1).trim() : 'unknown';
  } catch (e) {
    return `unavailable (${(e as Error).message.split('\n')[0]})`;
  }
}

/**
 * The Go module version a binary was built from (`go version -m`): binaries from `go install`
 * print "dev" as their own version, but the build info records the module's.
 */
async function goModuleVersion(binary: string, modulePath: string): Promise<string | null> {
  try {
    const { stdout } = await run('go', ['version', '-m', binary], { timeout: 15_000 });
    for (const line of stdout.split('\n')) {
      const [, kind, path, version] = line.split('\t');
      if ((kind === 'mod' || kind === 'dep') && path === modulePath && version) return version;
    }
    return null;
  } catch {
    return null;
  }
}

export async function describeMachine(tools: { ghz: string; opaEnvoy: string; opa: string; envoy: string | null }): Promise<MachineInfo> {
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    hostname: hostname(),
    node: process.version,
    go: await firstLine('go', ['version']),
    tools: {
      ghz: (await goModuleVersion(tools.ghz, 'github.com/bojand/ghz')) ?? await firstLine(tools.ghz, ['--version']),
      'opa-envoy-plugin': (await goModuleVersion(tools.opaEnvoy, 'github.com/open-policy-agent/opa-envoy-plugin')) ?? await versionField(tools.opaEnvoy, 'Version'),
      opa: await versionField(tools.opa, 'Version'),
      ...(tools.envoy ? { envoy: await firstLine(tools.envoy, ['--version']) } : {}),
    },
    loadavg,
  };
}
