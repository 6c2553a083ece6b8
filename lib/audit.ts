/**
 * `--audit --from ISO --to ISO`: every configured stream and period of the window, source against destination,
 * and with `--repair` the differences written where they can be made good. Nothing is taken on trust: the
 * streams are listed again (ListMetrics), and both sides are read (GetMetricData) for SampleCount, Sum, Minimum
 * and Maximum.
 *
 * A period is `exact` where the four statistics agree, `short` where the destination has fewer samples (late
 * samples not forwarded yet), `missing` where it has none, `over` where it has more (written twice), and
 * `differs` where the counts agree and another statistic does not. Periods the forwarder has not reached yet
 * (at or after a stream's checkpoint) are `pending`, not a fault. A repair writes, for a short or missing
 * period before the checkpoint, the source less the destination as one statistic set, under the run's lease:
 * no run forwards it at the same time, and a run that reads the period again later finds nothing to add.
 * Extra statistics (percentiles) are not compared.
 */
import type { Datum } from "./aws.ts";
import { batches, mapLimit } from "./batch.ts";
import type { SourcePlan } from "./config.ts";
import { discover, keyOf, ownersOf, type Stream, throughLinks } from "./discover.ts";
import { describe, plural } from "./errors.ts";
import { fetchValues, type Item, queriesPerCall, STATISTIC_SET } from "./fetch.ts";
import { GMD_MAX_DATAPOINTS } from "./limits.ts";
import { PRICES } from "./plan.ts";
import { type Target, targetOf, toDatums } from "./publish.ts";
import { roleOf, type Run, SOURCE_CONCURRENCY } from "./run.ts";
import { iso } from "./window.ts";

export const KINDS = ["exact", "short", "missing", "over", "differs", "pending"] as const;
export type Kind = (typeof KINDS)[number];

/** How many streams of each kind an account-region's report names. */
const EXAMPLES = 3;
/** Sums agree where they differ by no more than this share: CloudWatch adds in floating point. */
const SUM_TOLERANCE = 1e-9;

export interface SourceAudit extends Record<Kind, number> {
  account: string;
  region: string;
  /** The monitoring account (its entry's name) the account is read through, if it is. */
  through?: string;
  streams: number;
  /** Periods written by --repair. */
  repaired: number;
  /** A few periods of each kind but exact, in one line each. */
  examples: Partial<Record<Kind, string[]>>;
  /** Why the account-region could not be audited. */
  error?: string;
}

export interface AuditReport {
  from: string;
  to: string;
  /** GetMetricData metrics billed for the audit's reads, source and destination (see auditCost). */
  billedMetrics: number;
  accountRegions: SourceAudit[];
}

/** Source and destination statistic sets of one stream over a window, by period start. */
type Sides = [source: Map<number, number[]>, destination: Map<number, number[]>];

/**
 * GetMetricData metrics an audit is billed: each stream's four statistics, one metric a call (up to five
 * statistics of a metric in a call bill as one: AWS pricing), on each side, once per page of the window.
 */
export function auditCost(streams: number, periods: number): number {
  return streams * 2 * Math.max(1, Math.ceil((STATISTIC_SET.length * periods) / GMD_MAX_DATAPOINTS));
}

