/**
 * The CloudWatch operations, PutMetricData, GetMetricData, GetMetricStatistics and ListMetrics: each checks its
 * request as the API reference says, then writes to or reads from the metric store; a monitoring account reads
 * its linked source accounts' metrics too (cross-account observability). Alarms and dashboards: alarms.ts.
 */
import { callMonitoring, MONITORING_OPERATIONS } from "./alarms.ts";
import { AwsError, combination, invalid, missing } from "./errors.ts";
import {
  ACCOUNT_ID_MAX,
  BASIC_STATS,
  GMD_DEFAULT_MAX_DATAPOINTS,
  GMD_MAX_QUERIES,
  GMS_MAX_DATAPOINTS,
  GMS_MAX_EXTENDED,
  GMS_MAX_STATISTICS,
  LAG_AFTER_24H,
  LAG_AFTER_24H_FROM,
  LAG_AFTER_3H,
  LAG_AFTER_3H_FROM,
  LIST_MAX_DIMENSION_FILTERS,
  LIST_PAGE_SIZE,
  MAX_AGE_MS,
  MAX_AHEAD_MS,
  MAX_MAGNITUDE,
  MAX_VALUES,
  NAME_MAX,
  PERCENTILE,
  PUT_MAX_DATUMS,
  QUERY_ID,
  RECENTLY_ACTIVE_MS,
  STATISTICS_PER_BILLED_METRIC,
} from "./limits.ts";
import {
  bool,
  checkDimension,
  checkNamespace,
  checkPeriod,
  checkStat,
  invalidToken,
  isObject,
  list,
  listToken,
  nextTokenSkip,
  num,
  parseDimensions,
  parseUnit,
  str,
  strings,
  time,
  writeListToken,
} from "./requests.ts";
import type { OwningAccountsFault } from "./faults.ts";
import type { Instance } from "./instance.ts";
import { readable, reads } from "./links.ts";
import { forEachPeriod } from "./samples.ts";
import {
  listAcross,
  listedAgain,
  type MetricStore,
  type Position,
  type Sample,
  type Stream,
} from "./store.ts";

/**
 * Runs one CloudWatch operation on an account and region's data; returns its answer and the units AWS bills
 * for it (one request, or GetMetricData's metrics).
 */
export function callCloudWatch(
  emu: Pick<Instance, "store" | "faults" | "random" | "links" | "monitoring" | "now">,
  account: string,
  region: string,
  op: string,
  body: Record<string, unknown>,
): { answer: unknown; billed: number } {
  const { store } = emu;
  if (op === "PutMetricData") return { answer: putMetricData(store, account, region, body), billed: 1 };
  if (op === "GetMetricData") return getMetricData(emu, account, region, body);
  if (op === "GetMetricStatistics") {
    return { answer: getMetricStatistics(store, account, region, body), billed: 1 };
  }
  if (op === "ListMetrics") return { answer: listMetrics(emu, account, region, body), billed: 1 };
  if (MONITORING_OPERATIONS.has(op)) {
    return { answer: callMonitoring(emu.monitoring, emu.now(), account, region, op, body), billed: 1 };
  }
  throw new AwsError(
    "UnknownOperationException",
    `The operation ${op} is not supported by this emulator.`,
  );
}

// -- PutMetricData --
function putMetricData(store: MetricStore, account: string, region: string, body: Record<string, unknown>) {
  const namespace = str(body, "Namespace", true);
  checkNamespace(namespace);
  // PutMetricData: namespaces beginning with AWS/ are reserved for AWS services (API reference).
  if (namespace.startsWith("AWS/")) {
    throw invalid(
      `The value ${namespace} for parameter Namespace is invalid: namespaces beginning with AWS/ are reserved.`,
    );
  }
  const datums = list(body, "MetricData");
  if (datums === undefined) throw missing("MetricData");
  if (datums.length < 1 || datums.length > PUT_MAX_DATUMS) {
    throw invalid(
      `The collection MetricData must contain 1 to ${PUT_MAX_DATUMS} items; it has ${datums.length}.`,
    );
  }
  const t0 = store.now();
  // Validate everything first: a request is accepted or refused as a whole.
  const parsed = datums.map((raw, i) => parseDatum(raw, `MetricData.member.${i + 1}`, t0));
  for (const p of parsed) {
    // Older data takes longer to become readable; the emulator always takes the longest AWS allows.
    const age = t0 - p.sample.t;
    if (age >= LAG_AFTER_24H_FROM) p.sample.visibleAt = t0 + LAG_AFTER_24H;
    else if (age >= LAG_AFTER_3H_FROM) p.sample.visibleAt = t0 + LAG_AFTER_3H;
    store.put(account, region, namespace, p.name, p.dims, p.sample, p.highRes);
  }
  return {};
}

