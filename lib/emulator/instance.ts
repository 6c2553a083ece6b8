/**
 * The state of one running emulator, handed to each part. Tests start several emulators in one process, so no
 * part keeps state of its own at module level.
 */
import type { Monitoring } from "./alarms.ts";
import type { Counts, Faults } from "./faults.ts";
import type { Links } from "./links.ts";
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
  /**
   * Milliseconds since the epoch: CloudWatch's clock, the base clock (the host's unless a test gives one) plus
   * the clock offset fault. Everything time-based reads it: validation, retention, expiry, the Date header.
   */
  now: () => number;
  /** Whether a request signed more than 15 minutes from `now` is refused, as AWS refuses it. */
  checkSignedTime: boolean;
  random: () => number;
  faults: Faults;
  /** Role ARN -> the ExternalId AssumeRole must be given for that role. */
  requireExternalId: Map<string, string>;
  store: MetricStore;
  /** Alarms and dashboards (alarms.ts). */
  monitoring: Monitoring;
  /** Cross-account observability: monitoring account -> the source accounts it reads. */
  links: Links;
  /** Access key id -> the session AssumeRole issued it for. */
  sessions: Map<string, Session>;
  /** account -> region -> calls made, units billed and calls throttled, by operation. */
  counts: Record<string, Record<string, Counts>>;
  /** The per-second call quotas; undefined when they are off (--no-quotas). */
  quotas: Quotas | undefined;
}
