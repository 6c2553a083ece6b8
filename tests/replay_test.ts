/**
 * Replays (--from/--to) and gaps older than CloudWatch accepts, with forward.ts as a process against the
 * emulator: a replay writes only what the destination lacks, and an old gap is reported once, then passed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startEmulator } from "../lib/emulator.ts";
import {
  ACCEPTANCE_CONFIG,
  ACCOUNTS,
  assertForwarded,
  CONFIG,
  forwarderEnv,
  MIN,
  seedFleet,
  seedServices,
  writeConfig,
} from "./fleet.ts";
import { type ProcessResult, runForwarder } from "./helpers.ts";

const SERVICES = 5;
const STREAMS = 3 * 7 + SERVICES * 2;
/** Datums a period: one per stream, and the p99 metric of the three sources with Acme/App. */
const PER_PERIOD = STREAMS + 3;

async function withFleet(
  minutes: number,
  f: (
    run: (args: string[]) => Promise<ProcessResult>,
    now: number,
    check: (from: number) => Promise<number>,
  ) => Promise<void>,
) {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const emu = await startEmulator();
  try {
    await seedFleet(emu, now - minutes * MIN, now, SERVICES);
    const config = writeConfig(CONFIG.replace("    external_id: prod-ext-id\n", ""));
    const run = (args: string[]) => runForwarder(["--config", config, ...args], forwarderEnv(emu));
    await f(run, now, (from) => assertForwarded(emu, from, now - 2 * MIN));
  } finally {
    await emu.stop();
  }
}

const at = (now: number, minutesAgo: number) => new Date(now - minutesAgo * MIN).toISOString();

function forwarded(r: ProcessResult): number {
  assert.equal(r.code, 0, r.stderr);
  const m = /^Forwarded (\d+) datums/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return Number(m[1]);
}

test("--from/--to over periods already forwarded writes nothing", async () => {
  await withFleet(20, async (run, now, check) => {
    forwarded(await run(["--now", at(now, 15)]));
    forwarded(await run(["--now", at(now, 0)]));
    assert.equal(forwarded(await run(["--now", at(now, 0), "--from", at(now, 10), "--to", at(now, 5)])), 0);
    assert.equal(await check(now - 18 * MIN), 16 * STREAMS);
  });
});

test("--from/--to fills periods before the first checkpoint, once however often it is repeated", async () => {
  await withFleet(30, async (run, now, check) => {
    forwarded(await run(["--now", at(now, 15)]));
    forwarded(await run(["--now", at(now, 0)]));
    const replay = ["--now", at(now, 0), "--from", at(now, 25), "--to", at(now, 18)];
    assert.equal(forwarded(await run(replay)), 7 * PER_PERIOD);
    assert.equal(forwarded(await run(replay)), 0);
    assert.equal(await check(now - 25 * MIN), 23 * STREAMS);
  });
});

test("a replay beyond the checkpoint stays in doubt, and the run that reaches it skips what is there", async () => {
  await withFleet(40, async (run, now, check) => {
    forwarded(await run(["--now", at(now, 30)]));
    assert.equal(
      forwarded(await run(["--now", at(now, 0), "--from", at(now, 20), "--to", at(now, 10)])),
      10 * PER_PERIOD,
    );
    // The run owes [now - 32 min, now - 2 min): 30 periods, of which the replay wrote 10.
    assert.equal(forwarded(await run(["--now", at(now, 0)])), 20 * PER_PERIOD);
    assert.equal(await check(now - 33 * MIN), 31 * STREAMS);
  });
});

test("a gap older than PutMetricData accepts is reported once, and the checkpoint moves past it", async () => {
  await withFleet(5, async (run, now) => {
    // A run 15 days ago: its writes are too old for CloudWatch now, so they are refused and skipped.
    const old = await run(["--now", at(now, 15 * 1440)]);
    assert.equal(old.code, 0, old.stderr);
    const late = await run(["--now", at(now, 0)]);
    assert.equal(late.code, 0, late.stderr);
    const lost = late.stderr.split("\n").filter((l) => l.includes("older than PutMetricData accepts"));
    assert.equal(lost.length, 4, late.stderr);
    assert.match(
      lost[0]!,
      new RegExp(
        `^Cannot forward account "\\w+" in [\\w-]+: \\d+ streams missed ${
          at(now, 15 * 1440 + 2).replace(".000Z", "Z")
        } to .*, older than PutMetricData accepts$`,
      ),
    );
    const again = await run(["--now", at(now, 0)]);
    assert.equal(again.stderr, "");
  });
});

test("a replay of data over 3 hours old, repeated at once, waits until CloudWatch shows the first one: nothing twice", async () => {
  const T = Math.floor(Date.now() / MIN) * MIN;
  const clock = { now: T };
  const emu = await startEmulator({ now: () => clock.now });
  try {
    seedServices(emu, T - 360 * MIN, T - 300 * MIN);
    const config = writeConfig(ACCEPTANCE_CONFIG);
    const run = (args: string[]) =>
      runForwarder(
        ["--config", config, "--now", new Date(clock.now).toISOString(), ...args],
        forwarderEnv(emu),
      );
    const replay = [
      "--from",
      new Date(T - 360 * MIN).toISOString(),
      "--to",
      new Date(T - 300 * MIN).toISOString(),
    ];
    assert.equal(forwarded(await run([])), 0);
    assert.equal(forwarded(await run(replay)), 60 * 5);
    // The replayed periods are not readable yet: a second replay cannot check them, so it waits.
    const again = await run(replay);
    assert.equal(forwarded(again), 0);
    assert.match(
      again.stderr,
      /^Cannot forward account "acceptance" in eu-west-1 from .* yet: what an interrupted run wrote there becomes readable in CloudWatch only at .*, and is checked then\n$/,
    );
    clock.now = T + 121 * MIN;
    assert.equal(forwarded(await run(replay)), 0);
    await assertForwarded(emu, T - 360 * MIN, T - 300 * MIN, [[
      "acceptance",
      ACCOUNTS.acceptance,
      "eu-west-1",
    ]]);
  } finally {
    await emu.stop();
  }
});