/** One MetricDatum, checked: the stream it names and the sample it carries. */
function parseDatum(raw: unknown, where: string, t0: number) {
  if (!isObject(raw)) throw new AwsError("SerializationException", `${where} must be a structure`);
  const name = str(raw, "MetricName", true);
  if (name.length < 1 || name.length > NAME_MAX) {
    throw invalid(`The parameter ${where}.MetricName must be 1 to 255 characters long.`);
  }
  const dims = parseDimensions(list(raw, "Dimensions"), `${where}.Dimensions`);
  const ts = time(raw, "Timestamp", false) ?? t0;
  if (ts < t0 - MAX_AGE_MS || ts > t0 + MAX_AHEAD_MS) {
    throw invalid(
      `The parameter ${where}.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future.`,
    );
  }
  const unit = parseUnit(raw) ?? "None";
  const resolution = raw["StorageResolution"];
  if (resolution !== undefined && resolution !== 1 && resolution !== 60) {
    throw invalid(
      `The value ${String(resolution)} for parameter ${where}.StorageResolution is invalid: use 1 or 60.`,
    );
  }
  return { name, dims, sample: datumSample(raw, where, ts, unit), highRes: resolution === 1 };
}

/** The sample of a datum: from its Value, its Values and Counts, or its StatisticValues (with Values or not). */
function datumSample(raw: Record<string, unknown>, where: string, ts: number, unit: string): Sample {
  const hasValue = raw["Value"] !== undefined && raw["Value"] !== null;
  const values = list(raw, "Values");
  const countsList = list(raw, "Counts");
  const stats = raw["StatisticValues"];
  const hasStats = stats !== undefined && stats !== null;
  if (hasValue && values !== undefined) {
    throw combination(
      `The parameters ${where}.Value and ${where}.Values are mutually exclusive and you have specified both.`,
    );
  }
  if (hasValue && hasStats) {
    throw combination(
      `The parameters ${where}.Value and ${where}.StatisticValues are mutually exclusive and you have specified both.`,
    );
  }
  if (countsList !== undefined && values === undefined) {
    throw combination(`The parameter ${where}.Counts requires ${where}.Values.`);
  }
  if (!hasValue && values === undefined && !hasStats) throw missing(`${where}.Value`);
  const dist = values === undefined ? undefined : distribution(values, countsList, where, finite);
  let sample: Sample;
  if (hasStats) {
    sample = statisticSet(stats, where, ts, unit, dist);
  } else if (hasValue) {
    const v = finite(raw["Value"], `${where}.Value`);
    sample = { t: ts, unit, n: 1, sum: v, min: v, max: v, values: [v], counts: undefined };
  } else {
    if (!(dist!.n > 0)) throw invalid(`The parameter ${where}.Counts must add up to more than 0.`);
    sample = { t: ts, unit, ...dist! };
  }
  return sample;
}

