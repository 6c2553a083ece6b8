/**
 * A run: the record the loop in forward.ts carries from stage to stage, and the mechanics around it that are
 * not AWS calls: opening the checkpoint store, one account-region's attempts, counting what it did and the
 * progress line; the summary is lib/summary.ts's.
 */
import type { ClockReading, CloudWatchApi, Datum, Query, Role } from "./aws.ts";
import { budget } from "./batch.ts";
import { type Args, EXIT } from "./cli.ts";
import type { MetricPlan, Plan, SourcePlan } from "./config.ts";
import {
  briefly,
  ConfigError,
  describe,
  isPermissionError,
  isThrottled,
  StateError,
  WriteInDoubt,
} from "./errors.ts";
import { GMD_MAX_DATAPOINTS } from "./limits.ts";
import { heapKeeper } from "./heap.ts";
import type { Log } from "./log.ts";
import { plural } from "./errors.ts";
import { describeDatum, type Over, type Producer, type Publisher, publisher } from "./publish.ts";
import { accountOf, accountsOf, keyOf, type Owner, type Stream, type Unfound, whereOf } from "./discover.ts";
import type { PeriodStats } from "./fetch.ts";
import { lagOf, type StepContext } from "./step.ts";
import { memoryStore, type OpenOptions, openStore as openSqlite, readStore, type Store } from "./store.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";
import * as os from "node:os";
import process from "node:process";

export interface Run extends StepContext {
  plan: Plan;
  /**
   * CloudWatch's now as the run read it (epoch seconds): `nowSeconds` unless --now is earlier. What lies after
   * it was left by a mistake (lib/clock.ts, repairAhead).
   */
  cloudWatchSeconds: number;
  /** Seconds a listing is kept (the config's discovery_interval). */
  discoveryInterval: number;
  destination: CloudWatchApi;
  cloudWatch: (region: string, role: Role | undefined) => CloudWatchApi;
  publisher: Publisher;
  out: (line: string) => void;
  sleep: (ms: number) => Promise<void>;
  /**
   * Requests this run sent to AWS, by operation: every attempt that left, as AWS counts them, throttled ones
   * included (counted by lib/aws.ts's connector, where they leave).
   */
  calls: Record<string, number>;
  /** Of those, the ones AWS refused for its rate (Throttling), by operation. */
  throttled: Record<string, number>;
  /** Takes room for an account-region's streams among those held at once; gives a function to give it back. */
  admit: (streams: number) => Promise<() => void>;
  /** Once any part of the run finds its lease lost: said once, and the run ends with exit code 3. */
  leaseLost?: StateError;
  /** The account-regions that failed: the call and error that stopped each, in a few words, and what it did. */
  failures?: Map<SourcePlan, { why: string; totals: SourceTotals }>;
  /** As StepContext's, with the signal that asked, for the summary. */
  stop: Stop;
  /** Wall clock, epoch ms. */
  clock: () => number;
  /** Gives the lease back and ends the progress line. */
  end(): void;
}

/** What one account-region did in a run. */
export interface SourceTotals {
  streams: number;
  /** Datums written and accepted (or found written after a lost answer to this run's own write). */
  datums: number;
  /** Datums left out because the destination had them already. */
  already: number;
  refused: number;
  /** Periods the destination has more samples of than the source: written twice somewhere, said loudly. */
  over: number;
  /** Streams found per metrics entry and name (`namespace|name|dimensions`), for what matched nothing. */
  found: Map<string, number>;
  /** What this run's listing did not find of the config; nothing where the run kept the last listing. */
  unfound: Unfound[];
  /**
   * The streams of entries that name a unit, by checkpoint key: whether each answered any datapoint in the
   * periods owed (see warnSilent).
   */
  inUnit: Map<string, { stream: Stream; answered: boolean }>;
  /**
   * Through a monitoring account, per account its streams belong to (by name): its streams, the datums of them
   * written, and why it failed, where GetMetricData refused its streams (Forbidden).
   */
  owners?: Map<string, OwnerTotals>;
  /** Not begun: the run was asked to stop before its turn came. */
  skipped?: boolean;
  /** How far its oldest current stream is behind, in seconds, once it is done (lagOf in lib/step.ts). */
  lag?: number | undefined;
}

