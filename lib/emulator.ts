/**
 * A local stand-in for Amazon CloudWatch and AWS STS that the unmodified AWS SDK for JavaScript v3 talks to
 * when AWS_ENDPOINT_URL points at it. It enforces the limits and validation rules of the AWS API reference,
 * and shares no code with the forwarder on purpose: it is the independent check on it.
 *
 *   bun run lib/emulator.ts --port 4566 [--seed demo] [--latency-ms N] [--throttle-rate R] [--error-rate R]
 *                           [--put-error-rate R] [--put-reply-delay-ms N] [--put-applied-reset-rate R]
 *                           [--put-applied-error-rate R] [--list-repeat-rate R] [--late-rate R --late-by S]
 *                           [--deny-role ARN] [--require-external-id ROLE_ARN=ID] [--no-quotas]
 *                           [--clock-offset S] [--link MONITORING=SOURCE[,SOURCE...]]
 *                           [--owning-accounts aligned|missing|short]
 *
 * --list-repeat-rate R: ListMetrics names each metric it lists again with chance R, later on the same page or
 * on the next one (every metric still at least once, at most 500 entries a page). --late-rate R --late-by S:
 * a share R of the samples a source publishes (the seed, not PutMetricData) is readable only S seconds after
 * its timestamp, and then merges into its period. CloudWatch's per-second quotas apply per account, Region and
 * operation unless --no-quotas.
 *
 * --clock-offset S: CloudWatch's clock is the host's plus S seconds (negative: behind). Answers are dated by it,
 * all data is judged by it, and a request signed more than 15 minutes off it is refused as AWS refuses it
 * (InvalidSignatureException, or SignatureDoesNotMatch from STS). --link M=S1,S2 (repeatable): monitoring
 * account M reads source accounts S1 and S2 (cross-account observability: ListMetrics IncludeLinkedAccounts and
 * OwningAccount, GetMetricData's AccountId). --owning-accounts missing|short: ListMetrics' OwningAccounts left
 * out, or one short of Metrics.
 *
 * Faults can be changed while running with POST /_emulator/faults, a JSON object of latency_ms, throttle_rate,
 * error_rate, put_error_rate, put_reply_delay_ms, put_applied_reset_rate, put_applied_error_rate,
 * list_repeat_rate, late_rate, late_by, clock_offset_seconds, owning_accounts and deny_roles (any other key:
 * HTTP 400); POST /_emulator/links with `{"MONITORING": ["SOURCE", ...]}` replaces all links (GET reads them);
 * GET /_emulator/counts returns calls, billed units and throttled calls.
 *
 * Its parts are in lib/emulator/: http.ts (the server and both wire protocols), cloudwatch.ts and sts.ts (the
 * operations; requests.ts reads their parameters, errors.ts is their error), store.ts (the streams, indexed for
 * lookup and listing) and samples.ts (their samples, in columns, and aggregation), faults.ts (faults, call
 * counts, the control endpoints), links.ts (cross-account links), alarms.ts (alarms and dashboards),
 * quotas.ts, limits.ts, demo_fleet.ts; instance.ts is the state they share.
 */
import process from "node:process";
import { Monitoring } from "./emulator/alarms.ts";
import { DEMO_ACCOUNTS, seedDemo } from "./emulator/demo_fleet.ts";
import {
  type Counts,
  type Faults,
  lateUntil,
  OWNING_ACCOUNTS_FAULTS,
  type OwningAccountsFault,
} from "./emulator/faults.ts";
import { listen } from "./emulator/http.ts";
import type { Instance } from "./emulator/instance.ts";
import { linkProblems, linksOf } from "./emulator/links.ts";
import { Quotas } from "./emulator/quotas.ts";
import { MetricStore, type RawPut } from "./emulator/store.ts";

export { DEMO_ACCOUNTS };
export type { Faults, RawPut };

