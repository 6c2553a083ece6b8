/**
 * A local stand-in for Amazon CloudWatch and AWS STS that the unmodified AWS SDK for JavaScript v3 talks to
 * when AWS_ENDPOINT_URL points at it. It enforces the limits and validation rules of the AWS API reference,
 * and shares no code with the forwarder on purpose: it is the independent check on it.
 *
 *   bun run lib/emulator.ts --port 4566 [--seed demo] [--latency-ms N] [--throttle-rate R] [--error-rate R]
 *                           [--put-error-rate R] [--put-reply-delay-ms N] [--deny-role ARN]
 *                           [--require-external-id ROLE_ARN=ID]
 *
 * Faults can be changed while running with POST /_emulator/faults; GET /_emulator/counts returns call counts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import process from "node:process";

// ---- Limits, each from the AWS API reference (Amazon CloudWatch API Reference, AWS STS API Reference) ----

/** PutMetricData: at most 1,000 metrics per request (API reference, PutMetricData). */
const PUT_MAX_DATUMS = 1000;
/** PutMetricData: a request body of at most 1 MB, read here as 1,000,000 bytes (API reference, PutMetricData). */
const PUT_MAX_BYTES = 1_000_000;
/** MetricDatum.Dimensions: at most 30 per metric (API reference, MetricDatum). */
const MAX_DIMENSIONS = 30;
/** Dimension: Name 1-255 characters, Value 1-1024 characters (API reference, Dimension). */
const DIMENSION_NAME_MAX = 255;
const DIMENSION_VALUE_MAX = 1024;
/** MetricDatum.Values: at most 150 values per datum (API reference, MetricDatum). */
const MAX_VALUES = 150;
/** MetricDatum.Value: within -2^360 to 2^360, no NaN or infinity (API reference, MetricDatum). */
const MAX_MAGNITUDE = 2 ** 360;
/** MetricDatum.Timestamp: at most two weeks old and two hours ahead (API reference, MetricDatum). */
const MAX_AGE_MS = 14 * 86_400_000;
const MAX_AHEAD_MS = 2 * 3_600_000;
/**
 * PutMetricData: data 3 to 24 hours old can take up to 2 hours to become readable, data 24 hours old or more
 * up to 48 hours (API reference, PutMetricData).
 */
const LAG_AFTER_3H_FROM = 3 * 3_600_000;
const LAG_AFTER_3H = 2 * 3_600_000;
const LAG_AFTER_24H_FROM = 24 * 3_600_000;
const LAG_AFTER_24H = 48 * 3_600_000;
/** Namespace and MetricName: 1-255 characters (API reference, PutMetricData, MetricDatum). */
const NAME_MAX = 255;
/** GetMetricData.MetricDataQueries: at most 500 queries per call (API reference, GetMetricData). */
const GMD_MAX_QUERIES = 500;
/** GetMetricData.MaxDatapoints: 100,800 when not given (API reference, GetMetricData). */
const GMD_DEFAULT_MAX_DATAPOINTS = 100_800;
/** GetMetricStatistics: at most 1,440 datapoints per call (API reference, GetMetricStatistics). */
const GMS_MAX_DATAPOINTS = 1440;
/** GetMetricStatistics: Statistics 1-5 items, ExtendedStatistics 1-10 (API reference, GetMetricStatistics). */
const GMS_MAX_STATISTICS = 5;
const GMS_MAX_EXTENDED = 10;
/** ListMetrics: pages of at most 500 metrics, then NextToken (API reference, ListMetrics). */
const LIST_PAGE_SIZE = 500;
/** ListMetrics.Dimensions: at most 10 filters (API reference, ListMetrics). */
const LIST_MAX_DIMENSION_FILTERS = 10;
/** ListMetrics.RecentlyActive: PT3H is its one valid value (API reference, ListMetrics). */
const RECENTLY_ACTIVE_MS = 3 * 3_600_000;
/** AssumeRole.DurationSeconds: 900 to 43,200, default 3,600 (STS API reference, AssumeRole). */
const ROLE_MIN_SECONDS = 900;
const ROLE_MAX_SECONDS = 43_200;
const ROLE_DEFAULT_SECONDS = 3600;
/** MetricDatum.Unit: the StandardUnit enumeration (API reference, MetricDatum). */
// deno-fmt-ignore
const UNITS = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);
const BASIC_STATS = new Set(["SampleCount", "Average", "Sum", "Minimum", "Maximum"]);
/** MetricDataQuery.Id: a lowercase letter first, then letters, digits and underscores (API reference). */
const QUERY_ID = /^[a-z][a-zA-Z0-9_]{0,254}$/;
const PERCENTILE = /^p(\d{1,2}(\.\d{1,2})?|100)$/;

// ---- Errors ----

class AwsError extends Error {
  constructor(readonly code: string, message: string, readonly status = 400, readonly shape?: string) {
    super(message);
  }
}
const invalid = (message: string) =>
  new AwsError("InvalidParameterValue", message, 400, "InvalidParameterValueException");
