/**
 * The emulator through the real AWS SDK clients: every rule it enforces, one test per rejection with AWS's
 * error code, and exact aggregation checked against values computed here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import process from "node:process";
import {
  GetMetricDataCommand,
  GetMetricStatisticsCommand,
  type GetMetricStatisticsCommandInput,
  ListMetricsCommand,
  type MetricDatum,
  PutMetricDataCommand,
} from "@aws-sdk/client-cloudwatch";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DEMO_ACCOUNTS, type Emulator, type EmulatorOptions, startEmulator } from "../lib/emulator.ts";
import { cloudWatch, credentialsFor, rejectsWith, runtime, sts } from "./helpers.ts";

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const A = "111111111111";

async function withEmu(
  f: (emu: Emulator, clock: { now: number }) => Promise<void>,
  options: EmulatorOptions = {},
) {
  const clock = { now: T0 };
  const emu = await startEmulator({ now: () => clock.now, ...options });
  try {
    await f(emu, clock);
  } finally {
    await emu.stop();
  }
}

const put = (emu: Emulator, data: MetricDatum[], namespace = "App", account = A) =>
  cloudWatch(emu.url, account).send(new PutMetricDataCommand({ Namespace: namespace, MetricData: data }));

const at = (minutes: number, seconds = 0) => new Date(T0 + minutes * 60_000 + seconds * 1000);

function gmd(
  emu: Emulator,
  queries: { id?: string; stat: string; period?: number; dims?: { Name: string; Value: string }[] }[],
  start: Date,
  end: Date,
  extra: Record<string, unknown> = {},
) {
  return cloudWatch(emu.url, A).send(
    new GetMetricDataCommand({
      StartTime: start,
      EndTime: end,
      ScanBy: "TimestampAscending",
      MetricDataQueries: queries.map((q, i) => ({
        Id: q.id ?? `q${i}`,
        MetricStat: {
          Metric: { Namespace: "App", MetricName: "Latency", Dimensions: q.dims ?? [] },
          Period: q.period ?? 60,
          Stat: q.stat,
        },
      })),
      ...extra,
    }),
  );
}

/** GetMetricStatistics of App/Latency's Sum over the first minute, with `input` over those. */
const gms = (emu: Emulator, input: Partial<GetMetricStatisticsCommandInput> = {}) =>
  cloudWatch(emu.url, A).send(
    new GetMetricStatisticsCommand({
      Namespace: "App",
      MetricName: "Latency",
      StartTime: at(0),
      EndTime: at(1),
      Period: 60,
      Statistics: ["Sum"],
      ...input,
    }),
  );

// ---- STS ----

test("AssumeRole returns credentials that act as the role's account, expiring after DurationSeconds", async () => {
  await withEmu(async (emu) => {
    const r = await sts(emu.url, "999999999999").send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${A}:role/reader`,
        RoleSessionName: "forwarder",
        DurationSeconds: 900,
      }),
    );
    const c = r.Credentials!;
    assert.match(c.AccessKeyId!, new RegExp(`^ASIA.*${A}$`));
    assert.equal(c.Expiration!.getTime(), T0 + 900_000);
    const creds = {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    };
    const client = new CloudWatchClient({
      region: "eu-west-1",
      endpoint: emu.url,
      credentials: creds,
      maxAttempts: 1,
    });
    await client.send(
      new PutMetricDataCommand({
        Namespace: "App",
        MetricData: [{ MetricName: "X", Value: 1, Timestamp: at(0) }],
      }),
    );
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App" }));
    assert.deepEqual(listed.Metrics?.map((m) => m.MetricName), ["X"]);
    const who = await sts(emu.url, "999999999999").send(new GetCallerIdentityCommand({}));
    assert.equal(who.Account, "999999999999");
  });
});

test("AssumeRole defaults to one hour", async () => {
  await withEmu(async (emu) => {
    const r = await sts(emu.url, "999999999999").send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${A}:role/r`, RoleSessionName: "forwarder" }),
    );
    assert.equal(r.Credentials!.Expiration!.getTime(), T0 + 3_600_000);
  });
});

for (const duration of [899, 43_201]) {
  test(`AssumeRole refuses DurationSeconds ${duration} with ValidationError`, async () => {
    await withEmu(async (emu) => {
      await rejectsWith(
        sts(emu.url, A).send(
          new AssumeRoleCommand({
            RoleArn: `arn:aws:iam::${A}:role/r`,
            RoleSessionName: "forwarder",
            DurationSeconds: duration,
          }),
        ),
        "ValidationError",
        400,
      );
    });
  });
}

test("AssumeRole refuses a malformed role ARN with ValidationError", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(
      sts(emu.url, A).send(new AssumeRoleCommand({ RoleArn: "reader", RoleSessionName: "forwarder" })),
      "ValidationError",
    );
  });
});

