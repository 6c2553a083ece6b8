/**
 * Steps: which periods each stream of an account-region owes, grouped so that one GetMetricData call serves
 * many streams, and cut into steps, the unit a crash can interrupt: intent, writes, commit. A step knows which
 * of its streams may already be in the destination (in doubt), so the run reads those before writing, and
 * splits into GetMetricData calls that run side by side.
 */
import type { MetricPlan, SourcePlan } from "./config.ts";
import { keyOf, keysOf, type Stream, whereOf } from "./discover.ts";
import { batches, mapLimit } from "./batch.ts";
import { queriesPerCall, statsOf } from "./fetch.ts";
import { type Range, readWindow, recheckDue } from "./recheck.ts";
import { GMD_MAX_DATAPOINTS } from "./limits.ts";
import { plural } from "./errors.ts";
import type { Log } from "./log.ts";
import * as state from "./state.ts";
import { sourceOf, type Store } from "./store.ts";
import { chunks, iso, owed, type Window } from "./window.ts";

/** Periods per step of a backfill: a day of one-minute periods, so a crash costs at most a day's re-check. */
const CHUNK_PERIODS = 1440;
/**
 * GetMetricData calls of one account-region in flight at once: enough to hide the round trip while the pacer
 * (lib/aws.ts) keeps them under the quota; few enough that the datapoints held stay small.
 */
const CALLS_IN_FLIGHT = 4;
/**
 * The least a GetMetricData call counts for among the datapoints held (StepContext.held): a call of many
 * queries over few periods holds more in its queries and results than in its datapoints, so calls of a steady
 * run, each small in datapoints, are held to 16 at once over all account-regions.
 */
const LEAST_HELD = GMD_MAX_DATAPOINTS / 2;
/** ListMetrics RecentlyActive=PT3H suffices while nothing older than this is owed (it is approximate). */
const RECENT_SECONDS = 2 * 3600;

/** What planning needs of a run. */
export interface StepContext {
  /** The datapoints GetMetricData answers may hold at once, over all account-regions (see lib/batch.ts). */
  held: (points: number) => Promise<() => void>;
  store: Store;
  nowSeconds: number;
  replay: { start: number; end: number } | undefined;
  dryRun: boolean;
  log: Log;
  /** Set by SIGTERM or SIGINT: no step starts after it; the one under way finishes and commits. */
  stop: { requested: boolean };
  /** Streams (keys) this run left in doubt, a write whose answer was lost: what is there is this run's own. */
  ownDoubt: Set<string>;
  /** Told how many datums each account-region owes, and how many it wrote: the progress line. */
  progress: { owe(datums: number): void; wrote(datums: number): void };
}

/** Some streams and the periods [start, end) they owe; a step, or one GetMetricData call's worth of one. */
export interface Part {
  streams: Stream[];
  window: { start: number; end: number };
  period: number;
  /** Periods forwarded before, read again for late samples in the same call (lib/recheck.ts). */
  recheck: Range | undefined;
}

export interface Step extends Part {
  /** The streams' checkpoint keys, in the same order. */
  keys: string[];
  /** The streams some of whose periods may be in the destination already: it is read before they are written. */
  inDoubt: Stream[];
  /** Of those, the streams in doubt from this very run (a write whose answer was lost): what is there is its own. */
  ownDoubt: Set<Stream>;
  /** The streams' `recheck_after`: the periods of this step are read again that much later. */
  recheckAfter: number;
}

/**
 * Runs `f` over a step's GetMetricData calls (every statistic of a stream in the same call), a few side by
 * side, each once its datapoints fit in what the run may hold.
 */
export async function forEachCall(run: StepContext, step: Step, f: (part: Part) => Promise<void>) {
  const read = readWindow(step);
  const periods = (read.end - read.start) / step.period;
  const calls = batches(step.streams, Infinity, (s) => statsOf(s).length, queriesPerCall(periods));
  await mapLimit(calls, CALLS_IN_FLIGHT, async (streams) => {
    const points = streams.reduce((n, s) => n + statsOf(s).length, 0) * periods;
    const release = await run.held(Math.max(LEAST_HELD, points));
    try {
      await f({ streams, window: step.window, period: step.period, recheck: step.recheck });
    } finally {
      release();
    }
  });
}

/** Whether ListMetrics may ask for recently active metrics only: nothing older than a few hours is owed. */
export function recentOnly(src: SourcePlan, run: StepContext): boolean {
  return oldestOwed(src, run) >= run.nowSeconds - RECENT_SECONDS;
}

function oldestOwed(src: SourcePlan, run: StepContext): number {
  if (run.replay) return run.replay.start;
  let oldest = run.nowSeconds;
  for (const k of keysOf(src, run.store)) {
    const at = state.resumeAt(run.store.get(k));
    if (at !== undefined && at < oldest) oldest = at;
  }
  return oldest;
}

/**
 * The steps a source owes, oldest first. Periods too old to write any more are reported once and the
 * checkpoint moves past them; a chunk in doubt that CloudWatch cannot show yet ends its group for this run.
 */
