/**
 * The samples of one metric stream and their exact aggregation into periods (every basic statistic, and
 * nearest-rank percentiles over raw values). An emulator holds millions of samples, so they are kept in
 * columns of numbers rather than as an object each: a heap of few objects is smaller, and quicker to collect.
 */

/** One accepted datum as the operations hand it to the store: its aggregate, and its raw values if any. */
export interface Sample {
  t: number;
  unit: string;
  n: number;
  sum: number;
  min: number;
  max: number;
  /** The distribution percentiles are computed from; undefined when the datum carries none. */
  values: number[] | undefined;
  /** The count of each of `values`; undefined when each counts once. */
  counts: number[] | undefined;
  /** When reads may see it (ms); absent for data that is readable at once. */
  visibleAt?: number;
}

/** A sample's fields in Samples.cols, FIELDS numbers a sample. */
const T = 0, N = 1, SUM = 2, MIN = 3, MAX = 4, DIST = 5, FIELDS = 6;
/** DIST of a sample without a distribution: a statistic set whose Minimum and Maximum differ. */
const NO_DIST = -1;
/** DIST of a sample whose distribution is its Minimum, SampleCount times: a Value, or a set of equal samples. */
const SINGLE = -2;
// Any other DIST is the offset in `raw` of the sample's values: k * 2 + (1 when counts follow), then k values,
// then k counts if any.

/**
 * Below this many numbers a column grows by an exact copy: V8 grows a pushed array by half again and 16 slots,
 * which for millions of streams of a few samples each would be much of the memory.
 */
const EXACT_GROWTH_BELOW = 256;

/** `column` with `items` added at its end: the same array, or a copy while it is short. */
function append(column: number[], items: number[]): number[] {
  if (column.length < EXACT_GROWTH_BELOW) return column.concat(items);
  for (const x of items) column.push(x);
  return column;
}

/** The samples of a stream in time order (samples of the same time in the order they came). */
export class Samples {
  /** FIELDS numbers a sample. */
  cols: number[] = [];
  /** The raw values the samples with a DIST offset point into. */
  raw: number[] | undefined = undefined;
  /** Each sample's unit, once one differs from `unit`; until then every sample has `unit`. */
  units: string[] | undefined = undefined;
  /** Each sample's visibleAt (-Infinity: at once), once one is not readable at once. */
  visible: number[] | undefined = undefined;

  /** `unit`: the unit of the first sample (interned: one string for all streams). */
  constructor(public unit: string) {}

  get count(): number {
    return this.cols.length / FIELDS;
  }

  time(i: number): number {
    return this.cols[i * FIELDS + T]!;
  }

  unitAt(i: number): string {
    return this.units === undefined ? this.unit : this.units[i]!;
  }

  /** The time of the newest sample, or undefined without samples. */
  newest(): number | undefined {
    return this.cols.length === 0 ? undefined : this.cols[this.cols.length - FIELDS + T];
  }

  /** Index of the first sample at or after t, or with `after`, the first after t. */
  bound(t: number, after = false): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.time(mid) < t || (after && this.time(mid) === t)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds a sample after those of the same time or earlier; `unit` is its unit, interned. */
  insert(s: Sample, unit: string) {
    const at = this.count === 0 || this.time(this.count - 1) <= s.t ? this.count : this.bound(s.t, true);
    const record = [s.t, s.n, s.sum, s.min, s.max, this.#dist(s)];
    if (at === this.count) this.cols = append(this.cols, record);
    else this.cols.splice(at * FIELDS, 0, ...record);
    if (unit !== this.unit && this.units === undefined) this.units = Array(this.count - 1).fill(this.unit);
    this.units?.splice(at, 0, unit);
    if (s.visibleAt !== undefined && this.visible === undefined) {
      this.visible = Array(this.count - 1).fill(-Infinity);
    }
    this.visible?.splice(at, 0, s.visibleAt ?? -Infinity);
  }

  /** Stores a sample's distribution, where it needs storing; returns its DIST. */
  #dist(s: Sample): number {
    const { values, counts } = s;
    if (values === undefined) return NO_DIST;
    if (values.length === 1 && Object.is(values[0], s.min) && Object.is(counts?.[0] ?? 1, s.n)) return SINGLE;
    const offset = this.raw?.length ?? 0;
    const head = values.length * 2 + (counts === undefined ? 0 : 1);
    // Concatenated rather than spread: a seeded datum may have more values than a call takes arguments.
    this.raw = append(this.raw ?? [], [head].concat(values, counts ?? []));
    return offset;
  }

