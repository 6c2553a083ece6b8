/**
 * The checkpoint store under what happens to files, with forward.ts as a real process against the emulator: a
 * store restored from a backup, moved, left empty, replaced by a symbolic link, used between runs without
 * checkpoints, and held by a run stalled past its lease. Every case ends with the whole range checked: nothing
 * lost, nothing twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { LEASE_MS, readStore } from "../lib/store.ts";
import {
  assertForwarded,
  BIG_LACKS_APP,
  destCount,
  firstPeriod,
  type Fleet,
  MIN,
  movedStore,
  ok,
  staleStore,
  streamsInDoubt,
  withFleet as withSeededFleet,
} from "./fleet.ts";
import { deno, notes, type ProcessResult, said, until } from "./helpers.ts";

const SERVICES = 20;
const STREAMS = 3 * 7 + SERVICES * 2;
/** A period's datums: one per stream, and the p99 metric of the three sources with Acme/App. */
const PER_PERIOD = STREAMS + 3;

const withFleet = (minutes: number, f: (fleet: Fleet) => Promise<void>) =>
  withSeededFleet({ minutes, services: SERVICES }, f);

/** Asserts a run's summary: it ended well and forwarded this many datums of every stream. */
function forwarded(r: ProcessResult, datums: number) {
  ok(r);
  assert.match(
    r.stdout,
    new RegExp(`^Forwarded ${datums} datums of ${STREAMS} streams from 4 of 4 account-regions`),
  );
}

/** Asserts a run refused its state file in one line, exit code 3, having written nothing. */
function refused(r: ProcessResult, message: string) {
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(said(r), `${message}\n`);
}

const digest = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fwd-state-"));

for (
  const [how, restore] of [
    // `cp backup forwarder-state.db`: the same file (inode) at the same path, with the older content.
    ["copied back over it", (backup: string, file: string) => fs.copyFileSync(backup, file)],
    // `mv backup forwarder-state.db`: another file at the same path.
    ["moved back into its place", (backup: string, file: string) => fs.renameSync(backup, file)],
  ] as const
) {
  test(`a state file restored from a backup a minute old (${how}): the next run writes nothing twice`, async () => {
    await withFleet(20, async ({ emu, now, run, stateFile }) => {
      forwarded(await run(2), PER_PERIOD);
      const backup = path.join(tempDir(), "forwarder-state.db");
      fs.copyFileSync(stateFile, backup);
      forwarded(await run(1), PER_PERIOD);
      restore(backup, stateFile);
      // The backup's checkpoint is a period behind: that period is in the destination already, and only the
      // one after it is owed. The store cannot continue what it did not write, so the run reads first.
      const r = await run(0);
      ok(r);
      await assertForwarded(emu, firstPeriod(now, 2), now - 2 * MIN);
      forwarded(r, PER_PERIOD);
      // Copied back, it is the same file, last used by the run it was copied after: too long ago to be
      // trusted. Moved back, it is another file at that path.
      const why = how === "copied back over it"
        ? staleStore(stateFile, now - 2 * MIN)
        : movedStore(stateFile);
      assert.equal(notes(r), `${why}\n`);
      assert.equal(streamsInDoubt(stateFile), 0);
    });
  });
}

test("a state file moved to another folder: runs in the same minute and later write nothing twice", async () => {
  await withFleet(20, async ({ emu, now, run }) => {
    const [from, to] = [tempDir(), tempDir()];
    const at = (dir: string) => ({ env: { STATE_DIRECTORY: dir } });
    forwarded(await run(15, [], at(from)), PER_PERIOD);
    fs.renameSync(path.join(from, "forwarder-state.db"), path.join(to, "forwarder-state.db"));
    // The same minute, from the new folder: its checkpoints are read back from the destination first.
    const same = await run(15, [], at(to));
    forwarded(same, 0);
    assert.equal(notes(same), `${movedStore(path.join(to, "forwarder-state.db"))}\n`);
    // From there on it is this folder's store: the next tick trusts it, and a later run backfills.
    const next = await run(14, [], at(to));
    forwarded(next, PER_PERIOD);
    assert.equal(said(next), "");
    forwarded(await run(0, [], at(to)), 14 * PER_PERIOD);
    assert.deepEqual(fs.readdirSync(from), []);
    await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
  });
});