/** What one account read through a monitoring account did in a run (see SourceTotals). */
export interface OwnerTotals {
  streams: number;
  datums: number;
  failed?: string;
}

/** An owner's totals, made when first counted. */
function ownerTotals(totals: SourceTotals, name: string): OwnerTotals {
  const owners = totals.owners ??= new Map();
  let o = owners.get(name);
  if (o === undefined) owners.set(name, o = { streams: 0, datums: 0 });
  return o;
}

/**
 * Account-regions forwarded at once. Each has quotas of its own, and what they hold together is bounded by
 * the datapoints budget: this only keeps the number of open connections sensible.
 */
export const SOURCE_CONCURRENCY = 64;
/** Datapoints of GetMetricData answers held at once, over all account-regions: eight full answers (see step.ts). */
const MAX_POINTS_HELD = 8 * GMD_MAX_DATAPOINTS;
/**
 * Streams held at once, over all account-regions, each counted as its checkpoints say: a fleet of a few hundred
 * thousand runs all at once, a larger one in waves, each account-region's memory given back when it is done.
 * A stream costs about 1.5 KB while its account-region runs.
 */
const STREAMS_AT_ONCE = 250_000;

/** What a run is made of: the command line, the config, and what outlives a run in loop mode. */
export interface RunOptions {
  args: Args;
  clients: Clients;
  plan: Plan;
  paths: { file: string; legacy: string; previous?: string };
  deps: {
    now: () => number;
    out: (line: string) => void;
    err: (line: string) => void;
    sleep?: (ms: number) => Promise<void>;
    tty?: boolean;
  };
  log: Log;
  nowSeconds: number;
  cloudWatchSeconds: number;
  stop: { requested: boolean };
}

/** The AWS clients of a process: one per account and region, their credentials cached across runs. */
export interface Clients {
  cloudWatch: (region: string, role: Role | undefined) => CloudWatchApi;
  /** Requests sent to AWS by operation, of the run under way: every attempt that left (see Run). */
  calls: Record<string, number>;
  /** Of those, the throttled ones. */
  throttled: Record<string, number>;
  /** Where an answered call tells the run's store that the run makes progress. */
  progress: { answered: () => void };
  /** CloudWatch's time, asked of the destination with `query` (lib/clock.ts): a test's fakes give their own. */
  clock: (query: Query) => Promise<ClockReading>;
}

/** The SDK's clients (loaded only now), or a test's fakes; every request counted, credentials kept out of logs. */
export async function clientsFor(
  plan: Plan,
  deps: { now: () => number; cloudWatch?: Clients["cloudWatch"]; cloudWatchNow?: () => number },
  log: Log,
): Promise<Clients> {
  const calls: Record<string, number> = {};
  const throttled: Record<string, number> = {};
  const sent = (op: string, limited: boolean) => (count(calls, op), limited && count(throttled, op));
  const progress = { answered: () => {} };
  if (deps.cloudWatch) {
    const { now, cloudWatchNow = now } = deps;
    const clock = () => Promise.resolve({ cloudWatchMs: cloudWatchNow(), hostMs: now() });
    return { cloudWatch: perCall(deps.cloudWatch, sent), calls, throttled, progress, clock };
  }
  const { connector } = await import("./aws.ts");
  const cloudWatch = connector({
    stsRegion: plan.destination.region,
    now: deps.now,
    onSent: sent,
    onAnswer: () => progress.answered(),
    secret: (value) => log.secret(value),
  });
  const clock = (query: Query) => cloudWatch(plan.destination.region, roleOf(plan.destination)).time(query);
  return { cloudWatch, calls, throttled, progress, clock };
}

