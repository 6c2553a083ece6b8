/**
 * forward.ts as a process against the emulator, reading a monitoring account's linked accounts (CloudWatch
 * cross-account observability): every stream of every linked account exact in the destination under its
 * account's name, in the fewest calls; links added and removed between runs; an account GetMetricData refuses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { ListMetricsCommand } from "@aws-sdk/client-cloudwatch";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import type { SourceStatus } from "../lib/status.ts";
import { readStore } from "../lib/store.ts";
import {
  assertForwarded,
  DEST,
  firstPeriod,
  forwardedCounts,
  forwarderEnv,
  MIN,
  writeConfig,
} from "./fleet.ts";
import { cloudWatch, runForwarder } from "./helpers.ts";

const MONITORING = "444444444444";
const REGIONS = ["eu-west-1", "us-east-1"];
const iso = (ms: number) => new Date(ms).toISOString();
/** Linked account ids, 100000000001 upwards. */
const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => String(100000000000 + from + i));

/**
 * Seeds ECS service metrics over [from, to) in each account and region: every account has the same cluster
 * and service names, as accounts of one organisation often do; the monitoring account has its own too.
 */
function seedAccounts(emu: Emulator, accounts: string[], services: number, from: number, to: number) {
  let x = 7;
  const next = () => (x = (x * 48271) % 2147483647) / 2147483647;
  for (const account of accounts) {
    for (const region of REGIONS) {
      for (let t = from; t < to; t += MIN) {
        for (let s = 0; s < services; s++) {
          for (const name of ["CPUUtilization", "MemoryUtilization"]) {
            emu.seed({
              account,
              region,
              namespace: "AWS/ECS",
              name,
              timestamp: t,
              values: [0, 1, 2].map(() => Math.round(next() * 400) / 4),
              unit: "Percent",
              dimensions: { ClusterName: "shared", ServiceName: `svc-${s}` },
            });
          }
        }
      }
    }
  }
}

const configOf = (linked: string, extra = "") =>
  `${extra}destination: { region: eu-west-1 }
accounts:
  - name: monitoring
    role_arn: arn:aws:iam::${MONITORING}:role/reader
    regions: [eu-west-1, us-east-1]
    linked_accounts: ${linked}
metrics:
  - namespace: AWS/ECS
    names: [CPUUtilization, MemoryUtilization]
    dimensions: [ClusterName, ServiceName]
    unit: Percent
`;

/** Calls made between two counts of the emulator, of one account and region. */
const made = (
  before: ReturnType<Emulator["counts"]>,
  after: ReturnType<Emulator["counts"]>,
  account: string,
  region: string,
  op: string,
) => (after[account]?.[region]?.calls[op] ?? 0) - (before[account]?.[region]?.calls[op] ?? 0);

