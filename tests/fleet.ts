/**
 * A test fleet for end-to-end runs: three source accounts in two regions, seeded into the emulator, and the
 * check that the destination holds exactly the source's statistics.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GetMetricDataCommand, ListMetricsCommand, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import type { Dimension, Metric } from "@aws-sdk/client-cloudwatch";
import type { Emulator } from "../lib/emulator.ts";
import { cloudWatch } from "./helpers.ts";

export const DEST = "999999999999";
export const ACCOUNTS = {
  production: "111111111111",
  acceptance: "222222222222",
  big: "333333333333",
} as const;
export const MIN = 60_000;

export const CONFIG = `
destination:
  region: eu-west-1
accounts:
  - name: production
    role_arn: arn:aws:iam::111111111111:role/transfer
    external_id: prod-ext-id
    regions: [eu-west-1, us-east-1]
  - name: acceptance
    role_arn: arn:aws:iam::222222222222:role/transfer
  - name: big
    role_arn: arn:aws:iam::333333333333:role/transfer
metrics:
  - namespace: AWS/ECS
    names: [CPUUtilization, MemoryUtilization]
    dimensions: [ClusterName, ServiceName]
    unit: Percent
  - namespace: Acme/App
    names: [Latency]
    dimensions: [Service]
    stats: [p99]
`;

/** Writes a config and returns its path, in a folder of its own so that its state file is fresh. */
export function writeConfig(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-e2e-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(file, text);
  return file;
}

export const forwarderEnv = (emu: Emulator) => ({
  AWS_ENDPOINT_URL: emu.url,
  AWS_ACCESS_KEY_ID: `AKIA${DEST}`,
  AWS_SECRET_ACCESS_KEY: "secret",
  AWS_REGION: "eu-west-1",
});

/**
 * Seeds the fleet over [from, to): production and acceptance share cluster and service names, production is
 * in two regions, and "big" has `bigServices` services (by default enough for more than 500 matching metrics
 * a name). Acme/App gets Value, StatisticValues and Values/Counts mixed in the same minutes.
 */
export async function seedFleet(emu: Emulator, from: number, to: number, bigServices = 520) {
  const sources: [string, string, number][] = [
    [ACCOUNTS.production, "eu-west-1", 3],
    [ACCOUNTS.production, "us-east-1", 3],
    [ACCOUNTS.acceptance, "eu-west-1", 3],
    [ACCOUNTS.big, "eu-west-1", bigServices],
  ];
  let x = 1;
  const next = () => (x = (x * 48271) % 2147483647) / 2147483647;
  for (const [account, region, services] of sources) {
    for (let t = from; t < to; t += MIN) {
      for (let s = 0; s < services; s++) {
        for (const name of ["CPUUtilization", "MemoryUtilization"]) {
          const values = [0, 1, 2].map(() => Math.round(next() * 400) / 4);
          values.forEach((v, i) =>
            emu.seed({
              account,
              region,
              namespace: "AWS/ECS",
              name,
              timestamp: t + i * 20_000,
              values: [v],
              unit: "Percent",
              dimensions: { ClusterName: "shared", ServiceName: `svc-${s}` },
            })
          );
          // Cluster-level metrics have another dimension set and must not be forwarded.
          emu.seed({
            account,
            region,
            namespace: "AWS/ECS",
            name,
            timestamp: t,
            values: [1],
            dimensions: { ClusterName: "shared" },
          });
        }
      }
    }
    if (services > 3) continue;
    const cw = cloudWatch(emu.url, account, region);
    for (let t = from; t < to; t += MIN) {
      const at = (s: number) => new Date(t + s * 1000);
      const dims = [{ Name: "Service", Value: "checkout" }];
      await cw.send(
        new PutMetricDataCommand({
          Namespace: "Acme/App",
          MetricData: [
            {
              MetricName: "Latency",
              Dimensions: dims,
              Timestamp: at(1),
              Value: Math.round(next() * 800) / 8,
            },
            {
              MetricName: "Latency",
              Dimensions: dims,
              Timestamp: at(2),
              StatisticValues: { SampleCount: 5, Sum: 50, Minimum: 10, Maximum: 10 },
            },
            {
              MetricName: "Latency",
              Dimensions: dims,
              Timestamp: at(3),
              Values: [1.5, 20, 300],
              Counts: [4, 2, 1],
            },
          ],
        }),
      );
    }
  }
}

const STATS = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"];