/** Runs the audit of `window` (and the repair, where asked) over every configured account-region. */
export async function audit(
  run: Run,
  window: { start: number; end: number },
  repair: boolean,
): Promise<AuditReport> {
  const sources = run.plan.sources;
  const listed = await mapLimit(sources, SOURCE_CONCURRENCY, async (src) => {
    try {
      const api = throughLinks(run.cloudWatch(src.region, roleOf(src)), src);
      return { streams: (await discover(api, src.metrics, false, {}, src.linked && ownersOf(src))).streams };
    } catch (e) {
      return { error: describe(e) };
    }
  });
  let billed = 0;
  let streams = 0;
  for (const l of listed) {
    for (const s of l.streams ?? []) {
      streams++;
      billed += auditCost(1, periodsOf(window, s.plan.period));
    }
  }
  run.log.info(
    `Auditing ${plural(streams, "stream")} of ${plural(sources.length, "account-region")} from ${
      iso(window.start)
    } to ${iso(window.end)}: ${billed} GetMetricData metrics billed, about $${
      (billed * PRICES.getMetricDataMetric).toFixed(2)
    }`,
  );
  run.progress.owe(streams);
  // Through a monitoring account, each account read through it is audited (and reported) on its own.
  const audits = sources.flatMap(
    (src, i): { src: SourcePlan; l: (typeof listed)[number]; as: SourceAudit }[] => {
      const l = listed[i]!;
      if (!src.linked || !l.streams?.length) return [{ src, l, as: blank(src) }];
      const byOwner = Map.groupBy(l.streams, (s) => s.owner!);
      return [...byOwner].sort(([a], [b]) => (a.name < b.name ? -1 : 1)).map(([owner, streams]) => ({
        src,
        l: { streams },
        as: { ...blank(src), account: owner.name, through: src.account },
      }));
    },
  );
  const accountRegions = await mapLimit(audits, SOURCE_CONCURRENCY, ({ src, l, as }) => {
    if (l.streams === undefined) return Promise.resolve(failed(as, l.error));
    return auditSource(run, src, l.streams, window, repair, as).catch((e) => failed(as, describe(e)));
  });
  return { from: iso(window.start), to: iso(window.end), billedMetrics: billed, accountRegions };
}

const periodsOf = (w: { start: number; end: number }, period: number) =>
  Math.max(0, Math.floor(w.end / period) - Math.ceil(w.start / period));

function blank(src: SourcePlan): SourceAudit {
  return {
    account: src.account,
    region: src.region,
    streams: 0,
    exact: 0,
    short: 0,
    missing: 0,
    over: 0,
    differs: 0,
    pending: 0,
    repaired: 0,
    examples: {},
  };
}

const failed = (as: SourceAudit, error: string | undefined): SourceAudit => ({
  ...as,
  error: error ?? "not listed",
});

/** One account-region: its streams in calls' worth, both sides read, each period judged, repairs queued. */
async function auditSource(
  run: Run,
  src: SourcePlan,
  streams: Stream[],
  window: { start: number; end: number },
  repair: boolean,
  out: SourceAudit,
): Promise<SourceAudit> {
  out.streams = streams.length;
  const target = targetOf(run.plan, src);
  const api = run.cloudWatch(src.region, roleOf(src));
  const writer = repair ? run.publisher.join() : undefined;
  const fields = { account: out.account, region: src.region };
  try {
    for (const [period, group] of Map.groupBy(streams, (s) => s.plan.period)) {
      const w = {
        start: Math.ceil(window.start / period) * period,
        end: Math.floor(window.end / period) * period,
      };
      if (w.start >= w.end) continue;
      const perCall = Math.max(
        1,
        Math.floor(queriesPerCall((w.end - w.start) / period) / STATISTIC_SET.length),
      );
      await mapLimit(batches(group, perCall, () => 0, Infinity), 4, async (part) => {
        const sides = await readSides(api, run, part, target, w, period);
        const repairs = new Map<string, Datum[]>();
        part.forEach((s, i) => judge(run, src, s, sides[i]!, out, writer && repairs, target));
        if (writer && repairs.size > 0) {
          await writer.write(repairs, (d, why) => {
            out.repaired--;
            run.log.warn(`Cannot repair ${d.MetricName} at ${iso(d.Timestamp)}: ${why}`, fields);
          });
        }
        run.progress.wrote(part.length);
      });
    }
    await writer?.flush();
  } finally {
    writer?.leave();
  }
  return out;
}

/** Both sides' statistic sets of some streams over a window: two reads, one in each account. */
async function readSides(
  api: Run["destination"],
  run: Run,
  streams: Stream[],
  target: (s: Stream) => Target,
  w: { start: number; end: number },
  period: number,
): Promise<Sides[]> {
  const sides: Sides[] = streams.map(() => [new Map(), new Map()]);
  const read = (side: 0 | 1, items: Item[]) =>
    fetchValues(side === 0 ? api : run.destination, items, w, period, (k, t, v) => {
      const at = sides[Math.floor(k / STATISTIC_SET.length)]![side];
      let values = at.get(t);
      if (values === undefined) at.set(t, values = [NaN, NaN, NaN, NaN]);
      values[k % STATISTIC_SET.length] = v;
    });
  const items = (metric: (s: Stream) => Item["metric"], source = false) =>
    streams.flatMap((s) =>
      STATISTIC_SET.map((stat) => ({
        metric: metric(s),
        stat,
        unit: undefined,
        ...(source && s.owner && { account: s.owner.id }),
      }))
    );
  await Promise.all([
    read(0, items((s) => ({ Namespace: s.plan.namespace, MetricName: s.name, Dimensions: s.dims }), true)),
    read(
      1,
      items((s) => {
        const t = target(s);
        return { Namespace: t.namespace, MetricName: s.name, Dimensions: [...s.dims, ...t.dims] };
      }),
    ),
  ]);
  return sides;
}