test("temporary credentials past their expiration get ExpiredToken", async () => {
  await withEmu(async (emu, clock) => {
    const r = await sts(emu.url, "999999999999").send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${A}:role/r`,
        RoleSessionName: "forwarder",
        DurationSeconds: 900,
      }),
    );
    const c = r.Credentials!;
    const client = new CloudWatchClient({
      region: "eu-west-1",
      endpoint: emu.url,
      maxAttempts: 1,
      credentials: {
        accessKeyId: c.AccessKeyId!,
        secretAccessKey: c.SecretAccessKey!,
        sessionToken: c.SessionToken!,
      },
    });
    await client.send(new ListMetricsCommand({}));
    clock.now += 900_000;
    await rejectsWith(client.send(new ListMetricsCommand({})), "ExpiredToken", 403);
  });
});

test("a request without a SigV4 Authorization header gets MissingAuthenticationToken", async () => {
  await withEmu(async (emu) => {
    const r = await fetch(emu.url, {
      method: "POST",
      headers: {
        "x-amz-target": "GraniteServiceVersion20100801.ListMetrics",
        "content-type": "application/x-amz-json-1.0",
      },
      body: "{}",
    });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("x-amzn-query-error"), "MissingAuthenticationToken;Sender");
  });
});

test("--require-external-id makes AssumeRole demand the ExternalId", async () => {
  const role = `arn:aws:iam::${A}:role/r`;
  await withEmu(async (emu) => {
    const client = sts(emu.url, "999999999999");
    await rejectsWith(
      client.send(new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder" })),
      "AccessDenied",
      403,
    );
    await rejectsWith(
      client.send(
        new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder", ExternalId: "wrong" }),
      ),
      "AccessDenied",
      403,
    );
    const ok = await client.send(
      new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder", ExternalId: "s3cret" }),
    );
    assert.ok(ok.Credentials?.AccessKeyId?.endsWith(A));
  }, { requireExternalId: { [role]: "s3cret" } });
});

test("a denied role gets AccessDenied, changeable while running", async () => {
  const role = `arn:aws:iam::${A}:role/r`;
  await withEmu(async (emu) => {
    const client = sts(emu.url, "999999999999");
    await rejectsWith(
      client.send(new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder" })),
      "AccessDenied",
      403,
    );
    await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ deny_roles: [] }) });
    await client.send(new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder" }));
  }, { denyRoles: [role] });
});

// ---- PutMetricData ----

const rejections: [string, MetricDatum[] | (() => MetricDatum[]), string, string?][] = [
  ["no datums", [], "InvalidParameterValue"],
  [
    "1,001 datums",
    () => Array.from({ length: 1001 }, (_, i) => ({ MetricName: `m${i}`, Value: 1 })),
    "InvalidParameterValue",
  ],
  ["31 dimensions", [{
    MetricName: "m",
    Value: 1,
    Dimensions: Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: "v" })),
  }], "InvalidParameterValue"],
  [
    "an empty dimension name",
    [{ MetricName: "m", Value: 1, Dimensions: [{ Name: "", Value: "v" }] }],
    "InvalidParameterValue",
  ],
  [
    "an empty dimension value",
    [{ MetricName: "m", Value: 1, Dimensions: [{ Name: "d", Value: "" }] }],
    "InvalidParameterValue",
  ],
  ["a dimension value of 1,025 characters", [{
    MetricName: "m",
    Value: 1,
    Dimensions: [{ Name: "d", Value: "v".repeat(1025) }],
  }], "InvalidParameterValue"],
  [
    "a dimension value without a name",
    [{ MetricName: "m", Value: 1, Dimensions: [{ Value: "v" } as never] }],
    "MissingParameter",
  ],
  ["Value with Values", [{ MetricName: "m", Value: 1, Values: [1] }], "InvalidParameterCombination"],
  ["Value with StatisticValues", [{
    MetricName: "m",
    Value: 1,
    StatisticValues: { SampleCount: 1, Sum: 1, Minimum: 1, Maximum: 1 },
  }], "InvalidParameterCombination"],
  ["Counts without Values", [{ MetricName: "m", Counts: [1] }], "InvalidParameterCombination"],
  [
    "Values and Counts of different lengths",
    [{ MetricName: "m", Values: [1, 2], Counts: [1] }],
    "InvalidParameterValue",
  ],
  [
    "151 values",
    [{ MetricName: "m", Values: Array.from({ length: 151 }, (_, i) => i) }],
    "InvalidParameterValue",
  ],
  ["NaN", [{ MetricName: "m", Value: NaN }], "InvalidParameterValue"],
  ["Infinity", [{ MetricName: "m", Value: Infinity }], "InvalidParameterValue"],
  ["-Infinity in Values", [{ MetricName: "m", Values: [1, -Infinity] }], "InvalidParameterValue"],
  ["a value beyond 2^360", [{ MetricName: "m", Value: 2 ** 361 }], "InvalidParameterValue"],
  ["NaN in a statistic set", [{
    MetricName: "m",
    StatisticValues: { SampleCount: 1, Sum: NaN, Minimum: 1, Maximum: 1 },
  }], "InvalidParameterValue"],
  ["a statistic set without Sum", [{
    MetricName: "m",
    StatisticValues: { SampleCount: 1, Minimum: 1, Maximum: 1 } as never,
  }], "MissingParameter"],
  ["a statistic set with SampleCount 0", [{
    MetricName: "m",
    StatisticValues: { SampleCount: 0, Sum: 0, Minimum: 0, Maximum: 0 },
  }], "InvalidParameterValue"],
  ["a statistic set with Minimum above Maximum", [{
    MetricName: "m",
    StatisticValues: { SampleCount: 2, Sum: 3, Minimum: 2, Maximum: 1 },
  }], "InvalidParameterValue"],
  ["no value at all", [{ MetricName: "m" }], "MissingParameter"],
  ["a timestamp more than two weeks old", [{
    MetricName: "m",
    Value: 1,
    Timestamp: new Date(T0 - 14 * 86_400_000 - 1000),
  }], "InvalidParameterValue"],
  ["a timestamp more than two hours ahead", [{
    MetricName: "m",
    Value: 1,
    Timestamp: new Date(T0 + 2 * 3_600_000 + 1000),
  }], "InvalidParameterValue"],
  ["StorageResolution 30", [{ MetricName: "m", Value: 1, StorageResolution: 30 }], "InvalidParameterValue"],
  ["an unknown unit", [{ MetricName: "m", Value: 1, Unit: "Percents" as never }], "InvalidParameterValue"],
  ["an empty metric name", [{ MetricName: "", Value: 1 }], "InvalidParameterValue"],
  [
    "a request over 1 MB",
    () =>
      Array.from(
        { length: 1000 },
        (_, i) => ({ MetricName: `m${i}`, Value: 1, Dimensions: [{ Name: "d", Value: "v".repeat(1024) }] }),
      ),
    "RequestEntityTooLarge",
  ],
];

for (const [name, data, code] of rejections) {
  test(`PutMetricData refuses ${name} with ${code}`, async () => {
    await withEmu(async (emu) => {
      await rejectsWith(put(emu, typeof data === "function" ? data() : data), code);
      // A refused request stores nothing, not even its valid datums.
      const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
      assert.equal(listed.Metrics?.length ?? 0, 0);
    });
  });
}

test("PutMetricData refuses a namespace beginning with AWS/ with InvalidParameterValue", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(
      put(emu, [{ MetricName: "CPUUtilization", Value: 1 }], "AWS/ECS"),
      "InvalidParameterValue",
      400,
    );
  });
});

test("PutMetricData accepts the limits exactly: 1,000 datums, 30 dimensions, 150 values, two weeks and two hours", async () => {
  await withEmu(async (emu) => {
    await put(emu, Array.from({ length: 1000 }, (_, i) => ({ MetricName: `m${i}`, Value: i })));
    await put(emu, [
      {
        MetricName: "dims",
        Value: 1,
        Dimensions: Array.from({ length: 30 }, (_, i) => ({ Name: `d${i}`, Value: "v" })),
      },
      {
        MetricName: "values",
        Values: Array.from({ length: 150 }, (_, i) => i),
        Counts: Array.from({ length: 150 }, () => 2),
      },
      { MetricName: "old", Value: 1, Timestamp: new Date(T0 - 14 * 86_400_000) },
      { MetricName: "ahead", Value: 1, Timestamp: new Date(T0 + 2 * 3_600_000) },
      { MetricName: "hires", Value: 1, StorageResolution: 1, Unit: "Count/Second" },
    ]);
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App" }));
    assert.equal(listed.Metrics?.length, 500);
    assert.ok(listed.NextToken);
  });
});

test("PutMetricData accepts a gzip-compressed body, as the SDK sends large requests", async () => {
  await withEmu(async (emu) => {
    // Bodies over the SDK's 10 KiB threshold are compressed with Content-Encoding: gzip.
    const data = Array.from(
      { length: 300 },
      (_, i) => ({ MetricName: "Big", Value: i, Dimensions: [{ Name: "Id", Value: `instance-${i}` }] }),
    );
    await put(emu, data);
    const r = await gmd(
      emu,
      [{ stat: "SampleCount", dims: [{ Name: "Id", Value: "instance-7" }] }],
      at(-60),
      at(60),
    );
    assert.equal(r.MetricDataResults?.length, 1);
  });
});

// ---- Aggregation ----

/** Nearest-rank percentile over weighted values, computed independently of the emulator. */
function percentile(samples: [number, number][], p: number): number {
  const sorted = [...samples].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((a, [, c]) => a + c, 0);
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [v, c] of sorted) if ((seen += c) >= rank) return v;
  throw new Error("empty");
}

test("GetMetricData aggregates Value, StatisticValues and Values/Counts in one period exactly", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      { MetricName: "Latency", Value: 2.5, Timestamp: at(1, 0) },
      { MetricName: "Latency", Value: 7.25, Timestamp: at(1, 10) },
      {
        MetricName: "Latency",
        StatisticValues: { SampleCount: 4, Sum: 20, Minimum: 1, Maximum: 9 },
        Timestamp: at(1, 20),
      },
      { MetricName: "Latency", Values: [3, 4.5, 12], Counts: [2, 1, 3], Timestamp: at(1, 59) },
      { MetricName: "Latency", Value: 100, Timestamp: at(2, 0) }, // next period
    ]);
    const n = 1 + 1 + 4 + 6;
    const sum = 2.5 + 7.25 + 20 + (3 * 2 + 4.5 + 12 * 3);
    const stats = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"];
    const r = await gmd(emu, stats.map((stat) => ({ stat })), at(1), at(2));
    const got = Object.fromEntries(r.MetricDataResults!.map((m, i) => [stats[i], m.Values]));
    assert.deepEqual(got, { SampleCount: [n], Sum: [sum], Minimum: [1], Maximum: [12], Average: [sum / n] });
    // A statistic set with Minimum != Maximum carries no distribution: no percentile for that period.
    const p = await gmd(emu, [{ stat: "p50" }], at(1), at(2));
    assert.deepEqual(p.MetricDataResults![0]!.Values, []);
    const s = await cloudWatch(emu.url, A).send(
      new GetMetricStatisticsCommand({
        Namespace: "App",
        MetricName: "Latency",
        StartTime: at(1),
        EndTime: at(3),
        Period: 60,
        Statistics: ["SampleCount", "Sum", "Minimum", "Maximum", "Average"],
      }),
    );
    assert.deepEqual(s.Datapoints!.map((d) => [d.SampleCount, d.Sum, d.Minimum, d.Maximum, d.Average]), [[
      n,
      sum,
      1,
      12,
      sum / n,
    ], [1, 100, 100, 100, 100]]);
  });
});

test("GetMetricData computes percentiles exactly over raw values and equal-valued statistic sets", async () => {
  await withEmu(async (emu) => {
    const raw: [number, number][] = [[2.5, 1], [7.25, 1], [5, 4], [3, 2], [4.5, 1], [12, 3], [0.5, 1]];
    await put(emu, [
      { MetricName: "Latency", Value: 2.5, Timestamp: at(1, 0) },
      { MetricName: "Latency", Value: 7.25, Timestamp: at(1, 1) },
      {
        MetricName: "Latency",
        StatisticValues: { SampleCount: 4, Sum: 20, Minimum: 5, Maximum: 5 },
        Timestamp: at(1, 2),
      },
      { MetricName: "Latency", Values: [3, 4.5, 12, 0.5], Counts: [2, 1, 3, 1], Timestamp: at(1, 3) },
    ]);
    const ps = [1, 10, 25, 50, 75, 90, 99, 99.9, 100];
    const r = await gmd(emu, ps.map((p) => ({ stat: `p${p}` })), at(1), at(2));
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values![0]), ps.map((p) => percentile(raw, p)));
  });
});

test("GetMetricData takes StartTime inclusive and EndTime exclusive, keeps dimensions, accounts and regions apart", async () => {
  await withEmu(async (emu) => {
    const dims = [{ Name: "Host", Value: "a" }];
    await put(emu, [
      { MetricName: "Latency", Value: 1, Timestamp: at(0), Dimensions: dims },
      { MetricName: "Latency", Value: 2, Timestamp: at(4, 59), Dimensions: dims },
      { MetricName: "Latency", Value: 4, Timestamp: at(5), Dimensions: dims },
      { MetricName: "Latency", Value: 8, Timestamp: at(1), Dimensions: [{ Name: "Host", Value: "b" }] },
    ]);
    await cloudWatch(emu.url, A, "us-east-1").send(
      new PutMetricDataCommand({
        Namespace: "App",
        MetricData: [{ MetricName: "Latency", Value: 16, Timestamp: at(1), Dimensions: dims }],
      }),
    );
    await put(
      emu,
      [{ MetricName: "Latency", Value: 32, Timestamp: at(1), Dimensions: dims }],
      "App",
      "222222222222",
    );
    const r = await gmd(emu, [{ stat: "Sum", period: 300, dims }], at(0), at(5));
    assert.deepEqual(r.MetricDataResults![0]!.Values, [3]);
    assert.deepEqual(r.MetricDataResults![0]!.Timestamps, [at(0)]);
  });
});

test("GetMetricData orders by ScanBy and labels results", async () => {
  await withEmu(async (emu) => {
    await put(emu, [0, 1, 2].map((m) => ({ MetricName: "Latency", Value: m, Timestamp: at(m) })));
    const asc = await gmd(emu, [{ stat: "Sum" }], at(0), at(3));
    assert.deepEqual(asc.MetricDataResults![0]!.Values, [0, 1, 2]);
    assert.equal(asc.MetricDataResults![0]!.Label, "Latency");
    const desc = await cloudWatch(emu.url, A).send(
      new GetMetricDataCommand({
        StartTime: at(0),
        EndTime: at(3),
        ScanBy: "TimestampDescending",
        MetricDataQueries: [{
          Id: "a",
          Label: "mine",
          MetricStat: { Metric: { Namespace: "App", MetricName: "Latency" }, Period: 60, Stat: "Sum" },
        }],
      }),
    );
    assert.deepEqual(desc.MetricDataResults![0]!.Values, [2, 1, 0]);
    assert.equal(desc.MetricDataResults![0]!.Label, "mine");
  });
});

test("GetMetricData pages datapoints with MaxDatapoints and NextToken, marking PartialData", async () => {
  await withEmu(async (emu) => {
    await put(
      emu,
      Array.from({ length: 10 }, (_, m) => ({ MetricName: "Latency", Value: m, Timestamp: at(m) })),
    );
    const seen: number[][] = [[], []];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await gmd(emu, [{ stat: "Sum" }, { stat: "SampleCount" }], at(0), at(10), {
        MaxDatapoints: 7,
        ...(token ? { NextToken: token } : {}),
      });
      r.MetricDataResults!.forEach((m, i) => seen[i]!.push(...m.Values!));
      if (pages === 0) {
        assert.deepEqual(r.MetricDataResults!.map((m) => m.StatusCode), ["PartialData", "PartialData"]);
      }
      token = r.NextToken;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], Array(10).fill(1)]);
  });
});

test("GetMetricData answers periods under 60 s only for high-resolution data", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      {
        MetricName: "Latency",
        Value: 1,
        Timestamp: at(0, 0),
        StorageResolution: 1,
        Dimensions: [{ Name: "R", Value: "hi" }],
      },
      {
        MetricName: "Latency",
        Value: 2,
        Timestamp: at(0, 12),
        StorageResolution: 1,
        Dimensions: [{ Name: "R", Value: "hi" }],
      },
      { MetricName: "Latency", Value: 1, Timestamp: at(0, 0), Dimensions: [{ Name: "R", Value: "std" }] },
    ]);
    const r = await gmd(
      emu,
      [{ stat: "Sum", period: 10, dims: [{ Name: "R", Value: "hi" }] }, {
        stat: "Sum",
        period: 10,
        dims: [{ Name: "R", Value: "std" }],
      }],
      at(0),
      at(1),
    );
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [[1, 2], []]);
  });
});

const gmdRejections: [string, () => Record<string, unknown>, string][] = [
  ["no queries", () => ({ MetricDataQueries: [] }), "InvalidParameterValue"],
  [
    "501 queries",
    () => ({ MetricDataQueries: Array.from({ length: 501 }, (_, i) => query(`q${i}`)) }),
    "InvalidParameterValue",
  ],
  ["duplicate Ids", () => ({ MetricDataQueries: [query("a"), query("a")] }), "InvalidParameterValue"],
  ["an Id starting with a capital", () => ({ MetricDataQueries: [query("Abc")] }), "InvalidParameterValue"],
  [
    "an unknown statistic",
    () => ({ MetricDataQueries: [query("a", { Stat: "Median" })] }),
    "InvalidParameterValue",
  ],
  ["a period of 45 s", () => ({ MetricDataQueries: [query("a", { Period: 45 })] }), "InvalidParameterValue"],
  ["a query without MetricStat", () => ({ MetricDataQueries: [{ Id: "a" }] }), "MissingParameter"],
  [
    "StartTime not before EndTime",
    () => ({ MetricDataQueries: [query("a")], StartTime: at(5), EndTime: at(5) }),
    "InvalidParameterValue",
  ],
  [
    "an invalid NextToken",
    () => ({ MetricDataQueries: [query("a")], NextToken: "forged" }),
    "InvalidNextToken",
  ],
];

function query(id: string, over: Record<string, unknown> = {}) {
  return {
    Id: id,
    MetricStat: { Metric: { Namespace: "App", MetricName: "Latency" }, Period: 60, Stat: "Sum", ...over },
  };
}

for (const [name, input, code] of gmdRejections) {
  test(`GetMetricData refuses ${name} with ${code}`, async () => {
    await withEmu(async (emu) => {
      await rejectsWith(
        cloudWatch(emu.url, A).send(
          new GetMetricDataCommand({ StartTime: at(0), EndTime: at(5), ...input() } as never),
        ),
        code,
      );
    });
  });
}

test("GetMetricData accepts 500 queries and p99.9, and bills up to five statistics of a metric as one", async () => {
  await withEmu(async (emu) => {
    await put(emu, [{ MetricName: "Latency", Value: 1, Timestamp: at(0) }]);
    const r = await cloudWatch(emu.url, A).send(
      new GetMetricDataCommand({
        StartTime: at(0),
        EndTime: at(1),
        MetricDataQueries: Array.from(
          { length: 500 },
          (_, i) => query(`q${i}`, { Stat: i % 2 ? "p99.9" : "Sum" }),
        ),
      } as never),
    );
    assert.equal(r.MetricDataResults?.length, 500);
    const counts = await (await fetch(`${emu.url}/_emulator/counts`)).json();
    // 500 statistics of one metric (App/Latency, no dimensions) in one call: ceil(500 / 5) = 100 metrics.
    assert.deepEqual(counts[A]["eu-west-1"], {
      calls: { PutMetricData: 1, GetMetricData: 1 },
      billed: { PutMetricData: 1, GetMetricData: 100 },
      throttled: {},
    });
  });
});

/** A query for GetMetricData's billing: a statistic of a metric (App/Latency, no dimensions, unless given). */
function billedQuery(
  i: number,
  o: {
    name?: string;
    dims?: [string, string][];
    stat?: string | undefined;
    period?: number;
    account?: string | undefined;
  } = {},
) {
  return {
    Id: `q${i}`,
    ...(o.account ? { AccountId: o.account } : {}),
    MetricStat: {
      Metric: {
        Namespace: "App",
        MetricName: o.name ?? "Latency",
        Dimensions: (o.dims ?? []).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: o.period ?? 60,
      Stat: o.stat ?? "Sum",
    },
  };
}

const STATS = ["SampleCount", "Sum", "Minimum", "Maximum", "Average", "p50", "p99"];
const times = <T>(n: number, f: (i: number) => T) => Array.from({ length: n }, (_, i) => f(i));

/** [case, queries of one call, metrics billed]: up to five statistics of a metric in a call bill as one. */
const billingCases: [string, ReturnType<typeof billedQuery>[], number][] = [
  [
    "the statistic set of a stream (4 statistics) as one metric",
    times(4, (i) => billedQuery(i, { stat: STATS[i] })),
    1,
  ],
  ["5 statistics of a metric as one", times(5, (i) => billedQuery(i, { stat: STATS[i] })), 1],
  ["6 statistics of a metric as two", times(6, (i) => billedQuery(i, { stat: STATS[i] })), 2],
  ["the same statistic asked 6 times as two", times(6, (i) => billedQuery(i)), 2],
  [
    "4 statistics of each of two dimension sets as two",
    times(8, (i) => billedQuery(i, { stat: STATS[i % 4], dims: [["Cluster", i < 4 ? "a" : "b"]] })),
    2,
  ],
  [
    "dimensions in either order as one metric (2 + 3 statistics)",
    times(5, (i) => billedQuery(i, { dims: i < 2 ? [["A", "1"], ["B", "2"]] : [["B", "2"], ["A", "1"]] })),
    1,
  ],
  [
    "two metric names as two (2 + 2 statistics)",
    times(4, (i) => billedQuery(i, { name: i < 2 ? "Latency" : "Errors" })),
    2,
  ],
  [
    "periods of 60 and 300 s of one metric as one (2 + 3)",
    times(5, (i) => billedQuery(i, { period: i < 2 ? 60 : 300 })),
    1,
  ],
  [
    "the caller's own AccountId as the caller's metric (2 + 3)",
    times(5, (i) => billedQuery(i, { account: i < 2 ? A : undefined })),
    1,
  ],
  [
    "another AccountId as another metric (2 + 2)",
    times(4, (i) => billedQuery(i, { account: i < 2 ? "222222222222" : undefined })),
    2,
  ],
  [
    "500 queries, the forwarder's 4 statistics of 125 streams, as 125",
    times(500, (i) => billedQuery(i, { stat: STATS[i % 4], dims: [["Service", `s${Math.floor(i / 4)}`]] })),
    125,
  ],
];

for (const [name, queries, billed] of billingCases) {
  test(`GetMetricData bills ${name}`, async () => {
    await withEmu(async (emu) => {
      // Some of the metrics asked have data and some have none: billing is the same for both.
      await put(emu, [
        { MetricName: "Latency", Value: 1, Timestamp: at(0) },
        {
          MetricName: "Latency",
          Value: 1,
          Timestamp: at(0),
          Dimensions: [{ Name: "A", Value: "1" }, { Name: "B", Value: "2" }],
        },
      ]);
      await cloudWatch(emu.url, A).send(
        new GetMetricDataCommand({ StartTime: at(0), EndTime: at(1), MetricDataQueries: queries } as never),
      );
      assert.equal((await counts(emu))[A]["eu-west-1"].billed.GetMetricData, billed);
    });
  });
}

test("GetMetricData and GetMetricStatistics with a Unit read only that unit's samples; without one, GetMetricStatistics names the first sample's", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      { MetricName: "Latency", Value: 1, Timestamp: at(0, 0), Unit: "Milliseconds" },
      { MetricName: "Latency", Value: 2, Timestamp: at(0, 10), Unit: "Seconds" },
      { MetricName: "Latency", Value: 4, Timestamp: at(0, 20) },
      { MetricName: "Latency", Value: 8, Timestamp: at(1), Unit: "Seconds" },
    ]);
    const sums = async (unit?: string) =>
      (await cloudWatch(emu.url, A).send(
        new GetMetricDataCommand({
          StartTime: at(0),
          EndTime: at(2),
          ScanBy: "TimestampAscending",
          MetricDataQueries: [query("a", unit ? { Unit: unit } : {})],
        } as never),
      )).MetricDataResults![0]!.Values;
    assert.deepEqual(await sums(), [7, 8]);
    assert.deepEqual(await sums("Seconds"), [2, 8]);
    assert.deepEqual(await sums("Milliseconds"), [1]);
    assert.deepEqual(await sums("None"), [4]);
    const all = await gms(emu, { EndTime: at(2) });
    assert.deepEqual(all.Datapoints!.map((d) => [d.Sum, d.Unit]), [[7, "Milliseconds"], [8, "Milliseconds"]]);
    const seconds = await gms(emu, { EndTime: at(2), Unit: "Seconds" });
    assert.deepEqual(seconds.Datapoints!.map((d) => [d.Sum, d.Unit]), [[2, "Seconds"], [8, "Seconds"]]);
  });
});

test("GetMetricData aggregates samples put out of time order as if in order; a statistic set without values takes its period's percentiles away", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      { MetricName: "Latency", Value: 3, Timestamp: at(2) },
      { MetricName: "Latency", Values: [1, 2], Counts: [1, 3], Timestamp: at(1, 30) },
      { MetricName: "Latency", Value: 1, Timestamp: at(0) },
      { MetricName: "Latency", Value: 5, Timestamp: at(1) },
      { MetricName: "Latency", Value: 6, Timestamp: at(0, 59) },
    ]);
    await put(emu, [{
      MetricName: "Latency",
      StatisticValues: { SampleCount: 2, Sum: 3, Minimum: 1, Maximum: 2 },
      Timestamp: at(2, 1),
    }]);
    const stats = ["SampleCount", "Sum", "Minimum", "Maximum", "p50", "p100"];
    const r = await gmd(emu, stats.map((stat) => ({ stat })), at(0), at(3));
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [
      [2, 5, 3],
      [7, 12, 6],
      [1, 1, 1],
      [6, 5, 3],
      [1, 2],
      [6, 5],
    ]);
    assert.deepEqual(r.MetricDataResults![4]!.Timestamps, [at(0), at(1)]);
  });
});

test("GetMetricData computes percentiles over fractional Counts as it always has", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      { MetricName: "Latency", Values: [1, 2], Counts: [0.5, 0], Timestamp: at(0) },
      { MetricName: "Latency", Values: [3], Counts: [0.5], Timestamp: at(1) },
      { MetricName: "Latency", Values: [4, 4], Timestamp: at(2) },
    ]);
    const r = await gmd(emu, [{ stat: "p50" }, { stat: "SampleCount" }, { stat: "Maximum" }], at(0), at(3));
    // Fewer than one sample in all: nearest rank 1 is past the total, and the largest value answers.
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [[2, 3, 4], [0.5, 0.5, 2], [1, 3, 4]]);
  });
});

test("emu.seed() takes any number of values in one datum, and percentiles count every one", async () => {
  await withEmu(async (emu) => {
    const values = Array.from({ length: 200_000 }, (_, i) => i % 1000);
    const [namespace, name] = ["AWS/X", "m"];
    emu.seed({ account: A, region: "eu-west-1", namespace, name, dimensions: {}, timestamp: T0, values });
    const r = await cloudWatch(emu.url, A).send(
      new GetMetricDataCommand({
        StartTime: at(0),
        EndTime: at(1),
        MetricDataQueries: ["p50", "SampleCount"].map((Stat, i) => ({
          Id: `q${i}`,
          MetricStat: { Metric: { Namespace: namespace, MetricName: name }, Period: 60, Stat },
        })),
      }),
    );
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [[499], [200_000]]);
  });
});

test("a stream is the same whatever order its dimensions come in; ListMetrics gives them sorted by name", async () => {
  await withEmu(async (emu) => {
    const ab = [{ Name: "b", Value: "1" }, { Name: "a", Value: "2" }];
    await put(emu, [
      { MetricName: "Latency", Value: 1, Timestamp: at(0), Dimensions: ab },
      { MetricName: "Latency", Value: 2, Timestamp: at(0), Dimensions: [...ab].reverse() },
    ]);
    const r = await gmd(emu, [{ stat: "Sum", dims: ab }], at(0), at(1));
    assert.deepEqual(r.MetricDataResults![0]!.Values, [3]);
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    assert.deepEqual(listed.Metrics, [{
      Namespace: "App",
      MetricName: "Latency",
      Dimensions: [{ Name: "a", Value: "2" }, { Name: "b", Value: "1" }],
    }]);
  });
});

// ---- GetMetricStatistics ----

test("GetMetricStatistics answers several statistics and percentiles in one call", async () => {
  await withEmu(async (emu) => {
    await put(emu, [{ MetricName: "Latency", Values: [1, 2, 3, 4], Timestamp: at(0), Unit: "Milliseconds" }]);
    const r = await gms(emu, { Statistics: ["Sum", "Maximum"], ExtendedStatistics: ["p50"] });
    assert.deepEqual(r.Datapoints?.map((d) => [d.Sum, d.Maximum, d.ExtendedStatistics?.["p50"], d.Unit]), [[
      10,
      4,
      2,
      "Milliseconds",
    ]]);
  });
});

test("GetMetricStatistics refuses more than 1,440 datapoints with InvalidParameterCombination", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(gms(emu, { EndTime: at(1441) }), "InvalidParameterCombination");
  });
});

test("GetMetricStatistics refuses a call without statistics with MissingParameter", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(gms(emu, { Statistics: undefined }), "MissingParameter");
  });
});

// ---- ListMetrics ----

test("ListMetrics filters by namespace, name, dimension name and dimension value", async () => {
  await withEmu(async (emu) => {
    await put(emu, [
      {
        MetricName: "Latency",
        Value: 1,
        Dimensions: [{ Name: "Cluster", Value: "a" }, { Name: "Service", Value: "x" }],
      },
      { MetricName: "Latency", Value: 1, Dimensions: [{ Name: "Cluster", Value: "b" }] },
      { MetricName: "Errors", Value: 1, Dimensions: [{ Name: "Cluster", Value: "a" }] },
    ]);
    await put(emu, [{ MetricName: "Latency", Value: 1 }], "Other");
    const list = async (input: Record<string, unknown>) =>
      (await cloudWatch(emu.url, A).send(new ListMetricsCommand(input))).Metrics!.map((m) =>
        `${m.Namespace}/${m.MetricName}/${m.Dimensions!.map((d) => `${d.Name}=${d.Value}`).join(",")}`
      ).sort();
    assert.deepEqual(await list({ Namespace: "Other" }), ["Other/Latency/"]);
    assert.deepEqual(await list({ Namespace: "App", MetricName: "Latency" }), [
      "App/Latency/Cluster=a,Service=x",
      "App/Latency/Cluster=b",
    ]);
    assert.deepEqual(await list({ Dimensions: [{ Name: "Service" }] }), ["App/Latency/Cluster=a,Service=x"]);
    assert.deepEqual(await list({ Dimensions: [{ Name: "Cluster", Value: "a" }] }), [
      "App/Errors/Cluster=a",
      "App/Latency/Cluster=a,Service=x",
    ]);
  });
});

test("ListMetrics returns pages of 500 with NextToken", async () => {
  await withEmu(async (emu) => {
    for (let k = 0; k < 2; k++) {
      await put(emu, Array.from({ length: 1000 }, (_, i) => ({ MetricName: `m${k * 1000 + i}`, Value: 1 })));
    }
    await put(emu, [{ MetricName: "last", Value: 1 }]);
    const names = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await cloudWatch(emu.url, A).send(
        new ListMetricsCommand({ Namespace: "App", ...(token ? { NextToken: token } : {}) }),
      );
      assert.ok(r.Metrics!.length <= 500);
      r.Metrics!.forEach((m) => names.add(m.MetricName!));
      token = r.NextToken;
      pages++;
    } while (token);
    assert.equal(pages, 5);
    assert.equal(names.size, 2001);
  });
});

test("ListMetrics RecentlyActive=PT3H lists only metrics with data in the past three hours; nothing older than two weeks", async () => {
  await withEmu(async (emu, clock) => {
    await put(emu, [{ MetricName: "old", Value: 1, Timestamp: at(-60) }]);
    clock.now += 4 * 3_600_000;
    await put(emu, [{ MetricName: "new", Value: 1 }]);
    const names = async (input: Record<string, unknown>) =>
      (await cloudWatch(emu.url, A).send(new ListMetricsCommand(input))).Metrics!.map((m) => m.MetricName)
        .sort();
    assert.deepEqual(await names({ RecentlyActive: "PT3H" }), ["new"]);
    assert.deepEqual(await names({}), ["new", "old"]);
    clock.now += 14 * 86_400_000 + 60_000;
    assert.deepEqual(await names({}), []);
  });
});

test("ListMetrics refuses RecentlyActive other than PT3H with InvalidParameterValue", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(
      cloudWatch(emu.url, A).send(new ListMetricsCommand({ RecentlyActive: "PT1H" as never })),
      "InvalidParameterValue",
    );
  });
});

test("ListMetrics refuses more than 10 dimension filters with InvalidParameterValue", async () => {
  await withEmu(async (emu) => {
    const filters = Array.from({ length: 11 }, (_, i) => ({ Name: `d${i}` }));
    await rejectsWith(
      cloudWatch(emu.url, A).send(new ListMetricsCommand({ Dimensions: filters })),
      "InvalidParameterValue",
    );
  });
});

/** Each page of a listing as "namespace/name/dim=value,...", following NextToken; `between` runs between pages. */
async function listPages(
  emu: Emulator,
  input: Record<string, unknown>,
  between: (pages: number) => Promise<void> = async () => {},
): Promise<string[][]> {
  const pages: string[][] = [];
  let token: string | undefined;
  do {
    const r = await cloudWatch(emu.url, A).send(
      new ListMetricsCommand({ ...input, ...(token ? { NextToken: token } : {}) }),
    );
    pages.push(
      r.Metrics!.map((m) =>
        `${m.Namespace}/${m.MetricName}/${m.Dimensions!.map((d) => `${d.Name}=${d.Value}`).join(",")}`
      ),
    );
    token = r.NextToken;
    if (token) await between(pages.length);
  } while (token);
  return pages;
}

/**
 * Puts `count` streams of App (or `namespace`) in order, 1,000 a call, as account A (or `account`): name(i) and
 * dims(i) for each i.
 */
async function putStreams(
  emu: Emulator,
  count: number,
  name: (i: number) => string,
  dims: (i: number) => { Name: string; Value: string }[] = () => [],
  namespace = "App",
  account = A,
) {
  for (let from = 0; from < count; from += 1000) {
    const data = Array.from(
      { length: Math.min(1000, count - from) },
      (_, k) => ({ MetricName: name(from + k), Value: 1, Timestamp: at(0), Dimensions: dims(from + k) }),
    );
    await put(emu, data, namespace, account);
  }
}

const padded = (prefix: string) => (i: number) => `${prefix}${String(i).padStart(4, "0")}`;

test("ListMetrics lists in the order streams were created: 500 fit one page without NextToken, 501 take two", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 500, padded("m"));
    const one = await listPages(emu, { Namespace: "App" });
    assert.deepEqual(one.map((p) => p.length), [500]);
    assert.deepEqual(one[0], Array.from({ length: 500 }, (_, i) => `App/${padded("m")(i)}/`));
    await putStreams(emu, 1, () => "last");
    const two = await listPages(emu, { Namespace: "App" });
    assert.deepEqual(two.map((p) => p.length), [500, 1]);
    assert.deepEqual(two[1], ["App/last/"]);
  });
});

test("ListMetrics: streams created between pages come after those listed, none skipped or listed twice", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 1200, padded("s"));
    const pages = await listPages(emu, { Namespace: "App" }, async (page) => {
      if (page !== 1) return;
      await putStreams(emu, 300, padded("new"));
      await putStreams(emu, 100, padded("other"), () => [], "Other");
      // New data for streams listed already, and for streams not listed yet, moves none of them.
      await put(emu, [{ MetricName: "s0001", Value: 2 }, { MetricName: "s1100", Value: 2 }]);
    });
    assert.deepEqual(pages.map((p) => p.length), [500, 500, 500]);
    const names = pages.flat();
    assert.deepEqual(names, [
      ...Array.from({ length: 1200 }, (_, i) => `App/${padded("s")(i)}/`),
      ...Array.from({ length: 300 }, (_, i) => `App/${padded("new")(i)}/`),
    ]);
  });
});

test("ListMetrics: a NextToken can be sent again and gives the same page", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 1200, padded("s"));
    const client = cloudWatch(emu.url, A);
    const first = await client.send(new ListMetricsCommand({ Namespace: "App" }));
    const again = async () =>
      await client.send(new ListMetricsCommand({ Namespace: "App", NextToken: first.NextToken }));
    const [a, b] = [await again(), await again()];
    assert.deepEqual(a.Metrics, b.Metrics);
    assert.equal(a.NextToken, b.NextToken);
    assert.equal(a.Metrics![0]!.MetricName, "s0500");
  });
});

test("ListMetrics: a page starts where the last one ended, though streams listed before it left RecentlyActive", async () => {
  await withEmu(async (emu, clock) => {
    await putStreams(emu, 600, padded("s"));
    const client = cloudWatch(emu.url, A);
    const first = await client.send(new ListMetricsCommand({ Namespace: "App", RecentlyActive: "PT3H" }));
    assert.equal(first.Metrics!.length, 500);
    // Three hours on, only the streams not listed yet have new data.
    clock.now += 3 * 3_600_000 + 60_000;
    await put(emu, Array.from({ length: 100 }, (_, i) => ({ MetricName: padded("s")(500 + i), Value: 1 })));
    const next = await client.send(
      new ListMetricsCommand({ Namespace: "App", RecentlyActive: "PT3H", NextToken: first.NextToken }),
    );
    assert.deepEqual(
      next.Metrics!.map((m) => m.MetricName),
      Array.from({ length: 100 }, (_, i) => padded("s")(500 + i)),
    );
    assert.equal(next.NextToken, undefined);
  });
});

for (const token of ["forged", "emu-", "emu-1201", "emu-1e3", "emu--1"]) {
  test(`ListMetrics refuses the NextToken "${token}" with InvalidNextToken`, async () => {
    await withEmu(async (emu) => {
      await putStreams(emu, 1200, padded("s"));
      await rejectsWith(
        cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App", NextToken: token })),
        "InvalidNextToken",
        400,
      );
    });
  });
}

test("ListMetrics pages a listing narrowed by name, dimension names and a dimension value, with or without a namespace", async () => {
  await withEmu(async (emu) => {
    const name = (i: number) => (i % 2 ? "Cpu" : "Mem");
    const dims = (i: number) => [
      { Name: "Cluster", Value: `c${i % 3}` },
      i % 5 ? { Name: "Service", Value: `s${i}` } : { Name: "Shard", Value: `x${i}` },
    ];
    await putStreams(emu, 3000, name, dims);
    await putStreams(emu, 700, name, dims, "Other");
    const expect = (namespace: string, count: number, keep: (i: number) => boolean) =>
      Array.from({ length: count }, (_, i) => i).filter(keep).map((i) =>
        `${namespace}/${name(i)}/${dims(i).map((d) => `${d.Name}=${d.Value}`).join(",")}`
      );
    const cases: [Record<string, unknown>, string[]][] = [
      [
        {
          Namespace: "App",
          MetricName: "Cpu",
          Dimensions: [{ Name: "Cluster", Value: "c1" }, { Name: "Service" }],
        },
        expect("App", 3000, (i) => i % 2 === 1 && i % 3 === 1 && i % 5 !== 0),
      ],
      [{ Namespace: "App", Dimensions: [{ Name: "Service" }] }, expect("App", 3000, (i) => i % 5 !== 0)],
      [{ MetricName: "Mem" }, [
        ...expect("App", 3000, (i) => i % 2 === 0),
        ...expect("Other", 700, (i) => i % 2 === 0),
      ]],
      [{}, [...expect("App", 3000, () => true), ...expect("Other", 700, () => true)]],
      [{ Namespace: "Nothing" }, []],
    ];
    for (const [input, expected] of cases) {
      const pages = await listPages(emu, input);
      assert.ok(pages.every((p) => p.length <= 500), JSON.stringify(input));
      assert.deepEqual(pages.slice(0, -1).map((p) => p.length), pages.slice(0, -1).map(() => 500));
      assert.deepEqual(pages.flat(), expected, JSON.stringify(input));
    }
  });
});

// ---- ListMetrics naming a metric again (--list-repeat-rate) ----

/** A deterministic `random`: a linear congruential generator, as the demo seed uses. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/**
 * Asserts what a listing with repeats still promises: every page at most 500 entries, every stream named at
 * least once and at most twice, a second naming later on the same page or on the next one. Returns how many
 * streams were named again on the same page, and on the next.
 */
function checkRepeats(pages: string[][], streams: string[]): { samePage: number; nextPage: number } {
  const first = new Map<string, { page: number; index: number }>();
  const twice = new Set<string>();
  let samePage = 0;
  let nextPage = 0;
  pages.forEach((page, p) => {
    assert.ok(page.length <= 500, `page ${p + 1} has ${page.length} entries`);
    page.forEach((entry, index) => {
      const seen = first.get(entry);
      if (seen === undefined) return void first.set(entry, { page: p, index });
      assert.ok(!twice.has(entry), `${entry} is named more than twice`);
      twice.add(entry);
      if (seen.page === p) samePage++;
      else if (seen.page === p - 1) nextPage++;
      else assert.fail(`${entry} is named again on page ${p + 1}, first on page ${seen.page + 1}`);
    });
  });
  assert.deepEqual([...first.keys()].sort(), [...streams].sort(), "every stream is named");
  return { samePage, nextPage };
}

const s1200 = Array.from({ length: 1200 }, (_, i) => `App/${padded("s")(i)}/`);
const repeatCases: {
  name: string;
  options: EmulatorOptions;
  sizes: number[] | undefined;
  check: (pages: string[][], again: { samePage: number; nextPage: number }) => void;
}[] = [
  {
    name: "rate 0 names each metric once, in pages of 500",
    options: { listRepeatRate: 0 },
    sizes: [500, 500, 200],
    check: (pages) => assert.deepEqual(pages.flat(), s1200),
  },
  {
    name: "rate 1, drawn for the same page, names each metric twice in a row, 250 metrics a page",
    options: { listRepeatRate: 1, random: () => 0 },
    sizes: [500, 500, 500, 500, 400],
    check: (pages) => assert.deepEqual(pages.flat(), s1200.flatMap((s) => [s, s])),
  },
  {
    name: "rate 1, drawn for the next page, names a page again on the next; the last page keeps its own",
    options: { listRepeatRate: 1, random: () => 0.75 },
    sizes: [500, 500, 500, 500, 400],
    check: (pages, again) => {
      assert.deepEqual(pages[0], s1200.slice(0, 500));
      assert.deepEqual(pages[1], pages[0]);
      assert.deepEqual(pages[2], s1200.slice(500, 1000));
      assert.deepEqual(pages[3], pages[2]);
      assert.deepEqual([...new Set(pages[4])], s1200.slice(1000));
      assert.deepEqual(again, { samePage: 200, nextPage: 1000 });
    },
  },
  {
    name: "rate 0.3 names about 30% again, some on the same page and some on the next",
    options: { listRepeatRate: 0.3, random: lcg(42) },
    sizes: undefined,
    check: (_, again) => {
      const repeated = again.samePage + again.nextPage;
      assert.ok(repeated > 0.2 * 1200 && repeated < 0.4 * 1200, `${repeated} of 1,200 named again`);
      assert.ok(again.samePage > 0 && again.nextPage > 0, JSON.stringify(again));
    },
  },
];

for (const c of repeatCases) {
  test(`--list-repeat-rate: ListMetrics ${c.name}; every metric listed, NextToken followed to the end`, async () => {
    await withEmu(async (emu) => {
      await putStreams(emu, 1200, padded("s"));
      const pages = await listPages(emu, { Namespace: "App" });
      if (c.sizes) assert.deepEqual(pages.map((p) => p.length), c.sizes);
      c.check(pages, checkRepeats(pages, s1200));
    }, c.options);
  });
}

test("ListMetrics takes a NextToken that names listed metrics again, and refuses one naming a metric the listing does not select", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 20, padded("a"));
    await putStreams(emu, 20, padded("o"), () => [], "Other");
    const page = (token: string) =>
      cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App", NextToken: token }));
    // Position 30 is past every App stream (0-19); 5 and 7 are App streams listed before it.
    const r = await page("emu-30+5.7");
    assert.deepEqual(r.Metrics!.map((m) => m.MetricName), ["a0005", "a0007"]);
    assert.equal(r.NextToken, undefined);
    for (const token of ["emu-30+25", "emu-30+30", "emu-30+", "emu-30+5..7"]) {
      await rejectsWith(page(token), "InvalidNextToken", 400);
    }
  });
});

test("emu.seed() keeps dimension names and values as given, control characters too, each set its own stream", async () => {
  await withEmu(async (emu) => {
    const sets = [{ "a\u0000b": "c" }, { a: "b\u0000c" }, { "\u0001": "" }, { "": "\u0001x" }, {}];
    for (const dimensions of sets) {
      emu.seed({
        account: A,
        region: "eu-west-1",
        namespace: "AWS/X",
        name: "m",
        dimensions,
        timestamp: T0,
        values: [1],
      });
    }
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "AWS/X" }));
    assert.deepEqual(
      listed.Metrics!.map((m) => m.Dimensions),
      sets.map((d) => Object.entries(d).map(([Name, Value]) => ({ Name, Value }))),
    );
    assert.equal(emu.streamCount(), sets.length);
  });
});

// ---- Faults and accounting ----

test("--throttle-rate answers Throttling (HTTP 400, Rate exceeded) and --error-rate InternalFailure (HTTP 500), changeable while running", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(cloudWatch(emu.url, A).send(new ListMetricsCommand({})), "Throttling", 400);
    await fetch(`${emu.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ throttle_rate: 0, error_rate: 1 }),
    });
    await rejectsWith(cloudWatch(emu.url, A).send(new ListMetricsCommand({})), "InternalFailure", 500);
    emu.faults.errorRate = 0;
    await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    const counts = await (await fetch(`${emu.url}/_emulator/counts`)).json();
    // Every attempt is a call; only answered ones are billed; `throttled` counts only calls over a quota.
    assert.deepEqual(counts[A]["eu-west-1"], {
      calls: { ListMetrics: 3 },
      billed: { ListMetrics: 1 },
      throttled: {},
    });
  }, { throttleRate: 1 });
});

