/**
 * --dashboard: a CloudWatch dashboard in the destination with the forwarder's health (its own metrics, see
 * lib/selfmetrics.ts) and the forwarded metrics of each metrics entry, account by account. Every graph draws
 * a SEARCH expression over a namespace, so account-regions and streams that appear later are drawn without
 * putting the dashboard again. The body depends on the config alone: putting it again changes nothing.
 */
import type { MetricPlan, Plan } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { DASHBOARD_MAX_WIDGETS } from "./limits.ts";
import { SELF_NAMESPACE } from "./selfmetrics.ts";

export const DEFAULT_DASHBOARD = "cloudwatch-forwarder";

/** Dashboards are laid out on a grid 24 columns wide (Dashboard Body Structure and Syntax, widget width). */
const GRID_WIDTH = 24;
const GRAPH = { width: 12, height: 6 };
/** A SEARCH expression returns at most 500 time series (User Guide, CloudWatch search expression syntax). */
const SEARCH_MAX_SERIES = 500;

/** A widget before it is placed on the grid. */
interface Block {
  type: "metric" | "text";
  width: number;
  height: number;
  properties: Record<string, unknown>;
}
type Widget =
  & { type: Block["type"]; x: number; y: number; width: number; height: number }
  & Pick<
    Block,
    "properties"
  >;

export interface Dashboard {
  /** The DashboardBody: JSON. */
  body: string;
  widgets: number;
  /** Whether each account's metrics have graphs of their own; false where those would not fit. */
  byAccount: boolean;
}

/**
 * The dashboard the config calls for: one graph per metric name and account, or, where those would take more
 * widgets than a dashboard holds, one per metric name over all accounts. Throws a ConfigError (one line)
 * where even those do not fit.
 */
export function dashboardFor(plan: Plan, name: string): Dashboard {
  for (const byAccount of [true, false]) {
    const blocks = [...health(plan), ...forwarded(plan, byAccount)];
    if (blocks.length <= DASHBOARD_MAX_WIDGETS) {
      return { body: JSON.stringify({ widgets: place(blocks) }), widgets: blocks.length, byAccount };
    }
  }
  const least = health(plan).length + forwarded(plan, false).length;
  throw new ConfigError([
    `Cannot put dashboard "${name}": even one graph per metric name takes ${least} widgets, and a dashboard holds at most ${DASHBOARD_MAX_WIDGETS}; make dashboards of parts of the config`,
  ]);
}

/** Widgets placed left to right, a row at a time: one wider than what is left of a row starts the next. */
function place(blocks: Block[]): Widget[] {
  let x = 0, y = 0, rowHeight = 0;
  return blocks.map(({ type, width, height, properties }) => {
    if (x + width > GRID_WIDTH) [x, y, rowHeight] = [0, y + rowHeight, 0];
    const w = { type, x, y, width, height, properties };
    x += width;
    rowHeight = Math.max(rowHeight, height);
    return w;
  });
}

const text = (markdown: string): Block => ({
  type: "text",
  width: GRID_WIDTH,
  height: 2,
  properties: { markdown },
});

/** A graph of metrics (`[namespace, name, options]`) or SEARCH expressions, in the destination's region. */
function graph(plan: Plan, title: string, period: number, lines: (string | unknown[])[]): Block {
  const metrics = lines.map((l, i) => typeof l === "string" ? [{ expression: l, id: `e${i + 1}` }] : l);
  return {
    type: "metric",
    ...GRAPH,
    properties: {
      title,
      region: plan.destination.region,
      view: "timeSeries",
      stacked: false,
      period,
      metrics,
    },
  };
}

/**
 * A term in double quotes: an exact match, where a bare one matches parts of names too; a backslash keeps a
 * quote mark from ending it (User Guide, CloudWatch search expression syntax).
 */
const quoted = (s: string) => `"${s.replace(/[\\"']/g, "\\$&")}"`;
/** A namespace or dimension name in a search's schema: bare if only letters and digits, else quoted. */
const schemaName = (s: string) => (/^[A-Za-z0-9]+$/.test(s) ? s : quoted(s));