/** A test's fake clients have no connection to count at: each call is one request, throttled if it says so. */
function perCall(
  cloudWatch: Clients["cloudWatch"],
  sent: (op: string, throttled: boolean) => void,
): Clients["cloudWatch"] {
  const one = <T>(op: string, answer: () => Promise<T>) => {
    const p = answer();
    p.then(() => sent(op, false), (e) => sent(op, isThrottled(e)));
    return p;
  };
  return (region, role) => {
    const api = cloudWatch(region, role);
    return {
      listMetrics: (input) => one("ListMetrics", () => api.listMetrics(input)),
      getMetricData: (input) => one("GetMetricData", () => api.getMetricData(input)),
      putMetricData: (ns, datums, lease) => one("PutMetricData", () => api.putMetricData(ns, datums, lease)),
    };
  };
}

/**
 * Where HOME is not set, the AWS SDK looks up the home folder (for ~/.aws) through the process's user id,
 * which Deno refuses without --allow-sys: every call would fail before it is sent, each account-region on a
 * line of its own. Asked the same way once, before any call, it is said once. Bun and Node refuse nothing.
 */
export function checkHome(env: Record<string, string | undefined>) {
  // What the SDK reads before it looks (getHomeDir, in @smithy/core's shared-ini-file-loader).
  if (env["HOME"] || env["USERPROFILE"] || env["HOMEPATH"]) return;
  try {
    process.geteuid?.();
    os.homedir();
  } catch (e) {
    // Any other failure is the SDK's to meet, and to report with the call it fails.
    if (!isPermissionError(e)) return;
    throw new ConfigError([
      "Cannot run forward.ts: HOME is not set, so the AWS SDK would look up the home folder, which Deno refuses without --allow-sys: set HOME (the service --systemd-units writes sets it), or add --allow-sys",
    ]);
  }
}

/** A request to stop, and the signal that asked, for the summary. */
export interface Stop {
  requested: boolean;
  signal?: string;
}

/**
 * SIGTERM (systemd stopping the service) and SIGINT (Ctrl-C) ask the run to stop: the step under way
 * finishes and commits, and no other starts. A test passes its own `onStop`.
 */
export function stopOnSignals(
  log: Log,
  onStop?: (stop: (signal: string) => void) => void,
): Stop {
  const stop: Stop = { requested: false };
  const request = (signal: string) => {
    if (!stop.requested) log.info(`Stopping on ${signal}: the steps under way finish and are committed`);
    stop.requested = true;
    stop.signal ??= signal;
  };
  if (onStop) onStop(request);
  else for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => request(signal));
  return stop;
}

/**
 * A run that could not begin (CloudWatch's clock unread): every account-region's last run failed with `error`,
 * for --status and its exit code, and the process exits 1. A plan, a dry run or an audit records nothing.
 */
export function failedRun(o: Omit<RunOptions, "nowSeconds" | "cloudWatchSeconds">, error: string): number {
  if (o.args.dryRun || o.args.plan || o.args.audit) return EXIT.failed;
  const at = Math.floor(o.deps.now() / 1000); // the host's: CloudWatch's is what could not be read
  const run = startRun({ ...o, nowSeconds: at, cloudWatchSeconds: at });
  try {
    for (const src of o.plan.sources) run.store.noteSource(src.account, src.region, { error, at });
  } finally {
    run.end();
  }
  return EXIT.failed;
}

/**
 * Starts a run: opens the checkpoint store and takes its lease (a plan or a dry run only reads it), counts
 * its API calls, pools its writes fenced by the lease, and starts the progress line.
 */