export interface EmulatorOptions {
  port?: number;
  seed?: "demo";
  latencyMs?: number;
  throttleRate?: number;
  errorRate?: number;
  putErrorRate?: number;
  putReplyDelayMs?: number;
  putAppliedResetRate?: number;
  putAppliedErrorRate?: number;
  /** Chance that ListMetrics names a listed metric again, later on the same page or on the next. */
  listRepeatRate?: number;
  /** Share of seeded samples readable only `lateBySeconds` after their timestamp. */
  lateRate?: number;
  lateBySeconds?: number;
  denyRoles?: string[];
  requireExternalId?: Record<string, string>;
  /** CloudWatch's per-second call quotas, per account, Region and operation; on unless false. */
  quotas?: boolean;
  /**
   * Milliseconds since the epoch: the base clock, the host's by default; CloudWatch's clock is it plus
   * clockOffsetSeconds.
   */
  now?: () => number;
  /** Seconds CloudWatch's clock is ahead of the base clock (negative: behind); 0 by default. */
  clockOffsetSeconds?: number;
  /**
   * Whether a request signed more than 15 minutes from CloudWatch's clock is refused, as AWS refuses it. On
   * unless `now` is given: the SDK signs by the host's clock, which a test's clock leaves behind.
   */
  checkSignedTime?: boolean;
  /** Cross-account observability: monitoring account -> the source accounts it reads. */
  links?: Record<string, string[]>;
  /** ListMetrics' OwningAccounts: "aligned" (as AWS answers; the default), "missing" or "short". */
  owningAccounts?: OwningAccountsFault;
  /** Milliseconds on a monotonic clock, for the quotas' one-second window; performance.now by default. */
  monotonic?: () => number;
  random?: () => number;
}

export interface Emulator {
  url: string;
  port: number;
  faults: Faults;
  /** CloudWatch's clock (ms since the epoch): the base clock plus the clock offset, as answers are dated. */
  now(): number;
  /**
   * Writes raw values without the API's checks, the way an AWS service publishes into its own namespace;
   * late (see lateRate) for some, as a source's samples can be.
   */
  seed(put: RawPut): void;
  counts(): Record<string, Record<string, Counts>>;
  /** Every credential AssumeRole has issued: access key id, secret access key and session token. */
  issued(): string[][];
  streamCount(): number;
  stop(): Promise<void>;
}

export function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const links = options.links ?? {};
  const problems = linkProblems(links);
  if (problems.length > 0) return Promise.reject(new Error(`Cannot link accounts: ${problems.join("; ")}`));
  const base = options.now ?? Date.now;
  const faults: Faults = {
    latencyMs: options.latencyMs ?? 0,
    throttleRate: options.throttleRate ?? 0,
    errorRate: options.errorRate ?? 0,
    putErrorRate: options.putErrorRate ?? 0,
    putReplyDelayMs: options.putReplyDelayMs ?? 0,
    putAppliedResetRate: options.putAppliedResetRate ?? 0,
    putAppliedErrorRate: options.putAppliedErrorRate ?? 0,
    listRepeatRate: options.listRepeatRate ?? 0,
    lateRate: options.lateRate ?? 0,
    lateBySeconds: options.lateBySeconds ?? 0,
    denyRoles: new Set(options.denyRoles ?? []),
    clockOffsetSeconds: options.clockOffsetSeconds ?? 0,
    owningAccounts: options.owningAccounts ?? "aligned",
  };
  const now = () => base() + faults.clockOffsetSeconds * 1000;
  const emu: Instance = {
    now,
    checkSignedTime: options.checkSignedTime ?? options.now === undefined,
    random: options.random ?? Math.random,
    faults,
    requireExternalId: new Map(Object.entries(options.requireExternalId ?? {})),
    links: linksOf(links),
    monitoring: new Monitoring(),
    store: new MetricStore(now),
    sessions: new Map(),
    counts: {},
    quotas: options.quotas === false ? undefined : new Quotas(options.monotonic ?? (() => performance.now())),
  };
  const seed = (put: RawPut) => emu.store.seed(put, lateUntil(faults, emu.random, put.timestamp));
  if (options.seed === "demo") seedDemo(seed, now());
  return listen(emu, options.port ?? 0).then(({ port, stop }) => ({
    url: `http://127.0.0.1:${port}`,
    port,
    faults,
    now,
    seed,
    counts: () => structuredClone(emu.counts),
    issued: () => [...emu.sessions].map(([keyId, s]) => [keyId, s.secret, s.token]),
    streamCount: () => emu.store.streamCount(),
    stop,
  }));
}

