/**
 * A run: what the loop in forward.ts carries from stage to stage, and the mechanics around it that are not
 * AWS calls: the checkpoint store's permissions, remembering discovered streams, reporting refused data, and
 * the summary.
 */
import type { CloudWatchApi, Datum, Dimension, Role } from "./aws.ts";
import { EXIT } from "./cli.ts";
import type { Plan, SourcePlan } from "./config.ts";
import { discover, rebuild, staticStreams, type Stream } from "./discover.ts";
import { ConfigError, describe, isPermissionError, StateError, WriteInDoubt } from "./errors.ts";
import { describeDatum, type Producer, type Publisher } from "./publish.ts";
import * as state from "./state.ts";
import { identityOf, keyOf, recentOnly, type StepContext } from "./step.ts";
import { memoryStore, type OpenOptions, openStore as openSqlite, readStore, type Store } from "./store.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";

export interface Run extends StepContext {
  plan: Plan;
  destination: CloudWatchApi;
  cloudWatch: (region: string, role: Role | undefined) => CloudWatchApi;
  publisher: Publisher;
  out: (line: string) => void;
  sleep: (ms: number) => Promise<void>;
  /** Set when the store's lease was lost: the run stops writing, and exits with the state's code. */
  leaseLost?: boolean;
}

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
 * as long, so the next run settles it. A failure is reported in one line and leaves the other account-regions
 * going.
 */
export async function runSource(
  src: SourcePlan,
  run: Run,
  forward: (src: SourcePlan, run: Run, out: Producer) => Promise<SourceTotals>,
): Promise<SourceTotals | undefined> {
  const attempt = async () => {
    const out = run.publisher.join();
    try {
      return await forward(src, run, out);
    } finally {
      out.leave();
    }
  };
  try {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof WriteInDoubt) || e.timedOut) throw e;
      run.warn(
        `Cannot be sure of a write for account "${src.account}" in ${src.region}: ${e.message}; reading the destination in ${
          SETTLE_WAIT_MS / 1000
        } s before writing again`,
      );
      await run.sleep(SETTLE_WAIT_MS);
      return await attempt();
    }
  } catch (e) {
    if (e instanceof StateError) run.leaseLost = true;
    run.warn(`Cannot forward account "${src.account}" in ${src.region}: ${describe(e)}`);
    return undefined;
  }
}