/** The sample of a datum's StatisticValues, with the distribution of its Values when it has them. */
function statisticSet(
  stats: unknown,
  where: string,
  ts: number,
  unit: string,
  dist: ReturnType<typeof distribution> | undefined,
): Sample {
  if (!isObject(stats)) {
    throw new AwsError("SerializationException", `${where}.StatisticValues must be a structure`);
  }
  for (const k of ["SampleCount", "Sum", "Minimum", "Maximum"]) {
    if (stats[k] === undefined) throw missing(`${where}.StatisticValues.${k}`);
  }
  const n = finite(stats["SampleCount"], `${where}.StatisticValues.SampleCount`);
  const sum = finite(stats["Sum"], `${where}.StatisticValues.Sum`);
  const min = finite(stats["Minimum"], `${where}.StatisticValues.Minimum`);
  const max = finite(stats["Maximum"], `${where}.StatisticValues.Maximum`);
  if (!(n > 0)) {
    throw invalid(`The parameter ${where}.StatisticValues.SampleCount must be greater than 0.`);
  }
  if (min > max) {
    throw invalid(`The parameter ${where}.StatisticValues.Minimum must not be greater than Maximum.`);
  }
  // The set gives the statistics; percentiles come from Values sent with it, or from the set itself
  // when all its samples are equal (otherwise it carries no distribution).
  const values = dist?.values ?? (min === max ? [min] : undefined);
  const counts = dist ? dist.counts : min === max ? [n] : undefined;
  return { t: ts, unit, n, sum, min, max, values, counts };
}

/** A datum's number: finite, and within the magnitude MetricDatum allows. */
function finite(v: unknown, what: string) {
  const x = num(v, what);
  if (Math.abs(x) > MAX_MAGNITUDE) {
    throw invalid(`The value ${x} for parameter ${what} is out of range.`);
  }
  return x;
}

/** Values with their Counts, checked (MetricDatum.Values and Counts, API reference), and their aggregate. */
function distribution(
  raw: unknown[],
  rawCounts: unknown[] | undefined,
  where: string,
  finite: (v: unknown, what: string) => number,
) {
  if (raw.length < 1 || raw.length > MAX_VALUES) {
    throw invalid(`The collection ${where}.Values must contain 1 to ${MAX_VALUES} items.`);
  }
  const values = raw.map((x, j) => finite(x, `${where}.Values.member.${j + 1}`));
  const counts = rawCounts?.map((x, j) => finite(x, `${where}.Counts.member.${j + 1}`));
  if (counts !== undefined && counts.length !== values.length) {
    throw invalid(`The parameters ${where}.Values and ${where}.Counts must be of the same size.`);
  }
  if (counts?.some((x) => x < 0)) {
    throw invalid(`The parameter ${where}.Counts must not contain negative values.`);
  }
  let n = 0, sum = 0, min = Infinity, max = -Infinity;
  values.forEach((v, j) => {
    const c = counts?.[j] ?? 1;
    n += c;
    sum += v * c;
    if (c > 0) [min, max] = [Math.min(min, v), Math.max(max, v)];
  });
  return { n, sum, min, max, values, counts };
}

/** GetMetricData rounds StartTime down to the minute for data under 15 days old (periods of 60 s and more). */
function roundStart(start: number, period: number) {
  return period >= 60 ? Math.floor(start / 60_000) * 60_000 : Math.floor(start / 1000) * 1000;
}

// -- GetMetricData --
function getMetricData(
  emu: Pick<Instance, "store" | "links">,
  account: string,
  region: string,
  body: Record<string, unknown>,
) {
  const { store } = emu;
  const queries = list(body, "MetricDataQueries");
  if (queries === undefined) throw missing("MetricDataQueries");
  if (queries.length < 1 || queries.length > GMD_MAX_QUERIES) {
    throw invalid(
      `The collection MetricDataQueries must contain 1 to ${GMD_MAX_QUERIES} items; it has ${queries.length}.`,
    );
  }
  const start = time(body, "StartTime", true)!;
  const end = time(body, "EndTime", true)!;
  if (start >= end) throw invalid("The parameter StartTime must be less than the parameter EndTime.");
  const scanBy = str(body, "ScanBy") ?? "TimestampDescending";
  if (scanBy !== "TimestampDescending" && scanBy !== "TimestampAscending") {
    throw invalid(`The value ${scanBy} for parameter ScanBy is invalid.`);
  }
  const maxPoints = body["MaxDatapoints"] === undefined
    ? GMD_DEFAULT_MAX_DATAPOINTS
    : num(body["MaxDatapoints"], "MaxDatapoints");
  if (!Number.isInteger(maxPoints) || maxPoints < 1) {
    throw invalid("The parameter MaxDatapoints must be a positive integer.");
  }
  const ids = new Set<string>();
  const parsed = queries.map((q, i) =>
    parseQuery(emu, account, region, q, `MetricDataQueries.member.${i + 1}`, ids)
  );
  const now = store.now();
  const results = parsed.filter((q) => q.returnData).map((q) => {
    const r: QueryResult = { Id: q.id, Label: q.label, times: [], values: [], forbidden: q.forbidden };
    // Periods under 60 s are only answered for data stored at high resolution.
    if (!q.stream || (q.period < 60 && !q.stream.highRes)) return r;
    const span = {
      start: roundStart(start, q.period),
      end,
      periodMs: q.period * 1000,
      unit: q.unit,
      now,
      withRaw: !BASIC_STATS.has(q.stat),
    };
    forEachPeriod(q.stream, span, (t, agg) => {
      const v = agg.stat(q.stat);
      if (v === undefined) return;
      r.times.push(t);
      r.values.push(v);
    });
    if (scanBy === "TimestampDescending") [r.times, r.values] = [r.times.reverse(), r.values.reverse()];
    return r;
  });
  // NextToken is the number of datapoints already returned, counted over the results in order.
  return { answer: resultPage(results, nextTokenSkip(body), maxPoints), billed: billedMetrics(parsed) };
}

