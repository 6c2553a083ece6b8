/**
 * The state of one running emulator, handed to each part. Tests start several emulators in one process, so no
 * part keeps state of its own at module level.
 */
import type { Counts, Faults } from "./faults.ts";
import type { Quotas } from "./quotas.ts";
import type { MetricStore } from "./store.ts";

/** Temporary credentials issued by AssumeRole. */
export interface Session {
  account: string;
  /** The secret access key issued with it: kept so that a test can look for it where it must not be. */
  secret: string;
  token: string;
  expires: number;
}

export interface Instance {
  /** Milliseconds since the epoch; the emulator's clock for validation and expiry. */
  now: () => number;
  random: () => number;
  faults: Faults;
  /** Role ARN -> the ExternalId AssumeRole must be given for that role. */
  requireExternalId: Map<string, string>;
  store: MetricStore;
  /** Access key id -> the session AssumeRole issued it for. */
  sessions: Map<string, Session>;
  /** account -> region -> calls made, units billed and calls throttled, by operation. */
  counts: Record<string, Record<string, Counts>>;
  /** The per-second call quotas; undefined when they are off (--no-quotas). */
  quotas: Quotas | undefined;
}
