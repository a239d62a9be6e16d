/** The decision log's public surface, for authz and the CLI. See docs/decision-log.md. */
export { createDecisionSink, defaultDecisionLogDir, resolveDecisionLogConfig, DecisionLogConfigError } from './config.js';
export type { DecisionLogConfig, DecisionLogConfigInput, NatsSinkConfig, CreateSinkOptions } from './config.js';
export { FileDecisionSink, DecisionLogLockedError } from './file-sink.js';
export type { FileSinkOptions, FileSinkStats, FsyncPolicy, ResumeReport } from './file-sink.js';
export { TeeSink } from './tee.js';
export type { Replica, DecisionLogStats } from './tee.js';
export { NatsReplica, decisionSubject, decisionMsgId } from './nats-sink.js';
export type { NatsReplicaOptions, NatsReplicaStats } from './nats-sink.js';
export { applyMasks, createInputMasker, maskInput, MASK_REPLACEMENT } from './mask.js';
export type { InputMasker, InputMaskerOptions, MaskRule } from './mask.js';
export { canonicalize } from './canonical.js';
export { GENESIS_HASH, recordHash } from './chain.js';
export { verifyLogFiles } from './verify.js';
export type { VerifyReport, Finding } from './verify.js';
export * from './types.js';