/** Judges every period one side has, and queues the repair of what can be made good. */
function judge(
  run: Run,
  src: SourcePlan,
  s: Stream,
  [source, destination]: Sides,
  out: SourceAudit,
  repairs: Map<string, Datum[]> | undefined,
  target: (s: Stream) => Target,
) {
  // Periods at or after the checkpoint are the forwarder's to write. A stream without one is read in the
  // destination before the forwarder writes it, so what a repair writes there is never written twice.
  const next = run.store.get(keyOf(src, s))?.next ?? Infinity;
  const times = new Set([...source.keys(), ...destination.keys()]);
  const fixes: { t: number; values: Record<string, number> }[] = [];
  for (const t of [...times].sort((a, b) => a - b)) {
    const [n = 0, sum = 0, min = NaN, max = NaN] = source.get(t) ?? [];
    const [dn = 0, dsum = 0, dmin = NaN, dmax = NaN] = destination.get(t) ?? [];
    const kind: Kind = t >= next && dn < n
      ? "pending"
      : dn === 0 && n > 0
      ? "missing"
      : dn < n
      ? "short"
      : dn > n
      ? "over"
      : Math.abs(dsum - sum) <= SUM_TOLERANCE * Math.max(1, Math.abs(sum)) && dmin === min && dmax === max
      ? "exact"
      : "differs";
    out[kind]++;
    if (kind === "exact") continue;
    const examples = out.examples[kind] ??= [];
    if (examples.length < EXAMPLES) {
      const dims = s.dims.map((d) => `${d.Name}=${d.Value}`).join(",");
      examples.push(
        `${s.plan.namespace} ${s.name} ${dims} at ${iso(t)}: SampleCount ${dn} where the source has ${n}${
          kind === "differs" ? `; Sum ${dsum}/${sum}, Minimum ${dmin}/${min}, Maximum ${dmax}/${max}` : ""
        }`,
      );
    }
    if (kind === "short" || kind === "missing") {
      fixes.push({ t, values: { SampleCount: n - dn, Sum: sum - dsum, Minimum: min, Maximum: max } });
    }
  }
  if (repairs === undefined || fixes.length === 0) return;
  const t = target(s);
  let list = repairs.get(t.namespace);
  if (!list) repairs.set(t.namespace, list = []);
  for (const d of toDatums(s, fixes, t)) list.push(d);
  out.repaired += fixes.length;
}

/** The audit, as text or as one JSON document; returns the exit code: 0 only if every period is exact. */
export function printAudit(r: AuditReport, json: boolean, repaired: boolean, out: (line: string) => void) {
  if (json) out(JSON.stringify(r));
  else {
    for (const a of r.accountRegions) {
      const where = `${a.account} ${a.region}${a.through === undefined ? "" : ` (through ${a.through})`}`;
      if (a.error !== undefined) {
        out(`${where}: cannot audit: ${a.error}`);
        continue;
      }
      const kinds = KINDS.filter((k) => k === "exact" || a[k] > 0).map((k) => `${a[k]} ${k}`).join(", ");
      out(
        `${where}: ${plural(a.streams, "stream")}, periods ${kinds}${
          repaired ? `; ${a.repaired} repaired` : ""
        }`,
      );
      for (const k of KINDS) for (const e of a.examples[k] ?? []) out(`  ${k}: ${e}`);
    }
  }
  const left = (a: SourceAudit) =>
    a.error !== undefined || a.over > 0 || a.differs > 0 ||
    (!repaired && (a.short > 0 || a.missing > 0)) || (repaired && a.repaired < a.short + a.missing);
  return r.accountRegions.some(left) ? 1 : 0;
}