/** `deno run --allow-net --allow-env` and read access to the config alone: a run without checkpoints. */
const withoutCheckpoints = (fleet: Fleet) => ({
  command: deno(["--allow-net", "--allow-env", `--allow-read=${fleet.config}`]),
});

/**
 * Asserts a run without checkpoints forwarded the newest period of every stream it did not find there. Keeping
 * no listing, it lists, and names "big", which has no Acme/App.
 */
function forwardedWithoutCheckpoints(r: ProcessResult, fleet: Fleet, datums: number) {
  forwarded(r, datums);
  assert.equal(
    said(r),
    `Checkpoints are off: no permission to use "${fleet.stateFile}", so only the newest complete period is forwarded, after checking the destination has not got it, and missed runs are not backfilled; under Deno add --allow-read --allow-write to turn them on. Do not leave this running beside the forwarder with checkpoints: in the minute both run, it cannot know what the other wrote\n${BIG_LACKS_APP}`,
  );
}

test("a run without checkpoints, then the first with them in the same minute: nothing twice", async () => {
  await withFleet(20, async (fleet) => {
    const { emu, now, run } = fleet;
    forwardedWithoutCheckpoints(await run(5, [], withoutCheckpoints(fleet)), fleet, PER_PERIOD);
    assert.equal(fs.existsSync(fleet.stateFile), false);
    // A new store: every stream is read from the destination before its first period is written; its first
    // listing names "big", which has no Acme/App.
    const r = await run(5);
    forwarded(r, 0);
    assert.equal(said(r), BIG_LACKS_APP);
    forwarded(await run(0), 5 * PER_PERIOD);
    await assertForwarded(emu, firstPeriod(now, 5), now - 2 * MIN);
  });
});

test("a run without checkpoints between two ticks of a store: it writes nothing the store wrote, nor the store anything twice", async () => {
  await withFleet(20, async (fleet) => {
    const { emu, now, run, stateFile } = fleet;
    forwarded(await run(6), PER_PERIOD);
    forwarded(await run(5), PER_PERIOD);
    // Run by hand between two ticks, without file access: the newest complete period is the one the tick
    // before it wrote, which it finds in the destination.
    const before = digest(stateFile);
    forwardedWithoutCheckpoints(await run(5, [], withoutCheckpoints(fleet)), fleet, 0);
    assert.equal(digest(stateFile), before);
    const r = await run(4);
    ok(r);
    forwarded(r, PER_PERIOD);
    assert.equal(said(r), "");
    forwarded(await run(0), 4 * PER_PERIOD);
    await assertForwarded(emu, firstPeriod(now, 6), now - 2 * MIN);
  });
});

test("an empty state file, as a first run stopped right after creating it leaves: the next runs lose nothing", async () => {
  await withFleet(20, async ({ emu, now, run, stateFile }) => {
    fs.writeFileSync(stateFile, "");
    const first = await run(15);
    forwarded(first, PER_PERIOD);
    // Nothing of the empty file; the first listing names "big", which has no Acme/App.
    assert.equal(said(first), BIG_LACKS_APP);
    assert.equal(Object.keys(readStore(stateFile).streams).length, STREAMS);
    forwarded(await run(0), 15 * PER_PERIOD);
    await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
  });
});

