import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CloudWatchApi, Query } from "../lib/aws.ts";
import { runTime } from "../lib/clock.ts";
import { ConfigError } from "../lib/errors.ts";
import { isAhead, pullBack, type StreamState } from "../lib/state.ts";
import { iso as isoSeconds } from "../lib/window.ts";
import { NOW, run } from "./fakes.ts";

const T = NOW / 1000;
const MIN = 60;

test("runTime() works in CloudWatch's time, says a host clock off by more than a minute, and refuses a --now ahead of it", () => {
  const cases: {
    why: string;
    cloudWatch: number;
    host: number;
    requested?: number;
    now?: number;
    warned?: RegExp;
    refused?: RegExp;
  }[] = [
    { why: "clocks agree", cloudWatch: T, host: T, now: T },
    { why: "a host a few seconds off is not said", cloudWatch: T, host: T + 20, now: T },
    {
      why: "a host 5 minutes ahead works in CloudWatch's time, and is said",
      cloudWatch: T,
      host: T + 300,
      now: T,
      warned:
        /^This host's clock is 300 s ahead of CloudWatch's \(host 2026-11-24T12:05:00Z, CloudWatch 2026-11-24T12:00:00Z\)/,
    },
    {
      why: "a host behind too",
      cloudWatch: T,
      host: T - 90,
      now: T,
      warned: /^This host's clock is 90 s behind CloudWatch's/,
    },
    { why: "a --now in the past is taken", cloudWatch: T, host: T, requested: T - 3600, now: T - 3600 },
    {
      why: "a --now a few seconds ahead is CloudWatch's now",
      cloudWatch: T,
      host: T,
      requested: T + 30,
      now: T,
    },
    {
      why: "a --now a day ahead is refused",
      cloudWatch: T,
      host: T,
      requested: T + 86_400,
      refused:
        /^Cannot act as at --now 2026-11-25T12:00:00Z: it is later than CloudWatch's clock \(2026-11-24T12:00:00Z\)/,
    },
    {
      why: "a --now that only the host's clock, ahead, would take is refused",
      cloudWatch: T,
      host: T + 3600,
      requested: T + 1800,
      refused: /later than CloudWatch's clock \(2026-11-24T12:00:00Z\)/,
    },
  ];
  for (const c of cases) {
    const warnings: string[] = [];
    // The reading came 10 s before the run asks: CloudWatch's clock moved on as much as the host's.
    const reading = { cloudWatchMs: (c.cloudWatch - 10) * 1000, hostMs: (c.host - 10) * 1000 };
    const act = () => runTime(reading, c.host * 1000, c.requested, (l) => warnings.push(l));
    if (c.refused) {
      assert.throws(act, (e) => e instanceof ConfigError && c.refused!.test(e.problems[0]!), c.why);
      continue;
    }
    assert.deepEqual(act(), { nowSeconds: c.now, cloudWatchSeconds: c.cloudWatch }, c.why);
    if (c.warned) {
      assert.equal(warnings.length, 1, c.why);
      assert.match(warnings[0]!, c.warned, c.why);
    } else assert.deepEqual(warnings, [], c.why);
  }
});