test("--latency-ms delays every call", async () => {
  await withEmu(async (emu) => {
    const started = Date.now();
    await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    assert.ok(Date.now() - started >= 150);
  }, { latencyMs: 150 });
});

test("the demo seed holds ECS metrics for three accounts, production in two regions, several samples a minute", async () => {
  await withEmu(async (emu, clock) => {
    const list = async (account: string, region: string) =>
      (await cloudWatch(emu.url, account, region).send(
        new ListMetricsCommand({ Namespace: "AWS/ECS", Dimensions: [{ Name: "ServiceName" }] }),
      )).Metrics ?? [];
    assert.ok((await list("111111111111", "eu-west-1")).length > 0);
    assert.ok((await list("111111111111", "us-east-1")).length > 0);
    assert.ok((await list("222222222222", "eu-west-1")).length > 0);
    assert.ok((await list("333333333333", "eu-west-1")).length > 0);
    assert.equal((await list("333333333333", "us-east-1")).length, 0);
    const m = (await list("111111111111", "eu-west-1"))[0]!;
    const end = new Date(Math.floor(clock.now / 60_000) * 60_000);
    const r = await cloudWatch(emu.url, "111111111111").send(
      new GetMetricDataCommand({
        StartTime: new Date(end.getTime() - 3_600_000),
        EndTime: end,
        MetricDataQueries: [{ Id: "n", MetricStat: { Metric: m, Period: 60, Stat: "SampleCount" } }],
      }),
    );
    assert.equal(r.MetricDataResults![0]!.Values!.length, 60);
    assert.ok(r.MetricDataResults![0]!.Values!.every((n) => n > 1));
  }, { seed: "demo" });
});

