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
import { type Emulator, type EmulatorOptions, startEmulator } from "../lib/emulator.ts";
import { readStore } from "../lib/store.ts";
import {
  cloudWatch,
  type ProcessResult,
  runForwarder,
  type RunOptions,
  type Started,
  startForwarder,
} from "./helpers.ts";

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

/**
 * What a run that lists says of "big": it has no Acme/App (see seedFleet), which the config asks of every
 * account. Runs that keep the listing (discovery_interval) say nothing of it.
 */
export const BIG_LACKS_APP =
  `No metric Latency of namespace Acme/App with the dimensions Service was found in account "big" in eu-west-1: the entry forwards nothing from there (ListMetrics lists what has had data in the past two weeks)\n`;

/** Writes a config and returns its path, in a folder of its own so that its state file is fresh. */
export function writeConfig(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-e2e-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(file, text);
  return file;
}

export const forwarderEnv = (emu: Emulator): Record<string, string> => ({
  AWS_ENDPOINT_URL: emu.url,
  AWS_ACCESS_KEY_ID: `AKIA${DEST}`,
  AWS_SECRET_ACCESS_KEY: "secret",
  AWS_REGION: "eu-west-1",
});

/**
 * Seeds the fleet over [from, to): production and acceptance share cluster and service names, production is
 * in two regions, and "big" has `bigServices` services (by default enough for more than 500 matching metrics
 * a name) and no Acme/App, as accounts of a fleet differ. Acme/App gets Value, StatisticValues and
 * Values/Counts mixed in the same minutes.
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

/** One statistic of one metric, read from an account and region. */
interface Read {
  account: string;
  region: string;
  metric: Metric;
  stat: string;
}

/** Per period, `[time, value]`, oldest first. */
type Series = [number, number][];

/**
 * GetMetricData takes up to 500 queries a call (API reference: GetMetricData). Reading in full calls keeps a
 * check of the whole fleet to a dozen calls per account-region, far under the emulator's 50 calls a second.
 */
const QUERIES_PER_CALL = 500;

