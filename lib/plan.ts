/**
 * --plan: what the next run will ask of AWS, and what running every `interval` costs a month, without
 * fetching a datapoint. It lists where the next run would list (its only calls; the run lists again) and
 * counts the rest as the run makes them: GetMetricData per step and call (lib/step.ts), PutMetricData in
 * batches of 1,000 pooled over account-regions (lib/publish.ts).
 */
import type { CloudWatchApi } from "./aws.ts";
import { batches, mapLimit } from "./batch.ts";
import { plural } from "./errors.ts";
import type { SourcePlan } from "./config.ts";
import { queriesPerCall, statsOf } from "./fetch.ts";
import { PUT_MAX_DATUMS } from "./limits.ts";
import { pagesOf, type Stream, streamsOf } from "./discover.ts";
import { readWindow } from "./recheck.ts";
import { targetOf } from "./publish.ts";
import { roleOf, type Run } from "./run.ts";
import { selfMetricCount } from "./selfmetrics.ts";
import { recentOnly, steps } from "./step.ts";

/**
 * CloudWatch list prices, us-east-1 (CloudWatch pricing page, as last checked in 2026-11). Check the page
 * before quoting them: other regions differ, and the free tier (1,000,000 API requests a month, which does not
 * cover GetMetricData) is left out.
 */
export const PRICES = {
  asOf: "2026-11, us-east-1",
  /** GetMetricData, per metric requested. */
  getMetricDataMetric: 0.01 / 1000,
  /** ListMetrics, PutMetricData and other API requests, per request. */
  request: 0.01 / 1000,
  /** Custom metrics, per metric and month: [metrics up to, price] by tier. */
  customMetricTiers: [[10_000, 0.30], [250_000, 0.10], [1_000_000, 0.05], [Infinity, 0.02]] as const,
};

/**
 * "You can request up to five statistics for the same metric in a single GetMetricData API request.
 * Additional statistics are billed as an additional metric" (pricing page): in one call, the statistics of one
 * metric (namespace, name, dimensions) bill ceil(statistics / 5) metrics.
 */
const STATISTICS_PER_BILLED_METRIC = 5;
const MONTH_SECONDS = 30 * 86_400;

/** What a run (or a month of runs) asks of AWS, by operation, and the GetMetricData metrics billed. */
export interface Calls {
  AssumeRole: number;
  ListMetrics: number;
  GetMetricData: number;
  /**
   * GetMetricData in the destination: CloudWatch's time, once a run; periods in doubt read before they are
   * written; periods read again for late samples.
   */
  GetMetricDataDestination: number;
  PutMetricData: number;
  /** GetMetricData metrics billed, source and destination: up to five statistics of a metric in a call as one. */
  metrics: number;
}

export interface RunPlan {
  /**
   * Per account-region: streams found, and what the next run asks of it. A monitoring account's is followed by
   * a row per account read through it (`through`), with its streams and the GetMetricData metrics they bill.
   */
  sources: { account: string; region: string; through?: string; streams: number; calls: Calls }[];
  next: Calls;
  /**
   * A month of steady runs every `interval`, listing every `discovery_interval`; `recheck`, the metrics billed
   * for reading periods again for late samples (lib/recheck.ts), included in `metrics`.
   */
  month: Calls & { runs: number; customMetrics: number; recheck: number };
  /** Dollars a month: GetMetricData, requests, custom metrics, and their total. */
  cost: { getMetricData: number; requests: number; customMetrics: number; total: number };
}

const zero = (): Calls => ({
  AssumeRole: 0,
  ListMetrics: 0,
  GetMetricData: 0,
  GetMetricDataDestination: 0,
  PutMetricData: 0,
  metrics: 0,
});

/** Adds b's calls to a's, `times` over; only the keys of Calls (a month's `runs` is not a sum). */
function add(a: Calls, b: Calls, times = 1) {
  for (const k of Object.keys(zero()) as (keyof Calls)[]) a[k] += b[k] * times;
}

/** Adds up datums by target namespace. */
const sum = (into: Map<string, number>, from: Map<string, number>) =>
  from.forEach((n, ns) => into.set(ns, (into.get(ns) ?? 0) + n));
/** PutMetricData calls for datums by namespace, 1,000 a call. */
const putsFor = (datums: Map<string, number>) =>
  [...datums.values()].reduce((n, d) => n + Math.ceil(d / PUT_MAX_DATUMS), 0);

