/**
 * forward.ts --alarms and --dashboard as processes, under the runtime running the tests, against the
 * emulator: what they put in the destination, that running them again changes nothing, and what a smaller
 * config removes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import {
  DescribeAlarmsCommand,
  GetDashboardCommand,
  ListDashboardsCommand,
  PutMetricAlarmCommand,
} from "@aws-sdk/client-cloudwatch";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import { CONFIG, DEST, destCount, forwarderEnv, ok, writeConfig } from "./fleet.ts";
import { cloudWatch, runForwarder } from "./helpers.ts";

const OPS = "arn:aws:sns:eu-west-1:999999999999:ops";
const LAG = "cloudwatch-forwarder-lag-";

/** The destination's calls of these operations so far. */
const calls = (emu: Emulator, ops: string[]) =>
  Object.fromEntries(ops.map((op) => [op, destCount(emu, op, "calls")]));

test("forward.ts --alarms puts the alarms, puts nothing when run again, and deletes those of account-regions dropped", async () => {
  const emu = await startEmulator();
  try {
    const cw = cloudWatch(emu.url, DEST);
    const alarms = async () =>
      Object.fromEntries(
        ((await cw.send(new DescribeAlarmsCommand({}))).MetricAlarms ?? []).map((a) => [a.AlarmName, a]),
      );
    // Alarms of the account's own, one with the forwarder's prefix: neither is the forwarder's to delete.
    for (const name of ["cloudwatch-forwarder-mine", "disk-full"]) {
      await cw.send(
        new PutMetricAlarmCommand({
          AlarmName: name,
          Namespace: "App",
          MetricName: "Disk",
          Statistic: "Maximum",
          Period: 60,
          EvaluationPeriods: 1,
          Threshold: 90,
          ComparisonOperator: "GreaterThanThreshold",
        }),
      );
    }
    const config = writeConfig(CONFIG);
    const env = forwarderEnv(emu);
    const argv = ["--config", config, "--alarms", "--alarm-action", OPS];
    const ours = [
      "cloudwatch-forwarder-stopped",
      `${LAG}production-eu-west-1`,
      `${LAG}production-us-east-1`,
      `${LAG}acceptance-eu-west-1`,
      `${LAG}big-eu-west-1`,
    ];

    const first = await runForwarder(argv, env);
    ok(first);
    assert.equal(
      first.stdout,
      [
        ...ours.map((n) => `Created alarm ${n}`),
        "Alarms in eu-west-1: 5 created, 0 updated, 0 deleted, 0 unchanged",
        "",
      ]
        .join("\n"),
    );
    const made = await alarms();
    assert.deepEqual(Object.keys(made).sort(), [...ours, "cloudwatch-forwarder-mine", "disk-full"].sort());
    const stopped = made["cloudwatch-forwarder-stopped"]!;
    assert.deepEqual(
      [stopped.MetricName, stopped.Statistic, stopped.ComparisonOperator, stopped.Threshold, stopped.Period],
      ["RunSeconds", "SampleCount", "LessThanThreshold", 1, 300],
    );
    assert.equal(stopped.TreatMissingData, "breaching");
    const lag = made[`${LAG}production-us-east-1`]!;
    assert.deepEqual([lag.Dimensions, lag.Threshold, lag.AlarmActions, lag.OKActions], [
      [{ Name: "Account", Value: "production" }, { Name: "Region", Value: "us-east-1" }],
      360,
      [OPS],
      [OPS],
    ]);

    // Again: DescribeAlarms, and nothing put or deleted.
    const ops = ["DescribeAlarms", "PutMetricAlarm", "DeleteAlarms"];
    const before = calls(emu, ops);
    const second = await runForwarder(argv, env);
    ok(second);
    assert.equal(second.stdout, "Alarms in eu-west-1: 0 created, 0 updated, 0 deleted, 5 unchanged\n");
    assert.deepEqual(calls(emu, ops), { ...before, DescribeAlarms: before["DescribeAlarms"]! + 1 });

    // Production's us-east-1 leaves the config, and an action is added: its alarm goes, the others change.
    fs.writeFileSync(config, CONFIG.replace("regions: [eu-west-1, us-east-1]", "regions: [eu-west-1]"));
    const other = "arn:aws:sns:eu-west-1:999999999999:pager";
    const third = await runForwarder([...argv, "--alarm-action", other], env);
    ok(third);
    assert.equal(
      third.stdout,
      [
        ...ours.filter((n) => !n.endsWith("us-east-1")).map((n) => `Updated alarm ${n}`),
        `Deleted alarm ${LAG}production-us-east-1: its account-region is no longer in the config`,
        "Alarms in eu-west-1: 0 created, 4 updated, 1 deleted, 0 unchanged",
        "",
      ].join("\n"),
    );
    const left = await alarms();
    assert.deepEqual(
      Object.keys(left).sort(),
      [...ours.filter((n) => !n.endsWith("us-east-1")), "cloudwatch-forwarder-mine", "disk-full"].sort(),
    );
    assert.deepEqual(left["cloudwatch-forwarder-stopped"]!.AlarmActions, [OPS, other]);

    // A dry run prints what it would put, and calls nothing.
    const all = calls(emu, ops);
    const dry = await runForwarder([...argv, "--dry-run"], env);
    ok(dry);
    assert.deepEqual(
      dry.stdout.trim().split("\n").map((l) => JSON.parse(l).AlarmName),
      ours.filter((n) => !n.endsWith("us-east-1")),
    );
    assert.deepEqual(calls(emu, ops), all);
  } finally {
    await emu.stop();
  }
});

