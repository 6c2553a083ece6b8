/**
 * Publishing: forwarded periods -> destination datums -> PutMetricData batches within AWS's limits.
 * One StatisticValues datum per metric and period keeps every basic statistic exact; extra statistics
 * (percentiles) cannot ride in a statistic set and go out as metrics of their own.
 */
import type { CloudWatchApi, Datum, Dimension } from "./aws.ts";
import { batches } from "./batch.ts";
import type { MetricPlan, Plan, SourcePlan } from "./config.ts";
import { accountOf, type Owner, type Stream } from "./discover.ts";
import { isDataRefused, isRequestRefused, reason } from "./errors.ts";
import { fetchValues, type PeriodStats } from "./fetch.ts";
import { PUT_MAX_BYTES, PUT_MAX_DATUMS } from "./limits.ts";
import { iso } from "./window.ts";
/** Room left for the request envelope and differences in how the SDK serialises a datum. */
const BODY_BUDGET = Math.floor(PUT_MAX_BYTES * 0.9);

export interface Target {
  namespace: string;
  /** The account and region dimensions added to every forwarded metric. */
  dims: Dimension[];
}

/**
 * The target namespace and the account and region dimensions of a source's streams; the account is the one a
 * stream belongs to (see accountOf: through a monitoring account, the linked account's name).
 */
export function targetOf(plan: Plan, src: SourcePlan): (s: Stream) => Target {
  const d = plan.destination;
  const dimsOf = (account: string) =>
    [[d.accountDimension, account], [d.regionDimension, src.region]]
      .filter((x): x is [string, string] => typeof x[0] === "string").map(([Name, Value]) => ({
        Name,
        Value,
      }));
  // One target per metrics entry and account, as their streams share it.
  const targets = new Map<Owner | undefined, Map<MetricPlan, Target>>();
  return (s) => {
    let byPlan = targets.get(s.owner);
    if (byPlan === undefined) targets.set(s.owner, byPlan = new Map());
    let t = byPlan.get(s.plan);
    if (t === undefined) {
      const namespace = d.namespace.replaceAll("{namespace}", s.plan.namespace);
      byPlan.set(s.plan, t = { namespace, dims: dimsOf(accountOf(src, s)) });
    }
    return t;
  };
}

/** The destination metric name of a stream's statistic: the name itself for the set, `Name_p99` for extras. */
const targetName = (stream: Stream, stat?: string) => (stat ? `${stream.name}_${stat}` : stream.name);

/** One destination datum per period (and per extra statistic) that the source answered in full. */
export function toDatums(
  stream: Stream,
  periods: PeriodStats[],
  target: Target,
  skip?: (name: string, t: number) => boolean,
): Datum[] {
  const dims = [...stream.dims, ...target.dims];
  const resolution = stream.plan.period < 60 ? 1 : 60;
  const unit = stream.plan.unit;
  const out: Datum[] = [];
  for (const { t, values } of periods) {
    const { SampleCount, Sum, Minimum, Maximum } = values;
    const name = targetName(stream);
    if (
      SampleCount !== undefined && SampleCount > 0 && Sum !== undefined && Minimum !== undefined &&
      Maximum !== undefined && !skip?.(name, t)
    ) {
      const d: Datum = {
        MetricName: name,
        Dimensions: dims,
        Timestamp: t,
        StatisticValues: { SampleCount, Sum, Minimum, Maximum },
        StorageResolution: resolution,
      };
      if (unit) d.Unit = unit;
      out.push(d);
    }
    for (const stat of stream.plan.stats) {
      const v = values[stat];
      const extra = targetName(stream, stat);
      if (v !== undefined && !skip?.(extra, t)) {
        const d: Datum = {
          MetricName: extra,
          Dimensions: dims,
          Timestamp: t,
          Value: v,
          StorageResolution: resolution,
        };
        if (unit) d.Unit = unit;
        out.push(d);
      }
    }
  }
  return out;
}

/**
 * Which destination datums of these streams are already there, and their SampleCount, as `name@t` per stream:
 * a metric and period is written as one datum, so its SampleCount tells (GetMetricData in the destination).
 */