test("the emulator runs as a command: prints its address once ready and exits 0 on SIGTERM", async () => {
  const rt = runtime();
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  const args = rt.name === "bun"
    ? ["run", script, "--port", "0"]
    : ["run", "--allow-net", "--allow-env", script, "--port", "0"];
  const child = spawn(rt.command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const line = await new Promise<string>((resolve) => child.stdout.once("data", (d) => resolve(String(d))));
  assert.match(line, /^emulator listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  const url = line.trim().split(" ").pop()!;
  await cloudWatch(url, A).send(new ListMetricsCommand({}));
  const code = await new Promise<number | null>((resolve) => {
    child.on("close", (c) => resolve(c));
    // Sent by pid: Deno's child.kill() reports the signal it sent rather than how the child exited.
    process.kill(child.pid!, "SIGTERM");
  });
  assert.equal(code, 0);
});

test("--put-error-rate answers PutMetricData with InternalFailure (HTTP 500) and leaves reads alone", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(put(emu, [{ MetricName: "m", Value: 1 }]), "InternalFailure", 500);
    await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    await fetch(`${emu.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ put_error_rate: 0 }),
    });
    await put(emu, [{ MetricName: "m", Value: 1 }]);
  }, { putErrorRate: 1 });
});

test("--put-reply-delay-ms stores a write before it answers", async () => {
  await withEmu(async (emu) => {
    const answered = put(emu, [{ MetricName: "m", Value: 1, Timestamp: at(0) }]);
    await new Promise((r) => setTimeout(r, 100));
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App" }));
    assert.deepEqual(listed.Metrics?.map((m) => m.MetricName), ["m"]);
    let done = false;
    void answered.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false);
    await answered;
  }, { putReplyDelayMs: 400 });
});

test("AssumeRole refuses an ExternalId of one character with ValidationError", async () => {
  await withEmu(async (emu) => {
    await rejectsWith(
      sts(emu.url, A).send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${A}:role/r`,
          RoleSessionName: "forwarder",
          ExternalId: "x",
        }),
      ),
      "ValidationError",
    );
  });
});

