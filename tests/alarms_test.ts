/** --alarms and --dashboard: what they build from the config, what they change, and their options. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALARM_PREFIX, alarmChanges, alarmPeriod, alarmsFor, putAlarms } from "../lib/alarms.ts";
import type { MetricAlarm, MonitoringApi } from "../lib/aws.ts";
import { type Args, parseArgs } from "../lib/cli.ts";
import { loadConfig, type Plan } from "../lib/config.ts";
import { dashboardFor, search } from "../lib/dashboard.ts";
import { ConfigError } from "../lib/errors.ts";
import { logger } from "../lib/log.ts";
import { type Connect, monitor } from "../lib/monitoring.ts";
import { selfMetrics } from "../lib/selfmetrics.ts";

const SNS = "arn:aws:sns:eu-west-1:999999999999:ops";

/** A config of `accounts` (name: regions), with the ECS entry of the README and an extra statistic. */
function plan(accounts: Record<string, string[]>, top = "", entry = ""): Plan {
  const list = Object.entries(accounts).map(([name, regions]) =>
    `  - name: ${name}\n    regions: [${regions.join(", ")}]\n`
  ).join("");
  const text = `${top}destination: { region: eu-west-1 }
accounts:
${list}metrics:
  - namespace: AWS/ECS
    names: [CPUUtilization, MemoryUtilization]
    dimensions: [ClusterName, ServiceName]
    stats: [p99]
${entry}`;
  return loadConfig(text, "f.yaml", {});
}

test("alarmsFor() makes one alarm for runs that stop and one per account-region that falls behind", () => {
  const alarms = alarmsFor(plan({ production: ["eu-west-1", "us-east-1"], test: ["eu-west-1"] }), [SNS]);
  assert.deepEqual(alarms.map((a) => a.AlarmName), [
    "cloudwatch-forwarder-stopped",
    "cloudwatch-forwarder-lag-production-eu-west-1",
    "cloudwatch-forwarder-lag-production-us-east-1",
    "cloudwatch-forwarder-lag-test-eu-west-1",
  ]);
  const [stopped, lag] = alarms;
  assert.deepEqual(
    { ...stopped, AlarmDescription: undefined },
    {
      AlarmName: "cloudwatch-forwarder-stopped",
      AlarmDescription: undefined,
      ActionsEnabled: true,
      AlarmActions: [SNS],
      OKActions: [SNS],
      InsufficientDataActions: [],
      Namespace: "CloudWatchForwarder",
      Period: 300,
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      MetricName: "RunSeconds",
      Dimensions: [],
      Statistic: "SampleCount",
      Threshold: 1,
      ComparisonOperator: "LessThanThreshold",
      TreatMissingData: "breaching",
    },
  );
  // The defaults: a delay of 120 s and periods of 60 s, and three runs of 60 s missed.
  assert.deepEqual(
    [lag!.MetricName, lag!.Statistic, lag!.ComparisonOperator, lag!.Threshold, lag!.TreatMissingData],
    ["LagSeconds", "Maximum", "GreaterThanThreshold", 120 + 60 + 3 * 60, "missing"],
  );
  assert.deepEqual(lag!.Dimensions, [{ Name: "Account", Value: "production" }, {
    Name: "Region",
    Value: "eu-west-1",
  }]);
});

test("alarmsFor() takes each account-region's longest delay plus period, and the interval, for its threshold", () => {
  const p = plan(
    { a: ["eu-west-1"], b: ["eu-west-1"] },
    "interval: 120\n",
    "  - namespace: Acme/App\n    names: [Latency]\n    dimensions: [Service]\n    period: 3600\n    delay: 600\n    regions: [eu-west-1]\n",
  );
  const thresholds = alarmsFor(p, []).slice(1).map((a) => a.Threshold);
  assert.deepEqual(thresholds, [600 + 3600 + 3 * 120, 600 + 3600 + 3 * 120]);
});

test("alarmPeriod() holds three runs, five minutes at least, in whole minutes", () => {
  const table: [number, number][] = [[10, 300], [60, 300], [100, 300], [120, 360], [130, 420], [600, 1800], [
    86_400,
    259_200,
  ]];
  for (const [interval, period] of table) assert.equal(alarmPeriod(interval), period, `interval ${interval}`);
});