const combination = (message: string) =>
  new AwsError("InvalidParameterCombination", message, 400, "InvalidParameterCombinationException");
const missing = (name: string) =>
  new AwsError(
    "MissingParameter",
    `The parameter ${name} is required.`,
    400,
    "MissingRequiredParameterException",
  );

// ---- Data ----

interface Dimension {
  Name: string;
  Value: string;
}

/** One accepted datum: its aggregate, and the raw values (with counts) when percentiles can be computed. */
interface Sample {
  t: number;
  unit: string;
  n: number;
  sum: number;
  min: number;
  max: number;
  values: number[] | undefined;
  counts: number[] | undefined;
  /** When reads may see it (ms); absent for data that is readable at once. */
  visibleAt?: number;
}

interface Stream {
  namespace: string;
  name: string;
  dims: Dimension[];
  samples: Sample[];
  highRes: boolean;
  lastReceived: number;
}

interface Counts {
  calls: Record<string, number>;
  billed: Record<string, number>;
}

export interface Faults {
  latencyMs: number;
  throttleRate: number;
  errorRate: number;
  /** Share of PutMetricData calls answered HTTP 500, on top of errorRate: a destination that refuses writes. */
  putErrorRate: number;
  /** Milliseconds a PutMetricData answer is held after the data was stored. */
  putReplyDelayMs: number;
  denyRoles: Set<string>;
}

export interface EmulatorOptions {
  port?: number;
  seed?: "demo";
  latencyMs?: number;
  throttleRate?: number;
  errorRate?: number;
  putErrorRate?: number;
  putReplyDelayMs?: number;
  denyRoles?: string[];
  requireExternalId?: Record<string, string>;
  /** Milliseconds since the epoch; the emulator's clock for validation and expiry. */
  now?: () => number;
  random?: () => number;
}

export interface RawPut {
  account: string;
  region: string;
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  /** Milliseconds since the epoch. */
  timestamp: number;
  values: number[];
  unit?: string;
}

export interface Emulator {
  url: string;
  port: number;
  faults: Faults;
  /** Writes raw values without the API's checks, the way an AWS service publishes into its own namespace. */
  seed(put: RawPut): void;
  counts(): Record<string, Record<string, Counts>>;
  streamCount(): number;
  stop(): Promise<void>;
}

const streamKey = (namespace: string, name: string, dims: Dimension[]) =>
  JSON.stringify([namespace, name, dims.map((d) => [d.Name, d.Value])]);

const sortDims = (dims: Dimension[]) =>
  [...dims].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));

/** Index of the first sample at or after t (samples are kept in time order). */
function lowerBound(samples: Sample[], t: number): number {
  let lo = 0;
  let hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (samples[mid]!.t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSample(stream: Stream, sample: Sample) {
  const s = stream.samples;
  if (s.length === 0 || s[s.length - 1]!.t <= sample.t) s.push(sample);
  else s.splice(lowerBound(s, sample.t + 1), 0, sample);
}

/** Exact aggregate of a set of samples: every basic statistic, and percentiles over raw values. */
class Aggregate {
  n = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  raw: [number, number][] | undefined = [];

  add(s: Sample) {
    this.n += s.n;
    this.sum += s.sum;
    if (s.min < this.min) this.min = s.min;
    if (s.max > this.max) this.max = s.max;
    if (s.values === undefined || this.raw === undefined) this.raw = undefined;
    else for (let i = 0; i < s.values.length; i++) this.raw.push([s.values[i]!, s.counts?.[i] ?? 1]);
  }

  stat(name: string): number | undefined {
    switch (name) {
      case "SampleCount":
        return this.n;
      case "Sum":
        return this.sum;
      case "Average":
        return this.sum / this.n;
      case "Minimum":
        return this.min;
      case "Maximum":
        return this.max;
    }
    // Percentiles need the distribution; a statistic set with Minimum != Maximum does not carry it.
    if (this.raw === undefined) return undefined;
    const p = Number(name.slice(1));
    const sorted = [...this.raw].sort((a, b) => a[0] - b[0]);
    const total = sorted.reduce((acc, [, c]) => acc + c, 0);
    if (total === 0) return undefined;
    // Nearest-rank: the smallest value with at least p% of the samples at or below it.
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [v, c] of sorted) {
      seen += c;
      if (seen >= rank) return v;
    }
    return sorted[sorted.length - 1]![0];
  }
}

// ---- Request parsing helpers ----

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function str(obj: Record<string, unknown>, key: string, required: true): string;
function str(obj: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(obj: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw missing(key);
    return undefined;
  }
  if (typeof v !== "string") throw new AwsError("SerializationException", `${key} must be a string`);
  return v;
}

/** Smithy's JSON protocols send non-finite doubles as the strings "NaN", "Infinity" and "-Infinity". */
function num(v: unknown, what: string): number {
  if (v === "NaN" || v === "Infinity" || v === "-Infinity") {
    throw invalid(`The value ${v} for parameter ${what} is invalid: NaN and Infinity are not supported.`);
  }
  if (typeof v !== "number") throw new AwsError("SerializationException", `${what} must be a number`);
  return v;
}

function list(obj: Record<string, unknown>, key: string): unknown[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new AwsError("SerializationException", `${key} must be a list`);
  return v;
}

/** Timestamps arrive as epoch seconds (the SDK's default for AWS JSON 1.0). Returns milliseconds. */
function time(obj: Record<string, unknown>, key: string, required: boolean): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw missing(key);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new AwsError("SerializationException", `${key} must be a timestamp`);
  }
  return Math.round(v * 1000);
}

