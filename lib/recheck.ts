/**
 * Late samples. A forwarded period is read again in the source once `recheck_after` seconds have passed since
 * it was first read, and what reached the source since is written as one more statistic set: SampleCount and
 * Sum as differences, Minimum and Maximum as the source has them now. CloudWatch merges the statistic sets of
 * a period (counts and sums add, the minimum and maximum widen), so the destination then equals the source in
 * SampleCount, Sum, Minimum, Maximum and Average.
 *
 * Protocol. A commit records the periods it forwarded and when it read them (`unchecked`, lib/state.ts).
 * Periods read within `recheck_after` of the first of a range join it, so that a range is read again once,
 * when its newest period has waited `recheck_after`; its oldest has then waited less than twice that. The
 * source is read again in the GetMetricData call that reads the step's new periods (the same queries over a
 * longer window, billed the same), and the destination's SampleCount and Sum of those periods in calls of their
 * own: one billed metric per stream and range, a tenth more at the defaults (a run a minute, 600 s). What is
 * written is the source less the destination, read right before it: a write whose answer was lost, a kill or
 * a restored store at worst reads again and finds nothing to write. Extra statistics (percentiles) cannot be
 * merged, and are not read again.
 */
import type { CloudWatchApi, Datum } from "./aws.ts";
import type { Stream } from "./discover.ts";
import { fetchValues, type PeriodStats } from "./fetch.ts";
import { type Over, type Target, toDatums } from "./publish.ts";
import { readableFrom, type StreamState, type Unchecked } from "./state.ts";
import * as state from "./state.ts";
import { MAX_BACKFILL_SECONDS } from "./window.ts";

/** Periods [start, end), epoch seconds. */
export interface Range {
  start: number;
  end: number;
}

/** Records that the periods of `w` were read at `at`, to be read again `after` seconds later (0: never). */
export function noteRead(s: StreamState, w: Range, at: number, after: number): StreamState {
  if (!(after > 0) || w.start >= w.end) return s;
  const list = s.unchecked ?? [];
  const last = list[list.length - 1];
  if (last !== undefined && last[1] === w.start && at - last[2] < after) {
    return { ...s, unchecked: [...list.slice(0, -1), [last[0], w.end, last[2], at]] };
  }
  const added: Unchecked = [w.start, w.end, at, at];
  return { ...s, unchecked: [...list, added].sort((a, b) => a[0] - b[0]) };
}

/**
 * The periods due to be read again at `now`: every range whose newest period was read `after` seconds ago or
 * more, and whose writes CloudWatch shows by now (data 3 hours old or more when written shows later: see
 * readableFrom), from the oldest such range to the newest; none older than PutMetricData still accepts.
 */
export function recheckDue(s: StreamState | undefined, now: number, after: number): Range | undefined {
  if (!(after > 0) || !s?.unchecked?.length) return undefined;
  let end: number | undefined;
  for (const [a, b, , last] of s.unchecked) {
    if (last + after > now || readableFrom([a, b, last]) > now) break;
    end = b;
  }
  if (end === undefined) return undefined;
  const start = Math.max(s.unchecked[0]![0], now - MAX_BACKFILL_SECONDS);
  return start < end ? { start, end } : { start: end, end };
}

/**
 * A step done: its periods joined the forwarded span (lib/state.ts commit) to be read again later, and the
 * periods it read again are done with.
 */
export function forwarded(
  s: StreamState,
  step: { window: Range; recheck: Range | undefined; recheckAfter: number },
  at: number,
): StreamState {
  let out = state.commit(s, step.window);
  if (step.recheck && out.unchecked) {
    const left = out.unchecked.filter((u) => u[1] > step.recheck!.end);
    if (left.length > 0) out = { ...out, unchecked: left };
    else {
      const { unchecked: _, ...rest } = out;
      out = rest;
    }
  }
  return noteRead(out, step.window, at, step.recheckAfter);
}

