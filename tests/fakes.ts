/** main() in-process, with an injected clock and fake CloudWatch clients: the shared pieces of its tests. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CloudWatchApi, Datum, ListMetricsInput, Metric, Query, Role } from "../lib/aws.ts";
import type { MetricPlan } from "../lib/config.ts";
import { type Deps, main } from "../forward.ts";

export const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

/** A metrics entry as the config resolves it: ECS CPUUtilization per service, every default, `over` on top. */
export const metricPlan = (over: Partial<MetricPlan> = {}): MetricPlan => ({
  namespace: "AWS/ECS",
  names: ["CPUUtilization"],
  dimensions: ["ClusterName", "ServiceName"],
  match: {},
  streams: undefined,
  unit: undefined,
  stats: [],
  period: 60,
  delay: 120,
  recheckAfter: 600,
  ...over,
});
export const iso = (ms: number) => new Date(ms).toISOString();
/** A log line as main() writes it at NOW: time, level, message. */
export const logged = (level: "ERROR" | "WARN" | "INFO", message: string) =>
  `${iso(NOW)} ${level} ${message}`;
export const BUNDLED_ENV = {
  PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::111111111111:role/transfer",
  ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::222222222222:role/transfer",
  TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::333333333333:role/transfer",
};

/**
 * Runs main() at NOW; returns its exit code and its stdout and stderr lines. With the bundled config,
 * checkpoints go to a folder of their own unless the test names one: they would go beside it, in the checkout,
 * where they are the user's own.
 */
export async function run(
  argv: string[],
  env: Record<string, string> = {},
  cloudWatch?: (region: string, role: Role | undefined) => CloudWatchApi,
  deps: Partial<Deps> = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    env: argv.includes("--config")
      ? env
      : { STATE_DIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-")), ...env },
    now: () => NOW,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    ...(cloudWatch ? { cloudWatch } : {}),
    ...deps,
  });
  return { code, out, err };
}

/** Every source lists one ECS service, c/s, under the names asked for (both names for a listing of all). */
const oneService = (input: ListMetricsInput): Metric[] =>
  (input.MetricName ? [input.MetricName] : ["CPUUtilization", "MemoryUtilization"]).map((MetricName) => ({
    Namespace: input.Namespace,
    MetricName,
    Dimensions: [{ Name: "ClusterName", Value: "c" }, { Name: "ServiceName", Value: "s" }],
  }));

/**
 * An in-memory CloudWatch per account-region: the metrics `listed` gives, three samples a minute each (none
 * for a query in `silentUnit`). The destination answers GetMetricData with the SampleCount of what was written
 * to it. A role `denied` is refused.
 */
export function fakeFleet(denied: string, o: { listed?: typeof oneService; silentUnit?: string } = {}) {
  const written: { region: string; namespace: string; datum: Datum }[] = [];
  const inDestination = (q: Query, t: number) =>
    written.some((w) =>
      w.namespace === q.Metric.Namespace && w.datum.MetricName === q.Metric.MetricName &&
      w.datum.Timestamp === t && JSON.stringify(w.datum.Dimensions) === JSON.stringify(q.Metric.Dimensions)
    );
  const listed = o.listed ?? oneService;
  const cloudWatch = (region: string, role: Role | undefined): CloudWatchApi => {
    const refuse = () =>
      Promise.reject(Object.assign(new Error(`not authorized for ${denied}`), { name: "AccessDenied" }));
    return {
      listMetrics: (input) =>
        role?.roleArn === denied
          ? refuse()
          : Promise.resolve({ metrics: listed(input), nextToken: undefined }),
      getMetricData: (input) => {
        const ts: number[] = [];
        for (let t = input.start; t < input.end; t += 60) ts.push(t);
        const v = { SampleCount: 3, Sum: 6, Minimum: 1, Maximum: 3 } as Record<string, number>;
        return Promise.resolve({
          nextToken: undefined,
          results: input.queries.map((q) => {
            if (!q.Metric.Namespace.startsWith("Forwarded/")) {
              const silent = q.Unit !== undefined && q.Unit === o.silentUnit;
              return {
                Id: q.Id,
                Timestamps: silent ? [] : ts,
                Values: silent ? [] : ts.map(() => v[q.Stat]!),
              };
            }
            const there = ts.filter((t) => inDestination(q, t));
            return { Id: q.Id, Timestamps: there, Values: there.map(() => 3) };
          }),
        });
      },
      putMetricData: (namespace, datums) => {
        written.push(...datums.map((datum) => ({ region, namespace, datum })));
        return Promise.resolve();
      },
    };
  };
  return { written, cloudWatch };
}