test("PutMetricData accepts StatisticValues with Values: the set gives the statistics, the values the percentiles", async () => {
  await withEmu(async (emu) => {
    await put(emu, [{
      MetricName: "Latency",
      Timestamp: at(0),
      StatisticValues: { SampleCount: 4, Sum: 10, Minimum: 1, Maximum: 4 },
      Values: [1, 2, 3, 4],
    }]);
    const r = await gmd(emu, [{ stat: "SampleCount" }, { stat: "Sum" }, { stat: "p50" }], at(0), at(1));
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [[4], [10], [2]]);
  });
});

test("data put 3 hours or more after its time is readable only 2 hours later, and 48 hours from 24 hours old", async () => {
  await withEmu(async (emu, clock) => {
    const H = 3_600_000;
    await put(emu, [
      { MetricName: "Latency", Value: 1, Timestamp: at(-179) },
      { MetricName: "Latency", Value: 2, Timestamp: at(-180) },
      { MetricName: "Latency", Value: 4, Timestamp: at(-24 * 60) },
    ]);
    const sum = async () =>
      (await gmd(emu, [{ stat: "Sum", period: 86_400 }], at(-24 * 60), at(0))).MetricDataResults![0]!.Values!
        .reduce((a, b) => a + b, 0);
    assert.equal(await sum(), 1);
    clock.now += 2 * H;
    assert.equal(await sum(), 3);
    clock.now += 46 * H;
    assert.equal(await sum(), 7);
  });
});

// ---- Samples a source publishes late (--late-rate, --late-by) ----

/** A `random` that answers these numbers in turn, then 0.99. */
const drawing = (xs: number[]) => {
  let i = 0;
  return Object.assign(() => xs[i++] ?? 0.99, { drawn: () => i });
};

/**
 * [case, options, how the samples 1, 2, 3 at 0, 20 and 40 s past T0 are written, random's draws, and what is
 * readable at seconds past T0: SampleCount, Sum, Minimum, Maximum of the minute, or [] for nothing (and then
 * ListMetrics names no metric either)].
 */
/** The minute with all three samples: SampleCount 3, Sum 6, Minimum 1, Maximum 3. */
const ALL = [3, 6, 1, 3];
const lateCases: [string, EmulatorOptions, "seed" | "put", number[], [number, number[]][]][] = [
  [
    "--late-rate 1 --late-by 300 holds each seeded sample until 300 s past its time, then adds it to its period",
    { lateRate: 1, lateBySeconds: 300 },
    "seed",
    [],
    [[60, []], [299, []], [300, [1, 1, 1, 1]], [320, [2, 3, 1, 2]], [340, ALL]],
  ],
  [
    "--late-rate 0.5 holds the seeded samples drawn late; the metric is listed once one sample is readable",
    { lateRate: 0.5, lateBySeconds: 300 },
    "seed",
    [0.1, 0.9, 0.1],
    [[60, [1, 2, 2, 2]], [300, [2, 3, 1, 2]], [340, ALL]],
  ],
  [
    "--late-rate 1 leaves PutMetricData's writes readable at once: an applied write is readable",
    { lateRate: 1, lateBySeconds: 300 },
    "put",
    [],
    [[60, ALL]],
  ],
  ["--late-rate 0 (the default) leaves every seeded sample readable at once", {}, "seed", [], [[60, ALL]]],
];

for (const [name, options, write, draws, reads] of lateCases) {
  test(name, async () => {
    const random = drawing(draws);
    await withEmu(async (emu, clock) => {
      const values = [1, 2, 3];
      if (write === "put") {
        await put(emu, values.map((v, i) => ({ MetricName: "Latency", Value: v, Timestamp: at(0, i * 20) })));
      } else {
        for (const [i, v] of values.entries()) {
          emu.seed({
            account: A,
            region: "eu-west-1",
            namespace: "App",
            name: "Latency",
            dimensions: {},
            timestamp: T0 + i * 20_000,
            values: [v],
          });
        }
        // One draw a seeded sample while the fault is on, none while it is off.
        assert.equal(random.drawn(), options.lateRate ? 3 : 0);
      }
      for (const [seconds, expected] of reads) {
        clock.now = T0 + seconds * 1000;
        const stats = ["SampleCount", "Sum", "Minimum", "Maximum"].map((stat) => ({ stat }));
        const r = await gmd(emu, stats, at(0), at(1));
        assert.deepEqual(r.MetricDataResults!.flatMap((m) => m.Values), expected, `at ${seconds} s`);
        const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: "App" }));
        assert.deepEqual(listed.Metrics!.map((m) => m.MetricName), expected.length ? ["Latency"] : []);
      }
    }, { ...options, random });
  });
}

test("the emulator's command line sets the faults and the seed, and refuses an unknown flag with exit code 2", async () => {
  const rt = runtime();
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  const prefix = rt.name === "bun" ? ["run", script] : ["run", "--allow-net", "--allow-env", script];
  const role = `arn:aws:iam::${A}:role/r`;
  const denied = `arn:aws:iam::${A}:role/denied`;
  const child = spawn(rt.command, [
    ...prefix,
    "--port",
    "0",
    "--seed",
    "demo",
    "--deny-role",
    denied,
    "--require-external-id",
    `${role}=s3cret`,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((resolve) =>
      child.stdout.once("data", (d) => resolve(String(d).trim().split(" ").pop()!))
    );
    const client = sts(url, "999999999999");
    await rejectsWith(
      client.send(new AssumeRoleCommand({ RoleArn: denied, RoleSessionName: "forwarder" })),
      "AccessDenied",
    );
    await rejectsWith(
      client.send(new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder" })),
      "AccessDenied",
    );
    await client.send(
      new AssumeRoleCommand({ RoleArn: role, RoleSessionName: "forwarder", ExternalId: "s3cret" }),
    );
    const listed = await cloudWatch(url, A).send(new ListMetricsCommand({ Namespace: "AWS/ECS" }));
    assert.ok((listed.Metrics?.length ?? 0) > 0);
  } finally {
    process.kill(child.pid!, "SIGTERM");
  }
  const bad = spawn(rt.command, [...prefix, "--port", "0", "--throttle-rate", "2"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  bad.stderr.on("data", (d) => (stderr += String(d)));
  const code = await new Promise<number | null>((resolve) => bad.on("close", resolve));
  assert.equal(code, 2);
  assert.equal(stderr, "Cannot parse arguments: --throttle-rate takes a number from 0 to 1\n");
});

/** Asserts that a call fails with AWS's error code and exactly this message. */
async function refuses(promise: Promise<unknown>, code: string, message: string) {
  await assert.rejects(promise, (e: unknown) => {
    const err = e as { Code?: string; name?: string; message?: string };
    assert.equal(err.Code ?? err.name, code);
    assert.equal(err.message, message);
    return true;
  });
}

const counts = async (emu: Emulator) => await (await fetch(`${emu.url}/_emulator/counts`)).json();

// ---- Answers lost after a write was applied ----

const lostAnswers: [string, EmulatorOptions, (e: unknown) => boolean][] = [
  ["--put-applied-reset-rate", { putAppliedResetRate: 1 }, (e) => {
    // No HTTP answer at all: the connection was destroyed.
    const err = e as { code?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(err.code, "ECONNRESET");
    assert.equal(err.$metadata?.httpStatusCode, undefined);
    return true;
  }],
  ["--put-applied-error-rate", { putAppliedErrorRate: 1 }, (e) => {
    const err = e as { Code?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(err.Code, "InternalFailure");
    assert.equal(err.$metadata?.httpStatusCode, 500);
    return true;
  }],
];

for (const [flag, options, failure] of lostAnswers) {
  test(`${flag} stores and bills a PutMetricData whose answer is then lost: the SDK rejects, the data is readable`, async () => {
    await withEmu(async (emu) => {
      await assert.rejects(put(emu, [{ MetricName: "Latency", Value: 7, Timestamp: at(0) }]), failure);
      const r = await gmd(emu, [{ stat: "Sum" }], at(0), at(1));
      assert.deepEqual(r.MetricDataResults![0]!.Values, [7]);
      assert.deepEqual((await counts(emu))[A]["eu-west-1"].billed, { PutMetricData: 1, GetMetricData: 1 });
      // Reads are left alone.
      await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    }, options);
  });
}

/** A PutMetricData of one value over `agent`, unsigned but for the account (the emulator reads no more). */
function putOver(agent: http.Agent, url: string, value: number) {
  const body = JSON.stringify({
    Namespace: "App",
    MetricData: [{ MetricName: "Latency", Value: value, Timestamp: T0 / 1000 }],
  });
  return new Promise<{ status?: number; error?: string; reused: boolean }>((resolve) => {
    let reused = false;
    const req = http.request(`${url}/`, {
      method: "POST",
      agent,
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "GraniteServiceVersion20100801.PutMetricData",
        authorization: `AWS4-HMAC-SHA256 Credential=AKIA${A}/20261124/eu-west-1/monitoring/aws4_request`,
      },
    }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, reused }));
    });
    // Whether the first socket the request was given had served a request before.
    req.once("socket", () => (reused = req.reusedSocket));
    req.on("error", (e) => resolve({ error: `${(e as { code?: string }).code} ${e.message}`, reused }));
    req.end(body);
  });
}

test("--put-applied-reset-rate resets a PutMetricData applied on a kept-alive connection, as the SDK's handler reuses one", async () => {
  await withEmu(async (emu) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.deepEqual(await putOver(agent, emu.url, 1), { status: 200, reused: false });
      emu.faults.putAppliedResetRate = 1;
      assert.deepEqual(await putOver(agent, emu.url, 2), {
        error: "ECONNRESET socket hang up",
        reused: true,
      });
    } finally {
      agent.destroy();
    }
    // The second write was applied before its connection was reset. Deno's node:http sends a request again,
    // on a new connection, when a reused one closes before any answer (denoland/deno#31932, #36786): there the
    // second write is applied twice (and reset twice, so the client still sees the reset).
    const again = runtime().name === "deno" ? 1 : 0;
    const r = await gmd(emu, [{ stat: "Sum" }, { stat: "SampleCount" }], at(0), at(1));
    assert.deepEqual(r.MetricDataResults!.map((m) => m.Values), [[1 + 2 + 2 * again], [2 + again]]);
    assert.deepEqual((await counts(emu))[A]["eu-west-1"].calls.PutMetricData, 2 + again);
  });
});

test("POST /_emulator/faults sets put_applied_reset_rate and put_applied_error_rate while running", async () => {
  await withEmu(async (emu) => {
    const set = async (faults: Record<string, number>) =>
      await (await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify(faults) }))
        .json();
    const answer = await set({ put_applied_reset_rate: 1 });
    assert.equal(answer.putAppliedResetRate, 1);
    await assert.rejects(put(emu, [{ MetricName: "m", Value: 1 }]), lostAnswers[0]![2]);
    await set({ put_applied_reset_rate: 0, put_applied_error_rate: 1 });
    await rejectsWith(put(emu, [{ MetricName: "m", Value: 1 }]), "InternalFailure", 500);
    await set({ put_applied_error_rate: 0 });
    await put(emu, [{ MetricName: "m", Value: 1 }]);
    assert.equal((await counts(emu))[A]["eu-west-1"].billed.PutMetricData, 3);
  });
});

test("POST /_emulator/faults answers a body that is not a JSON object with HTTP 400 and a message", async () => {
  await withEmu(async (emu) => {
    for (
      const [body, message] of [["{not json", /^Cannot set the faults: the body is not valid JSON/], [
        "[1]",
        /^Cannot set the faults: the body is not an object$/,
      ]] as const
    ) {
      const r = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body });
      assert.equal(r.status, 400);
      assert.match((await r.json()).message, message);
    }
    assert.equal(emu.faults.throttleRate, 0);
  });
});

