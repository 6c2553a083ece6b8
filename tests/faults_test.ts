/**
 * Fault injection, with forward.ts as a real process against the emulator. In every case the destination must
 * end up with each period's statistics equal to the source's over the whole range: nothing lost, nothing twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Emulator, type EmulatorOptions, startEmulator } from "../lib/emulator.ts";
import {
  ACCEPTANCE_CONFIG,
  ACCOUNTS,
  assertForwarded,
  CONFIG,
  DEST,
  forwarderEnv,
  MIN,
  seedFleet,
  seedServices,
  writeConfig,
} from "./fleet.ts";
import { type ProcessResult, runForwarder } from "./helpers.ts";

/** Services of the "big" account here: a smaller fleet keeps the many runs below quick. */
const SERVICES = 20;
const STREAMS = 3 * 7 + SERVICES * 2;
const PRODUCTION_ROLE = `arn:aws:iam::${ACCOUNTS.production}:role/transfer`;

interface Fleet {
  emu: Emulator;
  config: string;
  now: number;
  run(minutesAgo: number, extra?: string[], options?: { killAfterMs?: number }): Promise<ProcessResult>;
}

async function withFleet(minutes: number, f: (fleet: Fleet) => Promise<void>, options: EmulatorOptions = {}) {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const emu = await startEmulator(options);
  try {
    await seedFleet(emu, now - minutes * MIN, now, SERVICES);
    const config = writeConfig(CONFIG.replace("    external_id: prod-ext-id\n", ""));
    const env = forwarderEnv(emu);
    const run = (minutesAgo: number, extra: string[] = [], o: { killAfterMs?: number } = {}) =>
      runForwarder(
        ["--config", config, "--now", new Date(now - minutesAgo * MIN).toISOString(), ...extra],
        env,
        o,
      );
    await f({ emu, config, now, run });
  } finally {
    await emu.stop();
  }
}

const ok = (r: ProcessResult) => assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);

/** The first period a run at `minutesAgo` forwards for a new stream, with the default 60 s period and 120 s delay. */
const firstPeriod = (now: number, minutesAgo: number) => now - (minutesAgo + 3) * MIN;

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
    await withFleet(20, async ({ emu, config, now, run }) => {
      emu.faults.latencyMs = 20;
      emu.faults.putReplyDelayMs = 400;
      ok(await run(15));
      const accepted = () => emu.counts()[DEST]?.["eu-west-1"]?.billed["PutMetricData"] ?? 0;
      const before = accepted();
      const killAt = killTime(seed);
      const killed = await run(0, [], { killAfterMs: killAt });
      const state = JSON.parse(
        fs.readFileSync(path.join(path.dirname(config), "forwarder-state.json"), "utf8"),
      );
      const inDoubt = Object.values(state.streams as Record<string, { doubt?: unknown[] }>).filter((s) =>
        s.doubt?.length
      ).length;
      const trial = {
        seed,
        killAt,
        outcome: killed.signal ?? `exit ${killed.code}`,
        inDoubt,
        accepted: accepted() - before,
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
      assert.match(
        r.stderr,
        /^Cannot lock state file ".*forwarder-state\.json": another run \(pid \d+ on .*\) holds ".*\.lock"\n$/,
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
      assert.match(r.stderr, /Cannot forward account "production" in eu-west-1: InternalFailure/);
    }
    emu.faults.putErrorRate = 0;
    ok(await run(0));
    await assertForwarded(emu, firstPeriod(now, 70), now - 2 * MIN);
  });
});

test("one source account's role denied: the others advance, and it catches up once allowed", async () => {
  await withFleet(50, async ({ emu, now, run }) => {
    ok(await run(40));
    emu.faults.denyRoles.add(PRODUCTION_ROLE);
    for (const minutesAgo of [30, 20]) {
      const r = await run(minutesAgo);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^Cannot forward account "production" in (eu-west-1|us-east-1): AccessDenied: .*\n/,
      );
      assert.match(r.stdout, /from 2 of 4 account-regions/);
    }
    const status = await run(20, ["--status"]);
    const upTo = (minutesAgo: number) => new Date(now - minutesAgo * MIN).toISOString().replace(".000Z", "Z");
    assert.deepEqual(status.stdout.trim().split("\n"), [
      `acceptance eu-west-1: forwarded up to ${upTo(22)} (2 min behind), 7 streams`,
      `big eu-west-1: forwarded up to ${upTo(22)} (2 min behind), ${SERVICES * 2} streams`,
      `production eu-west-1: forwarded up to ${upTo(42)} (22 min behind), 7 streams`,
      `production us-east-1: forwarded up to ${upTo(42)} (22 min behind), 7 streams`,
    ]);
    emu.faults.denyRoles.clear();
    ok(await run(0));
    await assertForwarded(emu, firstPeriod(now, 40), now - 2 * MIN);
  });
});

