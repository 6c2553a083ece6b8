/**
 * Writes whose answer is lost after the destination applied them, with forward.ts as a real process against the
 * emulator: PutMetricData is not idempotent, so the forwarder must not send such a write again blindly. It
 * settles it by reading the destination, within the run after a wait (a reset connection, HTTP 500) or in the
 * next run (a timeout). Every case ends with the whole range checked: nothing lost, nothing twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Emulator, Faults } from "../lib/emulator.ts";
import {
  assertForwarded,
  destCount,
  firstPeriod,
  type Fleet,
  fleetSources,
  MIN,
  ok,
  withFleet,
} from "./fleet.ts";
import { type ProcessResult, said, until } from "./helpers.ts";

const SERVICES = 20;
const STREAMS = 3 * 7 + SERVICES * 2;
/** A tick's datums: one per stream, and the p99 metric of the three sources with Acme/App. */
const PER_PERIOD = STREAMS + 3;
/** A tick's PutMetricData calls: one per target namespace, the sources' datums pooled (fewer than 1,000). */
const WRITES = 2;
/** GetMetricData calls in the destination a run makes for CloudWatch's clock, before anything else. */
const CLOCK = 1;

/** The destination's counts that tell what a run did: writes applied, writes sent, and reads. */
const destination = (emu: Emulator) => ({
  billedWrites: destCount(emu, "PutMetricData"),
  sentWrites: destCount(emu, "PutMetricData", "calls"),
  reads: destCount(emu, "GetMetricData", "calls"),
});

const change = (before: ReturnType<typeof destination>, emu: Emulator) => {
  const after = destination(emu);
  return {
    billedWrites: after.billedWrites - before.billedWrites,
    sentWrites: after.sentWrites - before.sentWrites,
    reads: after.reads - before.reads,
  };
};

/**
 * Forwards the fleet up to the tick before `now`, then runs the tick at `now` (one period owed per stream) with
 * a fault set until its writes have reached the destination. Returns the tick's result and what it did there.
 */
async function tickWithFault(fleet: Fleet, fault: Partial<Faults>) {
  const { emu, run, start } = fleet;
  ok(await run(15));
  ok(await run(1));
  const before = destination(emu);
  const off = Object.fromEntries(Object.keys(fault).map((k) => [k, 0]));
  Object.assign(emu.faults, fault);
  const tick = start(0);
  await until(() => destination(emu).sentWrites >= before.sentWrites + WRITES, "the tick's writes arrive");
  Object.assign(emu.faults, off);
  const r = await tick.done;
  return { r, did: change(before, emu) };
}

/** Asserts one stderr line per account-region of the fleet, each `line(account, region)`, in any order. */
function assertPerSource(r: ProcessResult, line: (account: string, region: string) => string) {
  const want = fleetSources().map(([name, , region]) => line(name, region)).sort();
  const got = said(r).trimEnd().split("\n").sort();
  assert.equal(got.length, want.length, r.stderr);
  got.forEach((l, i) => assert.match(l, new RegExp(`^${want[i]}$`)));
}

/**
 * `--status`: one line per account-region, all forwarded up to the same period; with `failed`, each says its
 * last run (the one at `now`) failed with that error.
 */
async function assertStatus(fleet: Fleet, upToMinutesAgo: number, inDoubt: boolean, failed?: string) {
  const r = await fleet.run(0, ["--status"]);
  // Exit 1 while an account-region's last run failed.
  assert.equal(r.code, failed ? 1 : 0, r.stderr);
  const minute = (t: number) => new Date(t).toISOString().replace(".000Z", "Z");
  const upTo = minute(fleet.now - upToMinutesAgo * MIN);
  const line = (source: string, streams: number) =>
    `${source}: forwarded up to ${upTo} (${upToMinutesAgo} min behind), ${streams} streams${
      inDoubt
        ? `, ${streams} in doubt (a write that may or may not have arrived: the next run reads the destination before writing them)`
        : ""
    }${failed ? `; its last run failed at ${minute(fleet.now)}: ${failed}` : ""}`;
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    line("production eu-west-1", 7),
    line("production us-east-1", 7),
    line("acceptance eu-west-1", 7),
    line("big eu-west-1", SERVICES * 2),
  ]);
}

