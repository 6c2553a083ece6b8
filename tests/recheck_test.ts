/** lib/recheck.ts: which periods are read again for late samples, when, and what is written for them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { CloudWatchApi, Datum } from "../lib/aws.ts";
import type { MetricPlan } from "../lib/config.ts";
import type { Stream } from "../lib/discover.ts";
import type { Over } from "../lib/publish.ts";
import { forwarded, landedIn, lateDatums, noteRead, readWindow, recheckDue } from "../lib/recheck.ts";
import type { StreamState, Unchecked } from "../lib/state.ts";

const T = Date.UTC(2026, 10, 24, 12) / 1000;
const R = 600;

test("noteRead() joins periods read within recheck_after of a range's first read, and starts a range after", () => {
  const cases: [
    string,
    Unchecked[] | undefined,
    [number, number, number],
    number,
    Unchecked[] | undefined,
  ][] = [
    ["the first read", undefined, [T, T + 60, T + 180], R, [[T, T + 60, T + 180, T + 180]]],
    ["a run a minute later joins", [[T, T + 60, T + 180, T + 180]], [T + 60, T + 120, T + 240], R, [[
      T,
      T + 120,
      T + 180,
      T + 240,
    ]]],
    [
      "the read recheck_after after the first starts another",
      [[T, T + 540, T + 180, T + 720]],
      [
        T + 540,
        T + 600,
        T + 780,
      ],
      R,
      [[T, T + 540, T + 180, T + 720], [T + 540, T + 600, T + 780, T + 780]],
    ],
    ["a gap starts another", [[T, T + 60, T + 180, T + 180]], [T + 120, T + 180, T + 240], R, [
      [T, T + 60, T + 180, T + 180],
      [T + 120, T + 180, T + 240, T + 240],
    ]],
    ["older periods (a replay) go in order", [[T, T + 60, T + 180, T + 180]], [T - 120, T - 60, T + 240], R, [
      [T - 120, T - 60, T + 240, T + 240],
      [T, T + 60, T + 180, T + 180],
    ]],
    ["recheck_after 0 records nothing", undefined, [T, T + 60, T + 180], 0, undefined],
    ["an empty window records nothing", undefined, [T, T, T + 180], R, undefined],
  ];
  for (const [name, unchecked, [start, end, at], after, want] of cases) {
    const s: StreamState = unchecked ? { next: start, unchecked } : { next: start };
    assert.deepEqual(noteRead(s, { start, end }, at, after).unchecked, want, name);
  }
});

test("recheckDue() is every range whose newest period waited recheck_after, oldest first, none too old to write", () => {
  const two: Unchecked[] = [[T, T + 600, T + 180, T + 720], [T + 600, T + 660, T + 780, T + 780]];
  const cases: [
    string,
    Unchecked[] | undefined,
    number,
    number,
    { start: number; end: number } | undefined,
  ][] = [
    ["nothing recorded", undefined, T + 9999, R, undefined],
    ["not yet: the newest period waits", two, T + 720 + R - 1, R, undefined],
    ["the first range, once its newest waited", two, T + 720 + R, R, { start: T, end: T + 600 }],
    ["both, once the second waited too", two, T + 780 + R, R, { start: T, end: T + 660 }],
    ["recheck_after 0 reads nothing again", two, T + 9999, 0, undefined],
    // Written when 3 hours old: CloudWatch shows it within 2 hours (API reference, PutMetricData).
    [
      "data 3 hours old when written waits to be readable",
      [[T, T + 60, T + 3 * 3600, T + 3 * 3600]],
      T +
      3 * 3600 + R,
      R,
      undefined,
    ],
    ["...and is read once it is", [[T, T + 60, T + 3 * 3600, T + 3 * 3600]], T + 5 * 3600, R, {
      start: T,
      end: T + 60,
    }],
    // Older than PutMetricData accepts (two weeks, less an hour of margin): nothing to write for it.
    ["too old to write", [[T, T + 60, T + 60, T + 60]], T + 14 * 86_400, R, { start: T + 60, end: T + 60 }],
  ];
  for (const [name, unchecked, now, after, want] of cases) {
    const s: StreamState | undefined = unchecked ? { next: T + 660, unchecked } : undefined;
    assert.deepEqual(recheckDue(s, now, after), want, name);
  }
});

test("forwarded() commits the step, drops the ranges it read again, and records its own periods", () => {
  const s: StreamState = {
    first: T - 600,
    next: T + 660,
    unchecked: [[T, T + 600, T + 180, T + 720], [T + 600, T + 660, T + 780, T + 780]],
    doubt: [[T + 660, T + 720, T + 900]],
  };
  const at = T + 1320;
  const step = {
    window: { start: T + 660, end: T + 720 },
    recheck: { start: T, end: T + 600 },
    recheckAfter: R,
  };
  assert.deepEqual(forwarded(s, step, at), {
    first: T - 600,
    next: T + 720,
    // Read within recheck_after of the remaining range's first read: it joins that range.
    unchecked: [[T + 600, T + 720, T + 780, at]],
  });
  // Reading again the last range leaves none; a step with no new periods records nothing new.
  const again = {
    window: { start: T + 720, end: T + 720 },
    recheck: { start: T, end: T + 660 },
    recheckAfter: R,
  };
  assert.deepEqual(forwarded({ first: T, next: T + 720, unchecked: s.unchecked! }, again, at), {
    first: T,
    next: T + 720,
  });
});

test("readWindow() reads the periods a part owes and those it reads again in one window", () => {
  const w = { start: T + 660, end: T + 720 };
  assert.deepEqual(readWindow({ window: w, recheck: undefined }), w);
  assert.deepEqual(readWindow({ window: w, recheck: { start: T, end: T + 600 } }), {
    start: T,
    end: T + 720,
  });
  assert.deepEqual(
    readWindow({ window: { start: T + 720, end: T + 720 }, recheck: { start: T, end: T + 600 } }),
    {
      start: T,
      end: T + 720,
    },
  );
  assert.deepEqual(readWindow({ window: w, recheck: { start: T + 600, end: T + 600 } }), w);
});

const plan = (over: Partial<MetricPlan> = {}): MetricPlan => ({
  namespace: "AWS/ECS",
  names: ["CPUUtilization"],
  dimensions: ["ClusterName"],
  match: {},
  streams: undefined,
  unit: "Percent",
  stats: ["p99"],
  period: 60,
  delay: 120,
  recheckAfter: R,
  ...over,
});
const stream = (cluster: string): Stream => ({
  plan: plan(),
  name: "CPUUtilization",
  dims: [{ Name: "ClusterName", Value: cluster }],
});
const target = () => ({ namespace: "Forwarded/AWS/ECS", dims: [{ Name: "SourceAccount", Value: "prod" }] });

/** A destination that answers SampleCount and Sum from a table keyed by cluster and period start. */
function destination(table: Record<string, [count: number, sum: number]>) {
  const asked: { stats: string[]; start: number; end: number }[] = [];
  const api: Pick<CloudWatchApi, "getMetricData"> = {
    getMetricData(input) {
      asked.push({ stats: input.queries.map((q) => q.Stat), start: input.start, end: input.end });
      return Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) => {
          const cluster = q.Metric.Dimensions[0]!.Value;
          const ts = Object.keys(table).filter((k) => k.startsWith(`${cluster}@`)).map((k) =>
            Number(k.split("@")[1])
          ).filter((t) => t >= input.start && t < input.end);
          const values = ts.map((t) => table[`${cluster}@${t}`]![q.Stat === "SampleCount" ? 0 : 1]);
          return { Id: q.Id, Timestamps: ts, Values: values };
        }),
      });
    },
  };
  return { api, asked };
}

