/**
 * A run: the record the loop in forward.ts carries from stage to stage, and the mechanics around it that are
 * not AWS calls: opening the checkpoint store, one account-region's attempts, counting what it did, the
 * progress line and the summary.
 */
import type { CloudWatchApi, Datum, Role } from "./aws.ts";
import { budget } from "./batch.ts";
import { type Args, EXIT } from "./cli.ts";
import type { MetricPlan, Plan, SourcePlan } from "./config.ts";
import { ConfigError, describe, isPermissionError, isThrottled, StateError, WriteInDoubt } from "./errors.ts";
import { GMD_MAX_DATAPOINTS } from "./limits.ts";
import { heapKeeper } from "./heap.ts";
import type { Log } from "./log.ts";
import { describeDatum, type Over, type Producer, type Publisher, publisher } from "./publish.ts";
import type { Stream } from "./discover.ts";
import type { PeriodStats } from "./fetch.ts";
import { lagOf, type StepContext } from "./step.ts";
import { memoryStore, type OpenOptions, openStore as openSqlite, readStore, type Store } from "./store.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";
import process from "node:process";

export interface Run extends StepContext {
  plan: Plan;
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
  /** Streams that answered no datapoint in any period owed, per metrics entry, where the entry names a unit. */
  silent: Map<string, number>;
  /** How far its oldest current stream is behind, in seconds, once it is done (lagOf in lib/step.ts). */
  lag?: number | undefined;
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
}