export async function alreadyWritten(
  api: Pick<CloudWatchApi, "getMetricData">,
  streams: Stream[],
  target: (s: Stream) => Target,
  w: { start: number; end: number },
  period: number,
): Promise<Map<Stream, Map<string, number>>> {
  const wanted = streams.flatMap((s) =>
    [undefined, ...s.plan.stats].map((stat) => ({ s, name: targetName(s, stat), target: target(s) }))
  );
  const items = wanted.map((x) => ({
    metric: {
      Namespace: x.target.namespace,
      MetricName: x.name,
      Dimensions: [...x.s.dims, ...x.target.dims],
    },
    stat: "SampleCount",
    unit: undefined,
  }));
  const present = new Map<Stream, Map<string, number>>();
  for (const x of wanted) if (!present.has(x.s)) present.set(x.s, new Map());
  if (w.start >= w.end) return present;
  await fetchValues(api, items, w, period, (k, t, v) => {
    const x = wanted[k]!;
    present.get(x.s)!.set(`${x.name}@${t}`, v);
  });
  return present;
}

/** A period the destination has more samples of than the source: written twice, never made good by writing. */
export interface Over {
  stream: Stream;
  t: number;
  source: number;
  destination: number;
}

/**
 * The datums of some streams' new periods (the part's window), by target namespace, less those `present` in
 * the destination, and how many of those were left out: `own` where this run wrote them (a write whose answer
 * was lost, for the streams in `ownDoubt`), `already` where something else did; and how many datums each
 * stream has in `byNamespace`. A period the destination has more samples of than the source is reported
 * through `over`: something wrote it twice.
 */
export function datumsOf(
  part: { streams: Stream[]; window: { start: number; end: number } },
  stats: PeriodStats[][],
  target: (s: Stream) => Target,
  present: Map<Stream, Map<string, number>>,
  ownDoubt: Set<Stream>,
  over: (o: Over) => void,
): { byNamespace: Map<string, Datum[]>; own: number; already: number; perStream: number[] } {
  const byNamespace = new Map<string, Datum[]>();
  const perStream: number[] = [];
  let own = 0;
  let already = 0;
  const { start, end } = part.window;
  part.streams.forEach((s, i) => {
    const t = target(s);
    let list = byNamespace.get(t.namespace);
    if (!list) byNamespace.set(t.namespace, list = []);
    const there = present.get(s);
    const skip = there && ((name: string, at: number) => {
      if (!there.has(`${name}@${at}`)) return false;
      if (ownDoubt.has(s)) own++;
      else already++;
      return true;
    });
    let periods = stats[i]!;
    // A call that also reads periods again (lib/recheck.ts) answers for them too: they are not new.
    if (periods.length > 0 && (periods[0]!.t < start || periods[periods.length - 1]!.t >= end)) {
      periods = periods.filter((p) => p.t >= start && p.t < end);
    }
    if (there) {
      for (const p of periods) {
        const source = p.values["SampleCount"];
        const destination = there.get(`${s.name}@${p.t}`);
        if (source !== undefined && destination !== undefined && destination > source) {
          over({ stream: s, t: p.t, source, destination });
        }
      }
    }
    const before = list.length;
    for (const d of toDatums(s, periods, t, skip)) list.push(d);
    perStream.push(list.length - before);
  });
  return { byNamespace, own, already, perStream };
}

/** A datum in one line: name, dimensions and period. */
export const describeDatum = (x: Datum) =>
  `${x.MetricName} ${x.Dimensions.map((y) => `${y.Name}=${y.Value}`).join(",")} at ${iso(x.Timestamp)}`;

/**
 * The bytes of a string in a JSON body, at most: quotes, UTF-8, and escapes at their longest (`\u001f`; a
 * surrogate counted as one too), without building the JSON.
 */
function jsonLength(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x20 || (c >= 0xd800 && c <= 0xdfff)
      ? 6
      : c === 0x22 || c === 0x5c
      ? 2
      : c < 0x80
      ? 1
      : c < 0x800
      ? 2
      : 3;
  }
  return n;
}
/**
 * A datum's keys, punctuation and numbers in the JSON body: every number a datum can carry at its longest
 * (24 characters, as -1.2345678901234567e-300) and every key it can have.
 */
