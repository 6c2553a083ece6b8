/**
 * Replays (--from/--to) and gaps older than CloudWatch accepts, with forward.ts as a process against the
 * emulator: a replay writes only what the destination lacks, and an old gap is reported once, then passed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertForwarded, type Fleet, MIN, withFleet as withSeededFleet, withOldServices } from "./fleet.ts";
import { type ProcessResult, said } from "./helpers.ts";

const SERVICES = 5;
const STREAMS = 3 * 7 + SERVICES * 2;
/** Datums a period: one per stream, and the p99 metric of the three sources with Acme/App. */
const PER_PERIOD = STREAMS + 3;

/** The fleet with few services, and the check of everything forwarded from `from` to the newest period. */
const withFleet = (
  minutes: number,
  f: (run: Fleet["run"], now: number, check: (from: number) => Promise<number>) => Promise<void>,
) =>
  withSeededFleet(
    { minutes, services: SERVICES },
    ({ emu, now, run }) => f(run, now, (from) => assertForwarded(emu, from, now - 2 * MIN)),
  );

const at = (now: number, minutesAgo: number) => new Date(now - minutesAgo * MIN).toISOString();

function forwarded(r: ProcessResult): number {
  assert.equal(r.code, 0, r.stderr);
  const m = /^Forwarded (\d+) datums/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return Number(m[1]);
}

test("--from/--to over periods already forwarded writes nothing", async () => {
  await withFleet(20, async (run, now, check) => {
    forwarded(await run(15));
    forwarded(await run(0));
    assert.equal(forwarded(await run(0, ["--from", at(now, 10), "--to", at(now, 5)])), 0);
    assert.equal(await check(now - 18 * MIN), 16 * STREAMS);
  });
});

test("--from/--to fills periods before the first checkpoint, once however often it is repeated", async () => {
  await withFleet(30, async (run, now, check) => {
    forwarded(await run(15));
    forwarded(await run(0));
    const replay = ["--from", at(now, 25), "--to", at(now, 18)];
    assert.equal(forwarded(await run(0, replay)), 7 * PER_PERIOD);
    assert.equal(forwarded(await run(0, replay)), 0);
    assert.equal(await check(now - 25 * MIN), 23 * STREAMS);
  });
});

test("a replay beyond the checkpoint is not in doubt, and the run that reaches it skips what is there", async () => {
  await withFleet(40, async (run, now, check) => {
    forwarded(await run(30));
    assert.equal(
      forwarded(await run(0, ["--from", at(now, 20), "--to", at(now, 10)])),
      10 * PER_PERIOD,
    );
    // Written and answered: --status says nothing is in doubt.
    const status = await run(0, ["--status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.doesNotMatch(status.stdout, /in doubt/);
    assert.equal(status.stdout.trimEnd().split("\n").length, 4);
    // The run owes [now - 32 min, now - 2 min): 30 periods, of which the replay wrote 10.
    assert.equal(forwarded(await run(0)), 20 * PER_PERIOD);
    assert.equal(await check(now - 33 * MIN), 31 * STREAMS);
  });
});

test("a gap older than PutMetricData accepts is reported once, and the checkpoint moves past it", async () => {
  await withFleet(5, async (run, now) => {
    // A run 15 days ago: its writes are too old for CloudWatch now, so they are refused and skipped.
    const old = await run(15 * 1440);
    assert.equal(old.code, 0, old.stderr);
    const late = await run(0);
    assert.equal(late.code, 0, late.stderr);
    const lost = said(late).split("\n").filter((l) => l.includes("older than PutMetricData accepts"));
    assert.equal(lost.length, 4, late.stderr);
    assert.match(
      lost[0]!,
      new RegExp(
        `^Cannot forward account "\\w+" in [\\w-]+: \\d+ streams missed ${
          at(now, 15 * 1440 + 2).replace(".000Z", "Z")
        } to .*, older than PutMetricData accepts$`,
      ),
    );
    const again = await run(0);
    assert.equal(said(again), "");
  });
});

test("a replay of data over 3 hours old, repeated at once, waits until CloudWatch shows the first one: nothing twice", async () => {
  await withOldServices(async ({ T, clock, run, check }) => {
    const replay = [
      "--from",
      new Date(T - 360 * MIN).toISOString(),
      "--to",
      new Date(T - 300 * MIN).toISOString(),
    ];
    assert.equal(forwarded(await run(clock.now)), 0);
    assert.equal(forwarded(await run(clock.now, replay)), 60 * 5);
    // The replayed periods are not readable yet: a second replay cannot check them, so it waits.
    const again = await run(clock.now, replay);
    assert.equal(forwarded(again), 0);
    assert.match(
      said(again),
      /^Cannot forward account "acceptance" in eu-west-1 from .* yet: what an interrupted run wrote there becomes readable in CloudWatch only at .*, and is checked then\n$/,
    );
    clock.now = T + 121 * MIN;
    assert.equal(forwarded(await run(clock.now, replay)), 0);
    await check();
  });
});