/** [body, the message of its HTTP 400]: a body with any problem changes no fault. */
const refusedFaults: [Record<string, unknown>, string][] = [
  [
    { throttleRate: 0.9 },
    'Cannot set the faults: unknown key "throttleRate" (known: latency_ms, throttle_rate, error_rate, put_error_rate, put_reply_delay_ms, put_applied_reset_rate, put_applied_error_rate, list_repeat_rate, late_rate, late_by, clock_offset_seconds, owning_accounts, deny_roles)',
  ],
  [
    { throttle_rate: 0.5, lateRate: 1, list_repeat: 1 },
    'Cannot set the faults: unknown keys "lateRate", "list_repeat" (known: latency_ms, throttle_rate, error_rate, put_error_rate, put_reply_delay_ms, put_applied_reset_rate, put_applied_error_rate, list_repeat_rate, late_rate, late_by, clock_offset_seconds, owning_accounts, deny_roles)',
  ],
  [
    { late_rate: 2, late_by: -1 },
    'Cannot set the faults: "late_rate" takes a number from 0 to 1; "late_by" takes a number of seconds (0 or more)',
  ],
  [{ list_repeat_rate: "0.5" }, 'Cannot set the faults: "list_repeat_rate" takes a number from 0 to 1'],
  [
    { deny_roles: "arn:aws:iam::111111111111:role/r" },
    'Cannot set the faults: "deny_roles" takes a list of role ARNs',
  ],
  [
    { clock_offset_seconds: "-60" },
    'Cannot set the faults: "clock_offset_seconds" takes a number of seconds (negative: behind the host\'s clock)',
  ],
  [
    { clock_offset_seconds: null, owning_accounts: "shuffled" },
    'Cannot set the faults: "clock_offset_seconds" takes a number of seconds (negative: behind the host\'s clock); "owning_accounts" takes one of "aligned", "missing", "short"',
  ],
];

for (const [body, message] of refusedFaults) {
  test(`POST /_emulator/faults refuses ${JSON.stringify(body)} with HTTP 400, naming the problem, and changes nothing`, async () => {
    await withEmu(async (emu) => {
      const before = structuredClone(emu.faults);
      const r = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify(body) });
      assert.equal(r.status, 400);
      assert.deepEqual(await r.json(), { message });
      assert.deepEqual(emu.faults, before);
    });
  });
}

test("POST /_emulator/faults sets list_repeat_rate, late_rate and late_by while running", async () => {
  await withEmu(async (emu) => {
    const r = await fetch(`${emu.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ list_repeat_rate: 0.25, late_rate: 0.5, late_by: 600 }),
    });
    assert.equal(r.status, 200);
    const answer = await r.json();
    assert.deepEqual([answer.listRepeatRate, answer.lateRate, answer.lateBySeconds], [0.25, 0.5, 600]);
    assert.deepEqual([emu.faults.listRepeatRate, emu.faults.lateRate, emu.faults.lateBySeconds], [
      0.25,
      0.5,
      600,
    ]);
  });
});

// ---- Quotas ----

/** Sends `n` calls one after another; returns how many were throttled, each as AWS throttles. */
async function throttledOf(n: number, call: () => Promise<unknown>): Promise<number> {
  let throttled = 0;
  for (let i = 0; i < n; i++) {
    await call().catch((e: unknown) => {
      const err = e as { Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      assert.deepEqual([err.Code, err.message, err.$metadata?.httpStatusCode], [
        "Throttling",
        "Rate exceeded",
        400,
      ]);
      throttled++;
    });
  }
  return throttled;
}

/** An emulator whose monotonic clock stands still until the test moves it. */
function withQuotaClock(
  f: (emu: Emulator, tick: { ms: number }, clock: { now: number }) => Promise<void>,
  options: EmulatorOptions = {},
) {
  const tick = { ms: 0 };
  return withEmu((emu, clock) => f(emu, tick, clock), { monotonic: () => tick.ms, ...options });
}

const listMetrics = (emu: Emulator, account = A, region = "eu-west-1") =>
  cloudWatch(emu.url, account, region).send(new ListMetricsCommand({}));

const quotaCases: [string, number, (emu: Emulator) => Promise<unknown>][] = [
  ["GetMetricData", 50, (emu) => gmd(emu, [{ stat: "Sum" }], at(0), at(1))],
  ["GetMetricStatistics", 400, (emu) => gms(emu)],
  ["ListMetrics", 25, (emu) => listMetrics(emu)],
  ["PutMetricData", 500, (emu) => put(emu, [{ MetricName: "Latency", Value: 1, Timestamp: at(0) }])],
];

for (const [op, quota, call] of quotaCases) {
  test(`${op} accepts ${quota} calls within a second and throttles the next, unbilled and counted`, async () => {
    await withQuotaClock(async (emu) => {
      assert.equal(await throttledOf(quota + 1, () => call(emu)), 1);
      const c = (await counts(emu))[A]["eu-west-1"];
      assert.deepEqual([c.calls[op], c.billed[op], c.throttled[op]], [quota + 1, quota, 1]);
      if (op === "PutMetricData") {
        // The throttled write was not stored.
        const r = await gmd(emu, [{ stat: "SampleCount" }], at(0), at(1));
        assert.deepEqual(r.MetricDataResults![0]!.Values, [quota]);
      }
    });
  });
}

test("ListMetrics: the quota is a sliding window of 1,000 ms on the monotonic clock, not the wall clock", async () => {
  await withQuotaClock(async (emu, tick, clock) => {
    assert.equal(await throttledOf(20, () => listMetrics(emu)), 0);
    tick.ms = 500;
    assert.equal(await throttledOf(6, () => listMetrics(emu)), 1);
    // A step of the clock that timestamps are checked against opens nothing.
    clock.now += 3_600_000;
    tick.ms = 999;
    assert.equal(await throttledOf(1, () => listMetrics(emu)), 1);
    // The 20 calls of 0 ms leave the window; the 5 of 500 ms are still in it.
    tick.ms = 1000;
    assert.equal(await throttledOf(21, () => listMetrics(emu)), 1);
    tick.ms = 1500;
    assert.equal(await throttledOf(6, () => listMetrics(emu)), 1);
    assert.deepEqual((await counts(emu))[A]["eu-west-1"].throttled, { ListMetrics: 4 });
  });
});

test("quotas are kept per account, Region and operation", async () => {
  await withQuotaClock(async (emu) => {
    const B = "222222222222";
    const places = [[A, "eu-west-1"], [A, "us-east-1"], [B, "eu-west-1"]] as const;
    for (const [account, region] of places) {
      assert.equal(await throttledOf(25, () => listMetrics(emu, account, region)), 0);
    }
    // The same account and Region, another operation: a quota of its own.
    await gmd(emu, [{ stat: "Sum" }], at(0), at(1));
    for (const [account, region] of places) {
      await rejectsWith(listMetrics(emu, account, region), "Throttling", 400);
    }
    const c = await counts(emu);
    assert.deepEqual(c[A]["eu-west-1"].throttled, { ListMetrics: 1 });
    assert.deepEqual(c[A]["us-east-1"].throttled, { ListMetrics: 1 });
    assert.deepEqual(c[B]["eu-west-1"].throttled, { ListMetrics: 1 });
  });
});

test("quotas are on by default, on the real monotonic clock", async () => {
  await withEmu(async (emu) => {
    const results = await Promise.allSettled(Array.from({ length: 26 }, () => listMetrics(emu)));
    assert.equal(results.filter((r) => r.status === "rejected").length, 1);
    assert.deepEqual((await counts(emu))[A]["eu-west-1"].throttled, { ListMetrics: 1 });
  });
});

test("--no-quotas accepts every call", async () => {
  await withQuotaClock(async (emu) => {
    assert.equal(await throttledOf(60, () => listMetrics(emu)), 0);
    assert.deepEqual((await counts(emu))[A]["eu-west-1"].throttled, {});
  }, { quotas: false });
});

test("emu.seed() is not an API call: it is neither counted nor held to a quota", async () => {
  await withQuotaClock(async (emu) => {
    for (let i = 0; i < 600; i++) {
      emu.seed({
        account: A,
        region: "eu-west-1",
        namespace: "AWS/ECS",
        name: "CPUUtilization",
        dimensions: { ClusterName: `c${i}` },
        timestamp: T0,
        values: [1],
      });
    }
    assert.equal(await throttledOf(500, () => put(emu, [{ MetricName: "m", Value: 1 }])), 0);
    assert.deepEqual((await counts(emu))[A]["eu-west-1"].calls, { PutMetricData: 500 });
  });
});

test("the command line takes --no-quotas and the applied-answer-lost faults", async () => {
  const rt = runtime();
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  const prefix = rt.name === "bun" ? ["run", script] : ["run", "--allow-net", "--allow-env", script];
  const child = spawn(
    rt.command,
    [...prefix, "--port", "0", "--no-quotas", "--put-applied-error-rate", "1"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  try {
    const url = await new Promise<string>((resolve) =>
      child.stdout.once("data", (d) => resolve(String(d).trim().split(" ").pop()!))
    );
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => cloudWatch(url, A).send(new ListMetricsCommand({}))),
    );
    assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
    await rejectsWith(
      cloudWatch(url, A).send(
        new PutMetricDataCommand({ Namespace: "App", MetricData: [{ MetricName: "m", Value: 1 }] }),
      ),
      "InternalFailure",
      500,
    );
    const listed = await cloudWatch(url, A).send(new ListMetricsCommand({ Namespace: "App" }));
    assert.deepEqual(listed.Metrics?.map((m) => m.MetricName), ["m"]);
  } finally {
    process.kill(child.pid!, "SIGTERM");
  }
});

test("the command line takes --list-repeat-rate, --late-rate and --late-by: the seed's samples late by a day are not listed", async () => {
  const rt = runtime();
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  const prefix = rt.name === "bun" ? ["run", script] : ["run", "--allow-net", "--allow-env", script];
  const args = [
    "--port",
    "0",
    "--seed",
    "demo",
    "--list-repeat-rate",
    "0.5",
    "--late-rate",
    "1",
    "--late-by",
    "86400",
  ];
  const child = spawn(rt.command, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += String(d)));
  try {
    // Its address once it listens; a refusal of the flags ends the test at once rather than at the timeout.
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.once("data", (d) => resolve(String(d).trim().split(" ").pop()!));
      child.once("close", (code) => reject(new Error(`The emulator exited with ${code}: ${stderr}`)));
    });
    const faults = await (await fetch(`${url}/_emulator/faults`, { method: "POST", body: "{}" })).json();
    assert.deepEqual([faults.listRepeatRate, faults.lateRate, faults.lateBySeconds], [0.5, 1, 86400]);
    const listed = await cloudWatch(url, A).send(new ListMetricsCommand({ Namespace: "AWS/ECS" }));
    assert.deepEqual(listed.Metrics, []);
  } finally {
    if (child.exitCode === null) process.kill(child.pid!, "SIGTERM");
  }
});

/** [arguments, what the emulator says before it exits with code 2]. */
const refusedArguments: [string[], string][] = [
  [["--list-repeat-rate", "1.5"], "Cannot parse arguments: --list-repeat-rate takes a number from 0 to 1"],
  [["--late-rate", "0.5"], "Cannot parse arguments: --late-rate needs --late-by S"],
  [
    ["--late-rate", "0.5", "--late-by", "-5"],
    "Cannot parse arguments: --late-by takes a number of seconds (0 or more)",
  ],
  [
    ["--clock-offset", "soon"],
    "Cannot parse arguments: --clock-offset takes a number of seconds (negative: behind)",
  ],
  [["--link", "111111111111"], "Cannot parse arguments: --link takes MONITORING=SOURCE[,SOURCE...]"],
  [
    ["--link", "111111111111=222222222222,33"],
    'Cannot link accounts: "33" (a source of "111111111111") is not a 12-digit account id',
  ],
  [
    ["--owning-accounts", "shuffled"],
    "Cannot parse arguments: --owning-accounts takes aligned, missing, short",
  ],
];

for (const [args, message] of refusedArguments) {
  test(`the command line refuses ${args.join(" ")} with exit code 2`, async () => {
    const rt = runtime();
    const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
    const prefix = rt.name === "bun" ? ["run", script] : ["run", "--allow-net", "--allow-env", script];
    const bad = spawn(rt.command, [...prefix, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    bad.stderr.on("data", (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((resolve) => bad.on("close", resolve));
    assert.equal(code, 2);
    assert.equal(stderr, `${message}\n`);
  });
}

// ---- Names: namespaces and dimensions ----

type Dims = { Name: string; Value?: string }[];

/** Each operation that takes a namespace and dimensions, with the parameter paths its messages name. */
const takers: {
  op: string;
  namespaceAt: string;
  dimensionsAt: string;
  send: (emu: Emulator, namespace: string, dims: Dims) => Promise<unknown>;
}[] = [
  {
    op: "PutMetricData",
    namespaceAt: "Namespace",
    dimensionsAt: "MetricData.member.1.Dimensions",
    send: (emu, namespace, dims) =>
      put(emu, [{ MetricName: "m", Value: 1, Timestamp: at(0), Dimensions: dims as never }], namespace),
  },
  {
    op: "GetMetricData",
    namespaceAt: "MetricDataQueries.member.1.MetricStat.Metric.Namespace",
    dimensionsAt: "MetricDataQueries.member.1.MetricStat.Metric.Dimensions",
    send: (emu, namespace, dims) =>
      cloudWatch(emu.url, A).send(
        new GetMetricDataCommand({
          StartTime: at(0),
          EndTime: at(1),
          MetricDataQueries: [{
            Id: "q",
            MetricStat: {
              Metric: { Namespace: namespace, MetricName: "m", Dimensions: dims as never },
              Period: 60,
              Stat: "Sum",
            },
          }],
        }),
      ),
  },
  {
    op: "GetMetricStatistics",
    namespaceAt: "Namespace",
    dimensionsAt: "Dimensions",
    send: (emu, namespace, dims) =>
      gms(emu, { Namespace: namespace, MetricName: "m", Dimensions: dims as never }),
  },
  {
    op: "ListMetrics",
    namespaceAt: "Namespace",
    dimensionsAt: "Dimensions",
    send: (emu, namespace, dims) =>
      cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: namespace, Dimensions: dims })),
  },
];

/** A bad dimension, sent second after a good one, and how the message that refuses it ends. */
const badDimensions: [string, { Name: string; Value: string }, string][] = [
  ["a non-ASCII value", { Name: "d", Value: "café" }, "member.2.Value contains non-ASCII characters."],
  ["a non-ASCII name", { Name: "naïve", Value: "v" }, "member.2.Name contains non-ASCII characters."],
  ["a tab in its value", { Name: "d", Value: "a\tb" }, "member.2.Value contains control characters."],
  ["DEL in its name", { Name: "d\x7f", Value: "v" }, "member.2.Name contains control characters."],
  [
    "a value of spaces only",
    { Name: "d", Value: "   " },
    "member.2.Value must contain at least one non-whitespace character.",
  ],
  [
    "a name of one space",
    { Name: " ", Value: "v" },
    "member.2.Name must contain at least one non-whitespace character.",
  ],
  ["a name starting with a colon", { Name: ":d", Value: "v" }, "member.2.Name must not start with a colon."],
];

for (const t of takers) {
  for (const [what, dim, message] of badDimensions) {
    test(`${t.op} refuses a dimension with ${what} with InvalidParameterValue naming the parameter`, async () => {
      await withEmu(async (emu) => {
        await refuses(
          t.send(emu, "App", [{ Name: "ok", Value: "v" }, dim]),
          "InvalidParameterValue",
          `The value for parameter ${t.dimensionsAt}.${message}`,
        );
      });
    });
  }
}

/** A bad namespace and the message that refuses it, given the parameter's path. */
const badNamespaces: [string, string, (at: string) => string][] = [
  ["a leading colon", ":App", (at) => `The value :App for parameter ${at} must not start with a colon.`],
  [
    "an exclamation mark",
    "App!",
    (at) =>
      `The value App! for parameter ${at} is invalid: use letters, digits, spaces and the characters . - _ / # :`,
  ],
  [
    "a non-ASCII letter",
    "Café",
    (at) =>
      `The value Café for parameter ${at} is invalid: use letters, digits, spaces and the characters . - _ / # :`,
  ],
  [
    "256 characters",
    "a".repeat(256),
    (at) => `The value for parameter ${at} must be 1 to 255 characters long.`,
  ],
];

for (const t of takers) {
  for (const [what, namespace, message] of badNamespaces) {
    test(`${t.op} refuses a namespace with ${what} with InvalidParameterValue`, async () => {
      await withEmu(async (emu) => {
        await refuses(t.send(emu, namespace, []), "InvalidParameterValue", message(t.namespaceAt));
      });
    });
  }
}

test("every operation accepts a colon inside a namespace, the user guide's characters, and colons and spaces inside dimensions", async () => {
  await withEmu(async (emu) => {
    const dims = [{ Name: "Cluster:Name", Value: ":prod web " }, { Name: "Id", Value: "a/b#c" }];
    for (const namespace of ["Fwd:AWS/ECS", "My-App_2.0/x#y:z w"]) {
      for (const t of takers) await t.send(emu, namespace, dims);
      const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({ Namespace: namespace }));
      assert.deepEqual(listed.Metrics, [{ Namespace: namespace, MetricName: "m", Dimensions: dims }]);
    }
  });
});

test("GetMetricStatistics refuses 31 dimensions with InvalidParameterValue", async () => {
  await withEmu(async (emu) => {
    const dims = Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: "v" }));
    await refuses(
      takers[2]!.send(emu, "App", dims),
      "InvalidParameterValue",
      "The collection Dimensions must not have more than 30 items.",
    );
    await takers[2]!.send(emu, "App", dims.slice(0, 30));
  });
});