test("the alarms watch exactly the metrics and dimensions the forwarder writes about itself", () => {
  const p = plan({ production: ["eu-west-1", "us-east-1"], test: ["eu-west-1"] });
  const run = { plan: p, nowSeconds: 0 } as unknown as Parameters<typeof selfMetrics>[0];
  const totals = { datums: 1, streams: 1 } as unknown as NonNullable<Parameters<typeof selfMetrics>[1][0]>;
  const written = selfMetrics(run, p.sources.map(() => totals), p.sources.map(() => 100), 2).map((d) =>
    JSON.stringify([d.MetricName, d.Dimensions])
  );
  for (const a of alarmsFor(p, [])) {
    assert.equal(a.Namespace, "CloudWatchForwarder");
    assert.ok(written.includes(JSON.stringify([a.MetricName, a.Dimensions])), a.AlarmName);
  }
});

const alarm = (name: string, o: Partial<MetricAlarm> = {}): MetricAlarm => ({
  ...alarmsFor(plan({ a: ["eu-west-1"] }), [SNS, "arn:aws:sns:eu-west-1:999999999999:b"])[1]!,
  AlarmName: name,
  ...o,
});

test("alarmChanges() puts what is new or differs, and deletes only lag alarms no longer configured", () => {
  const lag = `${ALARM_PREFIX}lag-a-eu-west-1`;
  const table: { name: string; existing: MetricAlarm[]; want: [string[], string[], string[], number] }[] = [
    { name: "none yet", existing: [], want: [[lag], [], [], 0] },
    { name: "the same", existing: [alarm(lag)], want: [[], [], [], 1] },
    {
      name: "the same, lists and dimensions in another order",
      existing: [alarm(lag, {
        AlarmActions: [...alarm(lag).AlarmActions].reverse(),
        Dimensions: [...alarm(lag).Dimensions].reverse(),
      })],
      want: [[], [], [], 1],
    },
    { name: "another threshold", existing: [alarm(lag, { Threshold: 1 })], want: [[], [lag], [], 0] },
    { name: "actions left out", existing: [alarm(lag, { OKActions: [] })], want: [[], [lag], [], 0] },
    {
      name: "an account-region gone, a user's alarm under the prefix, an alarm of another name",
      existing: [
        alarm(lag),
        alarm(`${ALARM_PREFIX}lag-old-eu-west-1`),
        alarm(`${ALARM_PREFIX}my-own`),
        alarm("other"),
      ],
      want: [[], [], [`${ALARM_PREFIX}lag-old-eu-west-1`], 1],
    },
  ];
  for (const { name, existing, want } of table) {
    const c = alarmChanges([alarm(lag)], existing);
    assert.deepEqual(
      [c.create.map((a) => a.AlarmName), c.update.map((a) => a.AlarmName), c.remove, c.unchanged],
      want,
      name,
    );
  }
});

/** A destination's alarms in memory, paged as DescribeAlarms pages them, with the calls made. */
function fakeDestination(existing: MetricAlarm[] = []) {
  const alarms = new Map(existing.map((a) => [a.AlarmName, a]));
  const calls: string[] = [];
  const api: MonitoringApi = {
    describeAlarms: ({ prefix, maxRecords, nextToken }) => {
      calls.push("DescribeAlarms");
      const all = [...alarms.values()].filter((a) => a.AlarmName.startsWith(prefix));
      const from = Number(nextToken ?? 0);
      const end = from + Math.min(maxRecords, 2);
      return Promise.resolve({
        alarms: all.slice(from, end),
        nextToken: end < all.length ? String(end) : undefined,
      });
    },
    putMetricAlarm: (
      a,
    ) => (calls.push(`PutMetricAlarm ${a.AlarmName}`), alarms.set(a.AlarmName, a), Promise.resolve()),
    deleteAlarms: (
      names,
    ) => (calls.push(`DeleteAlarms ${names.join(" ")}`),
      names.forEach((n) => alarms.delete(n)),
      Promise.resolve()),
    putDashboard: (name) => (calls.push(`PutDashboard ${name}`), Promise.resolve(["/widgets/0: a warning"])),
  };
  return { api, alarms, calls };
}