/** Reads every statistic asked for over [from, to), with 60 s periods, in as few calls as the API allows. */
async function readAll(emu: Emulator, reads: Read[], from: number, to: number): Promise<Series[]> {
  const out: Series[] = reads.map(() => []);
  const bySource = new Map<string, number[]>();
  reads.forEach((r, i) => {
    const k = JSON.stringify([r.account, r.region]);
    bySource.set(k, [...(bySource.get(k) ?? []), i]);
  });
  for (const [k, indexes] of bySource) {
    const [account, region] = JSON.parse(k) as [string, string];
    const cw = cloudWatch(emu.url, account, region);
    for (let b = 0; b < indexes.length; b += QUERIES_PER_CALL) {
      const batch = indexes.slice(b, b + QUERIES_PER_CALL);
      const queries = batch.map((i, q) => ({
        Id: `q${q}`,
        MetricStat: { Metric: reads[i]!.metric, Period: 60, Stat: reads[i]!.stat },
      }));
      let token: string | undefined;
      do {
        const r = await cw.send(
          new GetMetricDataCommand({
            StartTime: new Date(from),
            EndTime: new Date(to),
            ScanBy: "TimestampAscending",
            MetricDataQueries: queries,
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const m of r.MetricDataResults!) {
          const series = out[batch[Number(m.Id!.slice(1))]!]!;
          m.Timestamps!.forEach((t, n) => series.push([t.getTime(), m.Values![n]!]));
        }
        token = r.NextToken;
      } while (token);
    }
  }
  return out;
}

/** Every metric of a namespace, each once: a listing may name one more than once (see --list-repeat-rate). */
async function listAll(emu: Emulator, account: string, region: string, namespace: string) {
  const out = new Map<string, Metric>();
  let token: string | undefined;
  do {
    const r = await cloudWatch(emu.url, account, region).send(
      new ListMetricsCommand({ Namespace: namespace, ...(token ? { NextToken: token } : {}) }),
    );
    for (const m of r.Metrics!) {
      const dims = m.Dimensions!.map((d) => [d.Name, d.Value]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
      out.set(JSON.stringify([m.MetricName, dims]), m);
    }
    token = r.NextToken;
  } while (token);
  return [...out.values()];
}

/**
 * Asserts that for every source stream, every period of [from, to) has the same five statistics in the
 * destination, each extra statistic (p99) once a period with the source's value, and that the destination
 * holds nothing else. Returns the number of periods compared.
 */
export async function assertForwarded(emu: Emulator, from: number, to: number, sources = fleetSources()) {
  const reads: Read[] = [];
  const read = (account: string, region: string, metric: Metric, stat: string) =>
    reads.push({ account, region, metric, stat }) - 1;
  const checks: {
    label: string;
    source: number[];
    dest: number[];
    extras: { stat: string; source: number; count: number; value: number }[];
  }[] = [];
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
        const dims: Dimension[] = [...m.Dimensions!, { Name: "SourceAccount", Value: name }, {
          Name: "SourceRegion",
          Value: region,
        }];
        const target = (metricName: string) => ({
          Namespace: `Forwarded/${namespace}`,
          MetricName: metricName,
          Dimensions: dims,
        });
        const dest = (metricName: string, stat: string) => read(DEST, "eu-west-1", target(metricName), stat);
        checks.push({
          label: `${name}/${region}/${m.MetricName}/${m.Dimensions!.map((d) => d.Value).join(",")}`,
          source: STATS.map((stat) => read(account, region, m, stat)),
          dest: STATS.map((stat) => dest(m.MetricName!, stat)),
          extras: extra.map((stat) => ({
            stat,
            source: read(account, region, m, stat),
            count: dest(`${m.MetricName}_${stat}`, "SampleCount"),
            value: dest(`${m.MetricName}_${stat}`, "Maximum"),
          })),
        });
      }
    }
  }
  const series = await readAll(emu, reads, from, to);
  const byStat = (indexes: number[]) => Object.fromEntries(STATS.map((s, i) => [s, series[indexes[i]!]]));
  let compared = 0;
  for (const c of checks) {
    assert.deepEqual(byStat(c.dest), byStat(c.source), c.label);
    const periods = series[c.source[0]!]!;
    assert.ok(periods.length > 0, `${c.label} has data to compare`);
    compared += periods.length;
    for (const x of c.extras) {
      const source = series[x.source]!;
      assert.deepEqual(series[x.value], source, `${c.label} ${x.stat}`);
      // One datum a period: a percentile written twice keeps its Maximum, but not its SampleCount.
      assert.deepEqual(series[x.count], source.map(([t]) => [t, 1]), `${c.label} ${x.stat} once a period`);
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

/** Seeds samples of one acceptance service's CPUUtilization (cluster "shared") at `t`, as AWS publishes them. */
export function seedService(emu: Emulator, service: string, t: number, values: number[]) {
  emu.seed({
    account: ACCOUNTS.acceptance,
    region: "eu-west-1",
    namespace: "AWS/ECS",
    name: "CPUUtilization",
    timestamp: t,
    values,
    dimensions: { ClusterName: "shared", ServiceName: service },
    unit: "Percent",
  });
}

/** Seeds five acceptance services with one sample set a minute over [from, to), readable at once. */
export function seedServices(emu: Emulator, from: number, to: number) {
  for (let t = from; t < to; t += MIN) {
    for (let s = 0; s < 5; s++) seedService(emu, `svc-${s}`, t, [s, s + 1, s + 2.5]);
  }
}

/** GetMetricData metrics the emulator billed, over every account and region. */
export const billedGetMetricData = (emu: Emulator) =>
  Object.values(emu.counts()).flatMap((r) => Object.values(r)).reduce(
    (n, c) => n + (c.billed["GetMetricData"] ?? 0),
    0,
  );

/** Options of one run in a fleet: another command (see helpers.ts), and variables added to the environment. */
export interface FleetRunOptions extends RunOptions {
  env?: Record<string, string>;
}

export interface Fleet {
  emu: Emulator;
  /** The config file, in a folder of its own. */
  config: string;
  /** The state database, beside the config. */
  stateFile: string;
  /** The end of the seeded data, on a minute; runs are placed in minutes before it. */
  now: number;
  /** Runs forward.ts at --now `minutesAgo` minutes before `now`. */
  run(minutesAgo: number, extra?: string[], options?: FleetRunOptions): Promise<ProcessResult>;
  /** Starts the same, for signals while it runs. */
  start(minutesAgo: number, extra?: string[], options?: FleetRunOptions): Started;
}

/**
 * Runs `f` against an emulator seeded with the fleet for the `minutes` before now, "big" having `services`
 * services, and the fleet's config without its ExternalId.
 */
/**
 * The fault suites count the destination's writes call by call: the forwarder's own metrics, a write of
 * their own after each run, are left out there (forward_test and forward_e2e_test cover them).
 */
const OWN_METRICS_OFF = "self_metrics: false\n";

export async function withFleet(
  o: { minutes: number; services: number; emulator?: EmulatorOptions },
  f: (fleet: Fleet) => Promise<void>,
) {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const emu = await startEmulator(o.emulator);
  try {
    await seedFleet(emu, now - o.minutes * MIN, now, o.services);
    const config = writeConfig(`${OWN_METRICS_OFF}${CONFIG.replace("    external_id: prod-ext-id\n", "")}`);
    const args = (minutesAgo: number, extra: string[]) => [
      "--config",
      config,
      "--now",
      new Date(now - minutesAgo * MIN).toISOString(),
      ...extra,
    ];
    const env = (x: FleetRunOptions) => ({ ...forwarderEnv(emu), ...x.env });
    await f({
      emu,
      config,
      stateFile: path.join(path.dirname(config), "forwarder-state.db"),
      now,
      run: (minutesAgo, extra = [], x = {}) => runForwarder(args(minutesAgo, extra), env(x), x),
      start: (minutesAgo, extra = [], x = {}) => startForwarder(args(minutesAgo, extra), env(x), x),
    });
  } finally {
    await emu.stop();
  }
}

/** Asserts that a run ended with exit code 0. */
export const ok = (r: ProcessResult) => assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);

/** The first period a run at `minutesAgo` forwards for a new stream, with the default 60 s period and 120 s delay. */
export const firstPeriod = (now: number, minutesAgo: number) => now - (minutesAgo + 3) * MIN;

/** What the emulator counted in the destination for an operation: calls made, or units billed. */
export const destCount = (emu: Emulator, op: string, kind: "calls" | "billed" = "billed") =>
  emu.counts()[DEST]?.["eu-west-1"]?.[kind][op] ?? 0;

/** How many streams of a state database have periods in doubt. */
export const streamsInDoubt = (stateFile: string) =>
  Object.values(readStore(stateFile).streams).filter((s) => s.doubt?.length).length;

/** The run's word that its store's last run was longer ago than two intervals, at `lastRun` (epoch ms). */
export const staleStore = (stateFile: string, lastRun: number) =>
  `State file "${stateFile}": its last run was at ${
    new Date(lastRun).toISOString().replace(".000Z", "Z")
  }, so the periods owed are read from the destination before they are written`;

/** The run's word that its store is not the file the previous run left there. */
export const movedStore = (stateFile: string) =>
  `State file "${stateFile}": it was moved, copied or restored since its last run, so the periods owed are read from the destination before they are written`;

export interface OldServices {
  emu: Emulator;
  /** The start, on a minute: the emulator's clock (`clock.now`) starts there, and the data ends 5 hours before. */
  T: number;
  clock: { now: number };
  /** Runs forward.ts with the one-source config at --now `at` (epoch ms). */
  run(at: number, extra?: string[], options?: RunOptions): Promise<ProcessResult>;
  /** Asserts that the seeded hour is in the destination, exactly once. */
  check(): Promise<number>;
}

/**
 * Runs `f` against an emulator on a clock the test moves, seeded with five acceptance services over the hour
 * [T - 6 h, T - 5 h): data over 3 hours old, which CloudWatch may show only hours after it is written.
 */
export async function withOldServices(f: (o: OldServices) => Promise<void>) {
  const T = Math.floor(Date.now() / MIN) * MIN;
  const clock = { now: T };
  const emu = await startEmulator({ now: () => clock.now });
  try {
    seedServices(emu, T - 360 * MIN, T - 300 * MIN);
    const config = writeConfig(`${OWN_METRICS_OFF}${ACCEPTANCE_CONFIG}`);
    await f({
      emu,
      T,
      clock,
      run: (at, extra = [], options = {}) =>
        runForwarder(
          ["--config", config, "--now", new Date(at).toISOString(), ...extra],
          forwarderEnv(emu),
          options,
        ),
      check: () =>
        assertForwarded(emu, T - 360 * MIN, T - 300 * MIN, [[
          "acceptance",
          ACCOUNTS.acceptance,
          "eu-west-1",
        ]]),
    });
  } finally {
    await emu.stop();
  }
}

/**
 * svc-0's forwarded CPUUtilization SampleCount in the destination, per period of [from, to), oldest first, for
 * the source account (as the destination names it) and Region.
 */
export async function forwardedCounts(
  emu: Emulator,
  account: string,
  region: string,
  from: number,
  to: number,
) {
  const r = await cloudWatch(emu.url, DEST).send(
    new GetMetricDataCommand({
      StartTime: new Date(from),
      EndTime: new Date(to),
      MetricDataQueries: [{
        Id: "q",
        MetricStat: {
          Metric: {
            Namespace: "Forwarded/AWS/ECS",
            MetricName: "CPUUtilization",
            Dimensions: [
              { Name: "ClusterName", Value: "shared" },
              { Name: "ServiceName", Value: "svc-0" },
              { Name: "SourceAccount", Value: account },
              { Name: "SourceRegion", Value: region },
            ],
          },
          Period: 60,
          Stat: "SampleCount",
        },
      }],
      ScanBy: "TimestampAscending",
    }),
  );
  const result = r.MetricDataResults![0]!;
  return (result.Timestamps ?? []).map((t, i) => ({ t: t.getTime(), count: result.Values![i]! }));
}
