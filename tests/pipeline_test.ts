/** The pure pipeline stages with hand-written fakes: discover, fetch, publish. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { CloudWatchApi, Datum, ListMetricsInput, Metric } from "../lib/aws.ts";
import type { MetricPlan } from "../lib/config.ts";
import { discover, globToRegExp, listFilters, selects, type Stream } from "../lib/discover.ts";
import { fetchStats, queriesPerCall } from "../lib/fetch.ts";
import { GMD_MAX_QUERIES, PUT_MAX_BYTES, PUT_MAX_DATUMS } from "../lib/limits.ts";
import { datumBytes, publisher, putBatch, putBatches, toDatums } from "../lib/publish.ts";

const plan = (over: Partial<MetricPlan> = {}): MetricPlan => ({
  namespace: "AWS/ECS",
  names: ["CPUUtilization"],
  dimensions: ["ClusterName", "ServiceName"],
  match: {},
  streams: undefined,
  unit: undefined,
  stats: [],
  period: 60,
  delay: 120,
  ...over,
});
const dims = (o: Record<string, string>) => Object.entries(o).map(([Name, Value]) => ({ Name, Value }));

test("globToRegExp() matches * and ? and treats everything else literally", () => {
  const cases: [string, string, boolean][] = [
    ["prod-*", "prod-web", true],
    ["prod-*", "preprod-web", false],
    ["*", "", true],
    ["a?c", "abc", true],
    ["a?c", "abbc", false],
    ["a.c", "abc", false],
    ["(x)+[y]", "(x)+[y]", true],
  ];
  for (const [glob, value, want] of cases) {
    assert.equal(globToRegExp(glob).test(value), want, `${glob} ~ ${value}`);
  }
});

test("selects() wants exactly the dimension names, and values matching the globs", () => {
  const p = plan({ match: { ClusterName: "prod-*" } });
  assert.equal(selects(p, dims({ ClusterName: "prod-a", ServiceName: "x" })), true);
  assert.equal(selects(p, dims({ ClusterName: "test-a", ServiceName: "x" })), false);
  assert.equal(selects(p, dims({ ClusterName: "prod-a" })), false);
  assert.equal(selects(p, dims({ ClusterName: "prod-a", ServiceName: "x", TaskId: "1" })), false);
});

test("listFilters() sends names, and a value where the match has no wildcard, at most 10", () => {
  assert.deepEqual(listFilters(plan({ match: { ClusterName: "prod", ServiceName: "web-*" } })), [{
    Name: "ClusterName",
    Value: "prod",
  }, { Name: "ServiceName" }]);
  assert.equal(listFilters(plan({ dimensions: Array.from({ length: 12 }, (_, i) => `d${i}`) })).length, 10);
});

test("discover() reads every page, keeps the selected streams once, and skips ListMetrics for static streams", async () => {
  const calls: ListMetricsInput[] = [];
  const pages: Record<string, { metrics: Metric[]; nextToken: string | undefined }> = {
    "": {
      metrics: [{
        Namespace: "AWS/ECS",
        MetricName: "CPUUtilization",
        Dimensions: dims({ ServiceName: "a", ClusterName: "c" }),
      }],
      nextToken: "2",
    },
    "2": {
      metrics: [
        { Namespace: "AWS/ECS", MetricName: "CPUUtilization", Dimensions: dims({ ClusterName: "c" }) },
        {
          Namespace: "AWS/ECS",
          MetricName: "CPUUtilization",
          Dimensions: dims({ ClusterName: "c", ServiceName: "a" }),
        },
      ],
      nextToken: undefined,
    },
  };
  const api = {
    listMetrics(input: ListMetricsInput) {
      calls.push(input);
      return Promise.resolve(pages[input.NextToken ?? ""]!);
    },
  };
  const statics = plan({ names: ["MemoryUtilization"], streams: [{ ClusterName: "c", ServiceName: "z" }] });
  const streams = await discover(api, [plan(), statics], true);
  assert.deepEqual(streams.map((s) => [s.name, s.dims.map((d) => d.Value)]), [
    ["CPUUtilization", ["c", "a"]],
    ["MemoryUtilization", ["c", "z"]],
  ]);
  assert.deepEqual(calls.map((c) => [c.NextToken, c.RecentlyActive]), [[undefined, "PT3H"], ["2", "PT3H"]]);
});

test("queriesPerCall() fits both 500 queries and 100,800 datapoints per call", () => {
  const cases: [number, number][] = [[1, 500], [5, 500], [201, 500], [202, 499], [1440, 70], [100_800, 1], [
    200_000,
    1,
  ]];
  for (const [periods, want] of cases) assert.equal(queriesPerCall(periods), want, String(periods));
});

function fakeGetMetricData(data: (q: { Stat: string; dims: string }, t: number) => number | undefined) {
  const calls: number[] = [];
  const api: Pick<CloudWatchApi, "getMetricData"> = {
    getMetricData(input) {
      calls.push(input.queries.length);
      assert.ok(input.queries.length <= GMD_MAX_QUERIES);
      return Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) => {
          const ts: number[] = [];
          const vs: number[] = [];
          for (let t = input.start; t < input.end; t += q.Period) {
            const v = data({ Stat: q.Stat, dims: q.Metric.Dimensions.map((d) => d.Value).join(",") }, t);
            if (v !== undefined) [ts.push(t), vs.push(v)];
          }
          return { Id: q.Id, Timestamps: ts, Values: vs };
        }),
      });
    },
  };
  return { api, calls };
}

test("fetchStats() asks every statistic of every stream in as few calls as allowed and maps results back", async () => {
  const streams: Stream[] = Array.from(
    { length: 130 },
    (_, i) => ({
      plan: plan({ stats: i === 0 ? ["p99"] : [] }),
      name: "CPUUtilization",
      dims: dims({ ClusterName: "c", ServiceName: `s${i}` }),
    }),
  );
  const { api, calls } = fakeGetMetricData((
    q,
    t,
  ) => (q.dims === "c,s7" && t === 120
    ? undefined
    : { SampleCount: 3, Sum: 30, Minimum: 1, Maximum: 20, p99: 19 }[q.Stat]! + (q.dims === "c,s5" ? 100 : 0))
  );
  const rows = await fetchStats(api, streams, { start: 0, end: 180 }, 60);
  // 130 streams x 4 statistics + 1 percentile = 521 queries: two calls.
  assert.deepEqual(calls, [500, 21]);
  assert.deepEqual(rows[0]!.map((r) => r.t), [0, 60, 120]);
  assert.deepEqual(rows[0]![0]!.values, { SampleCount: 3, Sum: 30, Minimum: 1, Maximum: 20, p99: 19 });
  assert.deepEqual(rows[5]![1]!.values, { SampleCount: 103, Sum: 130, Minimum: 101, Maximum: 120 });
  assert.deepEqual(rows[7]!.map((r) => r.t), [0, 60]);
});

test("fetchStats() follows NextToken until every page is read", async () => {
  let call = 0;
  const api: Pick<CloudWatchApi, "getMetricData"> = {
    getMetricData(input) {
      call++;
      const page = call === 1 ? [0] : [60];
      return Promise.resolve({
        nextToken: call === 1 ? "t" : undefined,
        results: input.queries.map((q) => ({ Id: q.Id, Timestamps: page, Values: page.map(() => 1) })),
      });
    },
  };
  const rows = await fetchStats(api, [{ plan: plan(), name: "X", dims: [] }], { start: 0, end: 120 }, 60);
  assert.deepEqual(rows[0]!.map((r) => r.t), [0, 60]);
  assert.equal(call, 2);
});

const stream: Stream = {
  plan: plan({ stats: ["p99"], unit: "Percent" }),
  name: "CPUUtilization",
  dims: dims({ ClusterName: "c", ServiceName: "a" }),
};
const target = {
  namespace: "Forwarded/AWS/ECS",
  dims: dims({ SourceAccount: "production", SourceRegion: "eu-west-1" }),
};

test("toDatums() writes one statistic set per complete period and extra statistics as Name_stat", () => {
  const datums = toDatums(stream, [
    { t: 0, values: { SampleCount: 3, Sum: 30, Minimum: 1, Maximum: 20, p99: 19 } },
    { t: 60, values: { Sum: 5 } },
  ], target);
  assert.deepEqual(datums, [
    {
      MetricName: "CPUUtilization",
      Dimensions: [...stream.dims, ...target.dims],
      Timestamp: 0,
      StatisticValues: { SampleCount: 3, Sum: 30, Minimum: 1, Maximum: 20 },
      Unit: "Percent",
      StorageResolution: 60,
    },
    {
      MetricName: "CPUUtilization_p99",
      Dimensions: [...stream.dims, ...target.dims],
      Timestamp: 0,
      Value: 19,
      Unit: "Percent",
      StorageResolution: 60,
    },
  ]);
  assert.equal(
    toDatums(
      stream,
      [{ t: 0, values: { SampleCount: 3, Sum: 30, Minimum: 1, Maximum: 20, p99: 19 } }],
      target,
      (name) => name === "CPUUtilization",
    ).length,
    1,
  );
});

const datum = (i: number, pad = 0): Datum => ({
  MetricName: `m${i}`,
  Dimensions: [{ Name: "d", Value: "v".repeat(pad || 1) }],
  Timestamp: 0,
  Value: i,
  StorageResolution: 60,
});

test("putBatches() keeps to 1,000 datums and well under 1 MB per call", () => {
  const sizes = (k: number, pad = 0) =>
    putBatches(Array.from({ length: k }, (_, i) => datum(i, pad))).map((b) => b.length);
  assert.deepEqual(sizes(0), []);
  assert.deepEqual(sizes(1), [1]);
  assert.deepEqual(sizes(PUT_MAX_DATUMS), [PUT_MAX_DATUMS]);
  assert.deepEqual(sizes(PUT_MAX_DATUMS + 1), [PUT_MAX_DATUMS, 1]);
  for (const b of putBatches(Array.from({ length: 1000 }, (_, i) => datum(i, 1024 * 29)))) {
    assert.ok(b.reduce((a, d) => a + datumBytes(d), 0) < PUT_MAX_BYTES);
  }
});

test("putBatch() isolates datums that CloudWatch refuses and writes the rest", async () => {
  const written: string[] = [];
  let calls = 0;
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData(_ns, datums) {
      calls++;
      if (datums.some((d) => d.MetricName === "m5")) {
        return Promise.reject(
          Object.assign(new Error("bad value"), {
            name: "InvalidParameterValueException",
            Code: "InvalidParameterValue",
          }),
        );
      }
      written.push(...datums.map((d) => d.MetricName));
      return Promise.resolve();
    },
  };
  const refused: string[] = [];
  await putBatch(
    api,
    "ns",
    Array.from({ length: 8 }, (_, i) => datum(i)),
    (d, why) => refused.push(`${d.MetricName}: ${why}`),
  );
  assert.deepEqual(written.sort(), ["m0", "m1", "m2", "m3", "m4", "m6", "m7"]);
  assert.deepEqual(refused, ["m5: InvalidParameterValue: bad value"]);
  assert.equal(calls, 7); // 1 + 2 + 2 + 2: halves down to the bad datum
});

test("putBatch() throws errors that are not about the data, such as throttling", async () => {
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData: () => Promise.reject(Object.assign(new Error("Rate exceeded"), { name: "Throttling" })),
  };
  await assert.rejects(putBatch(api, "ns", [datum(1)], () => assert.fail("not a refusal")), /Rate exceeded/);
});

test("fetchStats() refuses a result that is still incomplete after the last page", async () => {
  const api: Pick<CloudWatchApi, "getMetricData"> = {
    getMetricData: (input) =>
      Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) => ({
          Id: q.Id,
          Timestamps: [0],
          Values: [1],
          StatusCode: "PartialData",
        })),
      }),
  };
  await assert.rejects(
    fetchStats(api, [{ plan: plan(), name: "X", dims: [] }], { start: 0, end: 60 }, 60),
    /^Error: Cannot read AWS\/ECS X: GetMetricData answered PartialData$/,
  );
});

test("publisher() pools the datums of producers into full calls and sends the rest once all are waiting", async () => {
  const calls: string[][] = [];
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData(ns, datums) {
      calls.push([ns, String(datums.length)]);
      return Promise.resolve();
    },
  };
  const pool = publisher(api);
  pool.join();
  pool.join();
  const many = (k: number, from = 0) => Array.from({ length: k }, (_, i) => datum(from + i));
  let firstDone = false;
  const first = pool.write(new Map([["A", many(1200)]]), () => assert.fail("nothing refused")).then(
    () => (firstDone = true),
  );
  await new Promise((r) => setTimeout(r, 10));
  // The full batch went at once; the 200 left wait for the other producer.
  assert.deepEqual(calls, [["A", "1000"]]);
  assert.equal(firstDone, false);
  const second = pool.write(
    new Map([["A", many(300, 2000)], ["B", many(5)]]),
    () => assert.fail("nothing refused"),
  );
  await Promise.all([first, second]);
  assert.deepEqual(calls, [["A", "1000"], ["A", "500"], ["B", "5"]]);
  pool.leave();
  pool.leave();
});

test("publisher() sends what is queued when a producer leaves, and fails every writer of a failed call", async () => {
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData: () => Promise.reject(Object.assign(new Error("Rate exceeded"), { name: "Throttling" })),
  };
  const pool = publisher(api);
  pool.join();
  pool.join();
  const written = pool.write(new Map([["A", [datum(1)]]]), () => assert.fail("not a refusal"));
  pool.leave(); // the other producer failed before it wrote anything
  await assert.rejects(written, /Rate exceeded/);
});
