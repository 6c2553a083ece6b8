/** The pure pipeline stages with hand-written fakes: discover, fetch, publish. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { CloudWatchApi, Datum, ListMetricsInput, Metric } from "../lib/aws.ts";
import type { MetricPlan } from "../lib/config.ts";
import {
  discover,
  globMatches,
  listFilters,
  listsWide,
  planId,
  rebuild,
  selects,
  type Stream,
} from "../lib/discover.ts";
import type { PlanCounts } from "../lib/store.ts";
import { fetchStats, queriesPerCall } from "../lib/fetch.ts";
import { GMD_MAX_QUERIES, PUT_MAX_BYTES, PUT_MAX_DATUMS } from "../lib/limits.ts";
import { metricPlan } from "./fakes.ts";
import { datumBytes, publisher, putBatch, putBatches, SENT_AT_ONCE, toDatums } from "../lib/publish.ts";

const plan = metricPlan;
const dims = (o: Record<string, string>) => Object.entries(o).map(([Name, Value]) => ({ Name, Value }));

test("globMatches() matches * and ? and treats everything else literally", () => {
  const cases: [string, string, boolean][] = [
    ["prod-*", "prod-web", true],
    ["prod-*", "preprod-web", false],
    ["*", "", true],
    ["", "", true],
    ["", "x", false],
    ["a?c", "abc", true],
    ["a?c", "abbc", false],
    ["a?c", "ac", false],
    ["a.c", "abc", false],
    ["(x)+[y]", "(x)+[y]", true],
    ["*-web-*", "prod-web-1", true],
    ["*-web-*", "prod-api-1", false],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "aXbYcZ", false],
    ["**", "anything", true],
  ];
  for (const [glob, value, want] of cases) assert.equal(globMatches(glob, value), want, `${glob} ~ ${value}`);
});

test("globMatches() answers at once where a regular expression of many .* would backtrack for long", () => {
  // 30 stars and a 1,024-character value that almost matches: at most the lengths' product of steps.
  const glob = `${"a*".repeat(30)}b`;
  const started = performance.now();
  assert.equal(globMatches(glob, "a".repeat(1024)), false);
  assert.ok(performance.now() - started < 1_000, "a guard against a hang, not a timing");
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
  const { streams, counts } = await discover(api, [plan(), statics], true);
  assert.deepEqual(streams.map((s) => [s.name, s.dims.map((d) => d.Value)]), [
    ["MemoryUtilization", ["c", "z"]],
    ["CPUUtilization", ["c", "a"]],
  ]);
  assert.deepEqual(calls.map((c) => [c.MetricName, c.NextToken, c.RecentlyActive]), [
    ["CPUUtilization", undefined, "PT3H"],
    ["CPUUtilization", "2", "PT3H"],
  ]);
  // Three metrics listed under the name, selected or not: what a listing of that name alone returns.
  assert.deepEqual(counts, { [planId(plan())]: { names: { CPUUtilization: 3 } } });
});

test("discover() forwards a stream two entries select once, with the first entry in the config, whichever listing answers last", async () => {
  const listed = [
    {
      Namespace: "AWS/ECS",
      MetricName: "CPUUtilization",
      Dimensions: dims({ ClusterName: "prod-a", ServiceName: "x" }),
    },
    {
      Namespace: "AWS/ECS",
      MetricName: "CPUUtilization",
      Dimensions: dims({ ClusterName: "test-a", ServiceName: "x" }),
    },
  ];
  const prod = plan({ match: { ClusterName: "prod-*" }, stats: ["p99"] });
  const all = plan();
  const statics = plan({ streams: [{ ClusterName: "prod-a", ServiceName: "x" }] });
  for (const delays of [[0, 5], [5, 0]]) {
    let call = 0;
    const api = {
      listMetrics() {
        const wait = delays[call++ % 2]!;
        return new Promise<{ metrics: Metric[]; nextToken: undefined }>((resolve) =>
          setTimeout(() => resolve({ metrics: listed, nextToken: undefined }), wait)
        );
      },
    };
    const which = (streams: Stream[]) =>
      streams.map((s) =>
        `${s.dims[0]!.Value} ${s.plan === prod ? "prod" : s.plan === all ? "all" : "static"}`
      );
    assert.deepEqual(which((await discover(api, [prod, all], false)).streams), ["prod-a prod", "test-a all"]);
    assert.deepEqual(which((await discover(api, [all, prod], false)).streams), ["prod-a all", "test-a all"]);
    assert.deepEqual(which((await discover(api, [all, statics], false)).streams), [
      "prod-a all",
      "test-a all",
    ]);
    assert.deepEqual(which((await discover(api, [statics, all], false)).streams), [
      "prod-a static",
      "test-a all",
    ]);
  }
});

test("discover() keeps each stream once however the listings repeat it: on a page, across pages, across listings", async () => {
  const metric = (name: string, o: Record<string, string>) => ({
    Namespace: "AWS/ECS",
    MetricName: name,
    Dimensions: dims(o),
  });
  const a = { ClusterName: "c", ServiceName: "a" };
  const b = { ServiceName: "b", ClusterName: "c" };
  // Per-name listings (one entry, one name) and a namespace-wide one (an entry with two names) of one service.
  const pages: Record<string, Record<string, { metrics: Metric[]; nextToken: string | undefined }>> = {
    CPUUtilization: {
      "": { metrics: [metric("CPUUtilization", a), metric("CPUUtilization", a)], nextToken: "2" },
      "2": { metrics: [metric("CPUUtilization", b), metric("CPUUtilization", a)], nextToken: undefined },
    },
    "": {
      "": {
        metrics: [
          metric("MemoryUtilization", a),
          metric("CPUUtilization", b),
          metric("MemoryUtilization", a),
        ],
        nextToken: "2",
      },
      "2": { metrics: [metric("CPUUtilization", b), metric("CPUUtilization", a)], nextToken: undefined },
    },
  };
  const api = {
    listMetrics: (input: ListMetricsInput) =>
      Promise.resolve(pages[input.MetricName ?? ""]![input.NextToken ?? ""]!),
  };
  const one = plan();
  const both = plan({ names: ["CPUUtilization", "MemoryUtilization"] });
  const statics = plan({ streams: [{ ClusterName: "c", ServiceName: "b" }] });
  const which = (streams: Stream[]) =>
    streams.map((s) => `${s.name} ${s.dims[1]!.Value} ${[one, both, statics].indexOf(s.plan)}`)
      .sort();
  assert.deepEqual(which((await discover(api, [one], false)).streams), [
    "CPUUtilization a 0",
    "CPUUtilization b 0",
  ]);
  assert.deepEqual(which((await discover(api, [both], false)).streams), [
    "CPUUtilization a 1",
    "CPUUtilization b 1",
    "MemoryUtilization a 1",
  ]);
  // The first entry in the config that selects a stream forwards it.
  assert.deepEqual(which((await discover(api, [statics, one, both], false)).streams), [
    "CPUUtilization a 0",
    "CPUUtilization b 2",
    "MemoryUtilization a 1",
  ]);
});

test("discover() holds each dimension set once: the metrics of a service share theirs, a cluster its ClusterName", async () => {
  const metric = (MetricName: string, o: Record<string, string>) => ({
    Namespace: "AWS/ECS",
    MetricName,
    Dimensions: dims(o),
  });
  const api = {
    listMetrics: () =>
      Promise.resolve({
        metrics: [
          metric("CPUUtilization", { ClusterName: "c", ServiceName: "a" }),
          metric("MemoryUtilization", { ServiceName: "a", ClusterName: "c" }),
          metric("CPUUtilization", { ClusterName: "c", ServiceName: "b" }),
        ],
        nextToken: undefined,
      }),
  };
  const { streams } = await discover(api, [plan({ names: ["CPUUtilization", "MemoryUtilization"] })], false);
  const [cpuA, memA, cpuB] = streams;
  assert.deepEqual(cpuA!.dims, dims({ ClusterName: "c", ServiceName: "a" }));
  assert.equal(memA!.dims, cpuA!.dims);
  assert.notEqual(cpuB!.dims, cpuA!.dims);
  assert.equal(cpuB!.dims[0], cpuA!.dims[0]);
});

test("listsWide() lists a namespace once where that takes fewer pages than a listing per name", () => {
  const two = plan({ names: ["CPUUtilization", "MemoryUtilization"] });
  const cases: [string, MetricPlan, PlanCounts | undefined, boolean][] = [
    ["one name: a listing per name is never more", plan(), undefined, false],
    ["several names, no listing yet: namespace-wide", two, undefined, true],
    ["wide was as cheap: 2 pages against 1 + 1", two, { wide: 1000, names: { CPUUtilization: 500 } }, true],
    ["wide was dearer: 3 pages against 1 + 1", two, { wide: 1001, names: { CPUUtilization: 500 } }, false],
    [
      "the last listing was per name: stay",
      two,
      { names: { CPUUtilization: 5, MemoryUtilization: 5 } },
      false,
    ],
  ];
  for (const [name, p, last, wide] of cases) assert.equal(listsWide(p, last), wide, name);
});

test("discover() lists a namespace with several names once, and counts what each listing returned", async () => {
  const names = ["CPUUtilization", "MemoryUtilization", "CPUReservation"];
  const listed = names.flatMap((n) =>
    Array.from({ length: 3 }, (_, i) => ({
      Namespace: "AWS/ECS",
      MetricName: n,
      Dimensions: dims({ ClusterName: "c", ServiceName: `s${i}` }),
    }))
  );
  const calls: ListMetricsInput[] = [];
  const api = {
    listMetrics(input: ListMetricsInput) {
      calls.push(input);
      const metrics = listed.filter((m) =>
        input.MetricName === undefined || m.MetricName === input.MetricName
      );
      return Promise.resolve({ metrics, nextToken: undefined });
    },
  };
  const two = plan({ names: ["CPUUtilization", "MemoryUtilization"] });
  const first = await discover(api, [two], false);
  assert.equal(first.streams.length, 6);
  assert.deepEqual(calls.map((c) => c.MetricName), [undefined]);
  assert.deepEqual(first.counts[planId(two)], {
    wide: 9,
    names: { CPUUtilization: 3, MemoryUtilization: 3 },
  });
  // The next listing, told what the last one returned, still takes one page either way: it stays wide.
  calls.length = 0;
  await discover(api, [two], false, first.counts);
  assert.deepEqual(calls.map((c) => c.MetricName), [undefined]);
});

test("rebuild() gives each kept stream the plan that selects it, and leaves out what no plan selects", () => {
  const p = plan({ names: ["CPUUtilization"], match: { ClusterName: "prod-*" } });
  const statics = plan({ names: ["CPUUtilization"], streams: [{ ClusterName: "prod-a", ServiceName: "z" }] });
  const kept = rebuild([statics, p], [
    ["AWS/ECS", "CPUUtilization", [["ClusterName", "prod-a"], ["ServiceName", "x"]], 60],
    ["AWS/ECS", "CPUUtilization", [["ClusterName", "test-a"], ["ServiceName", "x"]], 60],
    ["AWS/ECS", "MemoryUtilization", [["ClusterName", "prod-a"], ["ServiceName", "x"]], 60],
    ["AWS/ECS", "CPUUtilization", [["ClusterName", "prod-a"], ["ServiceName", "x"]], 300],
  ]);
  assert.deepEqual(kept, [{
    plan: p,
    name: "CPUUtilization",
    dims: dims({ ClusterName: "prod-a", ServiceName: "x" }),
  }]);
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
    putBatches(Array.from({ length: k }, (_, i) => datum(i, pad)), datumBytes).map((b) => b.length);
  assert.deepEqual(sizes(0), []);
  assert.deepEqual(sizes(1), [1]);
  assert.deepEqual(sizes(PUT_MAX_DATUMS), [PUT_MAX_DATUMS]);
  assert.deepEqual(sizes(PUT_MAX_DATUMS + 1), [PUT_MAX_DATUMS, 1]);
  for (const b of putBatches(Array.from({ length: 1000 }, (_, i) => datum(i, 1024 * 29)), datumBytes)) {
    assert.ok(b.reduce((a, d) => a + datumBytes(d), 0) < PUT_MAX_BYTES);
  }
});

test("datumBytes() is never less than the datum's JSON, and not much more", () => {
  const dims = (k: number, text: string) =>
    Array.from({ length: k }, (_, i) => ({ Name: `d${i}`, Value: text }));
  const cases: Datum[] = [
    { MetricName: "m", Dimensions: [], Timestamp: 0, Value: 0, StorageResolution: 60 },
    {
      MetricName: "CPUUtilization_p99.9",
      Dimensions: dims(30, "v".repeat(1024)),
      Timestamp: 1795521420,
      Value: -1.2345678901234567e-300,
      Unit: "Bytes/Second",
      StorageResolution: 1,
    },
    {
      MetricName: 'quote " and backslash \\ and ü',
      Dimensions: dims(2, '"\\"'),
      Timestamp: 1795521420,
      StatisticValues: { SampleCount: 3, Sum: 1 / 3, Minimum: -0.1, Maximum: 1e300 },
      Unit: "Percent",
      StorageResolution: 60,
    },
  ];
  for (const d of cases) {
    const exact = new TextEncoder().encode(JSON.stringify(d)).length + 1;
    assert.ok(datumBytes(d) >= exact, `${datumBytes(d)} >= ${exact}`);
    assert.ok(datumBytes(d) <= exact + 300, `${datumBytes(d)} <= ${exact} + 300`);
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
  const [a, b] = [pool.join(), pool.join()];
  const many = (k: number, from = 0) => Array.from({ length: k }, (_, i) => datum(from + i));
  const none = () => assert.fail("nothing refused");
  // Producer a writes in two parts, as two GetMetricData calls of a step come back.
  a.write(new Map([["A", many(700)]]), none);
  a.write(new Map([["A", many(500, 700)]]), none);
  let aDone = false;
  const aFlushed = a.flush().then(() => (aDone = true));
  await new Promise((r) => setTimeout(r, 10));
  // The full batch went at once; the 200 left wait for the other producer, which is still fetching.
  assert.deepEqual(calls, [["A", "1000"]]);
  assert.equal(aDone, false);
  b.write(new Map([["A", many(300, 2000)], ["B", many(5)]]), none);
  await Promise.all([aFlushed, b.flush()]);
  assert.deepEqual(calls, [["A", "1000"], ["A", "500"], ["B", "5"]]);
  a.leave();
  b.leave();
  // A flush with nothing queued returns at once.
  const c = pool.join();
  await c.flush();
  c.leave();
});

test("publisher(): a write waits while the datums sent and not yet answered reach SENT_AT_ONCE", async () => {
  const answers: (() => void)[] = [];
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData: () => new Promise<void>((resolve) => answers.push(resolve)),
  };
  const a = publisher(api).join();
  const none = () => assert.fail("nothing refused");
  const many = (k: number) => Array.from({ length: k }, (_, i) => datum(i));
  // One full batch over the limit, and a partial one that is not sent (and not counted) until a flush.
  let back = false;
  const wrote = a.write(new Map([["A", many(SENT_AT_ONCE + PUT_MAX_DATUMS + 1)]]), none).then(
    () => (back = true),
  );
  const tick = () => new Promise((r) => setTimeout(r, 1));
  await tick();
  assert.equal(answers.length, SENT_AT_ONCE / PUT_MAX_DATUMS + 1);
  assert.equal(back, false);
  answers.shift()!(); // sent: exactly SENT_AT_ONCE, still too many
  await tick();
  assert.equal(back, false);
  answers.shift()!();
  await wrote;
  const flushed = a.flush();
  await tick();
  assert.equal(answers.length, SENT_AT_ONCE / PUT_MAX_DATUMS); // and the partial batch of one
  answers.splice(0).forEach((answer) => answer());
  await flushed;
});

test("publisher() sends what is queued when a producer leaves, and fails every writer of a failed call", async () => {
  const api: Pick<CloudWatchApi, "putMetricData"> = {
    putMetricData: () => Promise.reject(Object.assign(new Error("Rate exceeded"), { name: "Throttling" })),
  };
  const pool = publisher(api);
  const [a, b, c] = [pool.join(), pool.join(), pool.join()];
  a.write(new Map([["A", [datum(1)]]]), () => assert.fail("not a refusal"));
  c.write(new Map([["A", [datum(2)]]]), () => assert.fail("not a refusal"));
  const flushed = a.flush();
  b.leave(); // failed before it wrote anything
  await Promise.all([
    assert.rejects(flushed, /Rate exceeded/),
    assert.rejects(c.flush(), /Rate exceeded/),
  ]);
  // The failure is reported once: the next flush of a producer with nothing queued succeeds.
  await a.flush();
});