function parseDimensions(raw: unknown[] | undefined, where: string): Dimension[] {
  const dims: Dimension[] = [];
  for (const [i, d] of (raw ?? []).entries()) {
    if (!isObject(d)) throw new AwsError("SerializationException", `${where}.${i + 1} must be a structure`);
    const name = str(d, "Name", true);
    const value = str(d, "Value", true);
    if (name.length < 1 || name.length > DIMENSION_NAME_MAX) {
      throw invalid(
        `The value for parameter ${where}.member.${i + 1}.Name must be 1 to 255 characters long.`,
      );
    }
    if ((value.length < 1 || value.length > DIMENSION_VALUE_MAX)) {
      throw invalid(
        `The value for parameter ${where}.member.${i + 1}.Value must be 1 to 1024 characters long.`,
      );
    }
    if (dims.some((x) => x.Name === name)) {
      throw invalid(`The dimension name ${name} in ${where} is specified more than once.`);
    }
    dims.push({ Name: name, Value: value });
  }
  return dims;
}

function checkNamespace(ns: string, where = "Namespace") {
  if (ns.length < 1 || ns.length > NAME_MAX || ns.includes(":")) {
    throw invalid(`The value ${ns} for parameter ${where} is invalid.`);
  }
}

function parseUnit(obj: Record<string, unknown>): string | undefined {
  const unit = str(obj, "Unit");
  if (unit !== undefined && !UNITS.has(unit)) {
    throw invalid(`The value ${unit} for parameter Unit is not one of the standard units.`);
  }
  return unit;
}

function checkPeriod(period: number, where: string) {
  // MetricStat.Period: 1, 5, 10, 30 (high resolution) or any multiple of 60.
  if (!Number.isInteger(period) || period < 1 || !(period % 60 === 0 || [1, 5, 10, 30].includes(period))) {
    throw invalid(`The parameter ${where} must be 1, 5, 10, 30 or a multiple of 60.`);
  }
}