  /** Adds sample i's distribution to `pairs` (value, count, ...); false when it has none. */
  distribution(i: number, pairs: number[]): boolean {
    const dist = this.cols[i * FIELDS + DIST]!;
    if (dist === NO_DIST) return false;
    if (dist === SINGLE) {
      pairs.push(this.cols[i * FIELDS + MIN]!, this.cols[i * FIELDS + N]!);
      return true;
    }
    const raw = this.raw!;
    const k = raw[dist]! >> 1;
    const counted = (raw[dist]! & 1) === 1;
    for (let j = 0; j < k; j++) pairs.push(raw[dist + 1 + j]!, counted ? raw[dist + 1 + k + j]! : 1);
    return true;
  }
}

/** The exact aggregate of the samples of one period. */
export class Aggregate {
  n = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  /**
   * Value, count, value, count...; undefined when percentiles were not wanted, or once a sample without a
   * distribution was added.
   */
  raw: number[] | undefined;

  constructor(withRaw: boolean) {
    this.raw = withRaw ? [] : undefined;
  }

  /** Adds sample i of `s`. */
  add(s: Samples, i: number) {
    const at = i * FIELDS;
    this.n += s.cols[at + N]!;
    this.sum += s.cols[at + SUM]!;
    if (s.cols[at + MIN]! < this.min) this.min = s.cols[at + MIN]!;
    if (s.cols[at + MAX]! > this.max) this.max = s.cols[at + MAX]!;
    if (this.raw !== undefined && !s.distribution(i, this.raw)) this.raw = undefined;
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
    return this.raw === undefined ? undefined : percentile(this.raw, Number(name.slice(1)));
  }
}

/** Nearest-rank percentile p of (value, count) pairs: the smallest value with p% of the samples at or below. */
function percentile(raw: number[], p: number): number | undefined {
  const sorted: [number, number][] = [];
  for (let j = 0; j < raw.length; j += 2) sorted.push([raw[j]!, raw[j + 1]!]);
  sorted.sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((acc, [, c]) => acc + c, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [v, c] of sorted) {
    seen += c;
    if (seen >= rank) return v;
  }
  return sorted[sorted.length - 1]![0];
}

/** What a read aggregates: [start, end) in periods from start, of one unit or all, as the clock reads now. */
export interface Span {
  start: number;
  end: number;
  periodMs: number;
  unit: string | undefined;
  now: number;
  /** Whether percentiles are wanted, so that the raw values are gathered. */
  withRaw: boolean;
}

/** Calls `each` with the start and aggregate of every period of `span` that has readable samples, in order. */
export function forEachPeriod(s: Samples, span: Span, each: (t: number, agg: Aggregate) => void) {
  const { start, end, periodMs, unit, now, withRaw } = span;
  let agg: Aggregate | undefined;
  let period = 0;
  for (let i = s.bound(start); i < s.count && s.time(i) < end; i++) {
    if (unit !== undefined && s.unitAt(i) !== unit) continue;
    if (s.visible !== undefined && s.visible[i]! > now) continue;
    const p = start + Math.floor((s.time(i) - start) / periodMs) * periodMs;
    if (agg === undefined || p !== period) {
      if (agg !== undefined) each(period, agg);
      agg = new Aggregate(withRaw);
      period = p;
    }
    agg.add(s, i);
  }
  if (agg !== undefined) each(period, agg);
}
