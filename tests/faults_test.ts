/**
 * Fault injection, with forward.ts as a real process against the emulator. In every case the destination must
 * end up with each period's statistics equal to the source's over the whole range: nothing lost, nothing twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ACCOUNTS,
  assertForwarded,
  BIG_LACKS_APP,
  destCount,
  firstPeriod,
  type Fleet,
  MIN,
  ok,
  seedService,
  staleStore,
  streamsInDoubt,
  withFleet as withSeededFleet,
  withOldServices,
} from "./fleet.ts";
import { notes, said } from "./helpers.ts";

/** Services of the "big" account here: a smaller fleet keeps the many runs below quick. */
const SERVICES = 20;
const STREAMS = 3 * 7 + SERVICES * 2;
const PRODUCTION_ROLE = `arn:aws:iam::${ACCOUNTS.production}:role/transfer`;

const withFleet = (minutes: number, f: (fleet: Fleet) => Promise<void>) =>
  withSeededFleet({ minutes, services: SERVICES }, f);

test("no run for 40 minutes, then one run: every missed period is backfilled", async () => {
  await withFleet(60, async ({ emu, now, run }) => {
    ok(await run(40));
    const later = await run(0);
    ok(later);
    // 40 periods of every stream, and of the p99 metric of the three sources that have Acme/App.
    assert.match(later.stdout, new RegExp(`^Forwarded ${40 * (STREAMS + 3)} datums of ${STREAMS} streams`));
    assert.equal(await assertForwarded(emu, firstPeriod(now, 40), now - 2 * MIN), 41 * STREAMS);
  });
});

/** Each trial's kill time, spread over a run (about a second here) by a hash of its seed. */
const killTime = (seed: number) => 50 + ((Math.imul(seed, 2654435761) >>> 0) % 1000);

test("SIGKILL at random points of a run, 20 trials: the next run neither loses nor repeats a period", async () => {
  const findings: { seed: number; killAt: number; outcome: string; inDoubt: number; accepted: number }[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    // Latency on every call, and a PutMetricData answer held back after the write was stored: the window
    // between "the destination accepted" and "the checkpoint moved" is a good part of the run.
    await withFleet(20, async ({ emu, stateFile, now, run }) => {
      emu.faults.latencyMs = 20;
      emu.faults.putReplyDelayMs = 400;
      ok(await run(15));
      const before = destCount(emu, "PutMetricData");
      const killAt = killTime(seed);
      const killed = await run(0, [], { killAfterMs: killAt });
      const trial = {
        seed,
        killAt,
        outcome: killed.signal ?? `exit ${killed.code}`,
        inDoubt: streamsInDoubt(stateFile),
        accepted: destCount(emu, "PutMetricData") - before,
      };
      findings.push(trial);
      ok(await run(0));
      emu.faults.latencyMs = 0;
      await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
    });
  }
  console.log(
    findings.map((f) =>
      `seed ${f.seed}: killed at ${f.killAt} ms (${f.outcome}), ${f.inDoubt} streams in doubt, ${f.accepted} writes accepted`
    ).join("\n"),
  );
  // The trials must include the case that matters: killed after the destination took a write, before the
  // checkpoint moved (streams still in doubt). Otherwise they tested nothing.
  assert.ok(findings.some((f) => f.inDoubt > 0 && f.accepted > 0));
});

test("two runs started at the same moment: one runs, the other stops at the lock, nothing is written twice", async () => {
  await withFleet(20, async ({ emu, now, run }) => {
    emu.faults.latencyMs = 30;
    ok(await run(15));
    const [a, b] = await Promise.all([run(0), run(0)]);
    const codes = [a!.code, b!.code].sort();
    assert.ok(codes[0] === 0 && (codes[1] === 0 || codes[1] === 3), `exit codes ${codes}`);
    for (const r of [a!, b!].filter((r) => r.code === 3)) {
      assert.equal(r.stdout, "");
      assert.match(
        said(r),
        /^Cannot lock state file "[^"\n]*\/forwarder-state\.db": another run \(pid \d+ on [^\n]+, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\) holds its lease until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/,
      );
    }
    emu.faults.latencyMs = 0;
    await assertForwarded(emu, firstPeriod(now, 15), now - 2 * MIN);
  });
});