/** What a GetMetricData call reads for a part of a step: its new periods, and those it reads again. */
export function readWindow(p: { window: Range; recheck?: Range | undefined }): Range {
  if (!p.recheck || p.recheck.start >= p.recheck.end) return p.window;
  return { start: Math.min(p.recheck.start, p.window.start), end: Math.max(p.recheck.end, p.window.end) };
}

/** SampleCount and Sum in the destination of the periods a step reads again, per stream; NaN where none. */
export interface Landed {
  range: Range;
  period: number;
  index: Map<Stream, number>;
  count: Float64Array;
  sum: Float64Array;
}

/** The statistics the destination is read for: the two a difference is made of (one billed metric). */
const LANDED_STATS = ["SampleCount", "Sum"] as const;

/**
 * Reads the destination's SampleCount and Sum of the periods a step reads again (GetMetricData in the
 * destination), into two arrays: a step of 20,000 streams over ten periods holds 3 MB.
 */
export async function landedIn(
  api: Pick<CloudWatchApi, "getMetricData">,
  step: { streams: Stream[]; recheck: Range | undefined; period: number },
  target: (s: Stream) => Target,
): Promise<Landed | undefined> {
  const range = step.recheck;
  if (!range || range.start >= range.end) return undefined;
  const periods = (range.end - range.start) / step.period;
  const size = step.streams.length * periods;
  const landed: Landed = {
    range,
    period: step.period,
    index: new Map(step.streams.map((s, i) => [s, i])),
    count: new Float64Array(size).fill(NaN),
    sum: new Float64Array(size).fill(NaN),
  };
  const items = step.streams.flatMap((s) => {
    const t = target(s);
    const metric = { Namespace: t.namespace, MetricName: s.name, Dimensions: [...s.dims, ...t.dims] };
    return LANDED_STATS.map((stat) => ({ metric, stat, unit: undefined }));
  });
  await fetchValues(api, items, range, step.period, (k, t, v) => {
    const at = (k >> 1) * periods + (t - range.start) / step.period;
    (k & 1 ? landed.sum : landed.count)[at] = v;
  });
  return landed;
}

/**
 * Adds, by target namespace, the datums that bring the periods a part reads again up to the source: for each
 * period where the source has more samples than the destination, the difference as one statistic set. A
 * period the destination has more of is reported through `over` and left alone.
 */
export function lateDatums(
  streams: Stream[],
  stats: PeriodStats[][],
  landed: Landed | undefined,
  target: (s: Stream) => Target,
  over: (o: Over) => void,
  into: Map<string, Datum[]>,
): void {
  if (landed === undefined) return;
  const { range, period } = landed;
  const periods = (range.end - range.start) / period;
  streams.forEach((s, i) => {
    const base = landed.index.get(s)! * periods;
    const missing: PeriodStats[] = [];
    for (const p of stats[i]!) {
      if (p.t < range.start || p.t >= range.end) continue;
      const { SampleCount, Sum, Minimum, Maximum } = p.values;
      if (SampleCount === undefined || Sum === undefined || Minimum === undefined || Maximum === undefined) {
        continue;
      }
      const at = base + (p.t - range.start) / period;
      const count = Number.isNaN(landed.count[at]!) ? 0 : landed.count[at]!;
      const sum = Number.isNaN(landed.sum[at]!) ? 0 : landed.sum[at]!;
      if (count > SampleCount) over({ stream: s, t: p.t, source: SampleCount, destination: count });
      if (count >= SampleCount) continue;
      missing.push({
        t: p.t,
        values: { SampleCount: SampleCount - count, Sum: Sum - sum, Minimum, Maximum },
      });
    }
    if (missing.length === 0) return;
    const t = target(s);
    let list = into.get(t.namespace);
    if (!list) into.set(t.namespace, list = []);
    for (const d of toDatums(s, missing, t)) list.push(d);
  });
}
