/**
 * Discovery: ListMetrics, every page, narrowed to the configured metrics and dimension sets.
 * Static streams (full dimension values in the config) skip ListMetrics altogether.
 */
import type { CloudWatchApi, Dimension } from "./aws.ts";
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

/** Whether a listed metric has exactly the plan's dimension names and values that match its globs. */
export function selects(plan: MetricPlan, dims: Dimension[]): boolean {
  if (dims.length !== plan.dimensions.length) return false;
  if (!dims.every((d) => plan.dimensions.includes(d.Name))) return false;
  return Object.entries(plan.match).every(([name, glob]) => {
    const d = dims.find((x) => x.Name === name);
    return d !== undefined && globToRegExp(glob).test(d.Value);
  });
}

/** ListMetrics filters for a plan: its dimension names, with the value where the match has no wildcard. */
export function listFilters(plan: MetricPlan): { Name: string; Value?: string }[] {
  return plan.dimensions.slice(0, LIST_MAX_DIMENSION_FILTERS).map((Name) => {
    const glob = plan.match[Name];
    return glob !== undefined && !/[*?]/.test(glob) ? { Name, Value: glob } : { Name };
  });
}

/**
 * Lists the streams of every plan. `recentOnly` asks ListMetrics for metrics active in the past three hours
 * (RecentlyActive=PT3H), which is enough when nothing older is owed and keeps the listing short.
 */
export async function discover(
  api: Pick<CloudWatchApi, "listMetrics">,
  plans: MetricPlan[],
  recentOnly: boolean,
): Promise<Stream[]> {
  const streams = new Map<string, Stream>();
  const add = (plan: MetricPlan, name: string, dims: Dimension[]) => {
    const s = { plan, name, dims: sorted(dims) };
    streams.set(JSON.stringify([plan.namespace, name, s.dims, plan.period]), s);
  };
  for (const plan of plans) {
    for (const name of plan.names) {
      if (plan.streams) {
        for (const values of plan.streams) {
          add(plan, name, Object.entries(values).map(([Name, Value]) => ({ Name, Value })));
        }
        continue;
      }
      let nextToken: string | undefined;
      do {
        const page = await api.listMetrics({
          Namespace: plan.namespace,
          MetricName: name,
          Dimensions: listFilters(plan),
          ...(recentOnly ? { RecentlyActive: "PT3H" as const } : {}),
          ...(nextToken ? { NextToken: nextToken } : {}),
        });
        for (const m of page.metrics) if (selects(plan, m.Dimensions)) add(plan, name, m.Dimensions);
        nextToken = page.nextToken;
      } while (nextToken);
    }
  }
  return [...streams.values()];
}
