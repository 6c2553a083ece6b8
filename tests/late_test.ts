/**
 * Samples that reach the source after their period was forwarded, with forward.ts as a process under the
 * runtime running the tests: the period is read again `recheck_after` later and the destination made equal to
 * the source in every statistic, never doubled, whether the write's answer is lost or the run killed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import {
  ACCEPTANCE_CONFIG,
  ACCOUNTS,
  assertForwarded,
  billedGetMetricData,
  destCount,
  forwardedCounts,
  forwarderEnv,
  MIN,
  ok,
  seedService,
  seedServices,
  writeConfig,
} from "./fleet.ts";
import { type ProcessResult, runForwarder, startForwarder, until } from "./helpers.ts";
import process from "node:process";

const ACCEPTANCE: [string, string, string][] = [["acceptance", ACCOUNTS.acceptance, "eu-west-1"]];
const SERVICES = 5;

/** Two late samples for each service's period at `t`, as an agent that buffered them would publish. */
function seedLate(emu: Emulator, t: number) {
  for (let s = 0; s < SERVICES; s++) {
    seedService(emu, `svc-${s}`, t + 30_000, [-1, 90 + s]);
  }
}

/** The destination's SampleCount of svc-0 at period `t`, or undefined where it has none. */
const destinationCount = async (emu: Emulator, t: number) =>
  (await forwardedCounts(emu, "acceptance", "eu-west-1", t, t + MIN))[0]?.count;

/**
 * An emulator with five acceptance services over the past 30 minutes, and a config that reads a period
 * again 120 s after it was read. `at(m)` runs forward.ts at --now m minutes before `now`.
 */
async function withLateFleet(
  f: (
    o: { emu: Emulator; now: number; at: (minutesAgo: number) => Promise<ProcessResult>; config: string },
  ) => Promise<void>,
) {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const emu = await startEmulator();
  try {
    seedServices(emu, now - 30 * MIN, now);
    const config = writeConfig(`self_metrics: false\ndefaults: { recheck_after: 120 }\n${ACCEPTANCE_CONFIG}`);
    const args = (m: number) => ["--config", config, "--now", new Date(now - m * MIN).toISOString()];
    await f({ emu, now, config, at: (m) => runForwarder(args(m), forwarderEnv(emu)) });
  } finally {
    await emu.stop();
  }
}

test("samples that land after their period was forwarded reach the destination when it is read again, exactly", async () => {
  await withLateFleet(async ({ emu, now, at }) => {
    // A run at now - 6 min forwards the period 9 minutes back (delay 120 s); the next, the one after it.
    const p0 = now - 9 * MIN;
    ok(await at(6));
    seedLate(emu, p0);
    ok(await at(5));
    seedLate(emu, p0 + MIN);
    // Both periods were read within 120 s of the first read: one range, read again 120 s after its newest.
    ok(await at(4));
    assert.equal(await destinationCount(emu, p0), 3, "short before it is read again");
    const reads = destCount(emu, "GetMetricData", "calls");
    const r = await at(3);
    ok(r);
    // One read of the destination for the range (besides the run's read of CloudWatch's clock); then the
    // source's statistics and the destination's agree.
    assert.equal(destCount(emu, "GetMetricData", "calls") - reads, 1 + 1);
    assert.equal(await destinationCount(emu, p0), 5);
    await assertForwarded(emu, p0, now - 5 * MIN, ACCEPTANCE);
    // Read again once: later runs write nothing more for them.
    ok(await at(1));
    ok(await at(0));
    await assertForwarded(emu, p0, now - 2 * MIN, ACCEPTANCE);
  });
});

test("the write that makes a late period good, its answer lost or its run killed, is never doubled", async () => {
  await withLateFleet(async ({ emu, now, at, config }) => {
    const p0 = now - 9 * MIN;
    ok(await at(6));
    ok(await at(5));
    seedLate(emu, p0);
    seedLate(emu, p0 + MIN);
    ok(await at(4));
    // The run that reads them again: its write is applied and its answer lost (the connection reset); it
    // waits, reads the destination, and finds nothing more to write.
    emu.faults.putAppliedResetRate = 1;
    const writes = destCount(emu, "PutMetricData", "calls");
    const lost = startForwarder(
      ["--config", config, "--now", new Date(now - 3 * MIN).toISOString()],
      forwarderEnv(emu),
    );
    await until(() => destCount(emu, "PutMetricData", "calls") > writes, "the write arrives");
    emu.faults.putAppliedResetRate = 0;
    ok(await lost.done);
    assert.equal(destCount(emu, "PutMetricData", "calls") - writes, 1, "nothing sent again");
    await assertForwarded(emu, p0, now - 5 * MIN, ACCEPTANCE);
    // A run killed once its write was applied: the next reads the destination and writes the rest only.
    seedLate(emu, p0 + 3 * MIN);
    ok(await at(2));
    seedLate(emu, p0 + 4 * MIN);
    emu.faults.putReplyDelayMs = 60_000;
    const before = destCount(emu, "PutMetricData");
    const killed = startForwarder(
      ["--config", config, "--now", new Date(now - 0 * MIN).toISOString()],
      forwarderEnv(emu),
    );
    await until(() => destCount(emu, "PutMetricData") > before, "the write is applied");
    process.kill(killed.pid, "SIGKILL");
    await killed.done;
    emu.faults.putReplyDelayMs = 0;
    ok(await at(0));
    await assertForwarded(emu, p0, now - 2 * MIN, ACCEPTANCE);
  });
});

test("reading periods again at the default recheck_after bills at most a tenth more GetMetricData than not", async () => {
  const billedFor = async (recheck: string) => {
    const now = Math.floor(Date.now() / MIN) * MIN;
    const emu = await startEmulator();
    try {
      seedServices(emu, now - 30 * MIN, now);
      const config = writeConfig(`self_metrics: false\n${recheck}${ACCEPTANCE_CONFIG}`);
      // A first run, then twenty steady runs a minute apart: the first range is read again at the last.
      ok(
        await runForwarder(
          ["--config", config, "--now", new Date(now - 21 * MIN).toISOString()],
          forwarderEnv(emu),
        ),
      );
      const before = billedGetMetricData(emu);
      for (let m = 20; m >= 1; m--) {
        ok(
          await runForwarder(
            ["--config", config, "--now", new Date(now - m * MIN).toISOString()],
            forwarderEnv(emu),
          ),
        );
      }
      return billedGetMetricData(emu) - before;
    } finally {
      await emu.stop();
    }
  };
  const off = await billedFor("defaults: { recheck_after: 0 }\n");
  const on = await billedFor("");
  // Five streams, one billed metric each a run (four statistics in one call), and one for CloudWatch's clock;
  // reading a range again adds one read of the destination per stream, once per ten runs.
  assert.equal(off, 20 * (5 + 1));
  assert.equal(on, 20 * (5 + 1) + 5);
  assert.ok(on / off <= 1.1, `${on / off}`);
});