for (
  const [name, damage] of [["truncated", (t: string) => t.slice(0, t.length / 2)], [
    "corrupt",
    () => "\u0000\u0001garbage",
  ]] as const
) {
  test(`a ${name} state file: a clear error, the file kept as it was, nothing overwritten`, async () => {
    await withFleet(20, async ({ config, run }) => {
      ok(await run(15));
      const file = path.join(path.dirname(config), "forwarder-state.json");
      const damaged = damage(fs.readFileSync(file, "utf8"));
      fs.writeFileSync(file, damaged);
      const r = await run(0);
      assert.equal(r.code, 3);
      assert.equal(r.stdout, "");
      assert.match(
        r.stderr,
        /^Cannot read state file ".*forwarder-state\.json": [^\n]*; it was left as it is: repair it, or move it away to start afresh\n$/,
      );
      assert.equal(fs.readFileSync(file, "utf8"), damaged);
      assert.equal(fs.existsSync(`${file}.lock`), false);
    });
  });
}

test("a datum CloudWatch refuses is skipped with one warning naming its stream, and blocks nothing", async () => {
  await withFleet(20, async ({ emu, now, run }) => {
    ok(await run(15));
    // Two samples at the limit: the source takes each, but their Sum (2^361) is more than PutMetricData takes.
    const t = now - 10 * MIN;
    emu.seed({
      account: ACCOUNTS.acceptance,
      region: "eu-west-1",
      namespace: "AWS/ECS",
      name: "CPUUtilization",
      timestamp: t,
      values: [2 ** 360, 2 ** 360],
      dimensions: { ClusterName: "shared", ServiceName: "svc-0" },
      unit: "Percent",
    });
    const r = await run(0);
    ok(r);
    const warnings = r.stderr.trim().split("\n");
    assert.equal(warnings.length, 1, r.stderr);
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
      new RegExp(`^Forwarded ${15 * (STREAMS + 3) - 1} datums .*; 1 refused by CloudWatch and skipped\n$`),
    );
    // The stream's other periods, and every other stream, went through; the next run does not retry it.
    const again = await run(0);
    assert.equal(again.stderr, "");
    assert.match(again.stdout, /^Forwarded 0 datums/);
  });
});

test("a crash after writing periods over 3 hours old: the next run waits until CloudWatch shows them, then writes nothing twice", async () => {
  const T = Math.floor(Date.now() / MIN) * MIN;
  const clock = { now: T };
  const emu = await startEmulator({ now: () => clock.now });
  try {
    seedServices(emu, T - 360 * MIN, T - 300 * MIN);
    const config = writeConfig(ACCEPTANCE_CONFIG);
    const run = (now: number, o: { killAfterMs?: number } = {}) =>
      runForwarder(["--config", config, "--now", new Date(now).toISOString()], forwarderEnv(emu), o);
    ok(await run(T - 357 * MIN));
    // Killed while the destination holds the answer to a write it has stored: 6-hour-old data, in doubt.
    emu.faults.putReplyDelayMs = 4000;
    await run(T, { killAfterMs: 2500 });
    emu.faults.putReplyDelayMs = 0;
    assert.equal(emu.counts()[DEST]?.["eu-west-1"]?.billed["PutMetricData"], 2);
    const early = await run(T);
    ok(early);
    assert.match(
      early.stderr,
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
    await assertForwarded(emu, T - 360 * MIN, T - 300 * MIN, [[
      "acceptance",
      ACCOUNTS.acceptance,
      "eu-west-1",
    ]]);
  } finally {
    await emu.stop();
  }
});
