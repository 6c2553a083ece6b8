/**
 * CloudWatch as loose as the API reference allows, from the emulator's own model of it, with forward.ts as a
 * process under the runtime running the tests: listings that name metrics again, and samples published late.
 * Every period ends exact, by the fleet's own check and by --audit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startEmulator } from "../lib/emulator.ts";
import { assertForwarded, CONFIG, forwarderEnv, MIN, ok, seedFleet, writeConfig } from "./fleet.ts";
import { runForwarder } from "./helpers.ts";

const SERVICES = 6;
/** The fleet's streams: three sources of 3 services and one of SERVICES, two names each, and Acme/App's three. */
const STREAMS = 3 * 3 * 2 + SERVICES * 2 + 3;

test("listings that repeat half their metrics and a tenth of the samples 5 minutes late: each stream once, every period exact", async () => {
  const now = Math.floor(Date.now() / MIN) * MIN;
  let clock = now;
  const emu = await startEmulator({
    now: () => clock,
    listRepeatRate: 0.5,
    lateRate: 0.1,
    lateBySeconds: 300,
  });
  try {
    await seedFleet(emu, now - 60 * MIN, now, SERVICES);
    // A period is read again 5 minutes after its first read, when a sample 5 minutes late has landed.
    const config = writeConfig(
      `self_metrics: false\ndefaults: { recheck_after: 300 }\n${
        CONFIG.replace("    external_id: prod-ext-id\n", "")
      }`,
    );
    const at = async (m: number, extra: string[] = []) => {
      clock = now - m * MIN;
      return await runForwarder(
        ["--config", config, "--now", new Date(clock).toISOString(), ...extra],
        forwarderEnv(emu),
      );
    };
    for (let m = 30; m >= 0; m--) {
      const r = await at(m);
      ok(r);
      // Each stream once, however often the listing named it.
      assert.match(
        r.stdout,
        new RegExp(`^Forwarded \\d+ datums of ${STREAMS} streams from 4 of 4 account-regions`),
      );
    }
    // The first run forwarded the period 33 minutes back; each period was read again within 10 minutes of its
    // first read, so all up to 12 minutes back have had theirs.
    const from = now - 33 * MIN;
    const to = now - 12 * MIN;
    await assertForwarded(emu, from, to);
    const audit = await at(0, [
      "--audit",
      "--from",
      new Date(from).toISOString(),
      "--to",
      new Date(to).toISOString(),
      "--json",
    ]);
    assert.equal(audit.code, 0, audit.stdout);
    const doc = JSON.parse(audit.stdout) as { accountRegions: Record<string, number>[] };
    const total = (k: string) => doc.accountRegions.reduce((n, a) => n + a[k]!, 0);
    assert.deepEqual(
      ["short", "missing", "over", "differs", "pending"].map(total),
      [0, 0, 0, 0, 0],
    );
    // The statistic set of every stream, every period of the window.
    assert.equal(total("exact"), STREAMS * 21);
  } finally {
    await emu.stop();
  }
});