/** What one account-region did in a run. */
export interface SourceTotals {
  streams: number;
  datums: number;
  refused: number;
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
 * Opens the checkpoint store and takes its lease; for a dry run, a copy in memory. Without file access (Deno
 * without --allow-read --allow-write) the run goes on without checkpoints, and says so.
 */
export function openStore(
  paths: { file: string; legacy: string },
  dryRun: boolean,
  o: Omit<OpenOptions, "legacyFile">,
  warn: (l: string) => void,
): Store {
  const file = paths.file;
  try {
    if (!dryRun) return openSqlite(file, { ...o, legacyFile: paths.legacy });
    const { streams, listings, continuous } = readStore(file, o);
    return memoryStore(streams, listings, continuous);
  } catch (e) {
    if (!isPermissionError(e)) throw e;
    warn(
      `Checkpoints are off: no permission to use "${file}", so only the newest complete period is forwarded and missed runs are not backfilled; under Deno add --allow-read --allow-write to turn them on`,
    );
    return memoryStore();
  }
}

/** The forwarder's own namespace in the destination: metrics about its runs, to alarm on. */
export const SELF_NAMESPACE = "CloudWatchForwarder";

/**
 * How many of its own metrics the forwarder keeps: per account-region its datums forwarded, streams, errors
 * and lag; per run its duration and the account-regions that failed (see selfMetrics).
 */
export const selfMetricCount = (accountRegions: number) => 2 + 4 * accountRegions;

/**
 * The forwarder's own metrics for a run, written after it: `LagSeconds` per account-region (how far its
 * oldest stream is behind; alarm on it) and `RunSeconds` once a run (alarm on it going missing, which means
 * the forwarder stopped), with the datums, streams and errors beside them.
 */
export function selfMetrics(
  run: Run,
  results: (SourceTotals | undefined)[],
  seconds: number,
  at: number,
): Datum[] {
  const datum = (name: string, value: number, unit: string, dims: Dimension[] = []): Datum => ({
    MetricName: name,
    Dimensions: dims,
    Timestamp: at,
    Value: value,
    Unit: unit,
    StorageResolution: 60,
  });
  const out = [
    datum("RunSeconds", seconds, "Seconds"),
    datum("FailedAccountRegions", results.filter((r) => r === undefined).length, "Count"),
  ];
  run.plan.sources.forEach((src, i) => {
    const dims = [{ Name: "Account", Value: src.account }, { Name: "Region", Value: src.region }];
    const r = results[i];
    out.push(
      datum("Datums", r?.datums ?? 0, "Count", dims),
      datum("Streams", r?.streams ?? 0, "Count", dims),
      datum("Errors", r === undefined ? 1 : 0, "Count", dims),
    );
    const lag = lagOf(run, src);
    if (lag !== undefined) out.push(datum("LagSeconds", lag, "Seconds", dims));
  });
  return out;
}

/** How far an account-region's oldest current stream is behind now, in seconds; undefined before any. */
export function lagOf(run: StepContext, src: SourcePlan): number | undefined {
  const keys = run.store.keys(src.account, src.region);
  let latest = -Infinity;
  for (const k of keys) latest = Math.max(latest, run.store.get(k)?.seen ?? -Infinity);
  let next = Infinity;
  for (const k of keys) {
    const s = run.store.get(k);
    if ((s?.seen ?? latest) >= latest && s?.next !== undefined) next = Math.min(next, s.next);
  }
  return Number.isFinite(next) ? Math.max(0, run.nowSeconds - next) : undefined;
}

/** Writes the run's own metrics; a failure is said, and is no account-region's failure. */
export async function writeSelfMetrics(
  run: Run,
  results: (SourceTotals | undefined)[],
  seconds: number,
  at: number,
) {
  try {
    await run.destination.putMetricData(
      SELF_NAMESPACE,
      selfMetrics(run, results, seconds, at),
      run.store.fence(),
    );
  } catch (e) {
    run.warn(`Cannot write the forwarder's own metrics to ${SELF_NAMESPACE}: ${describe(e)}`);
  }
}

/** ListMetrics may list a new metric up to 15 minutes after its first datum (API reference, PutMetricData). */
const LIST_DELAY_SECONDS = 15 * 60;

/**
 * The streams of an account-region: ListMetrics when the last listing is older than `discovery_interval` or
 * was made for another config, else the streams that listing found (ListMetrics shows a new metric up to 15
 * minutes late anyway).
 */
export async function streamsOf(api: Pick<CloudWatchApi, "listMetrics">, src: SourcePlan, run: Run) {
  const last = run.store.listing(src.account, src.region);
  const fingerprint = JSON.stringify(src.metrics);
  const age = last === undefined ? Infinity : run.nowSeconds - last.listedAt;
  if (last?.fingerprint === fingerprint && age >= 0 && age < run.plan.discoveryInterval) {
    const found = run.store.keys(src.account, src.region)
      .filter((k) => (run.store.get(k)?.seen ?? -Infinity) >= last.listedAt).map(identityOf);
    return [...rebuild(src.metrics, found), ...staticStreams(src.metrics)];
  }
  const { streams, counts } = await discover(api, src.metrics, recentOnly(src, run), last?.counts);
  if (!run.dryRun) {
    await remember(src, streams, run, last?.listedAt);
    run.store.setListing(src.account, src.region, { listedAt: run.nowSeconds, fingerprint, counts });
  }
  return streams;
}

/**
 * Records that a listing found these streams, and forgets the source's streams none has found for long. A
 * stream found for the first time owes its periods from where the previous listing ended (less the time
 * ListMetrics may take to show it), so a new service's first minutes are not lost.
 */
async function remember(src: SourcePlan, streams: Stream[], run: Run, lastListed: number | undefined) {
  const found = new Set(streams.map((s) => keyOf(src, s)));
  const since = lastListed === undefined
    ? undefined
    : Math.max(lastListed - LIST_DELAY_SECONDS, run.nowSeconds - MAX_BACKFILL_SECONDS);
  await run.store.update([...found], (st, key) => {
    const seen = { ...st, seen: run.nowSeconds };
    if (since === undefined || state.resumeAt(st) !== undefined) return seen;
    const period = identityOf(key)[3];
    return { ...seen, since: Math.ceil(since / period) * period };
  });
  const known = run.store.keys(src.account, src.region).map((
    k,
  ): [string, state.StreamState | undefined] => [k, run.store.get(k)]);
  const gone = state.forgotten(known, found, run.nowSeconds);
  if (gone.length > 0) {
    run.warn(
      `Forgetting ${gone.length} streams of account "${src.account}" in ${src.region}: not found for ${
        state.FORGET_AFTER_SECONDS / 86_400
      } days`,
    );
    await run.store.update(gone, () => undefined);
  }
}

/** The number of datums in a step's write. */
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

/** Reports a datum CloudWatch refused for its data: said once, skipped, and not counted as forwarded. */
export const refusedFrom = (src: SourcePlan, run: Run, totals: SourceTotals) => (x: Datum, why: string) => {
  totals.refused++;
  totals.datums--;
  run.warn(
    `Cannot forward ${describeDatum(x)} from account "${src.account}" in ${src.region}: ${why}; skipped`,
  );
};

/** The summary line, and the exit code: 1 when any account-region failed. */
export function report(run: Run, results: (SourceTotals | undefined)[], seconds: number): number {
  const ok = results.filter((r) => r !== undefined);
  const sum = (k: keyof SourceTotals) => ok.reduce((a, r) => a + r[k], 0);
  run.out(
    `${run.dryRun ? "Would forward" : "Forwarded"} ${sum("datums")} datums of ${
      sum("streams")
    } streams from ${ok.length} of ${results.length} account-regions in ${seconds.toFixed(1)} s${
      sum("refused") ? `; ${sum("refused")} refused by CloudWatch and skipped` : ""
    }${run.dryRun ? " (dry run: nothing written)" : ""}`,
  );
  if (run.leaseLost) return EXIT.state;
  return ok.length === results.length ? EXIT.ok : EXIT.failed;
}