for (const key of ["Statistics", "ExtendedStatistics"]) {
  test(`GetMetricStatistics refuses ${key} items that are not strings with SerializationException`, async () => {
    await withEmu(async (emu) => {
      const items = key === "Statistics" ? ["Sum", 1] : [true];
      await rejectsWith(gms(emu, { [key]: items } as never), "SerializationException", 400);
    });
  });
}

test("npm run emulator stops its emulator when it is stopped, though the shell between them passes no signal on", async () => {
  const child = spawn("npm", ["run", "--silent", "emulator", "--", "--port", "0"], {
    cwd: new URL("..", import.meta.url).pathname,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      const m = /http:\/\/\S+/.exec(String(d));
      if (m) resolve(m[0]);
    });
    child.once("close", (code) => reject(new Error(`npm run emulator exited with ${code}`)));
  });
  assert.equal((await fetch(`${url}/_emulator/counts`)).status, 200);
  process.kill(child.pid!, "SIGTERM");
  // Gone within a few seconds: its port refuses connections.
  const end = Date.now() + 10_000;
  let up = true;
  while (up && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    up = await fetch(`${url}/_emulator/counts`).then(() => true, () => false);
  }
  assert.equal(up, false, "the emulator still answers after npm run emulator was stopped");
});

// ---- CloudWatch's clock ----

const MIN = 60_000;
const HOUR = 60 * MIN;

/**
 * A CloudWatch (X-Amz-Target `op`) or STS (no op) request signed but for its credential scope, which is all an
 * emulator on a test's clock reads; its status, x-amzn-query-error and Date header.
 */
async function unsigned(emu: Emulator, body: string, op?: string) {
  const r = await fetch(emu.url, {
    method: "POST",
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=AKIA${A}/20261124/eu-west-1/${
        op ? "monitoring" : "sts"
      }/aws4_request`,
      ...(op
        ? {
          "x-amz-target": `GraniteServiceVersion20100801.${op}`,
          "content-type": "application/x-amz-json-1.0",
        }
        : { "content-type": "application/x-www-form-urlencoded" }),
    },
    body,
  });
  await r.arrayBuffer();
  return { status: r.status, error: r.headers.get("x-amzn-query-error"), date: r.headers.get("date") };
}

const setFaults = async (emu: Emulator, faults: Record<string, unknown>) => {
  const r = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: JSON.stringify(faults) });
  assert.equal(r.status, 200);
  return await r.json();
};

test("every answer is dated by the emulator's clock, not the host's: CloudWatch, STS, their errors, the control endpoints", async () => {
  await withEmu(async (emu, clock) => {
    const dates = async () => {
      const control = await fetch(`${emu.url}/_emulator/counts`);
      await control.arrayBuffer();
      return [
        await unsigned(emu, "{}", "ListMetrics"),
        await unsigned(emu, '{"RecentlyActive":"PT1H"}', "ListMetrics"),
        await unsigned(emu, "Action=GetCallerIdentity&Version=2011-06-15"),
        await unsigned(emu, "Action=Nothing&Version=2011-06-15"),
      ].map((r) => [r.status, r.date]).concat([[control.status, control.headers.get("date")]]);
    };
    const expect = (date: string) => [[200, date], [400, date], [200, date], [400, date], [200, date]];
    assert.deepEqual(await dates(), expect("Tue, 24 Nov 2026 12:00:00 GMT"));
    clock.now += 90_000;
    const faults = await setFaults(emu, { clock_offset_seconds: -3600 });
    assert.equal(faults.clockOffsetSeconds, -3600);
    assert.equal(emu.now(), T0 + 90_000 - HOUR);
    assert.deepEqual(await dates(), expect("Tue, 24 Nov 2026 11:01:30 GMT"));
  });
});

test("clockOffsetSeconds moves CloudWatch's clock for all it judges: PutMetricData's bounds, the demo seed, credentials", async () => {
  await withEmu(async (emu) => {
    const now = T0 + 3 * HOUR;
    assert.equal(emu.now(), now);
    const datum = (t: number) => [{ MetricName: "m", Value: 1, Timestamp: new Date(t) }];
    await put(emu, datum(now + 2 * HOUR));
    await put(emu, datum(now - 14 * 24 * HOUR));
    await rejectsWith(put(emu, datum(now + 2 * HOUR + 1000)), "InvalidParameterValue");
    await rejectsWith(put(emu, datum(now - 14 * 24 * HOUR - 1000)), "InvalidParameterValue");
    // The demo seed's last minute is the one before CloudWatch's clock.
    const r = await cloudWatch(emu.url, DEMO_ACCOUNTS.production).send(
      new GetMetricDataCommand({
        StartTime: new Date(now - 2 * MIN),
        EndTime: new Date(now + 5 * MIN),
        ScanBy: "TimestampAscending",
        MetricDataQueries: [{
          Id: "q",
          MetricStat: {
            Metric: {
              Namespace: "AWS/ECS",
              MetricName: "CPUUtilization",
              Dimensions: [{ Name: "ClusterName", Value: "prod-web" }],
            },
            Period: 60,
            Stat: "SampleCount",
          },
        }],
      }),
    );
    assert.deepEqual(r.MetricDataResults![0]!.Timestamps, [new Date(now - 2 * MIN), new Date(now - MIN)]);
    const c = await sts(emu.url, "999999999999").send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${A}:role/r`,
        RoleSessionName: "forwarder",
        DurationSeconds: 900,
      }),
    );
    assert.equal(c.Credentials!.Expiration!.getTime(), now + 900_000);
  }, { clockOffsetSeconds: 3 * 3600, seed: "demo" });
});

test("clock_offset_seconds moves CloudWatch's clock while running: ListMetrics' two weeks and PutMetricData's bounds follow", async () => {
  await withEmu(async (emu) => {
    await put(emu, [{ MetricName: "m", Value: 1, Timestamp: at(0) }]);
    const late = [{ MetricName: "m", Value: 1, Timestamp: new Date(T0 + 115 * MIN) }];
    await setFaults(emu, { clock_offset_seconds: -600 });
    await rejectsWith(put(emu, late), "InvalidParameterValue");
    await setFaults(emu, { clock_offset_seconds: 14 * 86_400 + 60 });
    const listed = await cloudWatch(emu.url, A).send(new ListMetricsCommand({}));
    assert.deepEqual(listed.Metrics, []);
    await setFaults(emu, { clock_offset_seconds: 0 });
    await put(emu, late);
  });
});

/** Clients of CloudWatch and STS that sign as if the time were `signedAt` (ms), whatever the host's clock. */
function signingAt(emu: Emulator, signedAt: number, maxAttempts = 1) {
  const common = {
    region: "eu-west-1",
    endpoint: emu.url,
    credentials: credentialsFor(A),
    maxAttempts,
    systemClockOffset: signedAt - Date.now(),
  };
  return { cloudWatch: new CloudWatchClient(common), sts: new STSClient(common) };
}

/** [when, how far from CloudWatch's clock (T0) a request is signed, AWS's message refusing it, if it does]. */
const signedTimes: [string, number, string | undefined][] = [
  ["15 minutes before", -15 * MIN, undefined],
  ["15 minutes after", 15 * MIN, undefined],
  [
    "15 minutes and a second before",
    -15 * MIN - 1000,
    "Signature expired: 20261124T114459Z is now earlier than 20261124T114500Z (20261124T120000Z - 15 min.)",
  ],
  [
    "16 minutes after",
    16 * MIN,
    "Signature not yet current: 20261124T121600Z is still later than 20261124T121500Z (20261124T120000Z + 15 min.)",
  ],
];

for (const [when, off, message] of signedTimes) {
  const what = message
    ? "is refused: InvalidSignatureException (HTTP 400) from CloudWatch, SignatureDoesNotMatch (HTTP 403) from STS"
    : "is accepted";
  test(`a request signed ${when} CloudWatch's clock reads ${what}`, async () => {
    await withEmu(async (emu) => {
      const clients = signingAt(emu, T0 + off);
      const calls = [
        {
          send: () => clients.cloudWatch.send(new ListMetricsCommand({})),
          code: "InvalidSignatureException",
          status: 400,
        },
        {
          send: () => clients.sts.send(new GetCallerIdentityCommand({})),
          code: "SignatureDoesNotMatch",
          status: 403,
        },
      ];
      for (const { send, code, status } of calls) {
        if (message === undefined) {
          await send();
          continue;
        }
        await assert.rejects(send(), (e: unknown) => {
          const err = e as { name: string; message: string; $metadata: { httpStatusCode?: number } };
          assert.deepEqual([err.name, err.$metadata.httpStatusCode, err.message], [code, status, message]);
          return true;
        });
      }
    }, { checkSignedTime: true });
  });
}

test("a request that says nothing of when it was signed is refused with IncompleteSignature, when signed times are checked", async () => {
  await withEmu(async (emu) => {
    assert.deepEqual(await unsigned(emu, "{}", "ListMetrics"), {
      status: 403,
      error: "IncompleteSignature;Sender",
      date: new Date(T0).toUTCString(),
    });
  }, { checkSignedTime: true });
});

for (const offset of [20 * 60, -20 * 60]) {
  test(`with CloudWatch's clock 20 minutes ${offset > 0 ? "ahead of" : "behind"} the host's, the SDK is refused once, sets its clock by the Date header and is accepted`, async () => {
    const emu = await startEmulator({ clockOffsetSeconds: offset });
    try {
      // Checked by default, on the host's clock: a client that does not retry sees the refusal.
      await rejectsWith(
        cloudWatch(emu.url, A).send(new ListMetricsCommand({})),
        "InvalidSignatureException",
        400,
      );
      await rejectsWith(sts(emu.url, A).send(new GetCallerIdentityCommand({})), "SignatureDoesNotMatch", 403);
      const clients = signingAt(emu, Date.now(), 2);
      const listed = await clients.cloudWatch.send(new ListMetricsCommand({}));
      const who = await clients.sts.send(new GetCallerIdentityCommand({}));
      assert.deepEqual([listed.$metadata.attempts, who.$metadata.attempts, who.Account], [2, 2, A]);
    } finally {
      await emu.stop();
    }
  });
}