test("isAhead() and pullBack(): a state a run left ahead of CloudWatch's clock goes back to it, the periods since in doubt", () => {
  const now = T;
  const bound = T - 2 * MIN; // the newest complete period ends here, with a delay of 120 s
  const edge = T;
  const cases: { why: string; before: StreamState; ahead: boolean; after?: StreamState }[] = [
    { why: "a checkpoint at the bound", before: { first: T - 60 * MIN, next: bound, seen: T }, ahead: false },
    {
      why: "a checkpoint within the delay (a longer delay than the last run's) is no mistake",
      before: { first: T - 60 * MIN, next: T - MIN, seen: T },
      ahead: false,
    },
    {
      why: "a checkpoint 8 minutes ahead: back to the bound, the rest in doubt",
      before: { first: T - 60 * MIN, next: T + 8 * MIN, seen: T + 10 * MIN },
      ahead: true,
      after: { first: T - 60 * MIN, next: bound, doubt: [[bound, T + 8 * MIN, now]], seen: now },
    },
    {
      why: "periods read at a time still to come go back too, from the first of them",
      before: {
        first: T - 60 * MIN,
        next: T + 3 * MIN,
        unchecked: [[T - 30 * MIN, T - 20 * MIN, T - 28 * MIN, T - 20 * MIN], [
          T - 10 * MIN,
          T + 3 * MIN,
          T - 8 * MIN,
          T + 5 * MIN,
        ]],
        seen: T + 5 * MIN,
      },
      ahead: true,
      after: {
        first: T - 60 * MIN,
        next: T - 10 * MIN,
        doubt: [[T - 10 * MIN, T + 3 * MIN, now]],
        unchecked: [[T - 30 * MIN, T - 20 * MIN, T - 28 * MIN, T - 20 * MIN]],
        seen: now,
      },
    },
    {
      why: "an intent written at a time still to come",
      before: { first: T - 60 * MIN, next: T - 5 * MIN, doubt: [[T - 5 * MIN, T - 4 * MIN, T + 3600]] },
      ahead: true,
      after: { first: T - 60 * MIN, next: T - 5 * MIN, doubt: [[T - 5 * MIN, T - 4 * MIN, now]] },
    },
    {
      why: "a span wholly ahead goes: the stream starts at its newest complete period",
      before: { first: T + 86_400, next: T + 86_400 + MIN, seen: T + 86_400 },
      ahead: true,
      after: { doubt: [[bound - MIN, T + 86_400 + MIN, now]], seen: now },
    },
    {
      why: "a new stream owed from a time still to come starts at its newest complete period",
      before: { since: T + 3600, seen: T + 3600 },
      ahead: true,
      after: { since: bound - MIN, seen: now },
    },
  ];
  for (const c of cases) {
    assert.equal(isAhead(c.before, edge, now), c.ahead, c.why);
    if (c.after) assert.deepEqual(pullBack(c.before, bound, MIN, now), c.after, c.why);
  }
});

/**
 * One stream's source and the destination, at a true time the test moves: the source answers only periods that
 * are complete by that time (three samples each), and the destination what was written to it.
 */
function world() {
  const clock = { now: NOW };
  const written = new Map<number, { n: number; sum: number; writes: number }>();
  const api: CloudWatchApi = {
    listMetrics: (input) =>
      Promise.resolve({
        metrics: [{
          Namespace: input.Namespace,
          MetricName: "CPUUtilization",
          Dimensions: [{ Name: "ClusterName", Value: "c" }, { Name: "ServiceName", Value: "s" }],
        }],
        nextToken: undefined,
      }),
    getMetricData: (input) => {
      const destination = input.queries[0]!.Metric.Namespace.startsWith("Forwarded/");
      const answer = (q: Query) => {
        const ts: number[] = [];
        const values: number[] = [];
        for (let t = input.start; t < input.end; t += 60) {
          const d = written.get(t);
          if (destination && d) ts.push(t), values.push(q.Stat === "Sum" ? d.sum : d.n);
          if (!destination && (t + 60) * 1000 <= clock.now) {
            ts.push(t), values.push({ SampleCount: 3, Sum: 6, Minimum: 1, Maximum: 3 }[q.Stat]!);
          }
        }
        return { Id: q.Id, Timestamps: ts, Values: values };
      };
      return Promise.resolve({ nextToken: undefined, results: input.queries.map(answer) });
    },
    putMetricData: (_ns, datums) => {
      for (const d of datums) {
        const was = written.get(d.Timestamp) ?? { n: 0, sum: 0, writes: 0 };
        written.set(d.Timestamp, {
          n: was.n + d.StatisticValues!.SampleCount,
          sum: was.sum + d.StatisticValues!.Sum,
          writes: was.writes + 1,
        });
      }
      return Promise.resolve();
    },
  };
  return { clock, written, api };
}

function oneStream(recheckAfter: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-clock-"));
  const config = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(
    config,
    `destination: { region: eu-west-1 }\ndefaults: { recheck_after: ${recheckAfter} }\nself_metrics: false\naccounts: [{ name: a }]\nmetrics: [{ namespace: AWS/ECS, names: [CPUUtilization], streams: [{ ClusterName: c, ServiceName: s }] }]\n`,
  );
  return config;
}