const DATUM_FRAME_BYTES = JSON.stringify({
  MetricName: "",
  Dimensions: [],
  Timestamp: -1.2345678901234567e-300,
  StatisticValues: {
    SampleCount: -1.2345678901234567e-300,
    Sum: -1.2345678901234567e-300,
    Minimum: -1.2345678901234567e-300,
    Maximum: -1.2345678901234567e-300,
  },
  Value: -1.2345678901234567e-300,
  Unit: "",
  StorageResolution: -1.2345678901234567e-300,
}).length + 1;
/** A dimension's keys and punctuation, `{"Name":,"Value":},`, its two strings measured apart. */
const DIMENSION_FRAME_BYTES = '{"Name":,"Value":},'.length;

/**
 * A datum's size in a PutMetricData body, at most: its strings measured as JSON, the rest at its longest.
 * Writing every datum out as JSON to measure it would cost a large run seconds.
 */
export function datumBytes(d: Datum): number {
  let n = DATUM_FRAME_BYTES + jsonLength(d.MetricName) + (d.Unit ? jsonLength(d.Unit) : 0);
  for (const x of d.Dimensions) n += DIMENSION_FRAME_BYTES + jsonLength(x.Name) + jsonLength(x.Value);
  return n;
}

/** Splits datums (or what carries them) into PutMetricData calls: at most 1,000 datums and well under 1 MB each. */
export const putBatches = <T>(items: T[], bytesOf: (item: T) => number) =>
  batches(items, PUT_MAX_DATUMS, bytesOf, BODY_BUDGET);

/**
 * Writes one batch (see putBatches) to a namespace. When AWS refuses the call for a datum's data (a value, a
 * timestamp), it is split in halves until the refused datums stand alone; those are reported through
 * `refused` and dropped, so one bad datum never blocks the rest. A refusal of the request as a whole (its
 * namespace) and any other error (throttling, outage, a write in doubt) are thrown. `fence` gives the end of
 * the run's lease, checked before each call leaves.
 */
export async function putBatch(
  api: Pick<CloudWatchApi, "putMetricData">,
  namespace: string,
  batch: Datum[],
  refused: (datum: Datum, reason: string) => void,
  fence: () => number = () => Infinity,
): Promise<void> {
  try {
    await api.putMetricData(namespace, batch, fence());
  } catch (e) {
    if (!isDataRefused(e) || isRequestRefused(e)) throw e;
    if (batch.length === 1) return refused(batch[0]!, reason(e));
    const half = Math.ceil(batch.length / 2);
    await putBatch(api, namespace, batch.slice(0, half), refused, fence);
    await putBatch(api, namespace, batch.slice(half), refused, fence);
  }
}

/** One producer's side of the pool: an account-region of the run. */
export interface Producer {
  /**
   * Queues datums by target namespace; full batches go at once. Datums CloudWatch refuses for their data are
   * reported through `refused`; any other failure is given by the next flush(). Resolves once the datums sent
   * and not yet answered, over the whole pool, are fewer than SENT_AT_ONCE.
   */
  write(byNamespace: Map<string, Datum[]>, refused: (datum: Datum, reason: string) => void): Promise<void>;
  /** Waits until everything this producer queued is written; rejects with the first failure. */
  flush(): Promise<void>;
  /** Done: the pool no longer waits for this producer before sending what is queued. */
  leave(): void;
}

export interface Publisher {
  join(): Producer;
}

/**
 * Datums sent and not yet answered, over the pool, beyond which a producer's write waits: reading is faster
 * than writing at the destination's PutMetricData quota (a backfill reads a day of periods in one call), so
 * without this every datum of a step would wait in memory for its turn.
 */
export const SENT_AT_ONCE = 32 * PUT_MAX_DATUMS;

/** A datum queued for PutMetricData, with its size in a request (datumBytes), worked out once. */
interface Queued {
  datum: Datum;
  bytes: number;
}

/**
 * Datums queued per target namespace until they fill PutMetricData calls. take() hands on the calls ready:
 * every full one, or with `all` the rest too. A queue is not cut again while it fills less than one call.
 */