/**
 * A SEARCH expression: the metrics of `namespace` with exactly the dimensions `dims`, whose metric name and
 * dimension values are those of `terms`.
 */
export function search(
  namespace: string,
  dims: string[],
  terms: [string, string][],
  stat: string,
  period: number,
): string {
  const schema = [namespace, ...dims].map(schemaName).join(",");
  const match = terms.map(([k, v]) => `${schemaName(k)}=${quoted(v)}`).join(" ");
  return `SEARCH('{${schema}} ${match}', '${stat}', ${period})`;
}

/** The forwarder's health: lag, datums and errors per account-region, and the run's time. */
function health(plan: Plan): Block[] {
  if (!plan.selfMetrics) {
    return [
      text(
        "## The forwarder\n`self_metrics` is false in the config: the forwarder writes no metrics of its own",
      ),
    ];
  }
  const period = Math.max(60, Math.ceil(plan.interval / 60) * 60);
  const each = (name: string, stat: string) =>
    search(SELF_NAMESPACE, ["Account", "Region"], [["MetricName", name]], stat, period);
  const own = (name: string, stat: string, label: string) => [SELF_NAMESPACE, name, { stat, label }];
  return [
    text(
      `## The forwarder\nIts own metrics (namespace \`${SELF_NAMESPACE}\`), written after each run. Lag is how far an account-region's oldest stream is behind now.`,
    ),
    graph(plan, "Lag by account-region (s)", period, [each("LagSeconds", "Maximum")]),
    graph(plan, "Datums forwarded by account-region", period, [each("Datums", "Sum")]),
    graph(plan, "Errors by account-region", period, [
      each("Errors", "Sum"),
      own("FailedAccountRegions", "Maximum", "account-regions failed in a run"),
    ]),
    graph(plan, "Run time (s)", period, [own("RunSeconds", "Maximum", "longest run")]),
  ];
}

/** A metrics entry as configured, once for all the accounts that have it, with those accounts. */
function entries(plan: Plan): { m: MetricPlan; accounts: string[] }[] {
  const byKey = new Map<string, { m: MetricPlan; accounts: string[] }>();
  for (const src of plan.sources) {
    for (const m of src.metrics) {
      // Accounts may set their own period or delay; the graphs are the same.
      const key = JSON.stringify([m.namespace, m.names, m.dimensions, m.stats]);
      let entry = byKey.get(key);
      if (entry === undefined) byKey.set(key, entry = { m, accounts: [] });
      if (!entry.accounts.includes(src.account)) entry.accounts.push(src.account);
    }
  }
  return [...byKey.values()];
}

/** Per metrics entry, a graph of each metric name (with its extra statistics) per account, or for all. */
function forwarded(plan: Plan, byAccount: boolean): Block[] {
  const d = plan.destination;
  return entries(plan).flatMap(({ m, accounts }) => {
    const namespace = d.namespace.replaceAll("{namespace}", m.namespace);
    const dims = [...m.dimensions, d.accountDimension, d.regionDimension].filter((x) => x !== null);
    const split = byAccount && d.accountDimension !== null;
    const lines = (name: string, account?: string) =>
      [name, ...m.stats.map((s) => `${name}_${s}`)].map((n) => {
        const terms: [string, string][] = [["MetricName", n]];
        if (account !== undefined) terms.push([d.accountDimension!, account]);
        return search(namespace, dims, terms, "Average", m.period);
      });
    const graphs = m.names.flatMap((name) =>
      split
        ? accounts.map((a) => graph(plan, `${name}: ${a}`, m.period, lines(name, a)))
        : [graph(plan, name, m.period, lines(name))]
    );
    return [
      text(
        `## ${namespace}\n${m.names.join(", ")} of \`${m.namespace}\` by ${
          m.dimensions.join(", ") || "no dimension"
        }: the Average of each period, ${
          split ? "a graph per account" : "all accounts in one graph"
        }, at most ${SEARCH_MAX_SERIES} streams a graph.`,
      ),
      ...graphs,
    ];
  });
}
