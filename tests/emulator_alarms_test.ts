/**
 * The emulator's alarms and dashboards through the real AWS SDK client: each rule it enforces, one case per
 * rejection with AWS's error code, and what it keeps and answers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DeleteAlarmsCommand,
  DescribeAlarmsCommand,
  type DescribeAlarmsCommandOutput,
  GetDashboardCommand,
  ListDashboardsCommand,
  PutDashboardCommand,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
} from "@aws-sdk/client-cloudwatch";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import { cloudWatch, rejectsWith } from "./helpers.ts";

const A = "111111111111";
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

async function withEmu(f: (emu: Emulator) => Promise<void>) {
  const emu = await startEmulator({ now: () => T0 });
  try {
    await f(emu);
  } finally {
    await emu.stop();
  }
}

const ALARM: PutMetricAlarmCommandInput = {
  AlarmName: "lag",
  Namespace: "App",
  MetricName: "LagSeconds",
  Dimensions: [{ Name: "Account", Value: "a" }],
  Statistic: "Maximum",
  Period: 300,
  EvaluationPeriods: 1,
  Threshold: 600,
  ComparisonOperator: "GreaterThanThreshold",
  TreatMissingData: "breaching",
  AlarmActions: ["arn:aws:sns:eu-west-1:111111111111:ops"],
};

const putAlarm = (emu: Emulator, input: Partial<PutMetricAlarmCommandInput>, region = "eu-west-1") =>
  cloudWatch(emu.url, A, region).send(new PutMetricAlarmCommand({ ...ALARM, ...input }));
const describe = (emu: Emulator, input: ConstructorParameters<typeof DescribeAlarmsCommand>[0] = {}) =>
  cloudWatch(emu.url, A).send(new DescribeAlarmsCommand(input));

test("emulator PutMetricAlarm keeps the alarm as DescribeAlarms answers it, per account and Region", async () => {
  await withEmu(async (emu) => {
    await putAlarm(emu, {});
    const [a] = (await describe(emu)).MetricAlarms ?? [];
    assert.deepEqual(
      {
        name: a?.AlarmName,
        arn: a?.AlarmArn,
        state: a?.StateValue,
        actions: [a?.AlarmActions, a?.OKActions, a?.InsufficientDataActions, a?.ActionsEnabled],
        metric: [a?.Namespace, a?.MetricName, a?.Dimensions, a?.Statistic, a?.Period],
        compare: [a?.EvaluationPeriods, a?.Threshold, a?.ComparisonOperator, a?.TreatMissingData],
        updated: a?.AlarmConfigurationUpdatedTimestamp?.getTime(),
      },
      {
        name: "lag",
        arn: "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:lag",
        state: "INSUFFICIENT_DATA",
        actions: [["arn:aws:sns:eu-west-1:111111111111:ops"], [], [], true],
        metric: ["App", "LagSeconds", [{ Name: "Account", Value: "a" }], "Maximum", 300],
        compare: [1, 600, "GreaterThanThreshold", "breaching"],
        updated: T0,
      },
    );
    // Alarms are per Region: another Region has none.
    assert.deepEqual(
      (await cloudWatch(emu.url, A, "us-east-1").send(new DescribeAlarmsCommand({}))).MetricAlarms,
      [],
    );
    // An update replaces every setting: what it leaves out is gone.
    await putAlarm(emu, { AlarmActions: undefined, Threshold: 900 });
    const [b] = (await describe(emu)).MetricAlarms ?? [];
    assert.deepEqual([b?.AlarmActions, b?.Threshold], [[], 900]);
  });
});

test("emulator PutMetricAlarm refuses what the API reference does not allow", async () => {
  await withEmu(async (emu) => {
    const sns = (n: number) =>
      Array.from({ length: n }, (_, i) => `arn:aws:sns:eu-west-1:111111111111:t${i}`);
    const refused: [string, Partial<PutMetricAlarmCommandInput>, string][] = [
      ["an empty name", { AlarmName: "" }, "InvalidParameterValue"],
      ["a name of 256 characters", { AlarmName: "a".repeat(256) }, "InvalidParameterValue"],
      ["a control character in the name", { AlarmName: "a\u0007b" }, "InvalidParameterValue"],
      ["a description of 1,025 characters", { AlarmDescription: "d".repeat(1025) }, "InvalidParameterValue"],
      ["6 alarm actions", { AlarmActions: sns(6) }, "InvalidParameterValue"],
      ["6 OK actions", { OKActions: sns(6) }, "InvalidParameterValue"],
      ["6 insufficient-data actions", { InsufficientDataActions: sns(6) }, "InvalidParameterValue"],
      ["an action that is no ARN", { AlarmActions: ["ops"] }, "InvalidParameterValue"],
      ["TreatMissingData unknown", { TreatMissingData: "zero" }, "InvalidParameterValue"],
      ["ComparisonOperator unknown", { ComparisonOperator: "Above" as never }, "InvalidParameterValue"],
      ["Statistic unknown", { Statistic: "Median" as never }, "InvalidParameterValue"],
      ["Statistic and ExtendedStatistic", { ExtendedStatistic: "p99" }, "InvalidParameterCombination"],
      ["neither Statistic nor ExtendedStatistic", { Statistic: undefined }, "InvalidParameterCombination"],
      ["a period of 45 s", { Period: 45 }, "InvalidParameterValue"],
      ["Period x EvaluationPeriods over a day, periods under an hour", {
        Period: 300,
        EvaluationPeriods: 289,
      }, "InvalidParameterValue"],
      [
        "Period x EvaluationPeriods over 7 days",
        { Period: 3600, EvaluationPeriods: 169 },
        "InvalidParameterValue",
      ],
      [
        "DatapointsToAlarm over EvaluationPeriods",
        { EvaluationPeriods: 2, DatapointsToAlarm: 3 },
        "InvalidParameterValue",
      ],
      ["no EvaluationPeriods", { EvaluationPeriods: undefined }, "MissingParameter"],
      ["no Threshold", { Threshold: undefined }, "MissingParameter"],
      ["no ComparisonOperator", { ComparisonOperator: undefined }, "MissingParameter"],
      ["no MetricName", { MetricName: undefined }, "MissingParameter"],
      ["31 dimensions", {
        Dimensions: Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: "v" })),
      }, "InvalidParameterValue"],
      ["a unit that is none", { Unit: "Miles" as never }, "InvalidParameterValue"],
    ];
    for (const [what, input, code] of refused) {
      await rejectsWith(putAlarm(emu, input), code, 400).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
    }
    assert.deepEqual((await describe(emu)).MetricAlarms, [], "nothing was kept");
    // At the limits: 5 actions a list, a day of 5-minute periods, 7 days of hours.
    await putAlarm(emu, {
      AlarmName: "a",
      AlarmActions: sns(5),
      OKActions: sns(5),
      InsufficientDataActions: sns(5),
    });
    await putAlarm(emu, { AlarmName: "b", Period: 300, EvaluationPeriods: 288 });
    await putAlarm(emu, { AlarmName: "c", Period: 3600, EvaluationPeriods: 168, DatapointsToAlarm: 168 });
    await putAlarm(emu, {
      AlarmName: "d",
      Statistic: undefined,
      ExtendedStatistic: "p99",
      TreatMissingData: "ignore",
    });
    assert.equal((await describe(emu)).MetricAlarms?.length, 4);
  });
});

test("emulator DescribeAlarms filters by names, prefix, state and action, and pages by MaxRecords", async () => {
  await withEmu(async (emu) => {
    for (const name of ["fwd-c", "fwd-a", "fwd-b", "other"]) await putAlarm(emu, { AlarmName: name });
    const names = (r: DescribeAlarmsCommandOutput) => r.MetricAlarms?.map((a) => a.AlarmName);
    assert.deepEqual(names(await describe(emu, { AlarmNamePrefix: "fwd-" })), ["fwd-a", "fwd-b", "fwd-c"]);
    assert.deepEqual(names(await describe(emu, { AlarmNames: ["other", "none"] })), ["other"]);
    assert.deepEqual(names(await describe(emu, { StateValue: "ALARM" })), []);
    assert.deepEqual(names(await describe(emu, { ActionPrefix: "arn:aws:sns:eu-west-1:111111111111:o" })), [
      "fwd-a",
      "fwd-b",
      "fwd-c",
      "other",
    ]);
    assert.deepEqual(names(await describe(emu, { AlarmTypes: ["CompositeAlarm"] })), []);
    const first = await describe(emu, { AlarmNamePrefix: "fwd-", MaxRecords: 2 });
    assert.deepEqual(names(first), ["fwd-a", "fwd-b"]);
    const second = await describe(emu, {
      AlarmNamePrefix: "fwd-",
      MaxRecords: 2,
      NextToken: first.NextToken!,
    });
    assert.deepEqual([names(second), second.NextToken], [["fwd-c"], undefined]);
    await rejectsWith(
      describe(emu, { AlarmNames: ["a"], AlarmNamePrefix: "a" }),
      "InvalidParameterCombination",
    );
    await rejectsWith(describe(emu, { MaxRecords: 101 }), "InvalidParameterValue");
    await rejectsWith(
      describe(emu, { AlarmNames: Array.from({ length: 101 }, (_, i) => `n${i}`) }),
      "InvalidParameterValue",
    );
    await rejectsWith(describe(emu, { StateValue: "BAD" as never }), "InvalidParameterValue");
    await rejectsWith(describe(emu, { NextToken: "nope" }), "InvalidNextToken");
  });
});

test("emulator DeleteAlarms deletes all the names or, if one is unknown, none", async () => {
  await withEmu(async (emu) => {
    for (const name of ["a", "b", "c"]) await putAlarm(emu, { AlarmName: name });
    const cw = cloudWatch(emu.url, A);
    await rejectsWith(cw.send(new DeleteAlarmsCommand({ AlarmNames: ["a", "x"] })), "ResourceNotFound", 404);
    assert.equal((await describe(emu)).MetricAlarms?.length, 3);
    await rejectsWith(
      cw.send(new DeleteAlarmsCommand({ AlarmNames: Array.from({ length: 101 }, () => "a") })),
      "InvalidParameterValue",
    );
    await cw.send(new DeleteAlarmsCommand({ AlarmNames: ["a", "b"] }));
    assert.deepEqual((await describe(emu)).MetricAlarms?.map((a) => a.AlarmName), ["c"]);
  });
});

const WIDGET = { type: "text", x: 0, y: 0, width: 24, height: 2, properties: { markdown: "hi" } };
const GRAPH = {
  type: "metric",
  properties: { region: "eu-west-1", metrics: [[{ expression: "SEARCH('{App} x', 'Sum', 60)", id: "e1" }]] },
};

test("emulator PutDashboard keeps the body whole; GetDashboard and ListDashboards answer it, per account", async () => {
  await withEmu(async (emu) => {
    const cw = cloudWatch(emu.url, A);
    const body = JSON.stringify({ widgets: [WIDGET, GRAPH] });
    const put = await cw.send(new PutDashboardCommand({ DashboardName: "ops-1", DashboardBody: body }));
    assert.deepEqual(put.DashboardValidationMessages, []);
    await cw.send(new PutDashboardCommand({ DashboardName: "other", DashboardBody: '{"widgets":[]}' }));
    const got = await cw.send(new GetDashboardCommand({ DashboardName: "ops-1" }));
    assert.deepEqual([got.DashboardName, got.DashboardBody, got.DashboardArn], [
      "ops-1",
      body,
      "arn:aws:cloudwatch::111111111111:dashboard/ops-1",
    ]);
    const list = await cw.send(new ListDashboardsCommand({ DashboardNamePrefix: "ops" }));
    assert.deepEqual(
      list.DashboardEntries?.map((e) => [e.DashboardName, e.Size, e.LastModified?.getTime()]),
      [
        ["ops-1", body.length, T0],
      ],
    );
    // Dashboards are global: another Region of the account sees them; another account does not.
    const east = await cloudWatch(emu.url, A, "us-east-1").send(new ListDashboardsCommand({}));
    assert.equal(east.DashboardEntries?.length, 2);
    await rejectsWith(
      cloudWatch(emu.url, "222222222222").send(new GetDashboardCommand({ DashboardName: "ops-1" })),
      "ResourceNotFound",
      404,
    );
    await rejectsWith(
      cw.send(new ListDashboardsCommand({ DashboardNamePrefix: "a b" })),
      "InvalidParameterValue",
    );
  });
});

test("emulator PutDashboard refuses a bad name, and a body that is no dashboard, naming each problem", async () => {
  await withEmu(async (emu) => {
    const cw = cloudWatch(emu.url, A);
    const put = (name: string, body: unknown) =>
      cw.send(
        new PutDashboardCommand({
          DashboardName: name,
          DashboardBody: typeof body === "string" ? body : JSON.stringify(body),
        }),
      );
    for (const name of ["", "a b", "a.b", "x".repeat(256)]) {
      await rejectsWith(put(name, { widgets: [] }), "InvalidParameterValue", 400);
    }
    const cases: [string, unknown, string][] = [
      ["not JSON", "{widgets", "The field DashboardBody must be a valid JSON object"],
      ["no widgets", {}, "Should have required property 'widgets'"],
      ["widgets not a list", { widgets: {} }, '"/widgets"'],
      [
        "501 widgets",
        { widgets: Array.from({ length: 501 }, () => WIDGET) },
        "Should NOT have more than 500 items",
      ],
      ["an unknown type", { widgets: [{ ...WIDGET, type: "chart" }] }, '"/widgets/0/type"'],
      ["no type", { widgets: [{ properties: {} }] }, "Should have required property 'type'"],
      ["width 25", { widgets: [{ ...WIDGET, width: 25 }] }, '"/widgets/0/width"'],
      ["x 24", { widgets: [{ ...WIDGET, x: 24 }] }, '"/widgets/0/x"'],
      ["height 0", { widgets: [{ ...WIDGET, height: 0 }] }, '"/widgets/0/height"'],
      ["no properties", { widgets: [{ type: "text" }] }, "Should have required property 'properties'"],
      ["text without markdown", { widgets: [{ type: "text", properties: {} }] }, "'markdown'"],
      ["a graph without region", { widgets: [{ ...GRAPH, properties: { metrics: [] } }] }, "'region'"],
      ["a graph line that is no list", {
        widgets: [{ ...GRAPH, properties: { region: "eu-west-1", metrics: [{}] } }],
      }, '"/widgets/0/properties/metrics/0"'],
      ["an expression id twice", {
        widgets: [{
          ...GRAPH,
          properties: {
            region: "eu-west-1",
            metrics: [[{ expression: "1", id: "e1" }], [{ expression: "2", id: "e1" }]],
          },
        }],
      }, '"/widgets/0/properties/metrics/1/0/id"'],
    ];
    for (const [what, body, says] of cases) {
      await assert.rejects(put("d", body), (e: Error & { Code?: string; name: string }) => {
        assert.equal(e.Code, "InvalidParameterInput", what);
        assert.equal(e.name, "DashboardInvalidInputError", what);
        assert.ok(e.message.startsWith("The dashboard body is invalid, there are "), `${what}: ${e.message}`);
        assert.ok(e.message.includes(says), `${what}: ${e.message}`);
        return true;
      });
    }
    assert.deepEqual((await cw.send(new ListDashboardsCommand({}))).DashboardEntries, [], "nothing was kept");
  });
});
