import type { ChainedEntry } from './chain.js';
import type { FileDecisionSink, FileSinkStats } from './file-sink.js';
import type { AccountingRecordDraft, DecisionRecordDraft, DecisionSink, LogEntryDraft } from './types.js';

/** A copy of the log elsewhere, fed with records already written locally. */
export interface Replica {
  /** Must not throw and must not wait: the request is waiting on append(). */
  offer(entry: ChainedEntry): void;
  close(): Promise<void>;
  stats(): unknown;
}

export interface DecisionLogStats {
  file: FileSinkStats;
  replicas: unknown[];
}

/**
 * The sink authz uses: the local file first (the source of truth: when append() returns, the
 * record is in it), then each replica. A replica failing never fails the append.
 */
export class TeeSink implements DecisionSink {
  private replicaErrors = 0;

  constructor(readonly file: FileDecisionSink, readonly replicas: readonly Replica[], private readonly warn: (m: string) => void) {}

  append(record: DecisionRecordDraft): void {
    this.appendAndOffer(record);
  }

  /**
   * An accounting record arrives after the call was answered: if it cannot be written the
   * failure is reported, not thrown into the response path.
   */
  account(record: AccountingRecordDraft): void {
    try {
      this.appendAndOffer(record);
    } catch (e) {
      this.warn(`could not write the accounting record of decision ${record.decision_id}: ${(e as Error).message}`);
    }
  }

  private appendAndOffer(record: LogEntryDraft): void {
    const entry = this.file.appendEntry(record);
    for (const r of this.replicas) {
      try {
        r.offer(entry);
      } catch (e) {
        if (this.replicaErrors++ === 0) this.warn(`decision log replica failed to take seq ${entry.record.seq}: ${(e as Error).message} (the local log has it)`);
      }
    }
  }

  stats(): DecisionLogStats {
    return { file: this.file.stats(), replicas: this.replicas.map((r) => r.stats()) };
  }

  /** Closes the local log first (final checkpoint), then lets replicas finish sending. */
  async close(): Promise<void> {
    await this.file.close();
    for (const r of this.replicas) await r.close();
  }
}