export function startRun(o: RunOptions): Run {
  // An audit without --repair writes nothing, so it takes no lease: it can run beside the forwarder.
  const readOnly = o.args.dryRun || o.args.plan || (o.args.audit && !o.args.repair);
  const opening = { clock: o.deps.now, nowSeconds: o.nowSeconds, interval: o.args.every ?? o.plan.interval };
  // Every answer, and every checkpoint update, is a moment to see whether the heap has grown enough to collect
  // (lib/heap.ts): a step's commit touches every stream of its account-region at once, and the account-regions
  // of a run commit one after another between two answers.
  const tidy = heapKeeper();
  const opened = openStore(o.paths, readOnly, { ...opening, info: (l) => o.log.info(l) }, o.log);
  const store: Store = {
    ...opened,
    update(keys, f) {
      const done = opened.update(keys, f);
      tidy();
      return done;
    },
  };
  const { calls, throttled } = o.clients;
  o.clients.progress.answered = () => store.touch();
  const then = <T>(answer: Promise<T>) => answer.then((r) => (tidy(), r));
  const tidied = (api: CloudWatchApi): CloudWatchApi => ({
    listMetrics: (input) => then(api.listMetrics(input)),
    getMetricData: (input) => then(api.getMetricData(input)),
    putMetricData: (ns, datums, lease) => then(api.putMetricData(ns, datums, lease)),
  });
  const destination = tidied(o.clients.cloudWatch(o.plan.destination.region, roleOf(o.plan.destination)));
  const progress = progressLine({ tty: o.deps.tty === true, write: o.deps.err, now: o.deps.now });
  return {
    plan: o.plan,
    discoveryInterval: o.plan.discoveryInterval,
    nowSeconds: o.nowSeconds,
    cloudWatchSeconds: o.cloudWatchSeconds,
    clock: o.deps.now,
    store,
    destination,
    cloudWatch: (region, role) => tidied(o.clients.cloudWatch(region, role)),
    publisher: publisher(destination, () => store.fence()),
    replay: o.args.replay,
    dryRun: readOnly,
    log: o.log,
    out: (line) => o.deps.out(o.log.clean(line)),
    sleep: o.deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    held: budget(MAX_POINTS_HELD),
    admit: budget(STREAMS_AT_ONCE),
    stop: o.stop,
    calls,
    throttled,
    ownDoubt: new Set(),
    progress,
    end() {
      progress.end();
      // Answers after the run (the next pass's clock read, in loop mode) have no store to renew a lease in.
      o.clients.progress.answered = () => {};
      store.close();
    },
  };
}

/**
 * Loop mode: a pass every `seconds`, each at the next multiple of it since the epoch (so passes fall on the
 * minute, say, as periods do), until SIGTERM or SIGINT; the pass under way finishes its step, commits, and the
 * process exits 0.
 */
export async function every(
  seconds: number,
  pass: (nowSeconds: number) => Promise<number>,
  stop: { requested: boolean },
  deps: { now: () => number; sleep?: (ms: number) => Promise<void> },
): Promise<number> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  while (!stop.requested) {
    const code = await pass(Math.floor(deps.now() / 1000));
    if (code === EXIT.usage) return code;
    const next = (Math.floor(deps.now() / 1000 / seconds) + 1) * seconds * 1000;
    // Asleep in short naps, so that a signal ends the wait within a second.
    while (!stop.requested && deps.now() < next) await sleep(Math.min(1000, next - deps.now()));
  }
  return EXIT.ok;
}

/**
 * The streams a source found, per metrics entry and name, and what its listing did not find: what config
 * matched nothing. Added to, not replaced: an attempt made again in the same run keeps the first one's listing.
 */
export function noteFound(totals: SourceTotals, streams: Stream[], unfound: Unfound[]) {
  totals.streams = streams.length;
  totals.unfound.push(...unfound);
  for (const o of totals.owners?.values() ?? []) o.streams = 0;
  for (const s of streams) if (s.owner) ownerTotals(totals, s.owner.name).streams++;
  // Counted per entry and name first: a key made for each stream would cost as much as the counting.
  const counts = new Map<MetricPlan, Map<string, number>>();
  for (const s of streams) {
    let byName = counts.get(s.plan);
    if (byName === undefined) counts.set(s.plan, byName = new Map());
    byName.set(s.name, (byName.get(s.name) ?? 0) + 1);
  }
  for (const [plan, byName] of counts) {
    for (const [name, n] of byName) {
      const key = `${plan.namespace}|${name}|${plan.dimensions.join(",")}`;
      totals.found.set(key, (totals.found.get(key) ?? 0) + n);
    }
  }
}