/** Every statistic, per period, of a metric: `stat -> [time, value][]`. */
async function statsOf(
  emu: Emulator,
  account: string,
  region: string,
  metric: Metric,
  from: number,
  to: number,
  extra: string[] = [],
) {
  const r = await cloudWatch(emu.url, account, region).send(
    new GetMetricDataCommand({
      StartTime: new Date(from),
      EndTime: new Date(to),
      ScanBy: "TimestampAscending",
      MetricDataQueries: [...STATS, ...extra].map((stat, i) => ({
        Id: `s${i}`,
        MetricStat: { Metric: metric, Period: 60, Stat: stat },
      })),
    }),
  );
  return Object.fromEntries(
    r.MetricDataResults!.map((
      m,
      i,
    ) => [[...STATS, ...extra][i], m.Timestamps!.map((t, k) => [t.getTime(), m.Values![k]])]),
  );
}

async function listAll(emu: Emulator, account: string, region: string, namespace: string) {
  const out: Metric[] = [];
  let token: string | undefined;
  do {
    const r = await cloudWatch(emu.url, account, region).send(
      new ListMetricsCommand({ Namespace: namespace, ...(token ? { NextToken: token } : {}) }),
    );
    out.push(...r.Metrics!);
    token = r.NextToken;
  } while (token);
  return out;
}

/**
 * Asserts that for every source stream, every period of [from, to) has the same five statistics in the
 * destination, and that the destination holds nothing else. Returns the number of periods compared.
 */
export async function assertForwarded(emu: Emulator, from: number, to: number, sources = fleetSources()) {
  let compared = 0;
  let expectedMetrics = 0;
  for (const [name, account, region] of sources) {
    for (
      const [namespace, dimsWanted, extra] of [["AWS/ECS", ["ClusterName", "ServiceName"], []], ["Acme/App", [
        "Service",
      ], ["p99"]]] as const
    ) {
      const metrics = (await listAll(emu, account, region, namespace)).filter((m) =>
        m.Dimensions!.length === dimsWanted.length
      );
      expectedMetrics += metrics.length * (1 + extra.length);
      for (const m of metrics) {
        const source = await statsOf(emu, account, region, m, from, to, [...extra]);
        const dims: Dimension[] = [...m.Dimensions!, { Name: "SourceAccount", Value: name }, {
          Name: "SourceRegion",
          Value: region,
        }];
        const dest = await statsOf(
          emu,
          DEST,
          "eu-west-1",
          { Namespace: `Forwarded/${namespace}`, MetricName: m.MetricName, Dimensions: dims },
          from,
          to,
        );
        const label = `${name}/${region}/${m.MetricName}/${m.Dimensions!.map((d) => d.Value).join(",")}`;
        assert.deepEqual(dest, Object.fromEntries(STATS.map((s) => [s, source[s]])), label);
        assert.ok(source["SampleCount"]!.length > 0, `${label} has data to compare`);
        compared += source["SampleCount"]!.length;
        for (const stat of extra) {
          const p = await statsOf(
            emu,
            DEST,
            "eu-west-1",
            { Namespace: `Forwarded/${namespace}`, MetricName: `${m.MetricName}_${stat}`, Dimensions: dims },
            from,
            to,
          );
          assert.deepEqual(p["Maximum"], source[stat], `${label} ${stat}`);
        }
      }
    }
  }
  const inDestination = (await listAll(emu, DEST, "eu-west-1", "Forwarded/AWS/ECS")).length +
    (await listAll(emu, DEST, "eu-west-1", "Forwarded/Acme/App")).length;
  assert.equal(
    inDestination,
    expectedMetrics,
    "the destination holds the forwarded metrics and nothing else",
  );
  return compared;
}

export const fleetSources = (): [string, string, string][] => [
  ["production", ACCOUNTS.production, "eu-west-1"],
  ["production", ACCOUNTS.production, "us-east-1"],
  ["acceptance", ACCOUNTS.acceptance, "eu-west-1"],
  ["big", ACCOUNTS.big, "eu-west-1"],
];

/** A config with one source, acceptance, and its ECS service metrics. */
export const ACCEPTANCE_CONFIG = `
destination: { region: eu-west-1 }
accounts: [{ name: acceptance, role_arn: "arn:aws:iam::222222222222:role/transfer" }]
metrics: [{ namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName, ServiceName] }]
`;

/** Seeds five acceptance services with one sample set a minute over [from, to), readable at once. */
export function seedServices(emu: Emulator, from: number, to: number) {
  for (let t = from; t < to; t += MIN) {
    for (let s = 0; s < 5; s++) {
      emu.seed({
        account: ACCOUNTS.acceptance,
        region: "eu-west-1",
        namespace: "AWS/ECS",
        name: "CPUUtilization",
        timestamp: t,
        values: [s, s + 1, s + 2.5],
        dimensions: { ClusterName: "shared", ServiceName: `svc-${s}` },
        unit: "Percent",
      });
    }
  }
}