test("the command line takes --clock-offset, --link and --owning-accounts", async () => {
  const rt = runtime();
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  const prefix = rt.name === "bun" ? ["run", script] : ["run", "--allow-net", "--allow-env", script];
  const args = ["--port", "0", "--clock-offset", "-1200", "--owning-accounts", "short"];
  const links = ["--link", `${A}=${B},${C}`, "--link", `${A}=${D}`, "--link", `${B}=${D}`];
  const child = spawn(rt.command, [...prefix, ...args, ...links], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += String(d)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.once("data", (d) => resolve(String(d).trim().split(" ").pop()!));
      child.once("close", (code) => reject(new Error(`The emulator exited with ${code}: ${stderr}`)));
    });
    const r = await fetch(`${url}/_emulator/links`);
    assert.deepEqual(await r.json(), { [A]: [B, C, D], [B]: [D] });
    const behind = Date.now() - 1_200_000 - Date.parse(r.headers.get("date")!);
    assert.ok(
      behind > -2_000 && behind < 2_000,
      `the Date header is ${behind} ms off the host's clock - 20 min`,
    );
    const faults = await (await fetch(`${url}/_emulator/faults`, { method: "POST", body: "{}" })).json();
    assert.deepEqual([faults.clockOffsetSeconds, faults.owningAccounts], [-1200, "short"]);
    await rejectsWith(cloudWatch(url, A).send(new ListMetricsCommand({})), "InvalidSignatureException", 400);
  } finally {
    if (child.exitCode === null) process.kill(child.pid!, "SIGTERM");
  }
});

// ---- Cross-account observability ----

const [B, C, D] = ["222222222222", "333333333333", "444444444444"];

/** A listing as `account`, following NextToken: each page's metric names, and its OwningAccounts. */
async function ownedPages(emu: Emulator, input: Record<string, unknown>, account = A) {
  const pages: { names: string[]; owners: string[] | undefined }[] = [];
  let token: string | undefined;
  do {
    const r = await cloudWatch(emu.url, account).send(
      new ListMetricsCommand({ ...input, ...(token ? { NextToken: token } : {}) }),
    );
    pages.push({ names: r.Metrics!.map((m) => m.MetricName!), owners: r.OwningAccounts });
    token = r.NextToken;
  } while (token);
  return pages;
}

/** One listing page's names and OwningAccounts, or the page's only. */
const onePage = async (emu: Emulator, input: Record<string, unknown>, account = A) => {
  const pages = await ownedPages(emu, input, account);
  assert.equal(pages.length, 1);
  return pages[0]!;
};

/** Metrics of A ("own"), its sources B ("b1", "b2") and C ("c1"), and D ("d1"), linked to nobody. */
async function linkedFleet(emu: Emulator) {
  for (const [account, names] of [[A, ["own"]], [B, ["b1", "b2"]], [C, ["c1"]], [D, ["d1"]]] as const) {
    await put(emu, names.map((MetricName) => ({ MetricName, Value: 1, Timestamp: at(0) })), "App", account);
  }
}

test("ListMetrics with IncludeLinkedAccounts lists a monitoring account's metrics, then its sources', with OwningAccounts 1:1", async () => {
  await withEmu(async (emu) => {
    await linkedFleet(emu);
    assert.deepEqual(await onePage(emu, {}), { names: ["own"], owners: undefined });
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: false }), {
      names: ["own"],
      owners: undefined,
    });
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: true }), {
      names: ["own", "b1", "b2", "c1"],
      owners: [A, B, B, C],
    });
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: true, MetricName: "b2" }), {
      names: ["b2"],
      owners: [B],
    });
    // Links go one way: a source lists its own metrics only, under its own id.
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: true }, B), {
      names: ["b1", "b2"],
      owners: [B, B],
    });
  }, { links: { [A]: [B, C] } });
});

test("ListMetrics' OwningAccount narrows a linked listing to one account, lists nothing of an account not linked, and needs IncludeLinkedAccounts", async () => {
  await withEmu(async (emu) => {
    await linkedFleet(emu);
    const linked = (owning: string) => onePage(emu, { IncludeLinkedAccounts: true, OwningAccount: owning });
    assert.deepEqual(await linked(B), { names: ["b1", "b2"], owners: [B, B] });
    assert.deepEqual(await linked(A), { names: ["own"], owners: [A] });
    assert.deepEqual(await linked(D), { names: [], owners: [] });
    for (const input of [{ OwningAccount: B }, { OwningAccount: B, IncludeLinkedAccounts: false }]) {
      await refuses(
        cloudWatch(emu.url, A).send(new ListMetricsCommand(input)),
        "InvalidParameterCombination",
        "The parameter OwningAccount requires IncludeLinkedAccounts to be true.",
      );
    }
    await rejectsWith(
      cloudWatch(emu.url, A).send(new ListMetricsCommand({ IncludeLinkedAccounts: true, OwningAccount: "" })),
      "InvalidParameterValue",
    );
    const notBoolean = await unsigned(emu, '{"IncludeLinkedAccounts":"true"}', "ListMetrics");
    assert.deepEqual([notBoolean.status, notBoolean.error], [400, "SerializationException;Sender"]);
  }, { links: { [A]: [B, C] } });
});

test("ListMetrics pages a linked listing 500 at a time through the accounts, OwningAccounts on each page; its NextToken is its own", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 300, padded("a"));
    await putStreams(emu, 400, padded("b"), () => [], "App", B);
    await putStreams(emu, 450, padded("c"), () => [], "App", C);
    const pages = await ownedPages(emu, { Namespace: "App", IncludeLinkedAccounts: true });
    assert.deepEqual(pages.map((p) => p.names.length), [500, 500, 150]);
    assert.deepEqual(pages.flatMap((p) => p.names), [
      ...Array.from({ length: 300 }, (_, i) => padded("a")(i)),
      ...Array.from({ length: 400 }, (_, i) => padded("b")(i)),
      ...Array.from({ length: 450 }, (_, i) => padded("c")(i)),
    ]);
    const owner = { a: A, b: B, c: C } as Record<string, string>;
    for (const p of pages) assert.deepEqual(p.owners, p.names.map((n) => owner[n[0]!]));
    // A token from a linked listing starts in a source, which a listing of A's own metrics does not reach.
    const first = await cloudWatch(emu.url, A).send(
      new ListMetricsCommand({ Namespace: "App", IncludeLinkedAccounts: true }),
    );
    assert.equal(first.NextToken, `emu-${B}:200`);
    for (
      const input of [{ NextToken: first.NextToken }, {
        IncludeLinkedAccounts: true,
        NextToken: `emu-${D}:0`,
      }]
    ) {
      await rejectsWith(cloudWatch(emu.url, A).send(new ListMetricsCommand(input)), "InvalidNextToken", 400);
    }
  }, { links: { [A]: [B, C] } });
});

test("--list-repeat-rate: a linked listing names a metric again under its own owning account", async () => {
  await withEmu(async (emu) => {
    await putStreams(emu, 300, padded("a"));
    await putStreams(emu, 400, padded("b"), () => [], "App", B);
    const pages = await ownedPages(emu, { IncludeLinkedAccounts: true });
    const all = [
      ...Array.from({ length: 300 }, (_, i) => padded("a")(i)),
      ...Array.from({ length: 400 }, (_, i) => padded("b")(i)),
    ];
    assert.deepEqual(checkRepeats(pages.map((p) => p.names), all), { samePage: 200, nextPage: 500 });
    for (const p of pages) assert.deepEqual(p.owners, p.names.map((n) => (n.startsWith("a") ? A : B)));
  }, { links: { [A]: [B] }, listRepeatRate: 1, random: () => 0.75 });
});

test("POST /_emulator/links replaces every link while running, and GET /_emulator/links reads them", async () => {
  await withEmu(async (emu) => {
    await linkedFleet(emu);
    assert.deepEqual((await onePage(emu, { IncludeLinkedAccounts: true })).names, ["own", "b1", "b2"]);
    const r = await fetch(`${emu.url}/_emulator/links`, {
      method: "POST",
      body: JSON.stringify({ [A]: [C], [D]: [B] }),
    });
    assert.deepEqual([r.status, await r.json()], [200, { [A]: [C], [D]: [B] }]);
    assert.deepEqual(await (await fetch(`${emu.url}/_emulator/links`)).json(), { [A]: [C], [D]: [B] });
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: true }), {
      names: ["own", "c1"],
      owners: [A, C],
    });
    assert.deepEqual(await onePage(emu, { IncludeLinkedAccounts: true }, D), {
      names: ["d1", "b1", "b2"],
      owners: [D, B, B],
    });
  }, { links: { [A]: [B] } });
});

/** [body, the message of its HTTP 400]: a body with any problem changes no link. */
const refusedLinks: [string, string][] = [
  ["[1]", "Cannot set the links: the body is not an object"],
  [JSON.stringify({ "11111": [B] }), 'Cannot set the links: "11111" is not a 12-digit account id'],
  [JSON.stringify({ [A]: B }), `Cannot set the links: "${A}" takes a list of source account ids`],
  [
    JSON.stringify({ [A]: ["2222", 5, C] }),
    `Cannot set the links: "2222" (a source of "${A}") is not a 12-digit account id; 5 (a source of "${A}") is not a 12-digit account id`,
  ],
  [JSON.stringify({ [A]: [A] }), `Cannot set the links: "${A}" cannot be its own source`],
  [
    JSON.stringify(Object.fromEntries(["1", "3", "4", "5", "6", "7"].map((d) => [d.repeat(12), [B]]))),
    `Cannot set the links: "${B}" is a source of 6 monitoring accounts; a source shares with at most 5`,
  ],
];

for (const [body, message] of refusedLinks) {
  test(`POST /_emulator/links refuses ${body} with HTTP 400, naming the problem, and changes nothing`, async () => {
    await withEmu(async (emu) => {
      const r = await fetch(`${emu.url}/_emulator/links`, { method: "POST", body });
      assert.deepEqual([r.status, await r.json()], [400, { message }]);
      assert.deepEqual(await (await fetch(`${emu.url}/_emulator/links`)).json(), { [A]: [B] });
    }, { links: { [A]: [B] } });
  });
}

test("startEmulator() refuses links that are not 12-digit account ids", async () => {
  await assert.rejects(
    startEmulator({ links: { [A]: ["2"] } }),
    new Error(`Cannot link accounts: "2" (a source of "${A}") is not a 12-digit account id`),
  );
});

test("GetMetricData reads a linked account's metric by AccountId; a query for an account not linked is Forbidden, the others answered", async () => {
  await withEmu(async (emu) => {
    for (const [account, value] of [[A, 1], [B, 2], [D, 4]] as const) {
      await put(emu, [{ MetricName: "Latency", Value: value, Timestamp: at(0) }], "App", account);
    }
    const read = (caller: string, owners: (string | undefined)[]) =>
      cloudWatch(emu.url, caller).send(
        new GetMetricDataCommand({
          StartTime: at(0),
          EndTime: at(1),
          MetricDataQueries: owners.map((owner, i) => ({
            Id: `q${i}`,
            MetricStat: { Metric: { Namespace: "App", MetricName: "Latency" }, Period: 60, Stat: "Sum" },
            ...(owner === undefined ? {} : { AccountId: owner }),
          })),
        }),
      );
    const forbidden = (caller: string, owner: string) => ({
      StatusCode: "Forbidden",
      Values: [],
      Messages: [{
        Code: "Forbidden",
        Value:
          `Account ${caller} cannot read metrics of account ${owner}: it is not linked to it as a source.`,
      }],
    });
    const r = await read(A, [undefined, A, B, D, C]);
    assert.deepEqual(
      r.MetricDataResults!.map((m) => ({ StatusCode: m.StatusCode, Values: m.Values, Messages: m.Messages })),
      [
        { StatusCode: "Complete", Values: [1], Messages: undefined },
        { StatusCode: "Complete", Values: [1], Messages: undefined },
        { StatusCode: "Complete", Values: [2], Messages: undefined },
        forbidden(A, D),
        forbidden(A, C),
      ],
    );
    // Links go one way: the source does not read its monitoring account.
    const back = await read(B, [A]);
    assert.deepEqual(back.MetricDataResults![0]!.StatusCode, "Forbidden");
    await rejectsWith(read(A, [""]), "InvalidParameterValue");
  }, { links: { [A]: [B] } });
});

test("owning_accounts: a linked listing's OwningAccounts left out, or one short of its Metrics, as set", async () => {
  await withEmu(async (emu) => {
    await linkedFleet(emu);
    const linked = () => onePage(emu, { IncludeLinkedAccounts: true });
    assert.deepEqual(await linked(), { names: ["own", "b1", "b2"], owners: [A, B] });
    assert.equal((await setFaults(emu, { owning_accounts: "missing" })).owningAccounts, "missing");
    assert.deepEqual(await linked(), { names: ["own", "b1", "b2"], owners: undefined });
    await setFaults(emu, { owning_accounts: "aligned" });
    assert.deepEqual(await linked(), { names: ["own", "b1", "b2"], owners: [A, B, B] });
  }, { links: { [A]: [B] }, owningAccounts: "short" });
});