test("forward.ts reads 20 linked accounts x 2 regions through one role: every stream exact under its account's name, in the fewest calls", async () => {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const linked = ids(20);
  const emu = await startEmulator({ links: { [MONITORING]: linked } });
  try {
    const services = 13;
    seedAccounts(emu, [MONITORING, ...linked], services, now - 40 * MIN, now);
    const config = writeConfig(
      configOf(
        `{ names: { "${linked[0]}": production, "${linked[1]}": acceptance } }`,
        "discovery_interval: 60\n",
      ),
    );
    const env = forwarderEnv(emu);
    // Per region: 20 accounts x 13 services x 2 names, 4 statistics each; the listing has the monitoring
    // account's own 26 too (left out: own_metrics is off).
    const streams = 20 * services * 2;
    const calls = {
      GetMetricData: Math.ceil((streams * 4) / 500),
      ListMetrics: Math.ceil((streams + 26) / 500),
    };
    for (const minutesAgo of [30, 0]) {
      const before = emu.counts();
      const r = await runForwarder(["--config", config, "--now", iso(now - minutesAgo * MIN)], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`^Forwarded \\d+ datums of ${2 * streams} streams from 2 of 2 account-regions`),
      );
      const after = emu.counts();
      assert.equal(
        made(before, after, DEST, "eu-west-1", "AssumeRole"),
        1,
        "one AssumeRole, for both regions",
      );
      for (const region of REGIONS) {
        for (const [op, n] of Object.entries(calls)) {
          assert.equal(made(before, after, MONITORING, region, op), n, `${op} in ${region}`);
        }
      }
      for (const account of linked) assert.equal(after[account], undefined, "no call in a linked account");
    }
    const name = (id: string) => (id === linked[0] ? "production" : id === linked[1] ? "acceptance" : id);
    const sources = linked.flatMap((id) =>
      REGIONS.map((region): [string, string, string] => [name(id), id, region])
    );
    const compared = await assertForwarded(emu, firstPeriod(now, 30), now - 2 * MIN, sources);
    assert.equal(compared, 2 * streams * 31);
    // The forwarder's own metrics: the monitoring account-region as a whole, and each account read through it.
    const own = await cloudWatch(emu.url, DEST).send(
      new ListMetricsCommand({ Namespace: "CloudWatchForwarder", MetricName: "LagSeconds" }),
    );
    const lagged = own.Metrics!.map((m) => m.Dimensions!.map((d) => d.Value).join(" ")).sort();
    assert.deepEqual(
      lagged,
      ["monitoring", ...linked.map(name)].flatMap((a) => REGIONS.map((r) => `${a} ${r}`)).sort(),
    );
    const status = await runForwarder(["--config", config, "--status", "--json"], env);
    const rows = JSON.parse(status.stdout) as SourceStatus[];
    assert.deepEqual(
      rows.map((s) => `${s.account} ${s.region} ${s.through} ${s.streams} ${s.state}`),
      REGIONS.flatMap((region) =>
        linked.map(name).sort().map((account) => `${account} ${region} monitoring ${services * 2} ok`)
      ),
    );
  } finally {
    await emu.stop();
  }
});

/** The periods of svc-0's forwarded metric in the destination: their start times, oldest first. */
const periodsIn = async (emu: Emulator, account: string, region: string, from: number, to: number) =>
  (await forwardedCounts(emu, account, region, from, to)).map((p) => p.t);

