import { scanText, type Finding } from './scan.js';
import type { PinInput } from '../contract/policy.js';

export type { PinInput };
import { definitionHash, scanDefinition, toolDefinition, type ToolDefinition } from './definition.js';

/** An approved definition, as it came (verified) from the pin bucket. */
export interface Pin {
  server: string;
  tool: string;
  sha256: string;
  definition: ToolDefinition;
  approver: string;
  approved_at: string;
  accept_findings: boolean;
}

export interface Observed {
  sha256: string;
  definition: ToolDefinition;
  findings: Finding[];
  seenAt: number;
}

/**
 * Pins in force and what each server currently offers. Pins come only from the verified pin
 * source; observations only from servers' tools/list responses (ext_proc), never from clients.
 * Bounded like ToolAnnotationStore: a server cannot make authz hold unbounded memory.
 */
export class PinStore {
  private readonly pins = new Map<string, Map<string, Pin>>();
  private readonly observed = new Map<string, Map<string, Observed>>();
  private readonly instructions = new Map<string, Finding[]>();

  constructor(private readonly maxToolsPerServer = 10_000, private readonly maxServers = 1000) {}

  private bucket<T>(m: Map<string, Map<string, T>>, server: string): Map<string, T> | null {
    let b = m.get(server);
    if (!b) {
      if (m.size >= this.maxServers) return null;
      b = new Map();
      m.set(server, b);
    }
    return b;
  }

  setPin(pin: Pin): void {
    this.bucket(this.pins, pin.server)?.set(pin.tool, pin);
  }

  removePin(server: string, tool: string): void {
    this.pins.get(server)?.delete(tool);
  }

  pin(server: string, tool: string): Pin | null {
    return this.pins.get(server)?.get(tool) ?? null;
  }

  /**
   * Records the tools of one tools/list page. Returns the observations whose definition is new or
   * different from what was seen before (to publish for `tollgate tools pending`).
   */
  observe(server: string, tools: readonly unknown[]): Array<{ tool: string } & Observed> {
    const b = this.bucket(this.observed, server);
    if (!b) return [];
    const defs = tools.map(toolDefinition).filter((d): d is ToolDefinition => d !== null);
    const names = defs.map((d) => d.name);
    const changed: Array<{ tool: string } & Observed> = [];
    for (const def of defs) {
      const sha256 = definitionHash(def);
      const prev = b.get(def.name);
      if (prev && prev.sha256 === sha256) { prev.seenAt = Date.now(); continue; }
      if (!prev && b.size >= this.maxToolsPerServer) continue;
      const o: Observed = { sha256, definition: def, findings: scanDefinition(def, names), seenAt: Date.now() };
      b.set(def.name, o);
      changed.push({ tool: def.name, ...o });
    }
    return changed;
  }

  /**
   * What another authz replica saw its server list (from the seen bucket), taken over when this
   * replica saw the tool too, longer ago, with another definition: a rug pull one replica sees
   * then counts on all of them, so a client holding the old list is refused everywhere. It can
   * only make a tool's status worse: never taken when it matches the pin (each replica approves
   * only what its own server listed: pods may run different server instances), never for a tool
   * this replica has not seen (it stays "unverified", refused), never older than what it saw
   * itself. The definition is hashed and scanned here, not taken on trust.
   */
  adopt(server: string, tool: string, definition: unknown, seenAt: number): boolean {
    const prev = this.observed.get(server)?.get(tool);
    const def = toolDefinition(definition);
    if (!prev || !def || def.name !== tool || !(seenAt > prev.seenAt)) return false;
    const sha256 = definitionHash(def);
    if (sha256 === prev.sha256 || sha256 === this.pin(server, tool)?.sha256) return false;
    const names = [...this.observed.get(server)!.keys()];
    this.observed.get(server)!.set(tool, { sha256, definition: def, findings: scanDefinition(def, names), seenAt });
    return true;
  }

  /** Every observation held, for republishing after an outage. */
  *observations(): Generator<{ server: string; tool: string } & Observed> {
    for (const [server, tools] of this.observed) for (const [tool, o] of tools) yield { server, tool, ...o };
  }

  /** Scans the instructions of a server's initialize result; returns the findings when they changed. */
  observeInstructions(server: string, text: string): Finding[] | null {
    if (!this.instructions.has(server) && this.instructions.size >= this.maxServers) return null;
    const findings = scanText(text);
    const before = JSON.stringify(this.instructions.get(server) ?? []);
    this.instructions.set(server, findings);
    return JSON.stringify(findings) === before ? null : findings;
  }

  /** The pin status of a tool for the policy input. */
  inputFor(server: string, tool: string): PinInput {
    const pin = this.pin(server, tool);
    const seen = this.observed.get(server)?.get(tool) ?? null;
    const base = {
      sha256: seen?.sha256 ?? null, approved_sha256: pin?.sha256 ?? null, findings: seen?.findings ?? [],
      accepted_findings: pin?.accept_findings ?? false, server_findings: this.instructions.get(server) ?? [],
    };
    if (!pin) return { status: 'new', ...base };
    if (!seen) return { status: 'unverified', ...base };
    return { status: seen.sha256 === pin.sha256 ? 'approved' : 'changed', ...base };
  }

  /** inputFor() as a free function, the shape CheckDeps and the list filter take. */
  readonly lookup = (server: string, tool: string): PinInput => this.inputFor(server, tool);
}