/**
 * The plan for the next run and a steady month. Only ListMetrics is called, where a listing is due (and the
 * clock was read before, as for any run).
 */
export async function planRun(run: Run): Promise<RunPlan> {
  const counted = await mapLimit(run.plan.sources, run.plan.sources.length, (src) => countSource(src, run));
  const next = zero();
  const month = { ...zero(), runs: MONTH_SECONDS / run.plan.interval, customMetrics: 0, recheck: 0 };
  const datums = new Map<string, number>();
  const steadyDatums = new Map<string, number>();
  const roles = new Set(counted.filter((c) => c.asksSource && c.role).map((c) => c.role!));
  if (run.plan.destination.roleArn) roles.add(run.plan.destination.roleArn);
  // The forwarder's own metrics: per account-region, and per account read through a monitoring account.
  let accounts = counted.length;
  for (const c of counted) {
    accounts += c.owners.filter((o) => o.account !== c.row.account).length;
    add(next, c.next);
    add(month, c.month);
    month.recheck += c.recheck;
    sum(datums, c.datums);
    sum(steadyDatums, c.steadyDatums);
    month.customMetrics += c.metrics;
  }
  // Every run first asks the destination for CloudWatch's time (lib/clock.ts): one call, one metric billed.
  const clock = { ...zero(), GetMetricDataDestination: 1, metrics: 1 };
  add(next, clock);
  add(month, clock, month.runs);
  // A run's own metrics go out after its writes, in a call of their own.
  const own = run.plan.selfMetrics ? 1 : 0;
  next.PutMetricData = putsFor(datums) + own;
  next.AssumeRole = roles.size;
  month.PutMetricData = (putsFor(steadyDatums) + own) * month.runs;
  month.AssumeRole = roles.size * month.runs;
  month.customMetrics += run.plan.selfMetrics ? selfMetricCount(accounts) : 0;
  return { sources: counted.flatMap((c) => [c.row, ...c.owners]), next, month, cost: costOf(month) };
}

interface Counted {
  row: RunPlan["sources"][number];
  /** Through a monitoring account, a row per account read. */
  owners: RunPlan["sources"];
  role: string | undefined;
  /** Whether the next run calls the source account at all (and so assumes its role). */
  asksSource: boolean;
  next: Calls;
  month: Calls;
  datums: Map<string, number>;
  /** Datums a steady run writes, by namespace. */
  steadyDatums: Map<string, number>;
  metrics: number;
  /** GetMetricData metrics billed a month for reading periods again. */
  recheck: number;
}

/** What the next run and a steady month ask of one account-region. */
async function countSource(src: SourcePlan, run: Run): Promise<Counted> {
  const api = run.cloudWatch(src.region, roleOf(src));
  let pages = 0;
  const lister: Pick<CloudWatchApi, "listMetrics"> = {
    listMetrics: (input) => (pages++, api.listMetrics(input)),
  };
  const { streams } = await streamsOf(lister, src, run, recentOnly(src, run));
  const next = { ...zero(), ListMetrics: pages };
  const datums = new Map<string, number>();
  const namespace = (s: Stream) => run.plan.destination.namespace.replaceAll("{namespace}", s.plan.namespace);
  const target = targetOf(run.plan, src);
  const owners = new Map<string, RunPlan["sources"][number]>();
  for (const s of streams) {
    if (s.owner === undefined) continue;
    let o = owners.get(s.owner.name);
    if (!o) {
      owners.set(
        s.owner.name,
        o = { account: s.owner.name, region: src.region, through: src.account, streams: 0, calls: zero() },
      );
    }
    o.streams++;
  }
  for await (const step of steps(src, streams, run)) {
    const periods = (step.window.end - step.window.start) / step.period;
    const read = readWindow(step);
    addReads(next, step.streams, (read.end - read.start) / step.period, owners);
    addDestinationReads(next, step.inDoubt, target, periods);
    if (step.recheck) {
      addLandedReads(next, step.streams, (step.recheck.end - step.recheck.start) / step.period);
    }
    for (const s of step.streams) {
      datums.set(namespace(s), (datums.get(namespace(s)) ?? 0) + periods * (1 + s.plan.stats.length));
    }
  }
  const last = run.store.listing(src.account, src.region);
  const listingPages = pages > 0 ? pages : pagesOf(src.metrics, last?.counts ?? {});
  const month = zero();
  let recheck = 0;
  const steadyDatums = new Map<string, number>();
  for (const [after, group] of Map.groupBy(streams, (s) => s.plan.recheckAfter)) {
    if (!(after > 0)) continue;
    // A range gathers the periods read within `after` of its first read, and is read again once: a steady
    // run's source calls read it along (the same queries, billed the same); the destination's once a range.
    const runsPerRange = Math.max(1, Math.ceil(after / run.plan.interval));
    const one = zero();
    addLandedReads(
      one,
      group,
      Math.max(1, Math.ceil(runsPerRange * run.plan.interval / group[0]!.plan.period)),
    );
    const ranges = MONTH_SECONDS / (runsPerRange * run.plan.interval);
    add(month, one, ranges);
    recheck += one.metrics * ranges;
  }
  for (const [period, group] of Map.groupBy(streams, (s) => s.plan.period)) {
    // A steady run fetches the periods that came due since the last run, at least one.
    const perFetch = Math.max(1, Math.floor(run.plan.interval / period));
    const fetches = MONTH_SECONDS / (perFetch * period);
    const one = zero();
    addReads(one, group, perFetch);
    add(month, one, fetches);
    for (const s of group) {
      const perRun = (1 + s.plan.stats.length) * Math.max(1, run.plan.interval / period);
      steadyDatums.set(namespace(s), (steadyDatums.get(namespace(s)) ?? 0) + perRun);
    }
  }
  month.ListMetrics = listingPages * MONTH_SECONDS / Math.max(run.plan.interval, run.plan.discoveryInterval);
  return {
    row: { account: src.account, region: src.region, streams: streams.length, calls: next },
    owners: [...owners.values()].sort((a, b) => (a.account < b.account ? -1 : 1)),
    role: src.roleArn,
    asksSource: next.ListMetrics + next.GetMetricData > 0,
    next,
    month,
    datums,
    steadyDatums,
    metrics: streams.reduce((n, s) => n + 1 + s.plan.stats.length, 0),
    recheck,
  };
}