/**
 * What a step wrote, counted as its calls come back and added to the account-region's totals once the step is
 * committed: written datums (and this run's own found after a lost answer), those already there, those refused,
 * and streams that answered nothing where their entry names a unit. Through a monitoring account, the
 * accounts whose streams GetMetricData refused (Forbidden): each said once a run, and left out of the commit.
 */
export function stepTally(
  src: SourcePlan,
  run: Run,
  totals: SourceTotals,
  step: { streams: Stream[]; keys: string[] },
) {
  const { keys } = step;
  let written = 0;
  // Through a monitoring account, the datums of each account, added to its totals with the step's.
  const byOwner = new Map<string, number>();
  const forbidden = new Set<Owner>();
  const count = () => {
    totals.datums += written;
    run.progress.wrote(written);
    written = 0;
    for (const [name, n] of byOwner) ownerTotals(totals, name).datums += n;
    byOwner.clear();
  };
  return {
    add(
      streams: Stream[],
      stats: PeriodStats[][],
      d: { byNamespace: Map<string, Datum[]>; own: number; already: number; perStream: number[] },
    ) {
      written += d.own + countDatums(d.byNamespace);
      totals.already += d.already;
      if (src.linked) {
        streams.forEach((s, i) =>
          byOwner.set(s.owner!.name, (byOwner.get(s.owner!.name) ?? 0) + d.perStream[i]!)
        );
      }
      // A dry run writes nothing to wait for.
      if (run.dryRun) count();
      streams.forEach((s, i) => {
        if (s.plan.unit === undefined || (s.owner && forbidden.has(s.owner))) return;
        // By key: an attempt made again in the same run lists the same streams anew.
        const key = keyOf(src, s);
        if (!totals.inUnit.get(key)?.answered) {
          totals.inUnit.set(key, { stream: s, answered: stats[i]!.length > 0 });
        }
      });
    },
    over(o: Over) {
      totals.over++;
      const dims = o.stream.dims.map((d) => `${d.Name}=${d.Value}`).join(",");
      run.log.warn(
        `Cannot make good ${o.stream.plan.namespace} ${o.stream.name} ${dims} at ${iso(o.t)} of ${
          whereOf(src, [o.stream])
        }: the destination has SampleCount ${o.destination} where the source has ${o.source}, so it was written more than once; nothing is written for it`,
        { account: accountOf(src, o.stream), region: src.region },
      );
    },
    refused(x: Datum, why: string) {
      totals.refused++;
      written--;
      // Through a monitoring account, the datum's account dimension names the account it came from.
      const from = src.linked ? `an account read through "${src.account}"` : `account "${src.account}"`;
      run.log.warn(
        `Cannot forward ${describeDatum(x)} from ${from} in ${src.region}: ${why}; skipped`,
        { account: src.account, region: src.region },
      );
    },
    /**
     * A stream read through a monitoring account that GetMetricData answered Forbidden: its account fails for
     * this run (said once), and the step commits the other accounts' streams.
     */
    forbidden(s: Stream) {
      const owner = s.owner!;
      if (forbidden.has(owner)) return;
      forbidden.add(owner);
      const o = ownerTotals(totals, owner.name);
      if (o.failed !== undefined) return;
      o.failed = "GetMetricData Forbidden";
      run.log.error(
        `Cannot read account "${owner.name}"${
          owner.name === owner.id ? "" : ` (${owner.id})`
        } through "${src.account}" in ${src.region}: GetMetricData answered Forbidden for ${s.plan.namespace} ${s.name}: the account is not linked to the monitoring account in this Region, or its link does not share ${s.plan.namespace}; its periods are left for a later run`,
        { account: owner.name, region: src.region },
      );
    },
    /**
     * Waits until every datum of the step is accepted (or refused and reported), and counts them; returns the
     * keys to commit, less those of accounts GetMetricData refused. A write whose answer was lost leaves the
     * step's streams in doubt from this run: a second attempt finds its own there.
     */
    async confirm(out: Producer): Promise<string[]> {
      try {
        await out.flush();
      } catch (e) {
        if (e instanceof WriteInDoubt) { for (const k of keys) run.ownDoubt.add(k); }
        throw e;
      }
      count();
      return forbidden.size === 0 ? keys : keys.filter((_, i) => !forbidden.has(step.streams[i]!.owner!));
    },
  };
}

