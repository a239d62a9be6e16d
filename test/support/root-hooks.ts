/**
 * Mocha root hooks (loaded through .mocharc.json `require`). Mocha runs without `exit: true`, so a
 * handle left open keeps the test process alive and shows up as a hang instead of hiding. Fixtures
 * shared across test files (one kube-apiserver for every k8s file) have no single file whose
 * `after` could stop them; they register their teardown here and it runs once, after every file.
 */
type Teardown = () => Promise<void> | void;

const teardowns: Array<{ what: string; run: Teardown }> = [];

/** Runs `run` after the whole run (every spec file), last registered first. */
export function afterRun(what: string, run: Teardown): void {
  teardowns.push({ what, run });
}

export const mochaHooks = {
  async afterAll(): Promise<void> {
    const failures: string[] = [];
    while (teardowns.length > 0) {
      const t = teardowns.pop()!;
      try {
        await t.run();
      } catch (e) {
        failures.push(`${t.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (failures.length > 0) throw new Error(`teardown after the run failed: ${failures.join('; ')}`);
  },
};