/**
 * The metrics a GetMetricData call bills: "You can request up to five statistics for the same metric in a
 * single GetMetricData API request. Additional statistics are billed as an additional metric" (CloudWatch
 * pricing page). A metric is its namespace, name, set of dimensions and account; every query counts as one
 * statistic requested, whatever its period, and whether it returns data or not.
 */
function billedMetrics(queries: { metric: unknown }[]): number {
  const statistics = new Map<unknown, number>();
  for (const q of queries) statistics.set(q.metric, (statistics.get(q.metric) ?? 0) + 1);
  let billed = 0;
  for (const n of statistics.values()) billed += Math.ceil(n / STATISTICS_PER_BILLED_METRIC);
  return billed;
}

/**
 * A metric as billing tells metrics apart: its account, namespace, name and dimensions as a set. Dimensions
 * and namespaces hold no control characters (API reference, Dimension; the namespace's characters), so NUL
 * separates them; the name, which may, is quoted.
 */
function metricKey(owner: string, namespace: string, name: string, dims: { Name: string; Value: string }[]) {
  const sorted = dims.slice().sort((a, b) => (a.Name < b.Name ? -1 : 1));
  let key = `${owner}\u0000${namespace}\u0000${JSON.stringify(name)}`;
  for (const d of sorted) key += `\u0000${d.Name}\u0000${d.Value}`;
  return key;
}

/** One MetricDataQuery, checked; `ids` holds the ids seen so far in the call. */
function parseQuery(
  emu: Pick<Instance, "store" | "links">,
  account: string,
  region: string,
  q: unknown,
  where: string,
  ids: Set<string>,
) {
  if (!isObject(q)) throw new AwsError("SerializationException", `${where} must be a structure`);
  const id = str(q, "Id", true);
  if (!QUERY_ID.test(id)) {
    throw invalid(
      `The value ${id} for parameter ${where}.Id is invalid: it must start with a lowercase letter and contain only letters, digits and underscores.`,
    );
  }
  if (ids.has(id)) throw invalid(`The value ${id} for parameter MetricDataQueries.Id is not unique.`);
  ids.add(id);
  if (q["Expression"] !== undefined) {
    throw invalid(
      `${where}.Expression: metric math and Metrics Insights are not supported by this emulator.`,
    );
  }
  const ms = q["MetricStat"];
  if (!isObject(ms)) throw missing(`${where}.MetricStat`);
  const metric = ms["Metric"];
  if (!isObject(metric)) throw missing(`${where}.MetricStat.Metric`);
  const namespace = str(metric, "Namespace", true);
  checkNamespace(namespace, `${where}.MetricStat.Metric.Namespace`);
  const name = str(metric, "MetricName", true);
  const dims = parseDimensions(list(metric, "Dimensions"), `${where}.MetricStat.Metric.Dimensions`);
  if (ms["Period"] === undefined) throw missing(`${where}.MetricStat.Period`);
  const period = num(ms["Period"], `${where}.MetricStat.Period`);
  checkPeriod(period, `${where}.MetricStat.Period`);
  const stat = str(ms, "Stat", true);
  checkStat(stat, `${where}.MetricStat.Stat`);
  const unit = parseUnit(ms);
  const returnData = q["ReturnData"] !== false;
  // The account that holds the metric, the caller's when not given (API reference, MetricDataQuery.AccountId).
  const owner = str(q, "AccountId") ?? account;
  if (owner.length < 1 || owner.length > ACCOUNT_ID_MAX) {
    throw invalid(`The parameter ${where}.AccountId must be 1 to ${ACCOUNT_ID_MAX} characters long.`);
  }
  // AWS does not document a query for an account the caller does not read (not linked to it). It refuses no
  // call for it: MetricDataResult.StatusCode has a Forbidden value (API reference), so that query alone is
  // answered Forbidden, with why in its Messages, and the other queries of the call as usual.
  const forbidden = reads(emu.links, account, owner)
    ? undefined
    : `Account ${account} cannot read metrics of account ${owner}: it is not linked to it as a source.`;
  const stream = forbidden ? undefined : emu.store.find(owner, region, namespace, name, dims);
  return {
    id,
    label: str(q, "Label") ?? name,
    // The stream itself names the metric where there is one: no key to build for most queries.
    metric: stream ?? metricKey(owner, namespace, name, dims),
    forbidden,
    stream,
    period,
    stat,
    unit,
    returnData,
  };
}