function checkStat(stat: string, where: string) {
  if (!BASIC_STATS.has(stat) && !PERCENTILE.test(stat)) {
    throw invalid(`The value ${stat} for parameter ${where} is not a valid statistic.`);
  }
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

// ---- The service ----

export function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const faults: Faults = {
    latencyMs: options.latencyMs ?? 0,
    throttleRate: options.throttleRate ?? 0,
    errorRate: options.errorRate ?? 0,
    putErrorRate: options.putErrorRate ?? 0,
    putReplyDelayMs: options.putReplyDelayMs ?? 0,
    denyRoles: new Set(options.denyRoles ?? []),
  };
  const requireExternalId = new Map(Object.entries(options.requireExternalId ?? {}));
  /** account|region -> stream key -> stream */
  const data = new Map<string, Map<string, Stream>>();
  /** Temporary credentials issued by AssumeRole. */
  const sessions = new Map<string, { account: string; token: string; expires: number }>();
  const counts: Record<string, Record<string, Counts>> = {};

  function streamsOf(account: string, region: string): Map<string, Stream> {
    const k = `${account}|${region}`;
    let m = data.get(k);
    if (!m) data.set(k, m = new Map());
    return m;
  }

  /** Every request that names an operation is a call; only answered ones are billed, as AWS bills them. */
  function count(account: string, region: string, op: string, billed: number | undefined) {
    const byRegion = counts[account] ??= {};
    const c = byRegion[region] ??= { calls: {}, billed: {} };
    if (billed === undefined) c.calls[op] = (c.calls[op] ?? 0) + 1;
    else c.billed[op] = (c.billed[op] ?? 0) + billed;
  }

  function store(
    account: string,
    region: string,
    namespace: string,
    name: string,
    dims: Dimension[],
    s: Sample,
    highRes: boolean,
  ) {
    const sorted = sortDims(dims);
    const streams = streamsOf(account, region);
    const key = streamKey(namespace, name, sorted);
    let stream = streams.get(key);
    if (!stream) {
      stream = { namespace, name, dims: sorted, samples: [], highRes: false, lastReceived: 0 };
      streams.set(key, stream);
    }
    stream.highRes ||= highRes;
    stream.lastReceived = Math.max(stream.lastReceived, now());
    insertSample(stream, s);
  }

  // -- PutMetricData --
  function putMetricData(account: string, region: string, body: Record<string, unknown>) {
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
    const t0 = now();
    // Validate everything first: a request is accepted or refused as a whole.
    const parsed = datums.map((raw, i) => {
      const where = `MetricData.member.${i + 1}`;
      if (!isObject(raw)) throw new AwsError("SerializationException", `${where} must be a structure`);
      const name = str(raw, "MetricName", true);
      if (name.length < 1 || name.length > NAME_MAX) {
        throw invalid(`The parameter ${where}.MetricName must be 1 to 255 characters long.`);
      }
      const dimList = list(raw, "Dimensions");
      if ((dimList?.length ?? 0) > MAX_DIMENSIONS) {
        throw invalid(`The collection ${where}.Dimensions must not have more than ${MAX_DIMENSIONS} items.`);
      }
      const dims = parseDimensions(dimList, `${where}.Dimensions`);
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
      const finite = (v: unknown, what: string) => {
        const x = num(v, what);
        if (Math.abs(x) > MAX_MAGNITUDE) {
          throw invalid(`The value ${x} for parameter ${what} is out of range.`);
        }
        return x;
      };
      const dist = values === undefined ? undefined : distribution(values, countsList, where, finite);
      let sample: Sample;
      if (hasStats) {
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
        sample = { t: ts, unit, n, sum, min, max, values, counts };
      } else if (hasValue) {
        const v = finite(raw["Value"], `${where}.Value`);
        sample = { t: ts, unit, n: 1, sum: v, min: v, max: v, values: [v], counts: undefined };
      } else {
        if (!(dist!.n > 0)) throw invalid(`The parameter ${where}.Counts must add up to more than 0.`);
        sample = { t: ts, unit, ...dist! };
      }
      return { name, dims, sample, highRes: resolution === 1 };
    });
    for (const p of parsed) {
      // Older data takes longer to become readable; the emulator always takes the longest AWS allows.
      const age = t0 - p.sample.t;
      if (age >= LAG_AFTER_24H_FROM) p.sample.visibleAt = t0 + LAG_AFTER_24H;
      else if (age >= LAG_AFTER_3H_FROM) p.sample.visibleAt = t0 + LAG_AFTER_3H;
      store(account, region, namespace, p.name, p.dims, p.sample, p.highRes);
    }
    return {};
  }

  function matches(stream: Stream, namespace: string, name: string, dims: Dimension[]) {
    if (stream.namespace !== namespace || stream.name !== name || stream.dims.length !== dims.length) {
      return false;
    }
    return stream.dims.every((d, i) => d.Name === dims[i]!.Name && d.Value === dims[i]!.Value);
  }

  function findStream(account: string, region: string, namespace: string, name: string, dims: Dimension[]) {
    const sorted = sortDims(dims);
    const s = streamsOf(account, region).get(streamKey(namespace, name, sorted));
    return s && matches(s, namespace, name, sorted) ? s : undefined;
  }

  /** Aggregates a stream into periods over [start, end), bucketed from start. */
  function aggregate(
    stream: Stream | undefined,
    start: number,
    end: number,
    periodMs: number,
    unit?: string,
  ) {
    const buckets = new Map<number, Aggregate>();
    if (!stream) return buckets;
    const s = stream.samples;
    for (let i = lowerBound(s, start); i < s.length && s[i]!.t < end; i++) {
      const sample = s[i]!;
      if (unit !== undefined && sample.unit !== unit) continue;
      if (sample.visibleAt !== undefined && sample.visibleAt > now()) continue;
      const b = start + Math.floor((sample.t - start) / periodMs) * periodMs;
      let agg = buckets.get(b);
      if (!agg) buckets.set(b, agg = new Aggregate());
      agg.add(sample);
    }
    return buckets;
  }

  /** GetMetricData rounds StartTime down to the minute for data under 15 days old (periods of 60 s and more). */
  function roundStart(start: number, period: number) {
    return period >= 60 ? Math.floor(start / 60_000) * 60_000 : Math.floor(start / 1000) * 1000;
  }

  // -- GetMetricData --
  function getMetricData(account: string, region: string, body: Record<string, unknown>) {
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
    const parsed = queries.map((q, i) => {
      const where = `MetricDataQueries.member.${i + 1}`;
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
      const dimList = list(metric, "Dimensions");
      if ((dimList?.length ?? 0) > MAX_DIMENSIONS) {
        throw invalid(
          `The collection ${where}.MetricStat.Metric.Dimensions must not have more than ${MAX_DIMENSIONS} items.`,
        );
      }
      const dims = parseDimensions(dimList, `${where}.MetricStat.Metric.Dimensions`);
      if (ms["Period"] === undefined) throw missing(`${where}.MetricStat.Period`);
      const period = num(ms["Period"], `${where}.MetricStat.Period`);
      checkPeriod(period, `${where}.MetricStat.Period`);
      const stat = str(ms, "Stat", true);
      checkStat(stat, `${where}.MetricStat.Stat`);
      const unit = parseUnit(ms);
      const returnData = q["ReturnData"] !== false;
      return {
        id,
        label: str(q, "Label") ?? name,
        stream: findStream(account, region, namespace, name, dims),
        period,
        stat,
        unit,
        returnData,
      };
    });
    const results = parsed.filter((q) => q.returnData).map((q) => {
      // Periods under 60 s are only answered for data stored at high resolution.
      if (q.period < 60 && q.stream && !q.stream.highRes) {
        return { Id: q.id, Label: q.label, points: [] as [number, number][] };
      }
      const from = roundStart(start, q.period);
      const buckets = aggregate(q.stream, from, end, q.period * 1000, q.unit);
      const points: [number, number][] = [];
      for (const [t, agg] of buckets) {
        const v = agg.stat(q.stat);
        if (v !== undefined) points.push([t, v]);
      }
      points.sort((a, b) => scanBy === "TimestampAscending" ? a[0] - b[0] : b[0] - a[0]);
      return { Id: q.id, Label: q.label, points };
    });
    // NextToken is the number of datapoints already returned, counted over the results in order.
    const token = str(body, "NextToken");
    let skip = 0;
    if (token !== undefined) {
      const m = /^emu-(\d+)$/.exec(token);
      if (!m) {
        throw new AwsError(
          "InvalidNextToken",
          "The service returned an invalid NextToken.",
          400,
          "InvalidNextToken",
        );
      }
      skip = Number(m[1]);
    }
    const pageEnd = skip + maxPoints;
    let offset = 0;
    const out = results.map((r) => {
      const from = Math.min(Math.max(skip - offset, 0), r.points.length);
      const to = Math.min(Math.max(pageEnd - offset, 0), r.points.length);
      offset += r.points.length;
      const take = r.points.slice(from, to);
      const status = to < r.points.length ? "PartialData" : "Complete";
      return {
        Id: r.Id,
        Label: r.Label,
        Timestamps: take.map((p) => p[0] / 1000),
        Values: take.map((p) => p[1]),
        StatusCode: status,
      };
    });
    const more = pageEnd < offset;
    return { MetricDataResults: out, Messages: [], ...(more ? { NextToken: `emu-${pageEnd}` } : {}) };
  }

  // -- GetMetricStatistics --
  function getMetricStatistics(account: string, region: string, body: Record<string, unknown>) {
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
    const stats = (list(body, "Statistics") ?? []) as string[];
    const extended = (list(body, "ExtendedStatistics") ?? []) as string[];
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
    const stream = findStream(account, region, namespace, name, dims);
    const buckets = aggregate(stream, roundStart(start, period), end, period * 1000, unit);
    const datapoints = [...buckets].sort((a, b) => a[0] - b[0]).map(([t, agg]) => {
      const dp: Record<string, unknown> = {
        Timestamp: t / 1000,
        Unit: unit ?? stream?.samples[0]?.unit ?? "None",
      };
      for (const s of stats) dp[s] = agg.stat(s);
      if (extended.length > 0) {
        const ext: Record<string, number> = {};
        for (const s of extended) {
          const v = agg.stat(s);
          if (v !== undefined) ext[s] = v;
        }
        dp["ExtendedStatistics"] = ext;
      }
      return dp;
    });
    return { Label: name, Datapoints: datapoints };
  }

  // -- ListMetrics --
  function listMetrics(account: string, region: string, body: Record<string, unknown>) {
    const namespace = str(body, "Namespace");
    if (namespace !== undefined) checkNamespace(namespace);
    const name = str(body, "MetricName");
    const filterList = list(body, "Dimensions");
    if ((filterList?.length ?? 0) > LIST_MAX_DIMENSION_FILTERS) {
      throw invalid(`The collection Dimensions must not have more than ${LIST_MAX_DIMENSION_FILTERS} items.`);
    }
    const filters = (filterList ?? []).map((f, i) => {
      if (!isObject(f)) {
        throw new AwsError("SerializationException", `Dimensions.${i + 1} must be a structure`);
      }
      const n = str(f, "Name", true);
      const v = str(f, "Value");
      if (n.length < 1 || n.length > DIMENSION_NAME_MAX) {
        throw invalid(
          `The value for parameter Dimensions.member.${i + 1}.Name must be 1 to 255 characters long.`,
        );
      }
      if (v !== undefined && (v.length < 1 || v.length > DIMENSION_VALUE_MAX)) {
        throw invalid(
          `The value for parameter Dimensions.member.${i + 1}.Value must be 1 to 1024 characters long.`,
        );
      }
      return { n, v };
    });
    const recently = str(body, "RecentlyActive");
    if (recently !== undefined && recently !== "PT3H") {
      throw invalid(
        `The value ${recently} for parameter RecentlyActive is invalid: the only valid value is PT3H.`,
      );
    }
    const t = now();
    const since = recently ? t - RECENTLY_ACTIVE_MS : t - MAX_AGE_MS;
    const all: Stream[] = [];
    for (const s of streamsOf(account, region).values()) {
      if (namespace !== undefined && s.namespace !== namespace) continue;
      if (name !== undefined && s.name !== name) continue;
      if (
        !filters.every((f) => s.dims.some((d) => d.Name === f.n && (f.v === undefined || d.Value === f.v)))
      ) continue;
      const newest = s.samples[s.samples.length - 1]?.t ?? 0;
      if (Math.max(newest, s.lastReceived) < since) continue;
      all.push(s);
    }
    const token = str(body, "NextToken");
    let skip = 0;
    if (token !== undefined) {
      const m = /^emu-(\d+)$/.exec(token);
      if (!m || Number(m[1]) > all.length) {
        throw new AwsError(
          "InvalidNextToken",
          "The service returned an invalid NextToken.",
          400,
          "InvalidNextToken",
        );
      }
      skip = Number(m[1]);
    }
    const page = all.slice(skip, skip + LIST_PAGE_SIZE);
    const next = skip + page.length < all.length ? { NextToken: `emu-${skip + page.length}` } : {};
    return {
      Metrics: page.map((s) => ({ Namespace: s.namespace, MetricName: s.name, Dimensions: s.dims })),
      ...next,
    };
  }

  // -- STS --
  function assumeRole(account: string, params: URLSearchParams) {
    const arn = params.get("RoleArn");
    if (!arn) throw new AwsError("MissingParameter", "The request must contain the parameter RoleArn.");
    const session = params.get("RoleSessionName");
    if (!session) {
      throw new AwsError("MissingParameter", "The request must contain the parameter RoleSessionName.");
    }
    // RoleSessionName: 2-64 characters of [\w+=,.@-].
    if (!/^[\w+=,.@-]{2,64}$/.test(session)) {
      throw new AwsError(
        "ValidationError",
        `1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint`,
      );
    }
    const m = /^arn:aws:iam::(\d{12}):role\/([\w+=,.@\/-]+)$/.exec(arn);
    if (!m) throw new AwsError("ValidationError", `${arn} is invalid`);
    const duration = params.has("DurationSeconds")
      ? Number(params.get("DurationSeconds"))
      : ROLE_DEFAULT_SECONDS;
    if (!Number.isInteger(duration) || duration < ROLE_MIN_SECONDS || duration > ROLE_MAX_SECONDS) {
      throw new AwsError(
        "ValidationError",
        `1 validation error detected: Value '${
          params.get("DurationSeconds")
        }' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${ROLE_MIN_SECONDS} and ${ROLE_MAX_SECONDS}`,
      );
    }
    const externalId = params.get("ExternalId");
    // AssumeRole.ExternalId: 2 to 1,224 characters of [\w+=,.@:\/-] (STS API reference, AssumeRole).
    if (externalId !== null && !/^[\w+=,.@:\/-]{2,1224}$/.test(externalId)) {
      throw new AwsError(
        "ValidationError",
        "1 validation error detected: Value at 'externalId' failed to satisfy constraint",
      );
    }
    const deniedMessage =
      `User: arn:aws:sts::${account}:assumed-role/caller is not authorized to perform: sts:AssumeRole on resource: ${arn}`;
    if (faults.denyRoles.has(arn)) throw new AwsError("AccessDenied", deniedMessage, 403);
    const wanted = requireExternalId.get(arn);
    if (wanted !== undefined && externalId !== wanted) {
      throw new AwsError("AccessDenied", deniedMessage, 403);
    }
    const target = m[1]!;
    const keyId = `ASIA${randomBytes(4).toString("hex").toUpperCase()}${target}`;
    const token = randomBytes(24).toString("base64");
    const expires = now() + duration * 1000;
    sessions.set(keyId, { account: target, token, expires });
    return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${keyId}</AccessKeyId><SecretAccessKey>${
      randomBytes(20).toString("base64")
    }</SecretAccessKey><SessionToken>${token}</SessionToken><Expiration>${
      new Date(expires).toISOString()
    }</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA${target}:${session}</AssumedRoleId><Arn>arn:aws:sts::${target}:assumed-role/${
      m[2]
    }/${session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
  }

  /** Works out who signed the request, from the SigV4 Authorization header's credential scope. */
  function caller(req: IncomingMessage) {
    const auth = req.headers["authorization"];
    if (typeof auth !== "string" || !auth.startsWith("AWS4-HMAC-SHA256 ")) {
      throw new AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", 403);
    }
    const m = /Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
    if (!m) {
      throw new AwsError(
        "IncompleteSignature",
        "The request signature does not conform to AWS standards.",
        403,
      );
    }
    const [, keyId, , region, service] = m as unknown as [string, string, string, string, string];
    if (keyId.startsWith("ASIA")) {
      const s = sessions.get(keyId);
      if (!s || req.headers["x-amz-security-token"] !== s.token) {
        throw new AwsError(
          "InvalidClientTokenId",
          "The security token included in the request is invalid.",
          403,
        );
      }
      if (now() >= s.expires) {
        throw new AwsError("ExpiredToken", "The security token included in the request is expired", 403);
      }
      return { account: s.account, region, service };
    }
    return { account: /(\d{12})$/.exec(keyId)?.[1] ?? "000000000000", region, service };
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let raw = Buffer.concat(chunks);
    const url = req.url ?? "/";
    if (url.startsWith("/_emulator/")) return control(req.method ?? "GET", url, raw, res);
    // Latency is spent half before the call is processed and half after, as on a network: a client that
    // dies while waiting may find its call applied.
    await sleep(faults.latencyMs / 2);
    const reply = (status: number, headers: Record<string, string>, body: string) =>
      sleep(faults.latencyMs / 2).then(() => {
        res.writeHead(status, headers);
        res.end(body);
      });
    const target = String(req.headers["x-amz-target"] ?? "");
    const isCloudWatch = target.startsWith("GraniteServiceVersion20100801.");
    try {
      if (req.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
      const who = caller(req);
      if (isCloudWatch) {
        const op = target.slice(target.indexOf(".") + 1);
        if (op === "PutMetricData" && raw.length > PUT_MAX_BYTES) {
          throw new AwsError(
            "RequestEntityTooLarge",
            `Request size ${raw.length} exceeded ${PUT_MAX_BYTES} bytes`,
            413,
          );
        }
        let body: unknown;
        try {
          body = JSON.parse(raw.toString("utf8") || "{}");
        } catch {
          throw new AwsError("SerializationException", "The request body is not valid JSON");
        }
        if (!isObject(body)) {
          throw new AwsError("SerializationException", "The request body must be a JSON object");
        }
        count(who.account, who.region, op, undefined);
        const r = random();
        if (r < faults.throttleRate) throw new AwsError("Throttling", "Rate exceeded", 400);
        if (r < faults.throttleRate + faults.errorRate) {
          throw new AwsError(
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
            500,
          );
        }
        if (op === "PutMetricData" && random() < faults.putErrorRate) {
          throw new AwsError(
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
            500,
          );
        }
        const billed = op === "GetMetricData" ? (list(body, "MetricDataQueries")?.length ?? 0) : 1;
        let out: unknown;
        if (op === "PutMetricData") out = putMetricData(who.account, who.region, body);
        else if (op === "GetMetricData") out = getMetricData(who.account, who.region, body);
        else if (op === "GetMetricStatistics") out = getMetricStatistics(who.account, who.region, body);
        else if (op === "ListMetrics") out = listMetrics(who.account, who.region, body);
        else {throw new AwsError(
            "UnknownOperationException",
            `The operation ${op} is not supported by this emulator.`,
          );}
        count(who.account, who.region, op, billed);
        // A write applied whose answer comes late: the client that dies meanwhile never learns it succeeded.
        if (op === "PutMetricData") await sleep(faults.putReplyDelayMs);
        return reply(
          200,
          { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": requestId() },
          JSON.stringify(out),
        );
      }
      if (who.service !== "sts") {
        throw new AwsError("UnknownOperationException", "The request names no known service or operation.");
      }
      const params = new URLSearchParams(raw.toString("utf8"));
      const action = params.get("Action");
      let xml: string;
      if (action === "AssumeRole") xml = assumeRole(who.account, params);
      else if (action === "GetCallerIdentity") {
        xml =
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::${who.account}:user/emulator</Arn><UserId>AIDA${who.account}</UserId><Account>${who.account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
      } else throw new AwsError("InvalidAction", `Could not find operation ${action} for version 2011-06-15`);
      count(who.account, who.region, action ?? "", undefined);
      count(who.account, who.region, action ?? "", 1);
      return reply(200, { "content-type": "text/xml" }, xml);
    } catch (e) {
      const err = e instanceof AwsError ? e : new AwsError("InternalFailure", String(e), 500);
      const type = err.status >= 500 ? "Receiver" : "Sender";
      if (isCloudWatch) {
        const headers = {
          "content-type": "application/x-amz-json-1.0",
          "x-amzn-query-error": `${err.code};${type}`,
          "x-amzn-requestid": requestId(),
        };
        return reply(
          err.status,
          headers,
          JSON.stringify({
            __type: err.shape ? `com.amazonaws.cloudwatch#${err.shape}` : err.code,
            message: err.message,
          }),
        );
      }
      return reply(
        err.status,
        { "content-type": "text/xml" },
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${err.code}</Code><Message>${
          escapeXml(err.message)
        }</Message></Error><RequestId>${requestId()}</RequestId></ErrorResponse>`,
      );
    }
  }

  function control(method: string, url: string, body: Buffer, res: ServerResponse) {
    if (method === "GET" && url === "/_emulator/counts") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(counts));
    }
    if (method === "POST" && url === "/_emulator/faults") {
      const f = JSON.parse(body.toString("utf8") || "{}") as Record<string, unknown>;
      if (typeof f["latency_ms"] === "number") faults.latencyMs = f["latency_ms"];
      if (typeof f["throttle_rate"] === "number") faults.throttleRate = f["throttle_rate"];
      if (typeof f["error_rate"] === "number") faults.errorRate = f["error_rate"];
      if (typeof f["put_error_rate"] === "number") faults.putErrorRate = f["put_error_rate"];
      if (typeof f["put_reply_delay_ms"] === "number") faults.putReplyDelayMs = f["put_reply_delay_ms"];
      if (Array.isArray(f["deny_roles"])) faults.denyRoles = new Set(f["deny_roles"].map(String));
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ ...faults, denyRoles: [...faults.denyRoles] }));
    }
    res.writeHead(404, { "content-type": "application/json" });
    return res.end(JSON.stringify({ message: `No such emulator endpoint: ${method} ${url}` }));
  }

  function seed(put: RawPut) {
    const dims = Object.entries(put.dimensions).map(([Name, Value]) => ({ Name, Value }));
    let n = 0, sum = 0, min = Infinity, max = -Infinity;
    for (const v of put.values) {
      n++;
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const sample = {
      t: put.timestamp,
      unit: put.unit ?? "None",
      n,
      sum,
      min,
      max,
      values: put.values,
      counts: undefined,
    };
    store(put.account, put.region, put.namespace, put.name, dims, sample, false);
  }

  if (options.seed === "demo") seedDemo(seed, now());

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        faults,
        seed,
        counts: () => structuredClone(counts),
        streamCount: () => [...data.values()].reduce((a, m) => a + m.size, 0),
        stop: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

function requestId() {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

function escapeXml(s: string) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The demo fleet: three accounts with ECS services, the last three hours at several samples a minute. */
export const DEMO_ACCOUNTS = { production: "111111111111", acceptance: "222222222222", test: "333333333333" };

function seedDemo(seed: (p: RawPut) => void, nowMs: number) {
  const fleet: [string, string, string[]][] = [
    ["111111111111", "eu-west-1", ["prod-web", "prod-api"]],
    ["111111111111", "us-east-1", ["prod-web"]],
    ["222222222222", "eu-west-1", ["acc-web", "acc-api"]],
    ["333333333333", "eu-west-1", ["test-web"]],
  ];
  const services = ["frontend", "orders", "payments"];
  const end = Math.floor(nowMs / 60_000) * 60_000;
  let x = 7;
  // A small deterministic generator, so every demo shows the same numbers for the same clock.
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [account, region, clusters] of fleet) {
    for (const cluster of clusters) {
      for (const service of services) {
        for (const name of ["CPUUtilization", "MemoryUtilization"]) {
          for (let t = end - 3 * 3_600_000; t < end; t += 60_000) {
            // ECS reports several samples a minute; quarters keep sums exact in binary.
            const values = [0, 20_000, 40_000].map(() => Math.round((10 + next() * 70) * 4) / 4);
            for (const [i, v] of values.entries()) {
              const common = {
                account,
                region,
                namespace: "AWS/ECS",
                name,
                timestamp: t + i * 20_000,
                unit: "Percent",
              };
              seed({ ...common, dimensions: { ClusterName: cluster, ServiceName: service }, values: [v] });
              seed({ ...common, dimensions: { ClusterName: cluster }, values: [v] });
            }
          }
        }
      }
    }
  }
}

function parseArgs(argv: string[]): EmulatorOptions {
  const o: EmulatorOptions = { port: 4566 };
  const denied: string[] = [];
  const external: Record<string, string> = {};
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
    else if (flag === "--deny-role") denied.push(value());
    else if (flag === "--require-external-id") {
      const [arn, id] = value().split(/=(.*)/s);
      if (!arn || id === undefined) {
        throw new Error("Cannot parse arguments: --require-external-id takes ROLE_ARN=ID");
      }
      external[arn] = id;
    } else throw new Error(`Cannot parse arguments: unknown flag "${flag}"`);
  }
  return { ...o, denyRoles: denied, requireExternalId: external };
}

if (import.meta.main) {
  try {
    const emu = await startEmulator(parseArgs(process.argv.slice(2)));
    console.log(`emulator listening on ${emu.url}`);
    const shutdown = () => emu.stop().then(() => process.exit(0));
    process.on("SIGINT", shutdown);
    process.on("SIGTERM", shutdown);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 2;
  }
}
