/**
 * forward.ts as a process, under the runtime running the tests, against the emulator: every forwarded
 * period's statistics in the destination equal the source's, account by account, region by region.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import { assertForwarded, CONFIG, DEST, forwarderEnv, MIN, seedFleet, writeConfig } from "./fleet.ts";
import { runForwarder } from "./helpers.ts";

const iso = (ms: number) => new Date(ms).toISOString();

test("forward.ts forwards every period with the source's exact statistics, keeping accounts and regions apart", async () => {
  // Minutes back: a --now may not be later than CloudWatch's clock, and the runs below go up to 3 minutes on.
  const now = Math.floor(Date.now() / MIN) * MIN - 5 * MIN;
  const emu = await startEmulator({
    requireExternalId: { "arn:aws:iam::111111111111:role/transfer": "prod-ext-id" },
  });
  try {
    await seedFleet(emu, now - 40 * MIN, now);
    const config = writeConfig(CONFIG);
    const env = forwarderEnv(emu);
    // The first run starts each stream at its newest complete period; the second backfills up to now.
    const first = await runForwarder(["--config", config, "--now", iso(now - 30 * MIN)], env);
    assert.equal(first.code, 0, first.stderr);
    const second = await runForwarder(["--config", config, "--now", iso(now)], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stdout,
      /^Forwarded \d+ datums of 1061 streams from 4 of 4 account-regions in [\d.]+ s; calls: [^;\n]+; largest lag 2 min\n$/,
    );
    // Periods from the first one forwarded (ending 30 min + delay before now) to the newest complete one.
    const compared = await assertForwarded(emu, now - 33 * MIN, now - 2 * MIN);
    assert.equal(compared, 1061 * 31);
    // A third run at the same time has nothing left to forward and writes nothing.
    const third = await runForwarder(["--config", config, "--now", iso(now)], env);
    assert.match(third.stdout, /^Forwarded 0 datums of 1061 streams/);
  } finally {
    await emu.stop();
  }
});

/** The calls made between two snapshots of the emulator's counts, by `account/region` and operation. */
function callsBetween(
  before: ReturnType<Emulator["counts"]>,
  after: ReturnType<Emulator["counts"]>,
): Record<string, Record<string, number>> {
  const calls: Record<string, Record<string, number>> = {};
  for (const [account, byRegion] of Object.entries(after)) {
    for (const [region, c] of Object.entries(byRegion)) {
      for (const [op, n] of Object.entries(c.calls)) {
        const made = n - (before[account]?.[region]?.calls[op] ?? 0);
        if (made > 0) (calls[`${account}/${region}`] ??= {})[op] = made;
      }
    }
  }
  return calls;
}

/** GetMetricData metrics billed between two counts, in every account. */
function billedBetween(
  before: ReturnType<Emulator["counts"]>,
  after: ReturnType<Emulator["counts"]>,
): number {
  let billed = 0;
  for (const [account, byRegion] of Object.entries(after)) {
    for (const [region, c] of Object.entries(byRegion)) {
      billed += (c.billed["GetMetricData"] ?? 0) - (before[account]?.[region]?.billed["GetMetricData"] ?? 0);
    }
  }
  return billed;
}

test("forward.ts makes no more API calls than the limits require, and a steady run reads nothing back", async () => {
  // Minutes back: a --now may not be later than CloudWatch's clock, and the runs below go up to 3 minutes on.
  const now = Math.floor(Date.now() / MIN) * MIN - 5 * MIN;
  const emu = await startEmulator();
  try {
    await seedFleet(emu, now - 10 * MIN, now);
    const config = writeConfig(
      `discovery_interval: 120\ndefaults: { recheck_after: 120 }\n${
        CONFIG.replace("    external_id: prod-ext-id\n", "")
      }`,
    );
    const run = async (at: number) => {
      const before = emu.counts();
      const r = await runForwarder(["--config", config, "--now", iso(at)], forwarderEnv(emu));
      assert.equal(r.code, 0, r.stderr);
      return { calls: callsBetween(before, emu.counts()), before };
    };
    // Per source, a listing per namespace: AWS/ECS names both metrics in one listing (wide: 12 metrics for
    // the small sources, 1,040 for big, 3 pages of 500), Acme/App one page; big has no Acme/App active in the
    // past three hours, so one more page looks for it over two weeks. One GetMetricData call per 500
    // queries (4 statistics a stream, 5 with p99). The destination: one AssumeRole per account whatever its
    // regions, and one PutMetricData per 1,000 datums of a namespace, all sources together: Forwarded/AWS/ECS
    // gets 3 x 6 + 1,040 = 1,058 datums (two calls), Forwarded/Acme/App 3 x 2; and one for the run's own
    // metrics (CloudWatchForwarder).
    const fetches = {
      "111111111111/eu-west-1": { GetMetricData: 1 }, // 6 ECS streams x 4 + 1 x 5 = 29 queries
      "111111111111/us-east-1": { GetMetricData: 1 },
      "222222222222/eu-west-1": { GetMetricData: 1 },
      "333333333333/eu-west-1": { GetMetricData: 9 }, // 1,040 streams x 4 = 4,160 queries
    };
    const listings = {
      "111111111111/eu-west-1": { ListMetrics: 2 },
      "111111111111/us-east-1": { ListMetrics: 2 },
      "222222222222/eu-west-1": { ListMetrics: 2 },
      "333333333333/eu-west-1": { ListMetrics: 5 },
    };
    const both = (a: Record<string, object>, b: Record<string, object>) =>
      Object.fromEntries(Object.keys(a).map((k) => [k, { ...a[k], ...b[k] }]));
    // The first run of a new store: no stream has a checkpoint, so each source's step first reads what the
    // destination holds, one SampleCount query per forwarded metric: 6 ECS + Latency + Latency_p99 = 8
    // queries for each small source (one call each), 1,040 for big (three calls of up to 500): 6 calls.
    // Billed: up to five statistics of a metric in a call bill as one metric (pricing page), and each of these
    // queries asks one statistic of a metric of its own, so each bills one: 3 x 8 + 1,040 x 1.
    // Every run first reads CloudWatch's clock in the destination: one more call there, one metric billed.
    const first = await run(now);
    assert.deepEqual(first.calls, {
      ...both(fetches, listings),
      "999999999999/eu-west-1": { AssumeRole: 3, GetMetricData: 1 + 6, PutMetricData: 4 },
    });
    const billed = (c: ReturnType<Emulator["counts"]>) =>
      c[DEST]?.["eu-west-1"]?.billed["GetMetricData"] ?? 0;
    assert.equal(billed(emu.counts()) - billed(first.before), 1 + 3 * 8 + 1_040);
    // In the sources, a stream's statistics (4, or 5 with p99) are asked in one call and bill as one metric:
    // one per stream, 3 x (6 + 1) + 1,040.
    assert.equal(billedBetween(first.before, emu.counts()) - 1 - 3 * 8 - 1_040, 3 * 7 + 1_040);
    // The next tick, a minute later: the store continues the run before it, so it trusts its checkpoints and
    // reads nothing from the destination, and the listing is kept (discovery_interval, here two minutes): the
    // same minimum of GetMetricData and PutMetricData for the one period each stream owes, nothing more.
    assert.deepEqual((await run(now + MIN)).calls, {
      ...fetches,
      "999999999999/eu-west-1": { AssumeRole: 3, GetMetricData: 1, PutMetricData: 4 },
    });
    // Two minutes after the first listing, the next tick lists again, in the same pages.
    assert.deepEqual((await run(now + 2 * MIN)).calls, {
      ...both(fetches, listings),
      "999999999999/eu-west-1": { AssumeRole: 3, GetMetricData: 1, PutMetricData: 4 },
    });
  } finally {
    await emu.stop();
  }
});