test("forward.ts --dashboard puts the dashboard, the same body when run again, under the name given", async () => {
  const emu = await startEmulator();
  try {
    const cw = cloudWatch(emu.url, DEST);
    const config = writeConfig(CONFIG);
    const env = forwarderEnv(emu);
    const body = async (name: string) =>
      (await cw.send(new GetDashboardCommand({ DashboardName: name }))).DashboardBody;

    const first = await runForwarder(["--config", config, "--dashboard"], env);
    ok(first);
    // Health: a header and 4 graphs; AWS/ECS: a header and 2 names x 3 accounts; Acme/App: a header and 3.
    assert.equal(first.stdout, "Put dashboard cloudwatch-forwarder: 16 widgets, graphs of eu-west-1\n");
    const put = await body("cloudwatch-forwarder");
    const widgets = JSON.parse(put!).widgets as { properties: { title?: string } }[];
    assert.equal(widgets.length, 16);
    assert.ok(widgets.some((w) => w.properties.title === "Latency: big"));

    const second = await runForwarder(["--config", config, "--dashboard"], env);
    ok(second);
    assert.equal(await body("cloudwatch-forwarder"), put);
    assert.equal(destCount(emu, "PutDashboard", "calls"), 2);

    const named = await runForwarder(
      ["--config", config, "--dashboard", "--dashboard-name", "fleet_ops"],
      env,
    );
    ok(named);
    assert.deepEqual(
      (await cw.send(new ListDashboardsCommand({}))).DashboardEntries?.map((e) => e.DashboardName),
      ["cloudwatch-forwarder", "fleet_ops"],
    );

    const dry = await runForwarder(["--config", config, "--dashboard", "--dry-run"], env);
    ok(dry);
    assert.deepEqual(JSON.parse(dry.stdout), { DashboardName: "cloudwatch-forwarder", DashboardBody: put });
    assert.equal(destCount(emu, "PutDashboard", "calls"), 3);

    // A destination with a role of its own: the dashboard goes to the role's account.
    const role = "arn:aws:iam::444444444444:role/dashboards";
    fs.writeFileSync(
      config,
      CONFIG.replace("  region: eu-west-1\n", `  region: eu-west-1\n  role_arn: ${role}\n`),
    );
    ok(await runForwarder(["--config", config, "--dashboard"], env));
    const theirs = await cloudWatch(emu.url, "444444444444").send(new ListDashboardsCommand({}));
    assert.deepEqual(theirs.DashboardEntries?.map((e) => e.DashboardName), ["cloudwatch-forwarder"]);
  } finally {
    await emu.stop();
  }
});

test("forward.ts --alarms and --dashboard refuse run options and bad values in one line, exit 2, no call", async () => {
  const emu = await startEmulator();
  try {
    const config = writeConfig(CONFIG);
    const refused: [string[], string][] = [
      [["--alarms", "--every", "60s"], "--alarms does not go with --every"],
      [
        ["--dashboard", "--dashboard-name", "a b"],
        '--dashboard-name takes 1 to 255 letters, digits, "-" and "_", not "a b"',
      ],
      [
        ["--alarms", "--alarm-action", "ops"],
        '--alarm-action takes an ARN such as arn:aws:sns:eu-west-1:111111111111:alerts, not "ops"',
      ],
    ];
    for (const [argv, message] of refused) {
      const r = await runForwarder(["--config", config, ...argv], forwarderEnv(emu));
      assert.deepEqual(
        [r.code, r.stdout, r.stderr],
        [2, "", `Cannot parse arguments: ${message}\n`],
        argv.join(" "),
      );
    }
    assert.deepEqual(emu.counts(), {});
  } finally {
    await emu.stop();
  }
});
