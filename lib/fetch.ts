/**
 * Fetching: GetMetricData in as few calls as its limits allow, mapped back to per-period statistics.
 */
import type { CloudWatchApi, Metric } from "./aws.ts";
import { batches, mapLimit } from "./batch.ts";
import type { Stream } from "./discover.ts";
import { GMD_MAX_DATAPOINTS, GMD_MAX_QUERIES } from "./limits.ts";

/** Calls of one fetch in flight at once: enough to hide the round trip; lib/aws.ts paces them to the quota. */
const CALLS_AT_ONCE = 4;

/** The statistics every forwarded period carries, as one StatisticValues datum. */
export const STATISTIC_SET = ["SampleCount", "Sum", "Minimum", "Maximum"] as const;

export interface Item {
  metric: Metric;
  stat: string;
  unit: string | undefined;
}

/**
 * Queries per call for a window of `periods` periods: as many as fit both limits, so that every call is
 * answered in one page. GetMetricData bills per metric requested per call, so smaller calls that each fill a
 * page cost less than big ones paged with NextToken, for the same number of calls.
 */
export function queriesPerCall(periods: number): number {
  return Math.max(1, Math.min(GMD_MAX_QUERIES, Math.floor(GMD_MAX_DATAPOINTS / Math.max(1, periods))));
}

/** Runs the queries over [start, end); returns, per item, its values by period start (epoch seconds). */
export async function fetchValues(
  api: Pick<CloudWatchApi, "getMetricData">,
  items: Item[],
  w: { start: number; end: number },
  period: number,
): Promise<Map<number, number>[]> {
  const out = items.map(() => new Map<number, number>());
  const indexed = items.map((item, i) => ({ item, i }));
  const calls = batches(indexed, queriesPerCall((w.end - w.start) / period));
  await mapLimit(calls, CALLS_AT_ONCE, async (batch) => {
    const queries = batch.map(({ item }, q) => ({
      Id: `q${q}`,
      Metric: item.metric,
      Period: period,
      Stat: item.stat,
      Unit: item.unit,
    }));
    let nextToken: string | undefined;
    const status = new Map<string, string>();
    do {
      const page = await api.getMetricData({ queries, ...w, maxDatapoints: GMD_MAX_DATAPOINTS, nextToken });
      for (const r of page.results) {
        const target = batch[Number(r.Id.slice(1))];
        if (!target) throw new Error(`Cannot map GetMetricData result "${r.Id}" to a query`);
        status.set(r.Id, r.StatusCode ?? "Complete");
        r.Timestamps.forEach((t, k) => {
          const v = r.Values[k];
          if (v !== undefined && t >= w.start && t < w.end) out[target.i]!.set(t, v);
        });
      }
      nextToken = page.nextToken;
    } while (nextToken);
    // A result left incomplete after the last page would pass for periods without data: refuse it, so that
    // nothing is committed and the next run asks again.
    for (const [id, code] of status) {
      if (code !== "Complete") {
        const m = batch[Number(id.slice(1))]!.item.metric;
        throw new Error(`Cannot read ${m.Namespace} ${m.MetricName}: GetMetricData answered ${code}`);
      }
    }
  });
  return out;
}

const metricOf = (s: Stream): Metric => ({
  Namespace: s.plan.namespace,
  MetricName: s.name,
  Dimensions: s.dims,
});

/** The statistics fetched for a stream: the statistic set, then its extra statistics. */
export const statsOf = (s: Stream): string[] => [...STATISTIC_SET, ...s.plan.stats];

export interface PeriodStats {
  /** Period start, epoch seconds. */
  t: number;
  /** Statistic name -> value, for every statistic the source answered for this period. */
  values: Record<string, number>;
}

/** Fetches every statistic of every stream over [start, end); returns, per stream, its periods in order. */
export async function fetchStats(
  api: Pick<CloudWatchApi, "getMetricData">,
  streams: Stream[],
  w: { start: number; end: number },
  period: number,
): Promise<PeriodStats[][]> {
  const items = streams.flatMap((s, si) =>
    statsOf(s).map((stat) => ({ si, stat, item: { metric: metricOf(s), stat, unit: s.plan.unit } }))
  );
  const values = await fetchValues(api, items.map((x) => x.item), w, period);
  const rows = streams.map(() => new Map<number, Record<string, number>>());
  items.forEach((x, k) => {
    for (const [t, v] of values[k]!) {
      const byT = rows[x.si]!;
      const r = byT.get(t) ?? {};
      r[x.stat] = v;
      byT.set(t, r);
    }
  });
  return rows.map((byT) => [...byT].sort((a, b) => a[0] - b[0]).map(([t, values]) => ({ t, values })));
}
