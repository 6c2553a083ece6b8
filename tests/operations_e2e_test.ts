/**
 * Running as a service, with forward.ts as a real process against the emulator on the real clock: loop mode's
 * passes on multiples of the interval, SIGTERM (systemctl stop) while a write is under way or between passes,
 * each case ended by checking what the store says was forwarded against the source; and no credential in any
 * output or in the state file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import process from "node:process";
import { readStore } from "../lib/store.ts";
import {
  ACCOUNTS,
  assertForwarded,
  BIG_LACKS_APP,
  destCount,
  type Fleet,
  forwarderEnv,
  ok,
  streamsInDoubt,
  withFleet,
} from "./fleet.ts";
import { runForwarder, said, startForwarder, until } from "./helpers.ts";

/** The summary of a pass that SIGTERM stopped: it says so, and what it had done. */
const STOPPED =
  /^Stopped by SIGTERM: forwarded \d+ datums of \d+ streams from 4 of 4 account-regions .*; the next run goes on from where this one stopped$/;

/** The span every stream of the store has forwarded: from the latest first period to the earliest next. */
function forwardedSpan(stateFile: string): { from: number; to: number } {
  const streams = Object.values(readStore(stateFile).streams);
  assert.ok(streams.length > 0, "the store has streams");
  const from = Math.max(...streams.map((s) => s.first ?? Infinity));
  const to = Math.min(...streams.map((s) => s.next ?? -Infinity));
  assert.ok(from < to, `every stream forwarded something: ${from} < ${to}`);
  return { from: from * 1000, to: to * 1000 };
}

/** One more run, once, on the real clock: it finishes whatever the loop left. Then checks the whole span. */
async function settleAndCheck(fleet: Fleet) {
  fleet.emu.faults.putReplyDelayMs = 0;
  ok(await runForwarder(["--config", fleet.config], forwarderEnv(fleet.emu)));
  assert.equal(streamsInDoubt(fleet.stateFile), 0);
  const { from, to } = forwardedSpan(fleet.stateFile);
  assert.ok(await assertForwarded(fleet.emu, from, to) > 0);
}

test("--every under SIGTERM while a write is under way: the step finishes and commits, exit 0, nothing in doubt, lost or twice", async () => {
  await withFleet({ minutes: 10, services: 20 }, async (fleet) => {
    // Each write's answer held a while after it is applied (the fleet was seeded first, without the delay).
    fleet.emu.faults.putReplyDelayMs = 1_500;
    const loop = startForwarder(["--config", fleet.config, "--every", "10s"], forwarderEnv(fleet.emu));
    await until(() => destCount(fleet.emu, "PutMetricData", "calls") > 0, "a write is under way");
    process.kill(loop.pid, "SIGTERM");
    const r = await loop.done;
    ok(r);
    assert.match(said(r, "info"), /^Stopping on SIGTERM: the steps under way finish and are committed$/m);
    // No warning or error but the listing's: "big" has no Acme/App.
    assert.equal(said(r), BIG_LACKS_APP);
    assert.equal(r.stdout.split("\n").filter((l) => STOPPED.test(l)).length, 1, r.stdout);
    // Written and answered, then committed: a run killed before the commit would leave its streams in doubt.
    assert.equal(streamsInDoubt(fleet.stateFile), 0);
    await settleAndCheck(fleet);
  });
});

test("--every 10s: passes fall on multiples of 10 s, and SIGTERM between passes ends the wait within a second", async () => {
  await withFleet({ minutes: 10, services: 20 }, async (fleet) => {
    const loop = startForwarder(["--config", fleet.config, "--every", "10s"], forwarderEnv(fleet.emu));
    const summaries = () =>
      loop.output().stderr.split("\n").filter((l) => / INFO Forwarded \d+ datums/.test(l)).map((l) =>
        Date.parse(l.slice(0, l.indexOf(" ")))
      );
    await until(() => summaries().length >= 2, "two passes have ended", 60_000);
    const [, second] = summaries();
    // A pass with little to do ends within a few seconds of its start, which is on a multiple of 10 s.
    assert.ok(second! % 10_000 < 5_000, `the second pass ended ${new Date(second!).toISOString()}`);
    const signalled = Date.now();
    process.kill(loop.pid, "SIGTERM");
    const r = await loop.done;
    const took = Date.now() - signalled;
    ok(r);
    assert.ok(
      took < 3_000,
      `stopped ${took} ms after SIGTERM: within its nap of a second, not at the next pass`,
    );
    // No warning or error but the first pass's listing's, which the next passes keep: "big" has no Acme/App.
    assert.equal(said(r), BIG_LACKS_APP);
    await settleAndCheck(fleet);
  });
});

test("no output of any run, and not its state file, carries a credential: the environment's, or one AssumeRole issued", async () => {
  await withFleet({ minutes: 10, services: 20 }, async (fleet) => {
    const { emu, config, stateFile } = fleet;
    // A secret long enough to be masked, a role refused, and calls that fail now and then: error paths print too.
    const secret = crypto.randomBytes(30).toString("base64");
    const env: Record<string, string> = { ...forwarderEnv(emu), AWS_SECRET_ACCESS_KEY: secret };
    emu.faults.denyRoles.add(`arn:aws:iam::${ACCOUNTS.acceptance}:role/transfer`);
    Object.assign(emu.faults, { throttleRate: 0.2, errorRate: 0.05 });
    const outputs: string[] = [];
    for (
      const args of [
        ["--log-level", "debug"],
        ["--log-level", "debug", "--log-format", "json"],
        ["--plan"],
        ["--plan", "--json"],
        ["--status"],
        ["--status", "--json"],
        ["--dry-run", "--log-level", "debug"],
      ]
    ) {
      const r = await runForwarder(["--config", config, ...args], env);
      outputs.push(r.stdout, r.stderr);
    }
    const issued = emu.issued();
    assert.ok(issued.length > 0, "AssumeRole issued credentials");
    const secrets = [secret, env["AWS_ACCESS_KEY_ID"]!, ...issued.flat()];
    const state = fs.readFileSync(stateFile, "latin1");
    for (const secret of secrets) {
      for (const [i, text] of outputs.entries()) {
        assert.ok(!text.includes(secret), `output ${i} shows a credential`);
      }
      assert.ok(!state.includes(secret), "the state file holds a credential");
    }
    // The runs said something of every kind: the refused role, and their summaries.
    assert.match(outputs.join(""), /AccessDenied/);
    assert.match(outputs.join(""), /Forwarded \d+ datums/);
  });
});