function callQueue<E extends Queued>() {
  const queues = new Map<string, { entries: E[]; bytes: number }>();
  return {
    add(namespace: string, entry: E) {
      let queue = queues.get(namespace);
      if (!queue) queues.set(namespace, queue = { entries: [], bytes: 0 });
      queue.entries.push(entry);
      queue.bytes += entry.bytes;
    },
    take(all: boolean, send: (namespace: string, call: E[]) => void) {
      for (const [namespace, queue] of queues) {
        if (!all && queue.entries.length < PUT_MAX_DATUMS && queue.bytes <= BODY_BUDGET) continue;
        const calls = putBatches(queue.entries, (e) => e.bytes);
        const keep = !all && calls.length > 0 && calls[calls.length - 1]!.length < PUT_MAX_DATUMS ? 1 : 0;
        let taken = 0;
        for (const call of calls.slice(0, calls.length - keep)) {
          send(namespace, call);
          taken += call.length;
          for (const e of call) queue.bytes -= e.bytes;
        }
        queue.entries.splice(0, taken);
        if (queue.entries.length === 0) queues.delete(namespace);
      }
    },
  };
}

/**
 * Pools the datums of concurrent producers (account-regions) into shared PutMetricData calls, so a run makes
 * ceil(datums / 1,000) calls rather than one or more per account-region. Full batches go at once; the rest
 * goes when every producer that has joined is waiting in flush() or has left, which keeps the number of calls
 * the same from run to run. `fence` gives the end of the run's lease, checked before each call leaves.
 */
export function publisher(
  api: Pick<CloudWatchApi, "putMetricData">,
  fence: () => number = () => Infinity,
): Publisher {
  interface Member {
    waiting: boolean;
    /** Datums queued or being written. */
    pending: number;
    failure: { error: unknown } | undefined;
    wake: (() => void) | undefined;
  }
  interface Entry extends Queued {
    owner: Member;
    refused: (datum: Datum, reason: string) => void;
  }
  const queued = callQueue<Entry>();
  const members = new Set<Member>();
  let sent = 0;
  const room: (() => void)[] = [];

  const settled = (m: Member, count: number, error?: unknown) => {
    m.pending -= count;
    if (error !== undefined) m.failure ??= { error };
    if (m.pending === 0) m.wake?.();
  };

  const send = (namespace: string, entries: Entry[]) => {
    sent += entries.length;
    const answered = () => {
      sent -= entries.length;
      while (sent < SENT_AT_ONCE && room.length > 0) room.shift()!();
    };
    const byDatum = new Map(entries.map((e) => [e.datum, e]));
    const counts = new Map<Member, number>();
    for (const e of entries) counts.set(e.owner, (counts.get(e.owner) ?? 0) + 1);
    putBatch(api, namespace, entries.map((e) => e.datum), (d, why) => byDatum.get(d)!.refused(d, why), fence)
      .then(
        () => counts.forEach((n, m) => settled(m, n)),
        (error) => counts.forEach((n, m) => settled(m, n, error)),
      ).finally(answered);
  };

  const sendIfAllWait = () => {
    for (const m of members) if (!m.waiting) return;
    queued.take(true, send);
  };

  return {
    join() {
      const me: Member = { waiting: false, pending: 0, failure: undefined, wake: undefined };
      members.add(me);
      return {
        async write(byNamespace, refused) {
          for (const [namespace, datums] of byNamespace) {
            for (const datum of datums) {
              queued.add(namespace, { datum, bytes: datumBytes(datum), owner: me, refused });
            }
            me.pending += datums.length;
          }
          queued.take(false, send);
          // Only datums sent are counted: those left in a partial batch go once every producer waits.
          while (sent >= SENT_AT_ONCE) await new Promise<void>((resolve) => room.push(resolve));
        },
        async flush() {
          me.waiting = true;
          try {
            sendIfAllWait();
            if (me.pending > 0) await new Promise<void>((resolve) => (me.wake = resolve));
          } finally {
            me.waiting = false;
            me.wake = undefined;
          }
          const failure = me.failure;
          me.failure = undefined;
          if (failure) throw failure.error;
        },
        leave() {
          members.delete(me);
          sendIfAllWait();
        },
      };
    },
  };
}