/** The SDK's clients (loaded only now), or a test's fakes; every request counted, credentials kept out of logs. */
export async function clientsFor(
  plan: Plan,
  deps: { now: () => number; cloudWatch?: Clients["cloudWatch"] },
  log: Log,
): Promise<Clients> {
  const calls: Record<string, number> = {};
  const throttled: Record<string, number> = {};
  const sent = (op: string, limited: boolean) => (count(calls, op), limited && count(throttled, op));
  const progress = { answered: () => {} };
  if (deps.cloudWatch) return { cloudWatch: perCall(deps.cloudWatch, sent), calls, throttled, progress };
  const { connector } = await import("./aws.ts");
  const cloudWatch = connector({
    stsRegion: plan.destination.region,
    now: deps.now,
    onSent: sent,
    onAnswer: () => progress.answered(),
    secret: (value) => log.secret(value),
  });
  return { cloudWatch, calls, throttled, progress };
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
 * SIGTERM (systemd stopping the service) and SIGINT (Ctrl-C) ask the run to stop: the step under way
 * finishes and commits, and no other starts. A test passes its own `onStop`.
 */
export function stopOnSignals(
  log: Log,
  onStop?: (stop: (signal: string) => void) => void,
): { requested: boolean } {
  const stop = { requested: false };
  const request = (signal: string) => {
    if (!stop.requested) log.info(`Stopping on ${signal}: the steps under way finish and are committed`);
    stop.requested = true;
  };
  if (onStop) onStop(request);
  else for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => request(signal));
  return stop;
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
  for (const tally of [calls, throttled]) for (const op of Object.keys(tally)) delete tally[op];
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

/** The streams a source found, per metrics entry and name: what config matched nothing. */
export function noteFound(totals: SourceTotals, streams: Stream[]) {
  totals.streams = streams.length;
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
 * and streams that answered nothing where their entry names a unit.
 */
export function stepTally(src: SourcePlan, run: Run, totals: SourceTotals, keys: string[]) {
  let written = 0;
  const count = () => {
    totals.datums += written;
    run.progress.wrote(written);
    written = 0;
  };
  return {
    add(
      streams: Stream[],
      stats: PeriodStats[][],
      d: { byNamespace: Map<string, Datum[]>; own: number; already: number },
    ) {
      written += d.own + countDatums(d.byNamespace);
      totals.already += d.already;
      // A dry run writes nothing to wait for.
      if (run.dryRun) count();
      streams.forEach((s, i) => {
        if (s.plan.unit === undefined || stats[i]!.length > 0) return;
        const what =
          `${s.plan.namespace} ${s.name} (unit ${s.plan.unit}) in account "${src.account}" ${src.region}`;
        totals.silent.set(what, (totals.silent.get(what) ?? 0) + 1);
      });
    },
    over(o: Over) {
      totals.over++;
      const dims = o.stream.dims.map((d) => `${d.Name}=${d.Value}`).join(",");
      run.log.warn(
        `Cannot make good ${o.stream.plan.namespace} ${o.stream.name} ${dims} at ${
          iso(o.t)
        } of account "${src.account}" in ${src.region}: the destination has SampleCount ${o.destination} where the source has ${o.source}, so it was written more than once; nothing is written for it`,
        { account: src.account, region: src.region },
      );
    },
    refused(x: Datum, why: string) {
      totals.refused++;
      written--;
      run.log.warn(
        `Cannot forward ${describeDatum(x)} from account "${src.account}" in ${src.region}: ${why}; skipped`,
        { account: src.account, region: src.region },
      );
    },
    /**
     * Waits until every datum of the step is accepted (or refused and reported), and counts them. A write whose
     * answer was lost leaves the step's streams in doubt from this run: a second attempt finds its own there.
     */
    async confirm(out: Producer) {
      try {
        await out.flush();
      } catch (e) {
        if (e instanceof WriteInDoubt) { for (const k of keys) run.ownDoubt.add(k); }
        throw e;
      }
      count();
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
    silent: new Map(),
  };
  // A first run knows no count: its account-region is let in, and holds what its listing finds.
  const admitted = await run.admit(Math.max(1, run.store.count(src.account, src.region)));
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
    if (!run.dryRun) run.store.noteSource(src.account, src.region, undefined);
    totals.lag = lagOf(run, src);
    run.log.debug(
      `Done: ${totals.datums} datums of ${totals.streams} streams, ${totals.already} already there, in ${
        ((run.clock() - started) / 1000).toFixed(1)
      } s`,
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
    return undefined;
  } finally {
    run.store.release(src.account, src.region);
    admitted();
  }
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

/** A dry run prints each datum it would write, one line each. */
export function printDatums(byNamespace: Map<string, Datum[]>, out: (line: string) => void) {
  for (const [ns, list] of byNamespace) {
    for (const x of list) {
      out(`${ns} ${describeDatum(x)} ${JSON.stringify(x.StatisticValues ?? { Value: x.Value })}`);
    }
  }
}

/** A lag in the units a person reads it in: minutes, hours and minutes, or days and hours. */
export function readableLag(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

/**
 * The summary (on stdout, and as a log line), the warnings about config that matched nothing, and the exit
 * code: 3 when the lease was lost, 1 when any account-region failed.
 */
export function report(
  run: Run,
  results: (SourceTotals | undefined)[],
  o: { seconds: number; lag: number | undefined },
): number {
  if (run.leaseLost) run.log.error(run.leaseLost.message);
  const ok = results.filter((r) => r !== undefined);
  const sum = (k: "streams" | "datums" | "already" | "refused" | "over") => ok.reduce((a, r) => a + r[k], 0);
  const calls = Object.entries(run.calls).sort().map(([op, n]) =>
    `${op} ${n}${run.throttled[op] ? ` (${run.throttled[op]} throttled)` : ""}`
  ).join(", ");
  const line = `${run.dryRun ? "Would forward" : "Forwarded"} ${sum("datums")} datums of ${
    sum("streams")
  } streams from ${ok.length} of ${results.length} account-regions in ${o.seconds.toFixed(1)} s${
    sum("already") ? `; ${sum("already")} already in the destination` : ""
  }${sum("refused") ? `; ${sum("refused")} refused by CloudWatch and skipped` : ""}${
    sum("over") ? `; ${sum("over")} periods over-counted in the destination (see the warnings)` : ""
  }${calls ? `; calls: ${calls}` : ""}${o.lag === undefined ? "" : `; largest lag ${readableLag(o.lag)}`}${
    run.dryRun ? " (dry run: nothing written)" : ""
  }`;
  run.out(line);
  run.log.info(line);
  if (ok.length === results.length) warnUnmatched(run, ok);
  if (run.leaseLost) return EXIT.state;
  return ok.length === results.length ? EXIT.ok : EXIT.failed;
}

/**
 * Config that forwards nothing, named precisely: a metric name or a whole metrics entry that no account-region
 * has, and streams that answered no datapoint where the entry names a unit.
 */
function warnUnmatched(run: Run, results: SourceTotals[]) {
  const found = (key: string) => results.reduce((n, r) => n + (r.found.get(key) ?? 0), 0);
  for (const m of run.plan.sources[0]?.metrics ?? []) {
    const dims = m.dimensions.join(", ") || "no dimensions";
    const keys = m.names.map((name) => [name, `${m.namespace}|${name}|${m.dimensions.join(",")}`] as const);
    const missing = keys.filter(([, key]) => found(key) === 0).map(([name]) => name);
    if (missing.length === m.names.length) {
      run.log.warn(
        `No metric ${
          m.names.join(", ")
        } of namespace ${m.namespace} with the dimensions ${dims} was found in any account-region: check the namespace, the names and the dimensions (ListMetrics lists what has had data in the past two weeks)`,
      );
    } else {
      for (const name of missing) {
        run.log.warn(
          `No metric ${name} of namespace ${m.namespace} with the dimensions ${dims} was found in any account-region: check the name`,
        );
      }
    }
  }
  for (const r of results) {
    for (const [what, n] of r.silent) {
      run.log.warn(
        `${n} ${
          n === 1 ? "stream" : "streams"
        } of ${what} answered no datapoint in the periods owed: CloudWatch answers nothing where the metric is published in another unit than the config's; check its unit, or leave unit out`,
      );
    }
  }
}

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
      `\r${done} of ${owed} datums, ${Math.round(rate)}/s${
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
