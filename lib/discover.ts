/**
 * Discovery: ListMetrics, every page, narrowed to the configured metrics and dimension sets, in as few pages
 * as the last listing suggests. Static streams (full dimension values in the config) skip ListMetrics.
 */
import type { CloudWatchApi, Dimension, Metric } from "./aws.ts";
import type { MetricPlan } from "./config.ts";
import { LIST_MAX_DIMENSION_FILTERS } from "./limits.ts";

/** One source metric to forward: a metric name with one full set of dimension values. */
export interface Stream {
  plan: MetricPlan;
  name: string;
  /** Sorted by name, so that a stream has one identity however ListMetrics orders them. */
  dims: Dimension[];
}

/** A glob with `*` (any run of characters) and `?` (one character); everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "s");
}

const sorted = (dims: Dimension[]) =>
  [...dims].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));

/** Each plan's globs, compiled once: a listing tests them against every metric it returns. */
const compiled = new WeakMap<MetricPlan, [string, RegExp][]>();

/** Whether a listed metric has exactly the plan's dimension names and values that match its globs. */
export function selects(plan: MetricPlan, dims: Dimension[]): boolean {
  if (dims.length !== plan.dimensions.length) return false;
  if (!dims.every((d) => plan.dimensions.includes(d.Name))) return false;
  let globs = compiled.get(plan);
  if (!globs) compiled.set(plan, globs = Object.entries(plan.match).map(([n, g]) => [n, globToRegExp(g)]));
  return globs.every(([name, re]) => {
    const d = dims.find((x) => x.Name === name);
    return d !== undefined && re.test(d.Value);
  });
}

/** ListMetrics filters for a plan: its dimension names, with the value where the match has no wildcard. */
export function listFilters(plan: MetricPlan): { Name: string; Value?: string }[] {
  return plan.dimensions.slice(0, LIST_MAX_DIMENSION_FILTERS).map((Name) => {
    const glob = plan.match[Name];
    return glob !== undefined && !/[*?]/.test(glob) ? { Name, Value: glob } : { Name };
  });
}

/** How many metrics the last listing of a plan returned: namespace-wide (`wide`), and per metric name. */
export interface PlanCounts {
  wide?: number;
  names: Record<string, number>;
}
/** Per plan (see planId), what its last listing returned: the next listing picks the cheaper way from it. */
export type ListingCounts = Record<string, PlanCounts>;

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
  const streams = new Map<string, Stream>();
  const add = (plan: MetricPlan, name: string, dims: Dimension[]) => {
    const s = { plan, name, dims: sorted(dims) };
    streams.set(JSON.stringify([plan.namespace, name, s.dims, plan.period]), s);
  };
  const counts: ListingCounts = {};
  const listings: Promise<void>[] = [];
  for (const s of staticStreams(plans)) add(s.plan, s.name, s.dims);
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
  return { streams: [...streams.values()], counts };
}

/** The streams the config names in full (`streams:`): they need no listing. */
export function staticStreams(plans: MetricPlan[]): Stream[] {
  return plans.flatMap((plan) =>
    (plan.streams ?? []).flatMap((values) =>
      plan.names.map((name) => ({
        plan,
        name,
        dims: sorted(Object.entries(values).map(([Name, Value]) => ({ Name, Value }))),
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
): Stream[] {
  const out: Stream[] = [];
  for (const [namespace, name, pairs, period] of found) {
    const dims = pairs.map(([Name, Value]) => ({ Name, Value }));
    const plan = plans.find((p) =>
      !p.streams && p.namespace === namespace && p.period === period && p.names.includes(name) &&
      selects(p, dims)
    );
    if (plan) out.push({ plan, name, dims });
  }
  return out;
}
