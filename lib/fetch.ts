/**
 * Fetching: GetMetricData in as few calls as its limits allow, mapped back to per-period statistics.
 */
import type { CloudWatchApi, Metric } from "./aws.ts";
import { mapLimit } from "./batch.ts";
import type { MetricPlan } from "./config.ts";
import type { Stream } from "./discover.ts";
import { GMD_MAX_DATAPOINTS, GMD_MAX_QUERIES } from "./limits.ts";

/** Calls of one fetch in flight at once: enough to hide the round trip; lib/aws.ts paces them to the quota. */
const CALLS_AT_ONCE = 4;

/**
 * MetricDataResult.StatusCode for a query of an account the caller may not read: not linked to the monitoring
 * account, or its link does not share the namespace (API reference, MetricDataResult; AWS says no more).
 */
const FORBIDDEN = "Forbidden";

/** The statistics every forwarded period carries, as one StatisticValues datum. */
export const STATISTIC_SET = ["SampleCount", "Sum", "Minimum", "Maximum"] as const;

export interface Item {
  metric: Metric;
  stat: string;
  unit: string | undefined;
  /** The account that holds the metric, read through a monitoring account; absent: the caller's own. */
  account?: string;
}

/**
 * Queries per call for a window of `periods` periods: as many as fit both limits, so that every call is
 * answered in one page. GetMetricData bills per metric requested per call, so smaller calls that each fill a
 * page cost less than big ones paged with NextToken, for the same number of calls.
 */
export function queriesPerCall(periods: number): number {
  return Math.max(1, Math.min(GMD_MAX_QUERIES, Math.floor(GMD_MAX_DATAPOINTS / Math.max(1, periods))));
}

/**
 * Runs the queries over [start, end) and hands each value to `found` with its item's index and its period start
 * (epoch seconds), as the answers come: a large fetch holds no copy of what it has handed on. A query of
 * another account (`account`) answered Forbidden goes to `forbidden` where given, so that the others of the
 * call stand; any other result left incomplete fails the fetch.
 */
export async function fetchValues(
  api: Pick<CloudWatchApi, "getMetricData">,
  items: Item[],
  w: { start: number; end: number },
  period: number,
  found: (item: number, t: number, value: number) => void,
  forbidden?: (item: number) => void,
): Promise<void> {
  const perCall = queriesPerCall((w.end - w.start) / period);
  const calls = Array.from({ length: Math.ceil(items.length / perCall) }, (_, c) => c * perCall);
  await mapLimit(calls, CALLS_AT_ONCE, async (first) => {
    const batch = items.slice(first, first + perCall);
    const queries = batch.map((item, q) => ({
      Id: `q${q}`,
      Metric: item.metric,
      Period: period,
      Stat: item.stat,
      Unit: item.unit,
      ...(item.account === undefined ? {} : { AccountId: item.account }),
    }));
    let nextToken: string | undefined;
    // Queries whose last answer was not Complete (PartialData on a page with more to come, say).
    const incomplete = new Map<number, string>();
    do {
      const page = await api.getMetricData({ queries, ...w, maxDatapoints: GMD_MAX_DATAPOINTS, nextToken });
      for (const r of page.results) {
        const q = Number(r.Id.slice(1));
        if (!(q >= 0 && q < batch.length)) {
          throw new Error(`Cannot map GetMetricData result "${r.Id}" to a query`);
        }
        if ((r.StatusCode ?? "Complete") === "Complete") incomplete.delete(q);
        else incomplete.set(q, r.StatusCode!);
        for (let k = 0; k < r.Timestamps.length; k++) {
          const t = r.Timestamps[k]!;
          const v = r.Values[k];
          if (v !== undefined && t >= w.start && t < w.end) found(first + q, t, v);
        }
      }
      nextToken = page.nextToken;
    } while (nextToken);
    // A result left incomplete after the last page would pass for periods without data: refuse it, so that
    // nothing is committed and the next run asks again.
    for (const [q, code] of incomplete) {
      if (code === FORBIDDEN && forbidden && batch[q]!.account !== undefined) forbidden(first + q);
      else {
        const m = batch[q]!.metric;
        throw new Error(`Cannot read ${m.Namespace} ${m.MetricName}: GetMetricData answered ${code}`);
      }
    }
  });
}

const metricOf = (s: Stream): Metric => ({
  Namespace: s.plan.namespace,
  MetricName: s.name,
  Dimensions: s.dims,
});

const planStats = new WeakMap<MetricPlan, readonly string[]>();

/** The statistics fetched for a stream: the statistic set, then its extra statistics (one list per entry). */
export function statsOf(s: Stream): readonly string[] {
  let stats = planStats.get(s.plan);
  if (stats === undefined) planStats.set(s.plan, stats = [...STATISTIC_SET, ...s.plan.stats]);
  return stats;
}

export interface PeriodStats {
  /** Period start, epoch seconds. */
  t: number;
  /** Statistic name -> value, for every statistic the source answered for this period. */
  values: Record<string, number>;
}

/**
 * Fetches every statistic of every stream over [start, end); returns, per stream, its periods in order. A
 * stream of another account (read through a monitoring account) that GetMetricData answers Forbidden goes to
 * `forbidden` where given, once, with no periods.
 */
export async function fetchStats(
  api: Pick<CloudWatchApi, "getMetricData">,
  streams: Stream[],
  w: { start: number; end: number },
  period: number,
  forbidden?: (s: Stream) => void,
): Promise<PeriodStats[][]> {
  const items: Item[] = [];
  const owner: number[] = [];
  streams.forEach((s, si) => {
    const metric = metricOf(s);
    for (const stat of statsOf(s)) {
      items.push({ metric, stat, unit: s.plan.unit, ...(s.owner && { account: s.owner.id }) });
      owner.push(si);
    }
  });
  const refused = new Set<number>();
  const out: PeriodStats[][] = streams.map(() => []);
  // Each stream's periods by the stream's index and the period's offset in the window: one map for the call.
  const span = w.end - w.start;
  const periods = new Map<number, PeriodStats>();
  await fetchValues(api, items, w, period, (k, t, v) => {
    const si = owner[k]!;
    const at = si * span + (t - w.start);
    let p = periods.get(at);
    if (p === undefined) {
      periods.set(at, p = { t, values: {} });
      out[si]!.push(p);
    }
    p.values[items[k]!.stat] = v;
  }, forbidden && ((k) => refused.add(owner[k]!)));
  for (const si of refused) {
    out[si] = [];
    forbidden!(streams[si]!);
  }
  for (const list of out) if (list.length > 1) list.sort((a, b) => a.t - b.t);
  return out;
}
