/**
 * What reaches CloudWatch, with forward.ts as a process under each runtime, whichever runtime runs the tests: a
 * write is sent once, even where its connection drops after the write was applied (a runtime may send a
 * request again when a kept-alive connection closes before the answer), and the summary counts every request
 * the endpoint received, throttled ones named.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Emulator } from "../lib/emulator.ts";
import { assertForwarded, destCount, firstPeriod, MIN, withFleet } from "./fleet.ts";
import { runtimes, summaryCalls } from "./helpers.ts";

/** What the emulator counted, by operation, over every account and region. */
function received(emu: Emulator, kind: "calls" | "billed") {
  const out: Record<string, number> = {};
  for (const byRegion of Object.values(emu.counts())) {
    for (const counts of Object.values(byRegion)) {
      for (const [op, n] of Object.entries(counts[kind])) out[op] = (out[op] ?? 0) + n;
    }
  }
  return out;
}

/** `after` less `before`, by operation, leaving out operations that did not change. */
const since = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(after).map(([op, n]) => [op, n - (before[op] ?? 0)] as const).filter(([, n]) => n > 0),
  );

/** A fixed sequence of numbers in [0, 1), for an emulator that throttles the same calls from run to run. */
const seeded = (seed: number) => () => (seed = (seed * 48271) % 2147483647) / 2147483647;

for (const rt of runtimes()) {
  test(`forward.ts under ${rt.name} sends a write once where its connection drops after CloudWatch applied it, and the period is in the destination once`, async () => {
    await withFleet({ minutes: 5, services: 3 }, async (fleet) => {
      const { emu, now } = fleet;
      // Set after seeding, which writes too. The run's first destination calls are reads (the streams have no
      // checkpoints yet), so its writes would find a connection kept alive.
      emu.faults.putAppliedResetRate = 1;
      const r = await fleet.run(0, [], { command: rt });
      assert.equal(r.code, 0, r.stderr);
      const writes = summaryCalls(r.stdout).calls["PutMetricData"] ?? 0;
      assert.ok(writes > 0, r.stdout);
      const sent = destCount(emu, "PutMetricData", "calls");
      assert.deepEqual({ sent, applied: destCount(emu, "PutMetricData") }, { sent: writes, applied: writes });
      await assertForwarded(emu, firstPeriod(now, 0), now - 2 * MIN);
    });
  });

  test(`forward.ts under ${rt.name}, throttled, counts in its summary every request the endpoint received, and names the throttled ones`, async () => {
    await withFleet({ minutes: 5, services: 3, emulator: { random: seeded(7) } }, async (fleet) => {
      const { emu } = fleet;
      const calls = received(emu, "calls");
      const billed = received(emu, "billed");
      emu.faults.throttleRate = 0.4;
      const r = await fleet.run(0, [], { command: rt });
      // An account-region whose read is throttled six times in a row fails: the counts hold all the same.
      assert.match(r.stdout, /^Forwarded \d+ datums/, r.stderr);
      const summary = summaryCalls(r.stdout);
      const made = since(calls, received(emu, "calls"));
      assert.deepEqual(summary.calls, made);
      assert.ok(Object.values(summary.throttled).some((n) => n > 0), r.stdout);
      // Each call of these is billed once when applied: those not applied are the throttled ones.
      const applied = since(billed, received(emu, "billed"));
      for (const op of ["AssumeRole", "ListMetrics", "PutMetricData"]) {
        assert.equal(summary.throttled[op] ?? 0, (made[op] ?? 0) - (applied[op] ?? 0), op);
      }
    });
  });
}
