/**
 * Discovery: ListMetrics, every page, narrowed to the configured metrics and dimension sets, in as few pages
 * as the last listing suggests. Static streams (full dimension values in the config) skip ListMetrics.
 */
import type { CloudWatchApi, Dimension, Metric } from "./aws.ts";
import type { MetricPlan, SourcePlan } from "./config.ts";
import { LIST_MAX_DIMENSION_FILTERS } from "./limits.ts";
import type { Log } from "./log.ts";
import * as state from "./state.ts";
import type { ListingCounts, PlanCounts, Store } from "./store.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";

const fields = (src: SourcePlan) => ({ account: src.account, region: src.region });

/** One source metric to forward: a metric name with one full set of dimension values. */
export interface Stream {
  plan: MetricPlan;
  name: string;
  /** Sorted by name, so that a stream has one identity however ListMetrics orders them. */
  dims: Dimension[];
}

/**
 * Whether a value matches a glob of `*` (any run of characters) and `?` (one character), everything else
 * literal. A walk that goes back only to the last `*`: time grows with the lengths' product at worst, never
 * exponentially, as a regular expression of many `.*` can on a long dimension value.
 */
export function globMatches(glob: string, value: string): boolean {
  let g = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (g < glob.length && (glob[g] === "?" || glob[g] === value[v])) {
      g++;
      v++;
    } else if (g < glob.length && glob[g] === "*") {
      star = g++;
      resume = v;
    } else if (star >= 0) {
      g = star + 1;
      v = ++resume;
    } else return false;
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** Metric and dimension names, one string each however many streams carry them. */
const names = new Map<string, string>();
const interned = (name: string) => names.get(name) ?? (names.set(name, name), name);

/**
 * Sorts dimension sets by name, so that a stream has one identity however ListMetrics orders them, and holds
 * each set once among the streams it is made for: the metrics of one service share theirs, and the streams of
 * a cluster its ClusterName. A stream's dimensions are never changed in place.
 */
function dimensionSets(): (dims: Dimension[]) => Dimension[] {
  const dimensions = new Map<string, Dimension>();
  const sets = new Map<string, Dimension[]>();
  // Lengths first, so that no name or value, whatever its characters, can make two ids alike.
  const idOf = (d: Dimension) => `${d.Name.length}:${d.Name}${d.Value.length}:${d.Value}`;
  const one = (d: Dimension, id: string) => {
    let x = dimensions.get(id);
    if (x === undefined) dimensions.set(id, x = { Name: interned(d.Name), Value: d.Value });
    return x;
  };
  return (dims) => {
    const sorted = dims.slice().sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    const ids = sorted.map(idOf);
    const id = ids.join("");
    let set = sets.get(id);
    if (set === undefined) sets.set(id, set = sorted.map((d, i) => one(d, ids[i]!)));
    return set;
  };
}

const matches = new WeakMap<MetricPlan, [name: string, glob: string][]>();

/** Whether a listed metric has exactly the plan's dimension names and values that match its globs. */
export function selects(plan: MetricPlan, dims: Dimension[]): boolean {
  if (dims.length !== plan.dimensions.length) return false;
  if (!dims.every((d) => plan.dimensions.includes(d.Name))) return false;
  let match = matches.get(plan);
  if (match === undefined) matches.set(plan, match = Object.entries(plan.match));
  return match.every(([name, glob]) => {
    const d = dims.find((x) => x.Name === name);
    return d !== undefined && globMatches(glob, d.Value);
  });
}

/** ListMetrics filters for a plan: its dimension names, with the value where the match has no wildcard. */
export function listFilters(plan: MetricPlan): { Name: string; Value?: string }[] {
  return plan.dimensions.slice(0, LIST_MAX_DIMENSION_FILTERS).map((Name) => {
    const glob = plan.match[Name];
    return glob !== undefined && !/[*?]/.test(glob) ? { Name, Value: glob } : { Name };
  });
}

/** A plan's identity among listings: what its ListMetrics calls ask for. */
export const planId = (plan: MetricPlan) => JSON.stringify([plan.namespace, plan.dimensions, plan.match]);

/**
 * Whether one namespace-wide listing (every name, filtered by the plan's dimensions) takes fewer pages than one
 * listing per name, judged from the last listing; without one, namespace-wide where the plan has several names.
 */
export function listsWide(plan: MetricPlan, last: PlanCounts | undefined): boolean {
  if (plan.names.length === 1) return false;
  if (last?.wide === undefined) return last === undefined;
  return pagesFor(last.wide) <= plan.names.reduce((sum, name) => sum + pagesFor(last.names[name] ?? 0), 0);
}

/** ListMetrics answers at most 500 metrics a page (API reference, ListMetrics). */
const LIST_PAGE_SIZE = 500;
const pagesFor = (metrics: number) => Math.max(1, Math.ceil(metrics / LIST_PAGE_SIZE));

/** The pages the next listing of these plans takes, judged from what the last one returned. */
export function pagesOf(plans: MetricPlan[], last: ListingCounts): number {
  let pages = 0;
  for (const plan of plans) {
    if (plan.streams) continue;
    const c = last[planId(plan)];
    if (listsWide(plan, c)) pages += pagesFor(c?.wide ?? 0);
    else for (const name of plan.names) pages += pagesFor(c?.names[name] ?? 0);
  }
  return pages;
}

/**
 * Lists the streams of every plan, each plan in the fewest pages the last listing suggests (see listsWide),
 * the listings of a source side by side. `recentOnly` asks ListMetrics for metrics active in the past three
 * hours (RecentlyActive=PT3H), which is enough when nothing older is owed and keeps the listing short. Static
 * streams (full dimension values in the config) need no listing.
 */
export async function discover(
  api: Pick<CloudWatchApi, "listMetrics">,
  plans: MetricPlan[],
  recentOnly: boolean,
  last: ListingCounts = {},
): Promise<{ streams: Stream[]; counts: ListingCounts }> {
  const streams: Stream[] = [];
  // A listing parses every name and value anew: held once each, for a stream lives the whole run.
  const set = dimensionSets();
  const add = (plan: MetricPlan, name: string, dims: Dimension[]) =>
    void streams.push({ plan, name: interned(name), dims: set(dims) });
  const counts: ListingCounts = {};
  const listings: Promise<void>[] = [];
  streams.push(...staticStreams(plans, set));
  for (const plan of plans) {
    if (plan.streams) continue;
    const c: PlanCounts = counts[planId(plan)] ??= { names: {} };
    // Counted before selection: a listing of that name alone would return them all the same.
    const keep = (m: Metric) => {
      if (!plan.names.includes(m.MetricName)) return;
      c.names[m.MetricName] = (c.names[m.MetricName] ?? 0) + 1;
      if (selects(plan, m.Dimensions)) add(plan, m.MetricName, m.Dimensions);
    };
    const list = (name: string | undefined) =>
      listAll(api, plan, name, recentOnly, (m) => {
        if (name === undefined) c.wide = (c.wide ?? 0) + 1;
        keep(m);
      });
    if (listsWide(plan, last[planId(plan)])) listings.push(list(undefined));
    else for (const name of plan.names) listings.push(list(name));
  }
  await Promise.all(listings);
  return { streams: onceEach(plans, streams), counts };
}

/**
 * Each stream once, with the first plan in the config that selects it: one checkpoint per stream. A stream
 * comes up more than once where two entries select it (same namespace, period and a name in common), where a
 * `streams:` list names a listed one, and wherever a listing repeats a metric: nothing in the API reference
 * (ListMetrics) promises that it does not, a listing paged while metrics appear can, and CloudWatch-compatible
 * endpoints do. Keyed as the checkpoint is (namespace, name, dimensions, period; the account-region is one);
 * the streams' dimension sets must come from one dimensionSets(), which holds equal sets as one array.
 */
export function onceEach(plans: MetricPlan[], streams: Stream[]): Stream[] {
  const order = new Map(plans.map((p, i) => [p, i]));
  // The first stream kept of each dimension set, and from each kept stream the next of the same set: a chain
  // of a few (the metrics of one service) instead of a map and a key string per stream.
  const first = new Map<Dimension[], number>();
  const next: number[] = [];
  const out: Stream[] = [];
  for (const s of streams) {
    let at = first.get(s.dims) ?? -1;
    let last = -1;
    while (at >= 0) {
      const o = out[at]!;
      if (o.name === s.name && o.plan.period === s.plan.period && o.plan.namespace === s.plan.namespace) {
        break;
      }
      last = at;
      at = next[at]!;
    }
    if (at >= 0) {
      if (order.get(out[at]!.plan)! > order.get(s.plan)!) out[at] = s;
      continue;
    }
    if (last >= 0) next[last] = out.length;
    else first.set(s.dims, out.length);
    next.push(-1);
    out.push(s);
  }
  return out.length === streams.length ? streams : out;
}

/** The streams the config names in full (`streams:`): they need no listing. */
export function staticStreams(plans: MetricPlan[], set = dimensionSets()): Stream[] {
  return plans.flatMap((plan) =>
    (plan.streams ?? []).flatMap((values) =>
      plan.names.map((name) => ({
        plan,
        name,
        dims: set(Object.entries(values).map(([Name, Value]) => ({ Name, Value }))),
      }))
    )
  );
}

/** Every page of one listing, one after another (each page's NextToken asks for the next). */
async function listAll(
  api: Pick<CloudWatchApi, "listMetrics">,
  plan: MetricPlan,
  name: string | undefined,
  recentOnly: boolean,
  each: (m: Metric) => void,
) {
  let nextToken: string | undefined;
  do {
    const page = await api.listMetrics({
      Namespace: plan.namespace,
      ...(name === undefined ? {} : { MetricName: name }),
      Dimensions: listFilters(plan),
      ...(recentOnly ? { RecentlyActive: "PT3H" as const } : {}),
      ...(nextToken ? { NextToken: nextToken } : {}),
    });
    for (const m of page.metrics) each(m);
    nextToken = page.nextToken;
  } while (nextToken);
}

/**
 * The streams a listing found, rebuilt from their checkpoint identities (namespace, name, dimensions,
 * period), each with the plan that selects it; those no plan selects any more are left out.
 */
export function rebuild(
  plans: MetricPlan[],
  found: [namespace: string, name: string, dims: [string, string][], period: number][],
  set = dimensionSets(),
): Stream[] {
  const out: Stream[] = [];
  for (const [namespace, name, pairs, period] of found) {
    const dims = set(pairs.map(([Name, Value]) => ({ Name, Value })));
    const plan = plans.find((p) =>
      !p.streams && p.namespace === namespace && p.period === period && p.names.includes(name) &&
      selects(p, dims)
    );
    if (plan) out.push({ plan, name: interned(name), dims });
  }
  return out;
}

/** What keeping a listing between runs needs of a run. */
export interface ListingContext {
  store: Store;
  nowSeconds: number;
  dryRun: boolean;
  /** Seconds a listing is kept: the config's discovery_interval. */
  discoveryInterval: number;
  log: Log;
}

/** Keys made once per stream: a run asks for them at every stage. */
const madeKeys = new WeakMap<Stream, string>();

/** A stream's checkpoint key: account, region, namespace, name, dimensions (name and value) and period. */
export function keyOf(src: SourcePlan, s: Stream): string {
  let key = madeKeys.get(s);
  if (key === undefined) {
    const dims = s.dims.map((d) => [d.Name, d.Value]);
    key = JSON.stringify([src.account, src.region, s.plan.namespace, s.name, dims, s.plan.period]);
    madeKeys.set(s, key);
  }
  return key;
}

/** What a key names, less the account and region: the identity a kept listing is rebuilt from. */
export const identityOf = (key: string) =>
  (JSON.parse(key) as [string, string, string, string, [string, string][], number]).slice(2) as [
    string,
    string,
    [string, string][],
    number,
  ];

/** ListMetrics may list a new metric up to 15 minutes after its first datum (API reference, PutMetricData). */
const LIST_DELAY_SECONDS = 15 * 60;

/**
 * The streams of an account-region: ListMetrics when the last listing is older than `discovery_interval` or
 * was made for another config, else the streams that listing found (ListMetrics shows a new metric up to 15
 * minutes late anyway).
 */
export async function streamsOf(
  api: Pick<CloudWatchApi, "listMetrics">,
  src: SourcePlan,
  run: ListingContext,
  recentOnly: boolean,
): Promise<Stream[]> {
  const last = run.store.listing(src.account, src.region);
  const fingerprint = JSON.stringify(src.metrics);
  const age = last === undefined ? Infinity : run.nowSeconds - last.listedAt;
  if (last?.fingerprint === fingerprint && age >= 0 && age < run.discoveryInterval) {
    const found = run.store.keys(src.account, src.region)
      .filter((k) => (run.store.get(k)?.seen ?? -Infinity) >= last.listedAt).map(identityOf);
    const set = dimensionSets();
    const kept = onceEach(src.metrics, [
      ...staticStreams(src.metrics, set),
      ...rebuild(src.metrics, found, set),
    ]);
    run.log.debug(`Kept the listing of ${iso(last.listedAt)}: ${kept.length} streams`, fields(src));
    return kept;
  }
  const { streams, counts } = await discover(api, src.metrics, recentOnly, last?.counts);
  run.log.debug(
    `Listed ${streams.length} streams${recentOnly ? " active in the past 3 hours" : ""}`,
    fields(src),
  );
  if (!run.dryRun) {
    await remember(src, streams, run, last?.listedAt);
    run.store.setListing(src.account, src.region, { listedAt: run.nowSeconds, fingerprint, counts });
  }
  return streams;
}

/**
 * Records that a listing found these streams, and forgets the source's streams none has found for long. A
 * stream found for the first time owes its periods from where the previous listing ended (less the time
 * ListMetrics may take to show it), so a new service's first minutes are not lost.
 */
async function remember(
  src: SourcePlan,
  streams: Stream[],
  run: ListingContext,
  lastListed: number | undefined,
) {
  const found = new Set<string>();
  // By period, as a new stream's first period owed is a multiple of its own.
  const byPeriod = new Map<number, string[]>();
  for (const s of streams) {
    const key = keyOf(src, s);
    if (found.has(key)) continue;
    found.add(key);
    const keys = byPeriod.get(s.plan.period) ?? [];
    byPeriod.set(s.plan.period, keys);
    keys.push(key);
  }
  const since = lastListed === undefined
    ? undefined
    : Math.max(lastListed - LIST_DELAY_SECONDS, run.nowSeconds - MAX_BACKFILL_SECONDS);
  for (const [period, keys] of byPeriod) {
    await run.store.update(keys, (st) => {
      const seen = { ...st, seen: run.nowSeconds };
      if (since === undefined || state.resumeAt(st) !== undefined) return seen;
      return { ...seen, since: Math.ceil(since / period) * period };
    });
  }
  const known = run.store.keys(src.account, src.region).map((
    k,
  ): [string, state.StreamState | undefined] => [k, run.store.get(k)]);
  const gone = state.forgotten(known, found, run.nowSeconds);
  if (gone.length > 0) {
    run.log.info(
      `Forgetting ${gone.length} streams of account "${src.account}" in ${src.region}: not found for ${
        state.FORGET_AFTER_SECONDS / 86_400
      } days`,
      { account: src.account, region: src.region },
    );
    await run.store.update(gone, () => undefined);
  }
}