export async function* steps(src: SourcePlan, streams: Stream[], run: StepContext): AsyncGenerator<Step> {
  const fields = { account: src.account, region: src.region };
  const groups = groupByWindow(src, streams, run);
  for (const { w, period, streams: group } of groups) {
    run.progress.owe(group.reduce((n, s) => n + (1 + s.plan.stats.length), 0) * ((w.end - w.start) / period));
  }
  for (const { w, period, streams: group, recheck, recheckAfter } of groups) {
    const keys = group.map((s) => keyOf(src, s));
    const where = whereOf(src, group);
    if (w.lost) {
      run.log.warn(
        `Cannot forward ${where}: ${plural(group.length, "stream")} missed ${iso(w.lost.start)} to ${
          iso(w.lost.end)
        }, older than PutMetricData accepts`,
        fields,
      );
      // Said once: the checkpoint moves past what can no longer be written.
      if (!run.dryRun) await run.store.update(keys, (st) => state.commit(st, w.lost!));
    }
    const cut = chunks(w, period, CHUNK_PERIODS);
    // Periods due to be read again ride with the first chunk; with none owed, on a step of their own.
    if (cut.length === 0 && recheck) cut.push({ start: w.end, end: w.end });
    for (const [i, c] of cut.entries()) {
      if (run.stop.requested) return;
      const readable = readableAt(keys, c, run.store);
      if (readable > run.nowSeconds) {
        run.log.warn(
          `Cannot forward ${where} from ${
            iso(c.start)
          } yet: what an interrupted run wrote there becomes readable in CloudWatch only at ${
            iso(readable)
          }, and is checked then`,
          fields,
        );
        break;
      }
      const doubtful = state.perCheckpoint((s) => mayBeThere(s, c, run));
      const inDoubt = group.filter((_, i) => doubtful(run.store.get(keys[i]!)));
      const ownDoubt = new Set(group.filter((_, i) => run.ownDoubt.has(keys[i]!)));
      run.log.debug(
        `Step: ${plural(group.length, "stream")}, ${iso(c.start)} to ${
          iso(c.end)
        }, ${inDoubt.length} read from the destination first`,
        fields,
      );
      yield {
        streams: group,
        keys,
        window: c,
        period,
        inDoubt,
        ownDoubt,
        recheck: i === 0 ? recheck : undefined,
        recheckAfter,
      };
    }
  }
}

/**
 * Whether some of a chunk may be in the destination already: in a replay; where the checkpoints may not
 * continue what was written (no checkpoints, or a store new, moved or restored); for a stream that has no
 * checkpoint yet (a run without checkpoints may have written it); where an earlier write was left in doubt;
 * and where a replay wrote.
 */
function mayBeThere(s: state.StreamState | undefined, c: { start: number; end: number }, run: StepContext) {
  return run.replay !== undefined || !run.store.continuous || s?.next === undefined ||
    state.toReadFirst(s, c).length > 0;
}

/** When everything in doubt, or written by a replay, within a chunk can be read from the destination. */
function readableAt(keys: string[], c: { start: number; end: number }, store: Store): number {
  let at = 0;
  const readable = state.perCheckpoint((s) =>
    state.toReadFirst(s, c).reduce((a, d) => Math.max(a, state.readableFrom(d)), 0)
  );
  for (const k of keys) at = Math.max(at, readable(store.get(k)));
  return at;
}

interface Group {
  w: Window;
  period: number;
  streams: Stream[];
  recheck: Range | undefined;
  recheckAfter: number;
}

/** Streams that owe the same periods, so that one GetMetricData call can serve them together. */
function groupByWindow(src: SourcePlan, streams: Stream[], run: StepContext): Group[] {
  const groups = new Map<string, Group>();
  // The groups of a checkpoint and a metrics entry: worked out once for all the streams that share both.
  const byCheckpoint = state.perCheckpoint(() => new Map<MetricPlan, Group[]>());
  for (const s of streams) {
    const st = run.store.get(keyOf(src, s));
    const byPlan = byCheckpoint(st);
    let into = byPlan.get(s.plan);
    if (into === undefined) {
      // A replay leaves out the stream's forwarded span: those periods are in the destination already.
      const windows: Window[] = run.replay
        ? state.outsideSpan(st, aligned(run.replay, s.plan.period))
        : [owed(state.resumeAt(st), run.nowSeconds, s.plan)];
      // A replay reads nothing again: the runs after it do.
      const recheck = run.replay ? undefined : recheckDue(st, run.nowSeconds, s.plan.recheckAfter);
      const recheckAfter = s.plan.recheckAfter;
      into = windows.map((w) => {
        const key =
          `${s.plan.period}|${w.start}|${w.end}|${w.lost?.start}|${recheckAfter}|${recheck?.start}|${recheck?.end}`;
        const g = groups.get(key) ?? { w, period: s.plan.period, streams: [], recheck, recheckAfter };
        groups.set(key, g);
        return g;
      });
      byPlan.set(s.plan, into);
    }
    for (const g of into) g.streams.push(s);
  }
  return [...groups.values()];
}

const aligned = (w: { start: number; end: number }, period: number): Window => ({
  start: Math.floor(w.start / period) * period,
  end: Math.floor(w.end / period) * period,
});

/** How far an account-region's oldest current stream is behind now, in seconds; undefined before any. */
export function lagOf(run: StepContext, src: SourcePlan): number | undefined {
  const lags = [...lagsOf(run, src).values()];
  return lags.length > 0 ? Math.max(...lags) : undefined;
}

/**
 * How far the oldest current stream of each account of an account-region is behind now, by account name (its
 * own, or through a monitoring account those its streams belong to); an account without a current stream that
 * has a checkpoint is left out. Current: found by the account-region's last listing.
 */
export function lagsOf(run: StepContext, src: SourcePlan): Map<string, number> {
  const keys = keysOf(src, run.store);
  let latest = -Infinity;
  for (const k of keys) latest = Math.max(latest, run.store.get(k)?.seen ?? -Infinity);
  const next = new Map<string, number>();
  for (const k of keys) {
    const s = run.store.get(k);
    if ((s?.seen ?? latest) < latest || s?.next === undefined) continue;
    const account = src.linked ? sourceOf(k)[0] : src.account;
    next.set(account, Math.min(next.get(account) ?? Infinity, s.next));
  }
  return new Map([...next].map(([account, n]) => [account, Math.max(0, run.nowSeconds - n)]));
}