/** A query's datapoints in the order asked for: their times (ms) and values; why it is Forbidden, if it is. */
interface QueryResult {
  Id: string;
  Label: string;
  times: number[];
  values: number[];
  forbidden: string | undefined;
}

/** One page of at most maxPoints datapoints, after the first `skip`, counted over the results in order. */
function resultPage(results: QueryResult[], skip: number, maxPoints: number) {
  const pageEnd = skip + maxPoints;
  let offset = 0;
  const out = results.map((r) => {
    const count = r.times.length;
    const from = Math.min(Math.max(skip - offset, 0), count);
    const to = Math.min(Math.max(pageEnd - offset, 0), count);
    offset += count;
    const whole = from === 0 && to === count;
    if (r.forbidden !== undefined) {
      return {
        Id: r.Id,
        Label: r.Label,
        Timestamps: [],
        Values: [],
        StatusCode: "Forbidden",
        Messages: [{ Code: "Forbidden", Value: r.forbidden }],
      };
    }
    return {
      Id: r.Id,
      Label: r.Label,
      Timestamps: (whole ? r.times : r.times.slice(from, to)).map((t) => t / 1000),
      Values: whole ? r.values : r.values.slice(from, to),
      StatusCode: to < count ? "PartialData" : "Complete",
    };
  });
  const more = pageEnd < offset;
  return { MetricDataResults: out, Messages: [], ...(more ? { NextToken: `emu-${pageEnd}` } : {}) };
}

