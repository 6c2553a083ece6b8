/**
 * CloudWatch's clock against the host's, with forward.ts as a process under the runtime running the tests and
 * the emulator's clock set off the host's: the run works in CloudWatch's time, a --now ahead of it is refused,
 * and a store an earlier run left ahead of it is moved back without losing a period.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import {
  ACCEPTANCE_CONFIG,
  ACCOUNTS,
  assertForwarded,
  forwarderEnv,
  MIN,
  ok,
  seedServices,
  writeConfig,
} from "./fleet.ts";
import { runForwarder, said, summaryCalls } from "./helpers.ts";

const ACCEPTANCE: [string, string, string][] = [["acceptance", ACCOUNTS.acceptance, "eu-west-1"]];

/** What the emulator received, by operation, over every account and region. */
function received(counts: Record<string, Record<string, { calls: Record<string, number> }>>) {
  const out: Record<string, number> = {};
  for (const byRegion of Object.values(counts)) {
    for (const c of Object.values(byRegion)) {
      for (const [op, n] of Object.entries(c.calls)) out[op] = (out[op] ?? 0) + n;
    }
  }
  return out;
}

// 300 s: within the 15 minutes AWS accepts a signature's time; 1,200 s: beyond, where every client must sign
// by CloudWatch's clock.
for (const ahead of [300, 1200]) {
  test(`forward.ts on a host ${ahead} s ahead of CloudWatch's clock forwards up to CloudWatch's now less the delay, and says so`, async () => {
    const emu = await startEmulator({ clockOffsetSeconds: -ahead });
    try {
      const cloudWatchNow = emu.now();
      seedServices(emu, Math.floor(cloudWatchNow / MIN) * MIN - 30 * MIN, cloudWatchNow);
      const config = writeConfig(`self_metrics: false\n${ACCEPTANCE_CONFIG}`);
      const r = await runForwarder(["--config", config], forwarderEnv(emu));
      ok(r);
      // Every request that left is counted as the endpoint counted it, a refused signature included.
      assert.deepEqual(summaryCalls(r.stdout).calls, received(emu.counts()));
      const warned = /This host's clock is (\d+) s ahead of CloudWatch's/.exec(said(r));
      assert.ok(warned, r.stderr);
      assert.ok(Math.abs(Number(warned[1]) - ahead) <= 2, warned[0]);
      const status = await runForwarder(["--config", config, "--status", "--json"], forwarderEnv(emu));
      const [row] = JSON.parse(status.stdout) as { forwardedUpTo: string }[];
      // The newest complete period by CloudWatch's clock, less the delay of 120 s: never one CloudWatch has not
      // reached (the host's clock would have taken it `ahead` seconds further).
      const newest = Math.floor((emu.now() - 120_000) / MIN) * MIN;
      assert.ok(
        Date.parse(row!.forwardedUpTo) <= newest,
        `${row!.forwardedUpTo} is after ${new Date(newest)}`,
      );
      assert.ok(Date.parse(row!.forwardedUpTo) >= newest - MIN, row!.forwardedUpTo);
      // The test's own reads sign by the host's clock.
      emu.faults.clockOffsetSeconds = 0;
      await assertForwarded(
        emu,
        Date.parse(row!.forwardedUpTo) - MIN,
        Date.parse(row!.forwardedUpTo),
        ACCEPTANCE,
      );
    } finally {
      await emu.stop();
    }
  });
}

test("forward.ts refuses a --now a day ahead of CloudWatch's clock: one line, exit 2, no state file made", async () => {
  const emu = await startEmulator();
  try {
    const config = writeConfig(ACCEPTANCE_CONFIG);
    const tomorrow = new Date(Math.floor(emu.now() / MIN) * MIN + 86_400_000).toISOString();
    const r = await runForwarder(["--config", config, "--now", tomorrow], forwarderEnv(emu));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    const lines = r.stderr.split("\n").filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /Cannot act as at --now \S+: it is later than CloudWatch's clock/);
    assert.deepEqual(fs.readdirSync(path.dirname(config)), ["forwarder.yaml"]);
  } finally {
    await emu.stop();
  }
});

test("forward.ts moves back checkpoints an earlier run left ahead of CloudWatch's clock, and forwards every period once", async () => {
  const emu = await startEmulator();
  try {
    const real = Math.floor(emu.now() / MIN) * MIN;
    // Data up to ten minutes ago: CloudWatch's clock, truly, is ten minutes behind this host's.
    seedServices(emu, real - 30 * MIN, real - 10 * MIN);
    const config = writeConfig(ACCEPTANCE_CONFIG);
    // An earlier run took the host's clock for CloudWatch's (as the emulator's clock, unset, does here): it read
    // the periods up to two minutes ago, those of the last eight minutes still empty, and moved past them.
    ok(await runForwarder(["--config", config], forwarderEnv(emu)));
    emu.faults.clockOffsetSeconds = -9 * 60;
    const repair = await runForwarder(["--config", config], forwarderEnv(emu));
    ok(repair);
    assert.match(
      said(repair),
      /Moved the checkpoints of 5 streams of account "acceptance" in eu-west-1 back to CloudWatch's time/,
    );
    // Time passes: CloudWatch's clock reaches the host's, and the periods of the last ten minutes arrive.
    seedServices(emu, real - 10 * MIN, real);
    emu.faults.clockOffsetSeconds = 0;
    const after = await runForwarder(["--config", config], forwarderEnv(emu));
    ok(after);
    assert.doesNotMatch(said(after), /Moved the checkpoints/);
    // The streams start again at their newest complete period by CloudWatch's clock, as new streams do: every
    // period of every service from there to the newest complete one now is there, exact and once.
    await assertForwarded(emu, real - 12 * MIN, real - 2 * MIN, ACCEPTANCE);
  } finally {
    await emu.stop();
  }
});

test("forward.ts that cannot read CloudWatch's clock reads and writes nothing, exits 1, and --status says so for every account-region", async () => {
  const config = writeConfig(ACCEPTANCE_CONFIG);
  // Nothing listens on port 1: the destination is unreachable.
  const env = { ...forwarderEnv({ url: "http://127.0.0.1:1" } as Emulator) };
  const r = await runForwarder(["--config", config], env);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "");
  const lines = said(r).split("\n").filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0]!,
    /^Cannot read CloudWatch's clock in the destination \(eu-west-1\): .*; nothing was read or written$/,
  );
  const status = await runForwarder(["--config", config, "--status"], env);
  assert.equal(status.code, 1, status.stderr);
  assert.match(
    status.stdout,
    /^acceptance eu-west-1: never forwarded; its last run failed at \S+: Cannot read CloudWatch's clock/,
  );
});