export const count = (calls: Record<string, number>, op: string) => void (calls[op] = (calls[op] ?? 0) + 1);

/**
 * How long a source waits before it settles a write whose answer was lost, within the same run. The API
 * reference states no delay for data written within 3 hours of its time (older data waits for its own,
 * longer delay: lib/state.ts); the wait gives CloudWatch time to show what it applied before the run reads
 * the destination to see whether it did.
 */
export const SETTLE_WAIT_MS = 15_000;

/**
 * Runs one account-region, pooled with the others' writes. A write whose answer was lost is settled once in
 * this run, after a short wait: the source's steps are taken again, and the step in doubt reads the
 * destination first. Not after a timeout, though: an endpoint that did not answer a write would hold the reads
 * as long, so the next run settles it. A failure is said in one line, with the call that failed, and leaves
 * the other account-regions going; a lost lease is said once for the whole run (see report).
 */
export async function runSource(
  src: SourcePlan,
  run: Run,
  forward: (src: SourcePlan, run: Run, out: Producer, totals: SourceTotals) => Promise<void>,
): Promise<SourceTotals | undefined> {
  const fields = { account: src.account, region: src.region };
  const totals: SourceTotals = {
    streams: 0,
    datums: 0,
    already: 0,
    refused: 0,
    over: 0,
    found: new Map(),
    unfound: [],
    inUnit: new Map(),
  };
  // A first run knows no count: its account-region is let in, and holds what its listing finds.
  const count = accountsOf(src, run.store).reduce((n, a) => n + run.store.count(a, src.region), 0);
  const admitted = await run.admit(Math.max(1, count));
  const started = run.clock();
  const attempt = async () => {
    const out = run.publisher.join();
    try {
      await forward(src, run, out, totals);
    } finally {
      out.leave();
    }
  };
  try {
    // Asked to stop before its turn: left to the next run, untouched.
    if (run.stop.requested) return (totals.skipped = true, totals);
    try {
      await attempt();
    } catch (e) {
      if (!(e instanceof WriteInDoubt) || e.timedOut) throw e;
      run.log.warn(
        `Cannot be sure of a write for account "${src.account}" in ${src.region}: ${e.message}; reading the destination in ${
          SETTLE_WAIT_MS / 1000
        } s before writing again`,
        fields,
      );
      await run.sleep(SETTLE_WAIT_MS);
      await attempt();
    }
    if (!run.dryRun) noteDone(run, src, totals);
    totals.lag = lagOf(run, src);
    run.log.debug(
      `Done: ${plural(totals.datums, "datum")} of ${
        plural(totals.streams, "stream")
      }, ${totals.already} already there, in ${((run.clock() - started) / 1000).toFixed(1)} s`,
      fields,
    );
    return totals;
  } catch (e) {
    // A run stopped (SIGSTOP, a paused machine) finds its calls timed out when it resumes: the lease tells.
    const lost = e instanceof StateError ? e : leaseLost(run.store);
    if (lost) {
      run.leaseLost ??= lost;
      return undefined;
    }
    run.log.error(`Cannot forward account "${src.account}" in ${src.region}: ${describe(e)}`, fields);
    if (!run.dryRun) tryNote(run, src, describe(e));
    (run.failures ??= new Map()).set(src, { why: briefly(e), totals });
    return undefined;
  } finally {
    for (const account of accountsOf(src, run.store)) run.store.release(account, src.region);
    admitted();
  }
}

/**
 * Keeps for --status that an account-region's run went through; through a monitoring account, also how each
 * account read through it went (one GetMetricData refused, the others done), in one transaction.
 */
function noteDone(run: Run, src: SourcePlan, totals: SourceTotals) {
  const names = new Set([src.account, ...totals.owners?.keys() ?? []]);
  run.store.noteSources(
    src.region,
    [...names].map((name) => {
      const error = totals.owners?.get(name)?.failed;
      return [name, error === undefined ? undefined : { error, at: run.nowSeconds }];
    }),
  );
}