// -- GetMetricStatistics --
function getMetricStatistics(
  store: MetricStore,
  account: string,
  region: string,
  body: Record<string, unknown>,
) {
  const namespace = str(body, "Namespace", true);
  checkNamespace(namespace);
  const name = str(body, "MetricName", true);
  const dims = parseDimensions(list(body, "Dimensions"), "Dimensions");
  const start = time(body, "StartTime", true)!;
  const end = time(body, "EndTime", true)!;
  if (start >= end) throw invalid("The parameter StartTime must be less than the parameter EndTime.");
  if (body["Period"] === undefined) throw missing("Period");
  const period = num(body["Period"], "Period");
  checkPeriod(period, "Period");
  const stats = strings(body, "Statistics") ?? [];
  const extended = strings(body, "ExtendedStatistics") ?? [];
  if (stats.length === 0 && extended.length === 0) throw missing("Statistics");
  if (stats.length > GMS_MAX_STATISTICS) {
    throw invalid(`The collection Statistics must not have more than ${GMS_MAX_STATISTICS} items.`);
  }
  if (extended.length > GMS_MAX_EXTENDED) {
    throw invalid(`The collection ExtendedStatistics must not have more than ${GMS_MAX_EXTENDED} items.`);
  }
  for (const s of stats) {
    if (!BASIC_STATS.has(s)) {
      throw invalid(`The value ${s} for parameter Statistics is not a valid statistic.`);
    }
  }
  for (const s of extended) {
    if (!PERCENTILE.test(s)) {
      throw invalid(`The value ${s} for parameter ExtendedStatistics is not a valid statistic.`);
    }
  }
  const unit = parseUnit(body);
  const points = Math.ceil((end - start) / (period * 1000));
  if (points > GMS_MAX_DATAPOINTS) {
    throw combination(
      `You have requested up to ${points} datapoints, which exceeds the limit of ${GMS_MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range.`,
    );
  }
  const stream = store.find(account, region, namespace, name, dims);
  const datapoints: Record<string, unknown>[] = [];
  if (!stream) return { Label: name, Datapoints: datapoints };
  const span = {
    start: roundStart(start, period),
    end,
    periodMs: period * 1000,
    unit,
    now: store.now(),
    withRaw: extended.length > 0,
  };
  forEachPeriod(stream, span, (t, agg) => {
    const dp: Record<string, unknown> = { Timestamp: t / 1000, Unit: unit ?? stream.unitAt(0) };
    for (const s of stats) dp[s] = agg.stat(s);
    if (extended.length > 0) {
      const ext: Record<string, number> = {};
      for (const s of extended) {
        const v = agg.stat(s);
        if (v !== undefined) ext[s] = v;
      }
      dp["ExtendedStatistics"] = ext;
    }
    datapoints.push(dp);
  });
  return { Label: name, Datapoints: datapoints };
}

// -- ListMetrics --
function listMetrics(
  emu: Pick<Instance, "store" | "faults" | "random" | "links">,
  account: string,
  region: string,
  body: Record<string, unknown>,
) {
  const { store } = emu;
  const namespace = str(body, "Namespace");
  if (namespace !== undefined) checkNamespace(namespace);
  const name = str(body, "MetricName");
  const filterList = list(body, "Dimensions");
  if ((filterList?.length ?? 0) > LIST_MAX_DIMENSION_FILTERS) {
    throw invalid(`The collection Dimensions must not have more than ${LIST_MAX_DIMENSION_FILTERS} items.`);
  }
  // A filter may give a name alone (API reference, DimensionFilter); what it gives follows Dimension's rules.
  const filters = (filterList ?? []).map((f, i) => checkDimension(f, "Dimensions", i + 1, false));
  const recently = str(body, "RecentlyActive");
  if (recently !== undefined && recently !== "PT3H") {
    throw invalid(
      `The value ${recently} for parameter RecentlyActive is invalid: the only valid value is PT3H.`,
    );
  }
  const t = store.now();
  const since = recently ? t - RECENTLY_ACTIVE_MS : t - MAX_AGE_MS;
  const linked = bool(body, "IncludeLinkedAccounts") ?? false;
  const accounts = listedAccounts(emu, account, linked, str(body, "OwningAccount"));
  if (accounts.length === 0) {
    if (str(body, "NextToken") !== undefined) throw invalidToken();
    return { Metrics: [], ...owningAccounts([], emu.faults.owningAccounts) };
  }
  // NextToken is the position among the accounts' streams where the next page starts, and the positions of
  // the streams the last page left to name again on this one (--list-repeat-rate).
  const created = (a: string) => store.created(a, region);
  const { from, repeats } = listToken(body, account, accounts, created, LIST_PAGE_SIZE);
  const query = { namespace, name, filters, since, now: t };
  const carried = listedAgain(store, region, query, repeats);
  if (carried === undefined) throw invalidToken();
  const rate = emu.faults.listRepeatRate;
  const listed = listAcross(store, accounts, region, query, from, LIST_PAGE_SIZE - carried.length);
  const last = accounts[accounts.length - 1]!;
  const { page, next, carry } = rate > 0 || carried.length > 0
    ? withRepeats(listed, carried, rate, emu.random, { account: last, seq: created(last) })
    : { ...listed, carry: [] };
  const token = next === undefined ? undefined : writeListToken(next, carry, account);
  return {
    Metrics: page.map((s) => ({ Namespace: s.namespace, MetricName: s.name, Dimensions: s.dimensions() })),
    ...(token === undefined ? {} : { NextToken: token }),
    ...(linked ? owningAccounts(page, emu.faults.owningAccounts) : {}),
  };
}