test("30% of CloudWatch calls throttled and 5% failing with HTTP 500: runs retry and end complete", async () => {
  await withFleet(45, async ({ emu, now, run }) => {
    ok(await run(40));
    emu.faults.throttleRate = 0.3;
    emu.faults.errorRate = 0.05;
    const codes: (number | null)[] = [];
    for (let i = 0; i < 10 && codes[codes.length - 1] !== 0; i++) codes.push((await run(0)).code);
    assert.equal(codes[codes.length - 1], 0, `exit codes ${codes}`);
    emu.faults.throttleRate = 0;
    emu.faults.errorRate = 0;
    await assertForwarded(emu, firstPeriod(now, 40), now - 2 * MIN);
  });
});

test("the destination refusing every write for an hour, then recovering: nothing lost, nothing twice", async () => {
  await withFleet(80, async ({ emu, now, run }) => {
    emu.faults.putErrorRate = 1;
    for (const minutesAgo of [70, 50, 30, 10]) {
      const r = await run(minutesAgo);
      assert.equal(r.code, 1, r.stderr);
      // HTTP 500 may come after CloudWatch applied a write: each source waits, reads the destination, finds
      // nothing, writes once more, and fails; what it wrote stays in doubt for the next run.
      const lost =
        `the answer to a PutMetricData was lost \\(InternalFailure: [^\\n]*\\); it may have been applied`;
      assert.match(
        said(r),
        new RegExp(
          `^Cannot be sure of a write for account "production" in eu-west-1: ${lost}; reading the destination in 15 s before writing again$`,
          "m",
        ),
      );
      assert.match(
        said(r),
        new RegExp(
          `^Cannot forward account "production" in eu-west-1: PutMetricData as the default credentials failed: WriteInDoubt: ${lost}$`,
          "m",
        ),
      );
    }
    emu.faults.putErrorRate = 0;
    ok(await run(0));
    await assertForwarded(emu, firstPeriod(now, 70), now - 2 * MIN);
  });
});

test("one source account's role denied: the others advance, and it catches up once allowed", async () => {
  await withFleet(50, async ({ emu, now, run, stateFile }) => {
    ok(await run(40));
    emu.faults.denyRoles.add(PRODUCTION_ROLE);
    for (const [minutesAgo, lastRun] of [[30, 40], [20, 30]] as const) {
      const r = await run(minutesAgo);
      assert.equal(r.code, 1);
      // Ten minutes since the last run: the run notes it checks the destination first, then says which source
      // failed, at which call and as whom: AssumeRole of the production role.
      assert.equal(notes(r).split("\n")[0], staleStore(stateFile, now - lastRun * MIN));
      // Its listing ten minutes old, the run lists again, and names "big", which has no Acme/App: with an
      // account-region failed, no line can say that no account-region has it.
      assert.ok(said(r).endsWith(BIG_LACKS_APP), r.stderr);
      const failed = said(r).replace(BIG_LACKS_APP, "").trimEnd().split("\n");
      assert.equal(failed.length, 2, r.stderr);
      failed.sort().forEach((l, i) =>
        assert.match(
          l,
          new RegExp(
            `^Cannot forward account "production" in ${
              ["eu-west-1", "us-east-1"][i]
            }: AssumeRole of "${PRODUCTION_ROLE}" failed: AccessDenied: .*$`,
          ),
        )
      );
      assert.match(r.stdout, /from 2 of 4 account-regions/);
    }
    const status = await run(20, ["--status"]);
    assert.equal(status.code, 1, "--status exits 1 while an account-region fails");
    const upTo = (minutesAgo: number) => new Date(now - minutesAgo * MIN).toISOString().replace(".000Z", "Z");
    // In the config's order; the denied account-regions with the error of their last run.
    const denied = `AssumeRole of "${PRODUCTION_ROLE}" failed: AccessDenied: [^\n]*`;
    const lines = status.stdout.trim().split("\n");
    assert.equal(lines.length, 4, status.stdout);
    [
      `production eu-west-1: forwarded up to ${
        upTo(42)
      } \\(22 min behind\\), 7 streams; its last run failed at ${upTo(20)}: ${denied}`,
      `production us-east-1: forwarded up to ${
        upTo(42)
      } \\(22 min behind\\), 7 streams; its last run failed at ${upTo(20)}: ${denied}`,
      `acceptance eu-west-1: forwarded up to ${upTo(22)} \\(2 min behind\\), 7 streams`,
      `big eu-west-1: forwarded up to ${upTo(22)} \\(2 min behind\\), ${SERVICES * 2} streams`,
    ].forEach((want, i) => assert.match(lines[i]!, new RegExp(`^${want}$`)));
    emu.faults.denyRoles.clear();
    ok(await run(0));
    await assertForwarded(emu, firstPeriod(now, 40), now - 2 * MIN);
  });
});

