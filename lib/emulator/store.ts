/**
 * The metric store of one emulator: the streams of each account and Region, indexed by namespace and metric
 * name in the order they were created, each with its samples (samples.ts).
 *
 * ListMetrics resumes a listing at a position in that order rather than counting matches again from the
 * start, so a page costs about what it returns however many streams come before it; and since streams are
 * only ever added, at the end, a position stays valid while new streams appear. A listing of several accounts
 * (a monitoring account's, with its sources') runs through them one after the other.
 */
import { type Sample, Samples } from "./samples.ts";

export type { Sample };

export interface Dimension {
  Name: string;
  Value: string;
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

/** A stream's dimensions in one string, sorted by name: name, value, name... joined by SEP. */
type DimsKey = string;
/** Joins names and values in a DimsKey: the API refuses control characters in both. */
const SEP = "\u0000";
/** Starts a DimsKey written as JSON instead, for seeded dimensions with a character that would confuse SEP. */
const JSON_KEY = "\u0001";
// deno-lint-ignore no-control-regex
const CONFUSING = /[\u0000\u0001]/;

/** Dimensions sorted by name: as given when they are (callers usually sort them), else an insertion-sorted copy. */
function sortedByName(dims: Dimension[]): Dimension[] {
  let i = 1;
  while (i < dims.length && dims[i - 1]!.Name < dims[i]!.Name) i++;
  if (i >= dims.length) return dims;
  const sorted = dims.slice();
  for (; i < sorted.length; i++) {
    const d = sorted[i]!;
    let j = i - 1;
    for (; j >= 0 && sorted[j]!.Name > d.Name; j--) sorted[j + 1] = sorted[j]!;
    sorted[j + 1] = d;
  }
  return sorted;
}

/**
 * The key of a set of dimensions; `checked` when they come from the API, which refuses control characters.
 * Concatenated for a lookup; `stored`, joined instead into one flat string, which JavaScriptCore keeps in 16
 * bytes less than the rope a concatenation makes: millions of keys are kept.
 */
function dimsKey(dims: Dimension[], checked: boolean, stored = false): DimsKey {
  const sorted = sortedByName(dims);
  if (!checked && sorted.some((d) => CONFUSING.test(d.Name) || CONFUSING.test(d.Value))) {
    return JSON_KEY + JSON.stringify(sorted.map((d) => [d.Name, d.Value]));
  }
  if (stored) return sorted.flatMap((d) => [d.Name, d.Value]).join(SEP);
  let key = "";
  for (let i = 0; i < sorted.length; i++) {
    key += (i === 0 ? "" : SEP) + sorted[i]!.Name + SEP + sorted[i]!.Value;
  }
  return key;
}

/** The dimensions of a key, sorted by name. */
function dimsOf(key: DimsKey): Dimension[] {
  if (key === "") return [];
  if (key.startsWith(JSON_KEY)) {
    return (JSON.parse(key.slice(1)) as [string, string][]).map(([Name, Value]) => ({ Name, Value }));
  }
  const parts = key.split(SEP);
  const dims: Dimension[] = [];
  for (let i = 0; i < parts.length; i += 2) dims.push({ Name: parts[i]!, Value: parts[i + 1]! });
  return dims;
}

/** Whether a key has a dimension of this name (and value, if given), read in place without splitting it. */
function hasDimension(key: DimsKey, name: string, value: string | undefined): boolean {
  if (key.startsWith(JSON_KEY)) {
    return dimsOf(key).some((d) => d.Name === name && (value === undefined || d.Value === value));
  }
  for (let at = 0; key !== "";) {
    const nameEnd = key.indexOf(SEP, at);
    const valueEnd = key.indexOf(SEP, nameEnd + 1);
    const end = valueEnd < 0 ? key.length : valueEnd;
    if (nameEnd - at === name.length && key.startsWith(name, at)) {
      return value === undefined ||
        (end - nameEnd - 1 === value.length && key.startsWith(value, nameEnd + 1));
    }
    if (valueEnd < 0) return false;
    at = valueEnd + 1;
  }
  return false;
}

/** A metric name in a namespace of one account and Region, with its streams. */
class Metric {
  /** In the order they were created. */
  readonly streams: Stream[] = [];
  readonly byDims = new Map<DimsKey, Stream>();
  constructor(readonly account: string, readonly namespace: string, readonly name: string) {}
}

/** Where a listing stands: the position of a stream among its account and Region's streams. */
export interface Position {
  account: string;
  seq: number;
}

class Namespace {
  /** In the order they were created. */
  readonly streams: Stream[] = [];
  readonly metrics = new Map<string, Metric>();
}

/** The streams of one account and Region; a stream's seq is its index in `streams`. */
class Place {
  readonly streams: Stream[] = [];
  readonly namespaces = new Map<string, Namespace>();
  /**
   * Streams that hold only late samples, and when the first of those becomes readable: until then ListMetrics
   * does not name them (it lists metrics with data). Empty unless samples are seeded late.
   */
  readonly held = new Map<Stream, number>();