/**
 * The accounts a listing runs through, in order: the caller's own; with IncludeLinkedAccounts its sources'
 * after it (API reference, ListMetrics), or only OwningAccount's.
 */
function listedAccounts(
  emu: Pick<Instance, "links">,
  account: string,
  linked: boolean,
  owning: string | undefined,
): string[] {
  if (owning === undefined) return linked ? readable(emu.links, account) : [account];
  if (owning.length < 1 || owning.length > ACCOUNT_ID_MAX) {
    throw invalid(`The parameter OwningAccount must be 1 to ${ACCOUNT_ID_MAX} characters long.`);
  }
  // "specify that source account ID in this field, and also specify true for IncludeLinkedAccounts" (API
  // reference, ListMetrics.OwningAccount): without it the call asks for what the reference rules out.
  if (!linked) {
    throw combination("The parameter OwningAccount requires IncludeLinkedAccounts to be true.");
  }
  // AWS does not document an OwningAccount the caller does not read: it lists nothing, as a filter that
  // matches nothing would, rather than tell the caller which accounts exist.
  return reads(emu.links, account, owning) ? [owning] : [];
}

/**
 * OwningAccounts, "a 1:1 mapping between each metric that is returned and the ID of the owning account" (API
 * reference, ListMetrics), the monitoring account's own metrics under its own id; or, as the fault set says,
 * left out or one short.
 */
function owningAccounts(page: Stream[], fault: OwningAccountsFault) {
  if (fault === "missing") return {};
  const owners = page.map((s) => s.account);
  return { OwningAccounts: fault === "short" ? owners.slice(0, -1) : owners };
}

/**
 * A page that names some of its metrics again, each with chance `rate`, later on the same page or on the next:
 * nothing in the API reference (ListMetrics) promises that a listing names a metric once, and LocalStack names
 * one per datum written (localstack/localstack#3222). `carried` are the streams the last page left for this
 * one; they come first. Every stream is still named at least once, and a page holds at most LIST_PAGE_SIZE
 * entries: a stream the page has no room for starts the next page, and a repeat it has no room for goes there
 * (from `end`, the end of the listing, after the last page).
 */
function withRepeats(
  listed: { page: Stream[]; next: Position | undefined },
  carried: Stream[],
  rate: number,
  random: () => number,
  end: Position,
): { page: Stream[]; next: Position | undefined; carry: Position[] } {
  const page = [...carried];
  /** Entries to name again: on this page (`later`), or on the next (`carry`); by their index in `page`. */
  const later: number[] = [];
  const carry: number[] = [];
  let taken = 0;
  for (const s of listed.page) {
    if (page.length + later.length + 1 > LIST_PAGE_SIZE) break;
    page.push(s);
    taken++;
    // No draw when the fault is off, so that an injected `random` sees the same sequence as before it.
    if (!(rate > 0) || random() >= rate) continue;
    const samePage = random() < 0.5 && page.length + later.length + 1 <= LIST_PAGE_SIZE;
    (samePage ? later : carry).push(page.length - 1);
  }
  const stopped = listed.page[taken];
  let next = stopped ? { account: stopped.account, seq: stopped.seq } : listed.next;
  // The last page keeps its repeats where it has room: a page of repeats alone would be one more call.
  if (next === undefined) {
    while (carry.length > 0 && page.length + later.length < LIST_PAGE_SIZE) later.push(carry.shift()!);
    if (carry.length > 0) next = end;
  }
  const toNext = carry.map((i) => ({ account: page[i]!.account, seq: page[i]!.seq }));
  // Each repeat goes at a place after the entry it repeats, placed from the end so that indices hold.
  const places = later.map((i) => ({ s: page[i]!, at: i + 1 + Math.floor(random() * (page.length - i)) }));
  places.sort((a, b) => b.at - a.at);
  for (const { s, at } of places) page.splice(at, 0, s);
  return { page, next, carry: toNext };
}
