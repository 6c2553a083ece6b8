/**
 * The metric store of one emulator: streams of samples per account and region, kept in time order, and their
 * exact aggregation into periods (every basic statistic, and nearest-rank percentiles over raw values).
 */

export interface Dimension {
  Name: string;
  Value: string;
}

/** One accepted datum: its aggregate, and the raw values (with counts) when percentiles can be computed. */
export interface Sample {
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

export interface Stream {
  namespace: string;
  name: string;
  dims: Dimension[];
  samples: Sample[];
  highRes: boolean;
  lastReceived: number;
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

function matches(stream: Stream, namespace: string, name: string, dims: Dimension[]) {
  if (stream.namespace !== namespace || stream.name !== name || stream.dims.length !== dims.length) {
    return false;
  }
  return stream.dims.every((d, i) => d.Name === dims[i]!.Name && d.Value === dims[i]!.Value);
}

/** The streams of one emulator, by account and region; `now` is its clock, for arrival and visibility. */
export class MetricStore {
  /** account|region -> stream key -> stream */
  readonly #data = new Map<string, Map<string, Stream>>();

  constructor(readonly now: () => number) {}

  streamsOf(account: string, region: string): Map<string, Stream> {
    const k = `${account}|${region}`;
    let m = this.#data.get(k);
    if (!m) this.#data.set(k, m = new Map());
    return m;
  }

  put(
    account: string,
    region: string,
    namespace: string,
    name: string,
    dims: Dimension[],
    s: Sample,
    highRes: boolean,
  ) {
    const sorted = sortDims(dims);
    const streams = this.streamsOf(account, region);
    const key = streamKey(namespace, name, sorted);
    let stream = streams.get(key);
    if (!stream) {
      stream = { namespace, name, dims: sorted, samples: [], highRes: false, lastReceived: 0 };
      streams.set(key, stream);
    }
    stream.highRes ||= highRes;
    stream.lastReceived = Math.max(stream.lastReceived, this.now());
    insertSample(stream, s);
  }

  find(account: string, region: string, namespace: string, name: string, dims: Dimension[]) {
    const sorted = sortDims(dims);
    const s = this.streamsOf(account, region).get(streamKey(namespace, name, sorted));
    return s && matches(s, namespace, name, sorted) ? s : undefined;
  }

  /** Aggregates a stream into periods over [start, end), bucketed from start. */
  aggregate(stream: Stream | undefined, start: number, end: number, periodMs: number, unit?: string) {
    const buckets = new Map<number, Aggregate>();
    if (!stream) return buckets;
    const s = stream.samples;
    for (let i = lowerBound(s, start); i < s.length && s[i]!.t < end; i++) {
      const sample = s[i]!;
      if (unit !== undefined && sample.unit !== unit) continue;
      if (sample.visibleAt !== undefined && sample.visibleAt > this.now()) continue;
      const b = start + Math.floor((sample.t - start) / periodMs) * periodMs;
      let agg = buckets.get(b);
      if (!agg) buckets.set(b, agg = new Aggregate());
      agg.add(sample);
    }
    return buckets;
  }

  /** Writes raw values without the API's checks, the way an AWS service publishes into its own namespace. */
  seed(put: RawPut) {
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
    this.put(put.account, put.region, put.namespace, put.name, dims, sample, false);
  }

  streamCount(): number {
    return [...this.#data.values()].reduce((a, m) => a + m.size, 0);
  }
}