  constructor(readonly account: string) {}

  metric(namespace: string, name: string): Metric {
    let ns = this.namespaces.get(namespace);
    if (!ns) this.namespaces.set(namespace, ns = new Namespace());
    let metric = ns.metrics.get(name);
    if (!metric) ns.metrics.set(name, metric = new Metric(this.account, namespace, name));
    return metric;
  }

  /** Adds a stream of `metric`, at the end of each index. */
  create(metric: Metric, dims: DimsKey, unit: string): Stream {
    const stream = new Stream(metric, dims, this.streams.length, unit);
    metric.byDims.set(dims, stream);
    metric.streams.push(stream);
    this.namespaces.get(metric.namespace)!.streams.push(stream);
    this.streams.push(stream);
    return stream;
  }

  /**
   * The first `limit` streams the query selects at or after position `from`, and the position of the next
   * one it selects, if any.
   */
  list(q: ListQuery, from: number, limit: number): { page: Stream[]; next: number | undefined } {
    const candidates = this.#candidates(q);
    const page: Stream[] = [];
    const held = this.held.size > 0;
    for (let i = firstFrom(candidates, from); i < candidates.length; i++) {
      const s = candidates[i]!;
      if (q.name !== undefined && s.name !== q.name) continue;
      if (!q.filters.every((f) => hasDimension(s.dims, f.name, f.value))) continue;
      if (Math.max(s.newest() ?? 0, s.lastReceived) < q.since) continue;
      if (held && (this.held.get(s) ?? -Infinity) > q.now) continue;
      if (page.length === limit) return { page, next: s.seq };
      page.push(s);
    }
    return { page, next: undefined };
  }

  /**
   * The stream at this position, if the query names it (by namespace, name and dimensions; a stream named again
   * may have left RecentlyActive since).
   */
  again(q: ListQuery, seq: number): Stream | undefined {
    const s = this.streams[seq];
    if (
      s === undefined || (q.namespace !== undefined && s.namespace !== q.namespace) ||
      (q.name !== undefined && s.name !== q.name) ||
      !q.filters.every((f) => hasDimension(s.dims, f.name, f.value))
    ) return undefined;
    return s;
  }

  /** The shortest index that holds every stream the query can select, in the order of creation. */
  #candidates(q: ListQuery): Stream[] {
    if (q.namespace === undefined) return this.streams;
    const ns = this.namespaces.get(q.namespace);
    if (q.name === undefined) return ns?.streams ?? [];
    return ns?.metrics.get(q.name)?.streams ?? [];
  }
}