test("putAlarms() reads every page, then puts and deletes; run again, it only reads", async () => {
  const old = alarm(`${ALARM_PREFIX}lag-old-eu-west-1`);
  const d = fakeDestination([old, alarm("unrelated")]);
  const wanted = alarmsFor(plan({ a: ["eu-west-1", "us-east-1"], b: ["eu-west-1"] }), [SNS]);
  const out: string[] = [];
  await putAlarms(d.api, wanted, (l) => out.push(l));
  assert.deepEqual(out, [
    ...wanted.map((a) => `Created alarm ${a.AlarmName}`),
    `Deleted alarm ${old.AlarmName}: its account-region is no longer in the config`,
  ]);
  assert.deepEqual(d.calls.filter((c) => c.startsWith("Delete")), [`DeleteAlarms ${old.AlarmName}`]);
  d.calls.length = 0;
  const again = await putAlarms(d.api, wanted, () => {});
  // Four alarms of ours, two a page.
  assert.deepEqual(d.calls, ["DescribeAlarms", "DescribeAlarms"]);
  assert.equal(again.unchanged, 4);
});

const quiet = logger({ format: "text", level: "error", env: {}, now: () => 0, write: () => {} });
const args = (argv: string[]): Args => parseArgs(argv);

test("monitor() --dry-run prints each alarm and the dashboard as the input of their calls, and calls nothing", async () => {
  const p = plan({ a: ["eu-west-1"] });
  const none: Connect = () => Promise.reject(new Error("no call in a dry run"));
  const out: string[] = [];
  assert.equal(await monitor(p, args(["--alarms", "--dry-run"]), (l) => out.push(l), quiet, none), 0);
  assert.deepEqual(out.map((l) => JSON.parse(l)), alarmsFor(p, []));
  out.length = 0;
  assert.equal(await monitor(p, args(["--dashboard", "--dry-run"]), (l) => out.push(l), quiet, none), 0);
  assert.deepEqual(out.map((l) => JSON.parse(l)), [
    { DashboardName: "cloudwatch-forwarder", DashboardBody: dashboardFor(p, "cloudwatch-forwarder").body },
  ]);
});

test("monitor() says what it changed, passes the dashboard's warnings on, and exits 1 when a call fails", async () => {
  const p = plan({ a: ["eu-west-1"] });
  const d = fakeDestination();
  const out: string[] = [];
  const lines: string[] = [];
  const log = logger({ format: "text", level: "info", env: {}, now: () => 0, write: (l) => lines.push(l) });
  const connect: Connect = () => Promise.resolve(d.api);
  assert.equal(await monitor(p, args(["--alarms"]), (l) => out.push(l), log, connect), 0);
  assert.equal(out.at(-1), "Alarms in eu-west-1: 2 created, 0 updated, 0 deleted, 0 unchanged");
  assert.match(lines.join("\n"), /INFO No --alarm-action given: the alarms notify no one/);
  out.length = 0;
  assert.equal(
    await monitor(p, args(["--dashboard", "--dashboard-name", "ops"]), (l) => out.push(l), log, connect),
    0,
  );
  assert.deepEqual(out, ["Put dashboard ops: 8 widgets, graphs of eu-west-1"]);
  assert.match(lines.join("\n"), /WARN Dashboard "ops": \/widgets\/0: a warning/);
  const failing: Connect = () =>
    Promise.resolve({
      ...d.api,
      describeAlarms: () =>
        Promise.reject(Object.assign(new Error("not authorized"), { name: "AccessDenied" })),
    });
  assert.equal(await monitor(p, args(["--alarms"]), () => {}, log, failing), 1);
  assert.match(lines.at(-1)!, /ERROR Cannot put the alarms in eu-west-1: AccessDenied: not authorized$/);
});