test("a symbolic link at the state file or its log: refused in one line and not followed; once removed, nothing lost", async () => {
  await withFleet(20, async ({ emu, now, run, stateFile }) => {
    const elsewhere = path.join(tempDir(), "elsewhere");
    fs.writeFileSync(elsewhere, "not yours");
    const missing = path.join(tempDir(), "missing");
    const link = (at: string) =>
      `Cannot use state file "${stateFile}": "${at}" is a symbolic link, which the forwarder does not follow`;
    // Before the first run: a link to another file, and a dangling one, where the database goes.
    for (const target of [elsewhere, missing]) {
      fs.symlinkSync(target, stateFile);
      refused(await run(20), link(stateFile));
      fs.unlinkSync(stateFile);
    }
    assert.equal(fs.readFileSync(elsewhere, "utf8"), "not yours");
    assert.equal(fs.existsSync(missing), false);
    forwarded(await run(15), PER_PERIOD);
    // Beside a store in use: a link where its write-ahead log goes.
    const before = digest(stateFile);
    fs.symlinkSync(elsewhere, `${stateFile}-wal`);
    refused(await run(10), link(`${stateFile}-wal`));
    assert.equal(fs.readFileSync(elsewhere, "utf8"), "not yours");
    assert.equal(digest(stateFile), before);
    fs.unlinkSync(`${stateFile}-wal`);
    const r = await run(0);
    forwarded(r, 15 * PER_PERIOD);
    // Its listing 15 minutes old, the run lists again, and names "big", which has no Acme/App.
    assert.equal(notes(r), `${staleStore(stateFile, now - 15 * MIN)}\n${BIG_LACKS_APP}`);
    await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
  });
});

/**
 * Stops a process (SIGSTOP) at a moment it holds no write transaction on the store: a pause inside one would
 * hold SQLite's write lock, which no lease can take back (store_test has what the next run says then). Stopped
 * inside one, it is let go on for a millisecond and stopped again.
 */
async function stopOutsideTransaction(pid: number, file: string) {
  for (;;) {
    process.kill(pid, "SIGSTOP");
    const db = new DatabaseSync(file);
    try {
      db.exec("BEGIN IMMEDIATE");
      db.exec("ROLLBACK");
      return;
    } catch {
      process.kill(pid, "SIGCONT");
      await new Promise((r) => setTimeout(r, 1));
    } finally {
      db.close();
    }
  }
}

test("a run stalled past its lease: another run takes over, and the stalled one writes nothing once resumed", async () => {
  // "big" with enough services that its reads take long: the other sources record their intents and wait
  // for it to pool their writes, which leaves time to stop the run between an intent and its write.
  await withSeededFleet({ minutes: 20, services: 520 }, async ({ emu, now, run, start, stateFile }) => {
    ok(await run(2));
    emu.faults.latencyMs = 200;
    const writes = () => destCount(emu, "PutMetricData", "calls");
    const before = writes();
    const stalled = start(0);
    await until(() => streamsInDoubt(stateFile) > 0, "the run records an intent");
    await stopOutsideTransaction(stalled.pid, stateFile);
    try {
      const stoppedAt = Date.now();
      // Anything already sent would arrive within the latency: the run was stopped before its write left.
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(writes(), before, "stopped between an intent and its write");
      await new Promise((r) => setTimeout(r, stoppedAt + LEASE_MS + 1_000 - Date.now()));
      emu.faults.latencyMs = 0;
      // It owes two periods of 1,061 streams and three p99 metrics, and reads those the stalled run intended.
      const other = await run(0);
      ok(other);
      assert.match(other.stdout, /^Forwarded 2128 datums of 1061 streams from 4 of 4 account-regions/);
      assert.equal(said(other), "");
    } finally {
      process.kill(stalled.pid, "SIGCONT");
    }
    const sent = writes();
    const r = await stalled.done;
    assert.equal(writes(), sent, "the stalled run sent no write once resumed");
    assert.equal(r.code, 3, r.stderr);
    assert.equal(streamsInDoubt(stateFile), 0);
    await assertForwarded(emu, firstPeriod(now, 2), now - 2 * MIN);
    assert.match(
      r.stdout,
      /^Forwarded 0 datums of \d+ streams from 0 of 4 account-regions in [\d.]+ s; calls: [^;\n]+(; largest lag [^;\n]+)?\n$/,
    );
    // One line: the run lost its lease. Its reads were answered in 200 ms; what stopped it was the stall.
    const file = stateFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assert.match(
      said(r),
      new RegExp(
        `^[^\\n]*Cannot write state file "${file}": another run took over its lease while this run was stalled; this run stops without writing\\n$`,
      ),
    );
  });
});
