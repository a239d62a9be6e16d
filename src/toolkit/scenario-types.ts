import type { EntrypointMode } from '../policy/engine.js';
import type { BudgetInputEntry, ToolAnnotations } from '../contract/policy.js';

export type { EntrypointMode };

/**
 * Scenario files: YAML cases that give an identity and an MCP request and expect a decision. The
 * format is documented in docs/policy-authoring.md; these are the shapes after validation.
 */

/** Who calls. Fields left out get the file's defaults, then the built-in ones. */
export interface IdentitySpec {
  /** false: a call without a verified identity (the mesh answers 401 before policy; useful for defence-in-depth rules). */
  authenticated?: boolean;
  sub?: string;
  iss?: string;
  team?: string | null;
  groups?: string[];
  agent?: string | null;
  scopes?: string[];
  claims?: Record<string, unknown>;
  delegation?: Array<Record<string, unknown>>;
}

/** The HTTP request and JSON-RPC message the MCP client sends. */
export interface RequestSpec {
  method?: string;
  tool?: string;
  arguments?: Record<string, unknown>;
  resource?: string;
  prompt?: string;
  /** Raw params, used as given instead of tool/arguments/resource/prompt. */
  params?: Record<string, unknown>;
  /** JSON-RPC id; null makes a notification. Default 1 (none for notifications/...). */
  id?: string | number | null;
  /** An HTTP request with no JSON-RPC body: GET opens the SSE stream, DELETE ends the session. */
  transport?: 'GET' | 'DELETE';
  headers?: Record<string, string>;
  path?: string;
  session_id?: string | null;
  protocol_version?: string | null;
  /**
   * A tool name: the case asks whether this tool is shown in the caller's tools/list (the question
   * the mesh asks for each listed tool: allow means listed). Goes with no other call field.
   */
  listed?: string;
}

/** A budget entry as input.budget.budgets has it; resets_at defaults to the next UTC midnight. */
export type BudgetEntrySpec = Omit<BudgetInputEntry, 'resets_at'> & { resets_at: string | null };

export interface BudgetSpec {
  budgets: BudgetEntrySpec[];
  /** Tokens the call's arguments count for; counted with the real tokenizer when not given. */
  estimatedTokens: number | null;
}

export interface Expectation {
  allow?: boolean;
  /** Each string must occur in some reason. */
  reasonsContain?: string[];
  /** The reasons, exactly (order does not matter). */
  reasons?: string[];
  /** The decision's http_status; null means the policy sets none. */
  status?: number | null;
  /** Each header must have this value; null means it must be absent. */
  headers?: Record<string, string | null>;
  /** The decision's mask paths, exactly (order does not matter). */
  mask?: string[];
  cost?: number | null;
}

/** The call a scenario describes, as the toolkit turns it into policy input (toolkit/call-input.ts). */
export interface CallDescription {
  server: string;
  namespace: string;
  identity: IdentitySpec;
  request: RequestSpec;
  budget: BudgetSpec | null;
  annotations: ToolAnnotations | null;
}

export interface Scenario extends CallDescription {
  name: string;
  /** 0-based position in the file's `cases`. */
  index: number;
  /** 1-based line of the case in its file (0 when unknown). */
  line: number;
  /** Evaluation time in ns since the epoch (time.now_ns, input.request.time_ns); null = now. */
  timeNs: bigint | null;
  expect: Expectation;
}

export interface ScenarioFile {
  file: string;
  entrypoint: EntrypointMode;
  cases: Scenario[];
}

export interface ScenarioProblem {
  file: string;
  line: number | null;
  /** 0-based case index, when the problem is inside a case. */
  caseIndex: number | null;
  /** Dotted path of the field, e.g. cases[2].expect.allow. */
  field: string | null;
  message: string;
}

export function formatScenarioProblem(p: ScenarioProblem): string {
  const where = `${p.file}${p.line !== null ? `:${p.line}` : ''}`;
  const what = [p.caseIndex !== null ? `case ${p.caseIndex + 1}` : null, p.field].filter((x) => x !== null).join(', ');
  return `${where}: ${what ? `${what}: ` : ''}${p.message}`;
}

/** A scenario file that cannot be used, with every problem found in it. */
export class ScenarioFormatError extends Error {
  constructor(readonly problems: ScenarioProblem[]) {
    super(`invalid scenario file${problems.length > 1 ? 's' : ''}:\n${problems.map((p) => '  ' + formatScenarioProblem(p)).join('\n')}`);
    this.name = 'ScenarioFormatError';
  }
}