test("monitor() --alarms refuses a config without the forwarder's own metrics, which the alarms watch", async () => {
  const p = plan({ a: ["eu-west-1"] }, "self_metrics: false\n");
  await assert.rejects(
    monitor(p, args(["--alarms"]), () => {}, quiet),
    (e) => e instanceof ConfigError && /the config sets self_metrics to false/.test(e.message),
  );
});

test("dashboardFor() draws the health, then each metric name (with its statistics) per account, by SEARCH", () => {
  const p = plan({ production: ["eu-west-1", "us-east-1"], test: ["eu-west-1"] });
  const d = dashboardFor(p, "x");
  const widgets = JSON.parse(d.body).widgets as {
    type: string;
    x: number;
    y: number;
    width: number;
    properties: { title?: string; metrics?: unknown[][] };
  }[];
  // A header and four graphs of health; a header and 2 names x 2 accounts.
  assert.equal(d.widgets, 5 + 1 + 4);
  assert.equal(widgets.length, d.widgets);
  assert.deepEqual(widgets.filter((w) => w.type === "metric").map((w) => w.properties.title), [
    "Lag by account-region (s)",
    "Datums forwarded by account-region",
    "Errors by account-region",
    "Run time (s)",
    "CPUUtilization: production",
    "CPUUtilization: test",
    "MemoryUtilization: production",
    "MemoryUtilization: test",
  ]);
  // Two graphs a row, a header a row of its own.
  assert.deepEqual(widgets.map((w) => [w.x, w.y]), [
    [0, 0],
    [0, 2],
    [12, 2],
    [0, 8],
    [12, 8],
    [0, 14],
    [0, 16],
    [12, 16],
    [0, 22],
    [12, 22],
  ]);
  const cpu = widgets.find((w) => w.properties.title === "CPUUtilization: test")!;
  assert.deepEqual(cpu.properties.metrics, [
    [{
      expression:
        `SEARCH('{"Forwarded/AWS/ECS",ClusterName,ServiceName,SourceAccount,SourceRegion} MetricName="CPUUtilization" SourceAccount="test"', 'Average', 60)`,
      id: "e1",
    }],
    [{
      expression:
        `SEARCH('{"Forwarded/AWS/ECS",ClusterName,ServiceName,SourceAccount,SourceRegion} MetricName="CPUUtilization_p99" SourceAccount="test"', 'Average', 60)`,
      id: "e2",
    }],
  ]);
  assert.equal(dashboardFor(p, "x").body, d.body, "the same config, the same body");
});

test("dashboardFor() draws all accounts in one graph where graphs per account would not fit, and refuses past that", () => {
  const many = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${i}`, ["eu-west-1"]]));
  // 5 widgets of health, 1 header, 2 names x 247 accounts = 500.
  assert.deepEqual(
    [dashboardFor(plan(many(247)), "x").widgets, dashboardFor(plan(many(247)), "x").byAccount],
    [
      500,
      true,
    ],
  );
  const collapsed = dashboardFor(plan(many(248)), "x");
  assert.deepEqual([collapsed.widgets, collapsed.byAccount], [8, false]);
  assert.doesNotMatch(collapsed.body, /SourceAccount=/);
  const names = Array.from({ length: 495 }, (_, i) => `M${i}`).join(", ");
  assert.throws(
    () =>
      dashboardFor(
        plan(
          { a: ["eu-west-1"] },
          "",
          `  - namespace: Acme/App\n    names: [${names}]\n    dimensions: [Service]\n`,
        ),
        "x",
      ),
    (e) =>
      e instanceof ConfigError &&
      e.message ===
        'Cannot put dashboard "x": even one graph per metric name takes 504 widgets, and a dashboard holds at most 500; make dashboards of parts of the config',
  );
});

test("dashboardFor() leaves accounts apart only where the config names them, and says so without self-metrics", () => {
  const p = plan({ a: ["eu-west-1"] }, "self_metrics: false\n");
  p.destination.accountDimension = null;
  const body = dashboardFor(p, "x").body;
  assert.match(body, /self_metrics/);
  assert.doesNotMatch(body, /SourceAccount|CloudWatchForwarder/);
  assert.match(body, /\{\\"Forwarded\/AWS\/ECS\\",ClusterName,ServiceName,SourceRegion\}/);
});

test("search() quotes names that are not letters and digits, and every value, escaping quote marks", () => {
  assert.equal(
    search("App", ["Service", "Source Region"], [["MetricName", `it's "x"`]], "Sum", 300),
    `SEARCH('{App,Service,"Source Region"} MetricName="it\\'s \\"x\\""', 'Sum', 300)`,
  );
});