test("landedIn() reads the destination's SampleCount and Sum of the periods read again, and nothing without any", async () => {
  const a = stream("a");
  const b = stream("b");
  const { api, asked } = destination({ [`a@${T}`]: [3, 6], [`b@${T + 60}`]: [2, 10] });
  const range = { start: T, end: T + 120 };
  const landed = (await landedIn(api, { streams: [a, b], recheck: range, period: 60 }, target))!;
  assert.deepEqual(asked, [{ stats: ["SampleCount", "Sum", "SampleCount", "Sum"], start: T, end: T + 120 }]);
  assert.deepEqual([...landed.count], [3, NaN, NaN, 2]);
  assert.deepEqual([...landed.sum], [6, NaN, NaN, 10]);
  assert.equal(await landedIn(api, { streams: [a], recheck: undefined, period: 60 }, target), undefined);
  assert.equal(
    await landedIn(api, { streams: [a], recheck: { start: T, end: T }, period: 60 }, target),
    undefined,
  );
  assert.equal(asked.length, 1);
});

test("lateDatums() writes the difference where the source has more, nothing where equal, and reports more in the destination", async () => {
  const [a, b, c] = [stream("a"), stream("b"), stream("c")];
  const { api } = destination({
    [`a@${T}`]: [3, 6], // the source has 5 now: 2 late samples
    [`b@${T}`]: [4, 8], // equal: nothing to write
    [`c@${T}`]: [9, 9], // more than the source: written twice
  });
  const landed = await landedIn(
    api,
    { streams: [a, b, c], recheck: { start: T, end: T + 120 }, period: 60 },
    target,
  );
  const full = (n: number, sum: number, min: number, max: number) => ({
    SampleCount: n,
    Sum: sum,
    Minimum: min,
    Maximum: max,
    p99: max,
  });
  const stats = [
    // a: 2 late samples in T; T + 60 was empty at first and has data now; T + 120 is a new period, not read again.
    [{ t: T, values: full(5, 16, 0.5, 7) }, { t: T + 60, values: full(1, 4, 4, 4) }, {
      t: T + 120,
      values: full(1, 1, 1, 1),
    }],
    [{ t: T, values: full(4, 8, 1, 3) }],
    [{ t: T, values: full(7, 7, 1, 1) }],
  ];
  const overs: Over[] = [];
  const into = new Map<string, Datum[]>();
  lateDatums([a, b, c], stats, landed, target, (o) => overs.push(o), into);
  const dims = [{ Name: "ClusterName", Value: "a" }, { Name: "SourceAccount", Value: "prod" }];
  assert.deepEqual(into.get("Forwarded/AWS/ECS"), [
    {
      MetricName: "CPUUtilization",
      Dimensions: dims,
      Timestamp: T,
      StatisticValues: { SampleCount: 2, Sum: 10, Minimum: 0.5, Maximum: 7 },
      StorageResolution: 60,
      Unit: "Percent",
    },
    {
      MetricName: "CPUUtilization",
      Dimensions: dims,
      Timestamp: T + 60,
      StatisticValues: { SampleCount: 1, Sum: 4, Minimum: 4, Maximum: 4 },
      StorageResolution: 60,
      Unit: "Percent",
    },
  ]);
  assert.deepEqual(overs, [{ stream: c, t: T, source: 7, destination: 9 }]);
  // Without periods read again, nothing.
  const none = new Map<string, Datum[]>();
  lateDatums([a], [stats[0]!], undefined, target, () => assert.fail("no period read again"), none);
  assert.equal(none.size, 0);
});