test("forward.ts --plan counts exactly the calls and billed metrics of the run that follows, and calls only ListMetrics and the clock", async () => {
  // Minutes back: a --now may not be later than CloudWatch's clock, and the runs below go up to 3 minutes on.
  const now = Math.floor(Date.now() / MIN) * MIN - 5 * MIN;
  const emu = await startEmulator();
  try {
    // Data up to the last tick's newest period, so that every period a tick owes has some.
    await seedFleet(emu, now - 10 * MIN, now + 2 * MIN);
    const config = writeConfig(
      `discovery_interval: 120\ndefaults: { recheck_after: 120 }\n${
        CONFIG.replace("    external_id: prod-ext-id\n", "")
      }`,
    );
    const env = forwarderEnv(emu);
    const run = async (at: number, extra: string[] = []) => {
      const before = emu.counts();
      const r = await runForwarder(["--config", config, "--now", iso(at), ...extra], env);
      assert.equal(r.code, 0, r.stderr);
      return { r, calls: callsBetween(before, emu.counts()), billed: billedBetween(before, emu.counts()) };
    };
    // A new store (everything read back first), a steady tick with the listing kept, one that lists, and one
    // that reads again the periods of the first two (read within recheck_after of each other).
    const ticks = [[now, false], [now + MIN, true], [now + 2 * MIN, true], [now + 3 * MIN, true]] as const;
    for (const [at, setup] of ticks) {
      if (setup) await run(at - MIN);
      const planned = await run(at, ["--plan", "--json"]);
      const plan = JSON.parse(planned.r.stdout) as { next: Record<string, number> };
      // A plan reads CloudWatch's clock, as every run does, and otherwise fetches nothing and writes nothing.
      assert.deepEqual(
        Object.entries(planned.calls).flatMap(([k, c]) =>
          Object.entries(c).filter(([op]) => op !== "ListMetrics" && op !== "AssumeRole").map(([op, n]) =>
            `${k} ${op} ${n}`
          )
        ),
        [`${DEST}/eu-west-1 GetMetricData 1`],
        "a plan fetches nothing and writes nothing",
      );
      const done = await run(at);
      const total = (op: string, side: (k: string) => boolean) =>
        Object.entries(done.calls).filter(([k]) => side(k)).reduce((n, [, c]) => n + (c[op] ?? 0), 0);
      const dest = (k: string) => k.startsWith(DEST);
      const src = (k: string) => !dest(k);
      assert.deepEqual({
        AssumeRole: total("AssumeRole", dest),
        ListMetrics: total("ListMetrics", src),
        GetMetricData: total("GetMetricData", src),
        GetMetricDataDestination: total("GetMetricData", dest),
        PutMetricData: total("PutMetricData", dest),
        metrics: done.billed,
      }, {
        AssumeRole: plan.next["AssumeRole"],
        ListMetrics: plan.next["ListMetrics"],
        GetMetricData: plan.next["GetMetricData"],
        GetMetricDataDestination: plan.next["GetMetricDataDestination"],
        PutMetricData: plan.next["PutMetricData"],
        metrics: plan.next["metrics"],
      }, `the run at ${iso(at)}`);
      // The last tick reads the destination only for CloudWatch's clock and to read periods again: two
      // statistics of each stream, in calls of 500 queries per account-region (7, 7, 7 and 1,040 streams).
      if (at === now + 3 * MIN) {
        const calls = [7, 7, 7, 1_040].reduce((n, streams) => n + Math.ceil((2 * streams) / 500), 0);
        assert.equal(plan.next["GetMetricDataDestination"], 1 + calls);
      }
    }
  } finally {
    await emu.stop();
  }
});