for (
  const [name, damage] of [
    ["truncated", (b: Buffer) => b.subarray(0, b.length / 2)],
    ["corrupt", () => Buffer.from("\u0000\u0001garbage")],
  ] as const
) {
  test(`a ${name} state file: a clear error, the file kept as it was, nothing overwritten`, async () => {
    await withFleet(20, async ({ config, stateFile, run }) => {
      ok(await run(15));
      const damaged = damage(fs.readFileSync(stateFile));
      fs.writeFileSync(stateFile, damaged);
      const r = await run(0);
      assert.equal(r.code, 3);
      assert.equal(r.stdout, "");
      assert.match(
        said(r),
        /^Cannot use state file "[^"\n]*\/forwarder-state\.db": [^\n]*; it was left as it is: (repair it|restore it from a backup), or move it away to start afresh\n$/,
      );
      assert.deepEqual(fs.readFileSync(stateFile), damaged);
      // Nothing beside it either: no log, no shared memory file.
      assert.deepEqual(fs.readdirSync(path.dirname(config)).sort(), ["forwarder-state.db", "forwarder.yaml"]);
    });
  });
}

test("a datum CloudWatch refuses is skipped with one warning naming its stream, and blocks nothing", async () => {
  await withFleet(20, async ({ emu, now, run, stateFile }) => {
    ok(await run(15));
    // Two samples at the limit: the source takes each, but their Sum (2^361) is more than PutMetricData takes.
    const t = now - 10 * MIN;
    seedService(emu, "svc-0", t, [2 ** 360, 2 ** 360]);
    const r = await run(0);
    ok(r);
    // Its last run was 15 minutes ago, more than an interval: the run notes it checks the destination first.
    assert.equal(notes(r).split("\n")[0], staleStore(stateFile, now - 15 * MIN));
    // Its listing 15 minutes old, the run lists again, and names "big", which has no Acme/App, last.
    const warnings = said(r).trim().split("\n");
    assert.equal(warnings.length, 2, r.stderr);
    assert.equal(`${warnings[1]}\n`, BIG_LACKS_APP);
    assert.match(
      warnings[0]!,
      new RegExp(
        `^Cannot forward CPUUtilization ClusterName=shared,ServiceName=svc-0,SourceAccount=acceptance,SourceRegion=eu-west-1 at ${
          new Date(t).toISOString().replace(".000Z", "Z")
        } from account "acceptance" in eu-west-1: InvalidParameterValue: .*; skipped$`,
      ),
    );
    // Every other datum of the 15 periods owed went through.
    assert.match(
      r.stdout,
      new RegExp(
        `^Forwarded ${
          15 * (STREAMS + 3) - 1
        } datums .*; 1 refused by CloudWatch and skipped; calls: [^;]+; largest lag 2 min\n$`,
      ),
    );
    // The stream's other periods, and every other stream, went through; the next run does not retry it.
    const again = await run(0);
    assert.equal(said(again), "");
    assert.match(again.stdout, /^Forwarded 0 datums/);
  });
});

test("a crash after writing periods over 3 hours old: the next run waits until CloudWatch shows them, then writes nothing twice", async () => {
  await withOldServices(async ({ emu, T, clock, run, check }) => {
    // The first run acts at its own time, and CloudWatch's clock is there too: the period it writes is minutes
    // old, and shows at once. Then CloudWatch's clock is at T again, for the runs that follow.
    clock.now = T - 357 * MIN;
    ok(await run(T - 357 * MIN));
    clock.now = T;
    // Killed while the destination holds the answer to a write it has stored: 6-hour-old data, in doubt.
    emu.faults.putReplyDelayMs = 4000;
    await run(T, [], { killAfterMs: 2500 });
    emu.faults.putReplyDelayMs = 0;
    assert.equal(destCount(emu, "PutMetricData"), 2);
    const early = await run(T);
    ok(early);
    assert.match(
      said(early),
      new RegExp(
        `^Cannot forward account "acceptance" in eu-west-1 from ${
          new Date(T - 359 * MIN).toISOString().replace(".000Z", "Z")
        } yet: what an interrupted run wrote there becomes readable in CloudWatch only at ${
          new Date(T + 120 * MIN).toISOString().replace(".000Z", "Z")
        }, and is checked then\\n$`,
      ),
    );
    assert.match(early.stdout, /^Forwarded 0 datums/);
    clock.now = T + 121 * MIN;
    const later = await run(clock.now);
    ok(later);
    assert.match(later.stdout, /^Forwarded 0 datums of 5 streams/);
    await check();
  });
});