/** The error of a lease another run has taken over, if it has. */
function leaseLost(store: Store): StateError | undefined {
  try {
    store.fence();
    return undefined;
  } catch (e) {
    return e instanceof StateError ? e : undefined;
  }
}

/** Keeps an account-region's failure for --status; a store that cannot take it does not hide the failure. */
function tryNote(run: Run, src: SourcePlan, error: string) {
  try {
    run.store.noteSource(src.account, src.region, { error, at: run.nowSeconds });
  } catch {
    // The failure was said already; the lease or the file will be reported where it matters.
  }
}

/** The role to assume for an account (or the destination), if any. */
export const roleOf = (
  x: { roleArn: string | undefined; externalId: string | undefined },
): Role | undefined => x.roleArn ? { roleArn: x.roleArn, externalId: x.externalId } : undefined;

/** A replay window must lie in what PutMetricData still accepts. */
export function checkReplay(replay: { start: number; end: number } | undefined, nowSeconds: number) {
  if (replay === undefined) return;
  const { start, end } = replay;
  if (start >= end || start < nowSeconds - MAX_BACKFILL_SECONDS || end > nowSeconds) {
    throw new ConfigError([
      `Cannot replay ${iso(start)} to ${
        iso(end)
      }: the window must be in the past two weeks, and --from before --to`,
    ]);
  }
}

/**
 * Opens the checkpoint store and takes its lease; for a dry run or a plan, a copy in memory. Without file
 * access (Deno without --allow-read --allow-write) the run goes on without checkpoints, and says so.
 */
export function openStore(
  paths: { file: string; legacy: string; previous?: string },
  readOnly: boolean,
  o: Omit<OpenOptions, "legacyFile" | "previousFile">,
  log: Log,
): Store {
  const file = paths.file;
  try {
    if (!readOnly) return openSqlite(file, { ...o, legacyFile: paths.legacy, previousFile: paths.previous });
    const { streams, listings, continuous } = readStore(file, o);
    return memoryStore(streams, listings, continuous);
  } catch (e) {
    if (!isPermissionError(e)) throw e;
    log.warn(
      `Checkpoints are off: no permission to use "${file}", so only the newest complete period is forwarded, after checking the destination has not got it, and missed runs are not backfilled; under Deno add --allow-read --allow-write to turn them on. Do not leave this running beside the forwarder with checkpoints: in the minute both run, it cannot know what the other wrote`,
    );
    return memoryStore();
  }
}

/** The number of datums in a write. */
export const countDatums = (byNamespace: Map<string, Datum[]>) =>
  [...byNamespace.values()].reduce((a, l) => a + l.length, 0);

/**
 * On a terminal, a line that says how far a long run is, rewritten in place every second: datums written of
 * those owed, the rate, and the time left. Nothing of it when stderr is not a terminal.
 */
export function progressLine(o: {
  tty: boolean;
  write: (text: string) => void;
  now: () => number;
  /** Calls `show` every second until the returned function is called (a test passes its own). */
  every?: (show: () => void) => () => void;
}) {
  let owed = 0;
  let done = 0;
  const started = o.now();
  const show = () => {
    const seconds = (o.now() - started) / 1000;
    const rate = done / Math.max(seconds, 0.001);
    const left = rate > 0 ? Math.round((owed - done) / rate) : undefined;
    o.write(
      `\r${done} of ${plural(owed, "datum")}, ${Math.round(rate)}/s${
        left === undefined ? "" : `, about ${left} s left`
      }\u001b[K`,
    );
  };
  const every = o.every ?? ((f) => {
    const timer = setInterval(f, 1000);
    (timer as { unref?: () => void }).unref?.();
    return () => clearInterval(timer);
  });
  const stop = o.tty ? every(show) : undefined;
  return {
    owe: (datums: number) => void (owed += datums),
    wrote: (datums: number) => void (done += datums),
    end() {
      if (stop === undefined) return;
      stop();
      o.write("\r\u001b[K");
    },
  };
}
