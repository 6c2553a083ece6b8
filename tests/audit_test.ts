/**
 * `--audit` and `--repair` with forward.ts as a process under the runtime running the tests, against the
 * emulator: a destination with planted differences is counted exactly, kind by kind, and a repair leaves only
 * what cannot be made good.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { startEmulator } from "../lib/emulator.ts";
import {
  ACCEPTANCE_CONFIG,
  billedGetMetricData,
  DEST,
  forwarderEnv,
  MIN,
  ok,
  seedService,
  seedServices,
  writeConfig,
} from "./fleet.ts";
import { cloudWatch, type ProcessResult, runForwarder, said } from "./helpers.ts";

const iso = (t: number) => new Date(t).toISOString();

test("--audit counts each kind of difference exactly, and --repair makes good all but what was written twice", async () => {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const emu = await startEmulator();
  try {
    seedServices(emu, now - 30 * MIN, now);
    const config = writeConfig(`self_metrics: false\ndefaults: { recheck_after: 0 }\n${ACCEPTANCE_CONFIG}`);
    const env = forwarderEnv(emu);
    const forward = (m: number, extra: string[] = []) =>
      runForwarder(["--config", config, "--now", iso(now - m * MIN), ...extra], env);
    // Forwarded: the five services' periods from 13 to 7 minutes back (a run a minute, delay 120 s).
    for (let m = 10; m >= 5; m--) ok(await forward(m));
    const from = now - 13 * MIN;
    const auditOf = async (to: number, extra: string[] = []) => {
      const r = await forward(0, ["--audit", "--from", iso(from), "--to", iso(to), "--json", ...extra]);
      const doc = JSON.parse(r.stdout) as {
        accountRegions: Record<string, unknown>[];
        billedMetrics: number;
      };
      return { r, doc, counts: doc.accountRegions.map(({ examples: _, ...rest }) => rest) };
    };
    const first = await auditOf(now - 7 * MIN);
    assert.equal(first.r.code, 0, first.r.stderr);
    assert.deepEqual(first.counts, [{
      account: "acceptance",
      region: "eu-west-1",
      streams: 5,
      exact: 30,
      short: 0,
      missing: 0,
      over: 0,
      differs: 0,
      pending: 0,
      repaired: 0,
    }]);

    // Planted: two late samples of svc-1 (short); a service the forwarder never listed, six periods (missing);
    // a second write into svc-2's period (over).
    seedService(emu, "svc-1", now - 12 * MIN, [7, 8]);
    for (let m = 13; m > 7; m--) seedService(emu, "svc-9", now - m * MIN, [1, 2, 3]);
    await cloudWatch(emu.url, DEST).send(
      new PutMetricDataCommand({
        Namespace: "Forwarded/AWS/ECS",
        MetricData: [{
          MetricName: "CPUUtilization",
          Dimensions: [
            { Name: "ClusterName", Value: "shared" },
            { Name: "ServiceName", Value: "svc-2" },
            { Name: "SourceAccount", Value: "acceptance" },
            { Name: "SourceRegion", Value: "eu-west-1" },
          ],
          Timestamp: new Date(now - 11 * MIN),
          StatisticValues: { SampleCount: 1, Sum: 1, Minimum: 1, Maximum: 1 },
          Unit: "Percent",
        }],
      }),
    );
    // Up to 5 minutes back: the last two minutes are not forwarded yet (the checkpoint is 7 minutes back).
    const before = billedGetMetricData(emu);
    const planted = await auditOf(now - 5 * MIN);
    assert.equal(planted.r.code, 1);
    const counts = { account: "acceptance", region: "eu-west-1", streams: 6, differs: 0, repaired: 0 };
    assert.deepEqual(planted.counts, [{ ...counts, exact: 28, short: 1, missing: 6, over: 1, pending: 10 }]);
    // The cost said before reading is what was billed: each stream's four statistics a side, as one metric;
    // and one more for CloudWatch's clock, read before any run.
    assert.equal(planted.doc.billedMetrics, 6 * 2);
    assert.equal(billedGetMetricData(emu) - before, planted.doc.billedMetrics + 1);
    assert.match(
      said(planted.r, "info"),
      /Auditing 6 streams of 1 account-region from .*: 12 GetMetricData metrics billed/,
    );
    assert.deepEqual(planted.doc.accountRegions[0]!["examples"], {
      short: [
        `AWS/ECS CPUUtilization ClusterName=shared,ServiceName=svc-1 at ${
          iso(now - 12 * MIN).replace(".000Z", "Z")
        }: SampleCount 3 where the source has 5`,
      ],
      missing: [0, 1, 2].map((i) =>
        `AWS/ECS CPUUtilization ClusterName=shared,ServiceName=svc-9 at ${
          iso(now - (13 - i) * MIN).replace(".000Z", "Z")
        }: SampleCount 0 where the source has 3`
      ),
      over: [
        `AWS/ECS CPUUtilization ClusterName=shared,ServiceName=svc-2 at ${
          iso(now - 11 * MIN).replace(".000Z", "Z")
        }: SampleCount 4 where the source has 3`,
      ],
      // Three examples a kind at most: svc-0's two periods, then svc-1's first.
      pending: [["svc-0", 7], ["svc-0", 6], ["svc-1", 7]].map(([svc, m]) =>
        `AWS/ECS CPUUtilization ClusterName=shared,ServiceName=${svc} at ${
          iso(now - Number(m) * MIN).replace(".000Z", "Z")
        }: SampleCount 0 where the source has 3`
      ),
    });

    // --repair writes the short and missing ones; the audit after finds only the over-count left.
    const repair = await auditOf(now - 5 * MIN, ["--repair"]);
    assert.equal(repair.r.code, 1, repair.r.stderr);
    assert.deepEqual(repair.counts, [{
      ...counts,
      exact: 28,
      short: 1,
      missing: 6,
      over: 1,
      pending: 10,
      repaired: 7,
    }]);
    const after = await auditOf(now - 5 * MIN);
    assert.equal(after.r.code, 1);
    assert.deepEqual(after.counts, [{ ...counts, exact: 35, short: 0, missing: 0, over: 1, pending: 10 }]);

    // The forwarder goes on from its checkpoint; the repaired stream, read in the destination first, is
    // not written twice.
    ok(await forward(0));
    const last = await auditOf(now - 2 * MIN);
    assert.deepEqual(last.counts, [{
      ...counts,
      exact: 35 + 5 * 5,
      short: 0,
      missing: 0,
      over: 1,
      pending: 0,
    }]);
  } finally {
    await emu.stop();
  }
});

test("--audit, --repair and --json are refused where they do not fit, in one line", async () => {
  const cases: [string[], string][] = [
    [["--audit"], "--audit needs the window to compare: --from and --to"],
    [["--repair"], "--repair goes with --audit"],
    [["--json"], "--json goes with --status, --plan or --audit"],
    [
      ["--audit", "--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T11:00:00Z", "--plan"],
      "--audit does not go with --plan",
    ],
  ];
  for (const [args, message] of cases) {
    const r: ProcessResult = await runForwarder(args, {});
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stderr, `Cannot parse arguments: ${message}\n`, args.join(" "));
  }
});
