import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/**
 * How to run the tollgate CLI in a child process with the same code this process runs: compiled
 * JavaScript from dist/, or the TypeScript sources through tsx (tests, development).
 */
export function selfCommand(): { cmd: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const main = join(dirname(here), '..', 'cli', fromSource ? 'main.ts' : 'main.js');
  return { cmd: process.execPath, args: fromSource ? ['--import', 'tsx', main] : [main] };
}