/**
 * A metric as GetMetricData bills it: namespace, name and dimensions (sorted by name, as a set), and the
 * account it belongs to where read through a monitoring account.
 */
const metricKey = (
  namespace: string,
  name: string,
  dims: readonly { Name: string; Value: string }[],
  account?: string,
) =>
  JSON.stringify([
    namespace,
    name,
    dims.map((d) => [d.Name, d.Value]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    ...(account === undefined ? [] : [account]),
  ]);

/** The metrics one call bills for its queries (a metric's key once per statistic asked of it). */
function billedIn(statistics: Map<string, number>): number {
  let billed = 0;
  for (const n of statistics.values()) billed += Math.ceil(n / STATISTICS_PER_BILLED_METRIC);
  return billed;
}

const tally = (statistics: Map<string, number>, key: string, n: number) =>
  statistics.set(key, (statistics.get(key) ?? 0) + n);

/**
 * The GetMetricData calls and billed metrics of fetching these streams' periods, split as lib/step.ts does;
 * through a monitoring account, the metrics each account's streams bill are added to its row in `owners`.
 */
function addReads(
  calls: Calls,
  streams: Stream[],
  periods: number,
  owners?: Map<string, RunPlan["sources"][number]>,
) {
  for (const call of batches(streams, Infinity, (s) => statsOf(s).length, queriesPerCall(periods))) {
    calls.GetMetricData++;
    const statistics = new Map<string, number>();
    const ownerOf = new Map<string, string>();
    for (const s of call) {
      const key = metricKey(s.plan.namespace, s.name, s.dims, s.owner?.id);
      tally(statistics, key, statsOf(s).length);
      if (owners && s.owner) ownerOf.set(key, s.owner.name);
    }
    calls.metrics += billedIn(statistics);
    for (const [key, name] of ownerOf) {
      owners!.get(name)!.calls.metrics += Math.ceil(statistics.get(key)! / STATISTICS_PER_BILLED_METRIC);
    }
  }
}

/**
 * The destination's GetMetricData calls and billed metrics for the streams in doubt, as lib/publish.ts
 * (alreadyWritten) asks: SampleCount of each destination metric of a stream (its own name, and one per extra
 * statistic), the queries in order, queriesPerCall a call.
 */
function addDestinationReads(
  calls: Calls,
  inDoubt: Stream[],
  target: ReturnType<typeof targetOf>,
  periods: number,
) {
  if (!(periods > 0)) return; // alreadyWritten asks nothing of an empty window
  const keys = inDoubt.flatMap((s) => {
    const t = target(s);
    const dims = [...s.dims, ...t.dims];
    return [s.name, ...s.plan.stats.map((stat) => `${s.name}_${stat}`)].map((name) =>
      metricKey(t.namespace, name, dims)
    );
  });
  const perCall = queriesPerCall(periods);
  for (let first = 0; first < keys.length; first += perCall) {
    calls.GetMetricDataDestination++;
    const statistics = new Map<string, number>();
    for (const key of keys.slice(first, first + perCall)) tally(statistics, key, 1);
    calls.metrics += billedIn(statistics);
  }
}

/**
 * The destination's GetMetricData calls and billed metrics for reading periods again, as lib/recheck.ts
 * (landedIn) asks: SampleCount and Sum of each stream's metric, in as few calls as queriesPerCall allows.
 */
function addLandedReads(calls: Calls, streams: Stream[], periods: number) {
  if (!(periods > 0) || streams.length === 0) return;
  const perCall = queriesPerCall(periods);
  const queries = 2 * streams.length;
  calls.GetMetricDataDestination += Math.ceil(queries / perCall);
  calls.metrics += streams.length;
  // A stream whose two statistics a call boundary splits is billed in both calls.
  for (let boundary = perCall; boundary < queries; boundary += perCall) {
    if (boundary % 2 === 1) calls.metrics++;
  }
}

/** Monthly dollars: GetMetricData metrics, requests, and custom metrics by tier. */
function costOf(month: RunPlan["month"]): RunPlan["cost"] {
  const getMetricData = month.metrics * PRICES.getMetricDataMetric;
  const requests = (month.ListMetrics + month.PutMetricData) * PRICES.request;
  let customMetrics = 0;
  let below = 0;
  for (const [upTo, price] of PRICES.customMetricTiers) {
    customMetrics += Math.max(0, Math.min(month.customMetrics, upTo) - below) * price;
    below = upTo;
  }
  return { getMetricData, requests, customMetrics, total: getMetricData + requests + customMetrics };
}

const dollars = (x: number) => `$${x.toFixed(2)}`;
const count = (x: number) => Math.round(x).toLocaleString("en-US");

/** The plan as a table, or as one JSON object. */
export function printPlan(p: RunPlan, json: boolean, interval: number, out: (line: string) => void) {
  if (json) return out(JSON.stringify({ ...p, prices: PRICES }));
  out("Next run, by account-region: streams, ListMetrics pages, GetMetricData calls (source, destination)");
  for (const s of p.sources) {
    if (s.through !== undefined) {
      out(
        `    ${s.account} (through ${s.through}): ${plural(s.streams, "stream", count)}, ${
          plural(s.calls.metrics, "metric", count)
        } billed`,
      );
      continue;
    }
    out(
      `  ${s.account} ${s.region}: ${plural(s.streams, "stream", count)}, ${
        plural(s.calls.ListMetrics, "page")
      }, ${s.calls.GetMetricData} + ${s.calls.GetMetricDataDestination} calls`,
    );
  }
  const n = p.next;
  out(
    `Next run: AssumeRole ${n.AssumeRole}, ListMetrics ${n.ListMetrics}, GetMetricData ${n.GetMetricData} + ${n.GetMetricDataDestination} in the destination (${
      plural(n.metrics, "metric", count)
    } billed), PutMetricData ${n.PutMetricData}`,
  );
  const m = p.month;
  out(
    `A month of runs every ${interval} s (${count(m.runs)} runs): ListMetrics ${
      count(m.ListMetrics)
    }, GetMetricData ${count(m.GetMetricData)} (${
      count(m.metrics)
    } metrics billed, up to five statistics of a metric in a call as one; ${
      count(m.recheck)
    } of them to read periods again for late samples), PutMetricData ${count(m.PutMetricData)}, ${
      count(m.customMetrics)
    } custom metrics in the destination`,
  );
  const c = p.cost;
  out(`Estimated cost a month (list prices ${PRICES.asOf}; check the pricing page):`);
  out(
    `  GetMetricData   ${dollars(c.getMetricData)} (${
      dollars(PRICES.getMetricDataMetric * 1000)
    } per 1,000 metrics)`,
  );
  out(`  API requests    ${dollars(c.requests)} (ListMetrics and PutMetricData; before the free tier)`);
  out(`  custom metrics  ${dollars(c.customMetrics)}`);
  out(`  total           ${dollars(c.total)}`);
}