test("main() refuses a --now a day ahead of CloudWatch's clock with one line, exit 2, before its state is opened", async () => {
  const config = oneStream(600);
  const { api } = world();
  const r = await run(["--config", config, "--now", new Date(NOW + 86_400_000).toISOString()], {}, () => api);
  assert.equal(r.code, 2);
  assert.deepEqual(r.out, []);
  assert.equal(r.err.length, 1);
  assert.match(r.err[0]!, /Cannot act as at --now 2026-11-25T12:00:00Z: it is later than CloudWatch's clock/);
  assert.deepEqual(fs.readdirSync(path.dirname(config)), ["forwarder.yaml"]);
});

// With periods read again for late samples (the default), the store knows which periods the mistaken run read
// at a time still to come, and a repair minutes later finds them all; without, it goes back to the newest
// complete period, which covers a repair soon after.
for (const [recheckAfter, repairAt] of [[0, 3], [600, 6]] as const) {
  test(`main() recovers a store an earlier run left ahead of CloudWatch's clock without losing or doubling a period (recheck_after ${recheckAfter})`, async () => {
    const config = oneStream(recheckAfter);
    const { clock, written, api } = world();
    const at = (trueMinutes: number, cloudWatchMinutes = trueMinutes, args: string[] = []) => {
      clock.now = NOW + trueMinutes * 60_000;
      return run(["--config", config, ...args], {}, () => api, {
        now: () => clock.now,
        cloudWatchNow: () => NOW + cloudWatchMinutes * 60_000,
      });
    };
    const first = await at(0);
    assert.equal(first.code, 0, first.err.join("\n"));
    assert.equal((await at(1)).code, 0);
    // As an earlier version did on a host 5 minutes ahead, taking that clock for CloudWatch's: it read the
    // periods up to 12:05 at 12:02, when those after 12:01 were not complete, and moved the checkpoint past them.
    assert.equal((await at(2, 7)).code, 0);
    const status = await at(3, 3, ["--status"]);
    assert.match(
      status.out[0]!,
      /forwarded up to 2026-11-24T12:05:00Z \(2 min ahead of the clock\), 1 stream, 1 with a checkpoint ahead of the clock/,
    );
    const repaired = await at(repairAt);
    assert.equal(repaired.code, 0, repaired.err.join("\n"));
    const warned = repaired.err.filter((l) => l.includes("Moved the checkpoints"));
    assert.equal(warned.length, 1, repaired.err.join("\n"));
    assert.match(
      warned[0]!,
      /Moved the checkpoints of 1 stream of account "a" in eu-west-1 back to CloudWatch's time \(2026-11-24T12:0\d:00Z\): an earlier run with --now or a clock ahead of CloudWatch's had moved them up to 2026-11-24T12:05:00Z/,
    );
    for (let m = repairAt + 1; m <= 30; m++) {
      const r = await at(m);
      assert.equal(r.code, 0);
      assert.ok(!r.err.some((l) => l.includes("Moved the checkpoints")), `minute ${m}: said once`);
    }
    // Every period from the first run's to the newest complete one at 12:30 (less the delay) is there once, whole.
    const periods = [...written.keys()].sort((a, b) => a - b);
    const expected = Array.from({ length: 31 }, (_, i) => T - 3 * MIN + i * MIN);
    assert.deepEqual(periods.map(isoSeconds), expected.map(isoSeconds));
    for (const [t, d] of written) assert.deepEqual([d.n, d.sum], [3, 6], isoSeconds(t));
    assert.equal(Math.max(...[...written.values()].map((d) => d.writes)), 1);
  });
}

test("main() with a --now in the past leaves checkpoints after it alone: they are not ahead of CloudWatch's clock", async () => {
  const config = oneStream(600);
  const { clock, written, api } = world();
  const at = (minutes: number, args: string[] = []) => {
    clock.now = NOW + minutes * 60_000;
    return run(["--config", config, ...args], {}, () => api, { now: () => clock.now });
  };
  for (let m = 0; m <= 10; m++) assert.equal((await at(m)).code, 0);
  const before = [...written.keys()].sort((a, b) => a - b);
  const back = await at(11, ["--now", new Date(NOW - 3_600_000).toISOString()]);
  assert.equal(back.code, 0, back.err.join("\n"));
  assert.ok(!back.err.some((l) => l.includes("Moved the checkpoints")), back.err.join("\n"));
  const status = await at(11, ["--status"]);
  assert.doesNotMatch(status.out.join("\n"), /in doubt|ahead/);
  // The next run goes on from its checkpoint: one new period, nothing before the first run's.
  assert.equal((await at(12)).code, 0);
  assert.deepEqual([...written.keys()].sort((a, b) => a - b), [
    ...before,
    before.at(-1)! + MIN,
    before.at(-1)! + 2 * MIN,
  ]);
});