const LOST = (cause: string) =>
  `the answer to a PutMetricData was lost \\(${cause}\\); it may have been applied`;

for (
  const [name, fault, cause] of [
    // The SDK names a reset connection a TimeoutError; it is not one: the answer was lost at once.
    ["the connection reset", { putAppliedResetRate: 1 }, "\\w+: socket hang up"],
    ["HTTP 500", { putAppliedErrorRate: 1 }, "InternalFailure: The request processing has failed [^\\n]*"],
  ] as const
) {
  test(`a write applied, then answered with ${name}: the run waits, reads the destination, and sends nothing again`, async () => {
    await withFleet({ minutes: 20, services: SERVICES }, async (fleet) => {
      const { emu, now } = fleet;
      const { r, did } = await tickWithFault(fleet, fault);
      ok(r);
      assertPerSource(
        r,
        (account, region) =>
          `Cannot be sure of a write for account "${account}" in ${region}: ${
            LOST(cause)
          }; reading the destination in 15 s before writing again`,
      );
      // Both writes were applied, and neither was sent again: every source read the destination instead
      // (one GetMetricData call each, for its streams in doubt) and found its period there; the run read
      // CloudWatch's clock there first.
      assert.deepEqual(did, { billedWrites: WRITES, sentWrites: WRITES, reads: CLOCK + 4 });
      // How many datums the summary counts is the test below.
      assert.match(
        r.stdout,
        new RegExp(`^Forwarded \\d+ datums of ${STREAMS} streams from 4 of 4 account-regions`),
      );
      await assertStatus(fleet, 2, false);
      await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
    });
  });
}

test("a write answered later than the request timeout stays in doubt, and the next run settles it without writing", async () => {
  await withFleet({ minutes: 20, services: SERVICES }, async (fleet) => {
    const { emu, now, run } = fleet;
    // Held past the 15 s request timeout and the 20 s limit on the whole attempt, for this tick's writes only.
    const { r, did } = await tickWithFault(fleet, { putReplyDelayMs: 21_000 });
    assert.equal(r.code, 1, r.stderr);
    // A hung endpoint would hold the settling reads as long: the run leaves the step in doubt for the next.
    const failure =
      "PutMetricData as the default credentials failed: WriteInDoubt: the answer to a PutMetricData was lost (TimeoutError: no answer within 15000 ms); it may have been applied";
    assertPerSource(
      r,
      (account, region) =>
        `Cannot forward account "${account}" in ${region}: ${failure.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
    );
    assert.match(r.stdout, /^Forwarded 0 datums of 0 streams from 0 of 4 account-regions/);
    assert.deepEqual(did, { billedWrites: WRITES, sentWrites: WRITES, reads: CLOCK });
    // --status keeps the failure until a run of the account-region succeeds.
    await assertStatus(fleet, 3, true, failure);
    const before = destination(emu);
    const next = await run(0);
    ok(next);
    assert.equal(said(next), "");
    assert.match(next.stdout, new RegExp(`^Forwarded 0 datums of ${STREAMS} streams from 4 of 4`));
    // The next run, in the same minute, reads what is in doubt (one call per source) and writes nothing.
    assert.deepEqual(change(before, emu), { billedWrites: 0, sentWrites: 0, reads: CLOCK + 4 });
    await assertStatus(fleet, 2, false);
    await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
  });
});

test("the summary of a run that settled its own lost write counts the datums it delivered", async () => {
  await withFleet({ minutes: 20, services: SERVICES }, async (fleet) => {
    const { r, did } = await tickWithFault(fleet, { putAppliedErrorRate: 1 });
    ok(r);
    assert.deepEqual(did, { billedWrites: WRITES, sentWrites: WRITES, reads: CLOCK + 4 });
    // Every stream's period reached the destination through this run's writes, which the run confirmed by
    // reading them back: no later run will count them.
    assert.match(
      r.stdout,
      new RegExp(`^Forwarded ${PER_PERIOD} datums of ${STREAMS} streams from 4 of 4 account-regions`),
    );
  });
});