test("forward.ts through a monitoring account: a link added starts at its newest period, one removed is no longer found, one refused fails alone", async () => {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const [a, b, c, d] = ids(4);
  const emu = await startEmulator({ links: { [MONITORING]: [a!, b!, c!] } });
  const link = (sources: string[]) =>
    fetch(`${emu.url}/_emulator/links`, { method: "POST", body: JSON.stringify({ [MONITORING]: sources }) })
      .then((r) => assert.equal(r.status, 200));
  try {
    seedAccounts(emu, [MONITORING, a!, b!, c!, d!], 2, now - 20 * MIN, now);
    const config = writeConfig(configOf(`{ names: { "${a}": alpha } }`, "discovery_interval: 120\n"));
    const stateFile = path.join(path.dirname(config), "forwarder-state.db");
    const env = forwarderEnv(emu);
    const run = (minutesAgo: number, ...extra: string[]) =>
      runForwarder(["--config", config, "--now", iso(now - minutesAgo * MIN), ...extra], env);
    /** Epoch seconds, as checkpoints hold them. */
    const at = (minutesAgo: number) => (now - minutesAgo * MIN) / 1000;
    const next = (account: string) => {
      const all = Object.entries(readStore(stateFile).streams).filter(([k]) => JSON.parse(k)[0] === account);
      return [...new Set(all.map(([, s]) => s.next))];
    };
    const first = await run(10);
    assert.equal(first.code, 0, first.stderr);
    // c's link removed, d's added: the next listing finds d's streams, and none of c's.
    await link([a!, b!, d!]);
    const second = await run(5);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await periodsIn(emu, d!, "eu-west-1", now - 20 * MIN, now), [now - 8 * MIN]);
    assert.deepEqual(
      await periodsIn(emu, "alpha", "eu-west-1", now - 20 * MIN, now),
      [13, 12, 11, 10, 9, 8].map((m) => now - m * MIN),
    );
    assert.deepEqual(next(c!), [at(12)], "c is left where its link ended");
    const status = async () => {
      const r = await runForwarder(["--config", config, "--status", "--json"], env);
      const rows = (JSON.parse(r.stdout) as SourceStatus[]).filter((s) => s.region === "eu-west-1");
      return {
        code: r.code,
        rows: rows.map((s) => [s.account, s.streams, s.noLongerFound, s.state, s.lastError]),
      };
    };
    assert.deepEqual(await status(), {
      code: 0,
      rows: [[b, 4, 0, "ok", null], [c, 0, 4, "no longer found", null], [d, 4, 0, "ok", null], [
        "alpha",
        4,
        0,
        "ok",
        null,
      ]],
    });
    // b's link removed while the listing is kept: GetMetricData answers Forbidden for b's streams alone.
    await link([a!, d!]);
    const third = await run(4);
    assert.equal(third.code, 1, third.stderr);
    assert.match(
      third.stdout,
      new RegExp(
        `; failed: ${b} eu-west-1 \\(GetMetricData Forbidden through "monitoring"\\), ${b} us-east-1 \\(GetMetricData Forbidden through "monitoring"\\);`,
      ),
    );
    assert.match(
      third.stderr,
      new RegExp(
        `ERROR Cannot read account "${b}" through "monitoring" in eu-west-1: GetMetricData answered Forbidden for AWS/ECS \\w+Utilization: the account is not linked to the monitoring account in this Region, or its link does not share AWS/ECS; its periods are left for a later run`,
      ),
    );
    assert.deepEqual(next(b!), [at(7)], "b's checkpoints stay");
    assert.deepEqual(next("alpha"), [at(6)], "the other accounts' move on");
    assert.deepEqual(next(d!), [at(6)]);
    const refused = await status();
    assert.equal(refused.code, 1);
    assert.deepEqual(refused.rows[0], [b, 4, 0, "failing", "GetMetricData Forbidden"]);
    // A listing whose OwningAccounts does not line up with its metrics fails the account-region.
    emu.faults.owningAccounts = "short";
    const fourth = await run(1);
    assert.equal(fourth.code, 1);
    assert.match(
      fourth.stdout,
      /; failed: monitoring eu-west-1 \(ListMetrics: OwningAccountsMismatch\), monitoring us-east-1/,
    );
    assert.match(
      fourth.stderr,
      /ERROR Cannot forward account "monitoring" in eu-west-1: ListMetrics failed: OwningAccountsMismatch: Cannot tell which accounts the AWS\/ECS metrics listed through "monitoring" belong to: it answered \d+ metrics with \d+ owning accounts, where the API reference promises one a metric/,
    );
  } finally {
    await emu.stop();
  }
});

test("forward.ts --plan through a monitoring account counts per account read, as include, exclude and own_metrics select", async () => {
  const now = Math.floor(Date.now() / MIN) * MIN;
  const [a, b, c] = ids(3);
  const emu = await startEmulator({ links: { [MONITORING]: [a!, b!, c!] } });
  try {
    seedAccounts(emu, [MONITORING, a!, b!, c!], 1, now - 10 * MIN, now);
    const cases: [string, string[]][] = [
      ["true", [a!, b!, c!]],
      [`{ include: ["${a}", "${b}"], names: { "${a}": alpha } }`, [b!, "alpha"]],
      [`{ exclude: ["${b}"] }`, [a!, c!]],
      [`{ include: ["${c}"], own_metrics: true }`, [c!, "monitoring"]],
    ];
    for (const [linked, accounts] of cases) {
      const config = writeConfig(configOf(linked));
      const r = await runForwarder(["--config", config, "--plan", "--json"], forwarderEnv(emu));
      assert.equal(r.code, 0, r.stderr);
      const rows =
        (JSON.parse(r.stdout) as { sources: { account: string; region: string; through?: string }[] })
          .sources.filter((s) => s.region === "eu-west-1");
      assert.deepEqual(rows.map((s) => s.account), ["monitoring", ...accounts], linked);
      assert.ok(rows.slice(1).every((s) => s.through === "monitoring"), linked);
    }
  } finally {
    await emu.stop();
  }
});