function parseArgs(argv: string[]): EmulatorOptions {
  const o: EmulatorOptions = { port: 4566 };
  const denied: string[] = [];
  const external: Record<string, string> = {};
  const links: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`Cannot parse arguments: ${flag} needs a value`);
      return v;
    };
    const rate = () => {
      const v = Number(value());
      if (!(v >= 0 && v <= 1)) throw new Error(`Cannot parse arguments: ${flag} takes a number from 0 to 1`);
      return v;
    };
    if (flag === "--port") o.port = Number(value());
    else if (flag === "--seed") {
      if (value() !== "demo") throw new Error(`Cannot parse arguments: --seed takes "demo"`);
      o.seed = "demo";
    } else if (flag === "--latency-ms") o.latencyMs = Number(value());
    else if (flag === "--throttle-rate") o.throttleRate = rate();
    else if (flag === "--error-rate") o.errorRate = rate();
    else if (flag === "--put-error-rate") o.putErrorRate = rate();
    else if (flag === "--put-reply-delay-ms") o.putReplyDelayMs = Number(value());
    else if (flag === "--put-applied-reset-rate") o.putAppliedResetRate = rate();
    else if (flag === "--put-applied-error-rate") o.putAppliedErrorRate = rate();
    else if (flag === "--list-repeat-rate") o.listRepeatRate = rate();
    else if (flag === "--late-rate") o.lateRate = rate();
    else if (flag === "--late-by") {
      const v = Number(value());
      if (!(v >= 0 && Number.isFinite(v))) {
        throw new Error("Cannot parse arguments: --late-by takes a number of seconds (0 or more)");
      }
      o.lateBySeconds = v;
    } else if (flag === "--clock-offset") {
      const v = Number(value());
      if (!Number.isFinite(v)) {
        throw new Error(
          "Cannot parse arguments: --clock-offset takes a number of seconds (negative: behind)",
        );
      }
      o.clockOffsetSeconds = v;
    } else if (flag === "--link") {
      const m = /^([^=]+)=(.+)$/.exec(value());
      if (!m) throw new Error("Cannot parse arguments: --link takes MONITORING=SOURCE[,SOURCE...]");
      links[m[1]!] = [...(links[m[1]!] ?? []), ...m[2]!.split(",")];
    } else if (flag === "--owning-accounts") {
      const v = value();
      if (!OWNING_ACCOUNTS_FAULTS.includes(v as OwningAccountsFault)) {
        throw new Error(
          `Cannot parse arguments: --owning-accounts takes ${OWNING_ACCOUNTS_FAULTS.join(", ")}`,
        );
      }
      o.owningAccounts = v as OwningAccountsFault;
    } else if (flag === "--no-quotas") o.quotas = false;
    else if (flag === "--deny-role") denied.push(value());
    else if (flag === "--require-external-id") {
      const [arn, id] = value().split(/=(.*)/s);
      if (!arn || id === undefined) {
        throw new Error("Cannot parse arguments: --require-external-id takes ROLE_ARN=ID");
      }
      external[arn] = id;
    } else throw new Error(`Cannot parse arguments: unknown flag "${flag}"`);
  }
  // Late by nothing would be no fault at all: say so rather than run without it.
  if ((o.lateRate ?? 0) > 0 && o.lateBySeconds === undefined) {
    throw new Error("Cannot parse arguments: --late-rate needs --late-by S");
  }
  return { ...o, denyRoles: denied, requireExternalId: external, links };
}

if (import.meta.main) {
  try {
    const emu = await startEmulator(parseArgs(process.argv.slice(2)));
    console.log(`emulator listening on ${emu.url}`);
    const shutdown = () => emu.stop().then(() => process.exit(0));
    process.on("SIGINT", shutdown);
    process.on("SIGTERM", shutdown);
    // `npm run emulator` starts it through a shell that does not pass a SIGTERM on: once the command that
    // started it is gone, the emulator is left to init, which it takes as the word to stop.
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && shutdown(), 500);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 2;
  }
}