/** Index of the first stream of a list (in the order of creation) whose position is `from` or later. */
function firstFrom(streams: Stream[], from: number): number {
  let lo = 0;
  let hi = streams.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (streams[mid]!.seq < from) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A metric stream: its identity, its place in the order of creation, and its samples. */
export class Stream extends Samples {
  highRes = false;
  lastReceived = 0;

  constructor(readonly metric: Metric, readonly dims: DimsKey, readonly seq: number, unit: string) {
    super(unit);
  }

  get account(): string {
    return this.metric.account;
  }

  get namespace(): string {
    return this.metric.namespace;
  }

  get name(): string {
    return this.metric.name;
  }

  dimensions(): Dimension[] {
    return dimsOf(this.dims);
  }
}

/** What ListMetrics asks for: each field narrows the listing when given. */
export interface ListQuery {
  namespace: string | undefined;
  name: string | undefined;
  filters: { name: string; value: string | undefined }[];
  /** Only streams with data or a call at or after this time (ms). */
  since: number;
  /** The clock (ms): streams whose only samples are not readable yet are left out. */
  now: number;
}

/** The streams of one emulator, by account and region; `now` is its clock, for arrival and visibility. */
export class MetricStore {
  /** account -> region -> its streams */
  readonly #places = new Map<string, Map<string, Place>>();
  /** One string for each unit, so that millions of samples do not each keep a copy. */
  readonly #units = new Map<string, string>();

  constructor(readonly now: () => number) {}

  #place(account: string, region: string, create: true): Place;
  #place(account: string, region: string, create: false): Place | undefined;
  #place(account: string, region: string, create: boolean): Place | undefined {
    let regions = this.#places.get(account);
    if (!regions && create) this.#places.set(account, regions = new Map());
    let place = regions?.get(region);
    if (!place && create) regions!.set(region, place = new Place(account));
    return place;
  }

  /**
   * Stores a sample in its stream, which it creates if new; `checked` when the dimensions come from the API,
   * which refuses control characters in them; `late` when the sample was published late (see seed), so that
   * ListMetrics does not name a stream before it has a readable sample.
   */
  put(
    account: string,
    region: string,
    namespace: string,
    name: string,
    dims: Dimension[],
    s: Sample,
    highRes = false,
    checked = true,
    late = false,
  ) {
    let unit = this.#units.get(s.unit);
    if (unit === undefined) this.#units.set(s.unit, unit = s.unit);
    const place = this.#place(account, region, true);
    const metric = place.metric(namespace, name);
    const found = metric.byDims.get(dimsKey(dims, checked));
    const stream = found ?? place.create(metric, dimsKey(dims, checked, true), unit);
    stream.highRes ||= highRes;
    stream.lastReceived = Math.max(stream.lastReceived, this.now());
    stream.insert(s, unit);
    if (late && (found === undefined || place.held.has(stream))) {
      place.held.set(stream, Math.min(place.held.get(stream) ?? Infinity, s.visibleAt!));
    } else if (!late && place.held.size > 0) place.held.delete(stream);
  }

  /** The stream of these dimensions (from the API, so checked), if there is one. */
  find(
    account: string,
    region: string,
    namespace: string,
    name: string,
    dims: Dimension[],
  ): Stream | undefined {
    const metric = this.#place(account, region, false)?.namespaces.get(namespace)?.metrics.get(name);
    return metric?.byDims.get(dimsKey(dims, true));
  }

  /** How many streams an account and Region has: listing positions run from 0 to this. */
  created(account: string, region: string): number {
    return this.#place(account, region, false)?.streams.length ?? 0;
  }

  /** The streams of an account and Region, if it has any. */
  placeOf(account: string, region: string): Place | undefined {
    return this.#place(account, region, false);
  }

  /**
   * Writes raw values without the API's checks, the way an AWS service publishes into its own namespace;
   * readable only from `visibleAt` (ms) when given, as a sample that reaches CloudWatch late.
   */
  seed(put: RawPut, visibleAt?: number) {
    const dims = Object.entries(put.dimensions).map(([Name, Value]) => ({ Name, Value }));
    const sample = seedSample(put);
    if (visibleAt !== undefined) sample.visibleAt = visibleAt;
    const late = visibleAt !== undefined;
    this.put(put.account, put.region, put.namespace, put.name, dims, sample, false, false, late);
  }

  streamCount(): number {
    let count = 0;
    for (const regions of this.#places.values()) {
      for (const place of regions.values()) count += place.streams.length;
    }
    return count;
  }
}

/**
 * ListMetrics' page over the streams of `accounts` in a Region, one account after the other, from `from`: see
 * Place.list.
 */
export function listAcross(
  store: MetricStore,
  accounts: string[],
  region: string,
  q: ListQuery,
  from: Position,
  limit: number,
): { page: Stream[]; next: Position | undefined } {
  const page: Stream[] = [];
  const start = accounts.indexOf(from.account);
  for (let i = start; i >= 0 && i < accounts.length; i++) {
    const account = accounts[i]!;
    // With the page full, a place lists nothing but says where its next match is, if it has one.
    const part = store.placeOf(account, region)?.list(q, i === start ? from.seq : 0, limit - page.length);
    for (const s of part?.page ?? []) page.push(s);
    if (part?.next !== undefined) return { page, next: { account, seq: part.next } };
  }
  return { page, next: undefined };
}

/** Streams a listing names again, by position; undefined if the query does not name one (see Place.again). */
export function listedAgain(
  store: MetricStore,
  region: string,
  q: ListQuery,
  positions: Position[],
): Stream[] | undefined {
  const streams: Stream[] = [];
  for (const { account, seq } of positions) {
    const s = store.placeOf(account, region)?.again(q, seq);
    if (s === undefined) return undefined;
    streams.push(s);
  }
  return streams;
}

/** The sample of a seeded datum: its values, each counted once. */
function seedSample(put: RawPut): Sample {
  let n = 0, sum = 0, min = Infinity, max = -Infinity;
  for (const v of put.values) {
    n++;
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return {
    t: put.timestamp,
    unit: put.unit ?? "None",
    n,
    sum,
    min,
    max,
    values: put.values,
    counts: undefined,
  };
}