test("parseArgs() takes --alarms and --dashboard alone or with --dry-run and their own options", () => {
  const a = parseArgs(["--alarms", "--alarm-action", SNS, "--alarm-action", "arn:aws:sns:eu-west-1:1:b"]);
  assert.deepEqual([a.alarms, a.alarmActions, a.dashboard], [
    true,
    [SNS, "arn:aws:sns:eu-west-1:1:b"],
    false,
  ]);
  assert.deepEqual(parseArgs(["--alarms", "--alarm-action", SNS, "--alarm-action", SNS]).alarmActions, [SNS]);
  const d = parseArgs(["--dashboard", "--dashboard-name", "ops_1-a", "--dry-run"]);
  assert.deepEqual([d.dashboard, d.dashboardName, d.dryRun], [true, "ops_1-a", true]);
  const refused: [string[], string][] = [
    [["--alarms", "--every", "60s"], "--alarms does not go with --every"],
    [
      ["--every", "60s", "--dashboard"],
      "--every runs on the clock, pass after pass: it does not go with --dashboard",
    ],
    [["--alarms", "--dashboard"], "--alarms does not go with --dashboard"],
    [["--dashboard", "--now", "2026-11-24T10:00:00Z"], "--dashboard does not go with --now"],
    [["--alarms", "--json"], "--alarms does not go with --json"],
    [["--plan", "--alarms"], "--plan does not go with --alarms"],
    [["--alarm-action", SNS], "--alarm-action goes with --alarms"],
    [["--dashboard-name", "x"], "--dashboard-name goes with --dashboard"],
    [
      ["--alarms", ...[1, 2, 3, 4, 5, 6].flatMap((i) => ["--alarm-action", `${SNS}${i}`])],
      "--alarm-action takes at most 5 ARNs, as many as an alarm holds; 6 were given",
    ],
    [
      ["--alarms", "--alarm-action", "ops-topic"],
      '--alarm-action takes an ARN such as arn:aws:sns:eu-west-1:111111111111:alerts, not "ops-topic"',
    ],
    [
      ["--dashboard", "--dashboard-name", "my dashboard"],
      '--dashboard-name takes 1 to 255 letters, digits, "-" and "_", not "my dashboard"',
    ],
  ];
  for (const [argv, message] of refused) {
    assert.throws(
      () => parseArgs(argv),
      (e) => e instanceof ConfigError && e.message === `Cannot parse arguments: ${message}`,
      argv.join(" "),
    );
  }
});

test("selfMetrics() of a run a signal stopped counts nothing for the account-regions it did not begin, and keeps their lag", () => {
  const p = plan({ production: ["eu-west-1"], test: ["eu-west-1"] });
  const run = { plan: p, nowSeconds: 0 } as unknown as Parameters<typeof selfMetrics>[0];
  type Totals = NonNullable<Parameters<typeof selfMetrics>[1][0]>;
  const done = { datums: 4, streams: 2 } as unknown as Totals;
  const notBegun = { datums: 0, streams: 0, skipped: true } as unknown as Totals;
  const written = selfMetrics(run, [done, notBegun], [60, 600], 2).map((d) =>
    `${d.MetricName} ${d.Dimensions.map((x) => x.Value).join(" ")} ${d.Value}`
  );
  assert.deepEqual(written, [
    "RunSeconds  2",
    "FailedAccountRegions  0",
    "Datums production eu-west-1 4",
    "Streams production eu-west-1 2",
    "Errors production eu-west-1 0",
    "LagSeconds production eu-west-1 60",
    "LagSeconds test eu-west-1 600",
  ]);
});
