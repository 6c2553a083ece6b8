/**
 * The soak: hours of forwarder runs, a minute apart (--now), against an emulator as loose as CloudWatch may be,
 * then `--audit` over the whole window and a comparison of its own. Prints figures; exits 1 if any period is
 * not exact, or if the audit and the comparison disagree. Not part of `npm test`: it takes a while.
 *
 *   npm run soak -- [--hours 6] [--runtime bun|deno|both] [--repeat-rate 0.5] [--late-rate 0.1]
 *                   [--late-by 300] [--lost-rate 0.2] [--services 20]
 *
 * Faults, from the emulator's own model of them: ListMetrics names a listed metric again (--repeat-rate), a
 * share of the samples a source publishes is readable only --late-by seconds after its time (--late-rate),
 * and PutMetricData calls are applied and then their kept-alive connection reset unanswered (--lost-rate).
 * Runs: one a minute, with a downtime of 39 minutes in the second hour (backfilled by the run after it) and a
 * replay of an hour in the fourth (--from/--to); then 25 minutes more of runs, so that the last periods are
 * read again for late samples, and the audit of every period of the hours asked for.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { GetMetricDataCommand, type Metric } from "@aws-sdk/client-cloudwatch";
import { type Emulator, startEmulator } from "../lib/emulator.ts";
import { ACCOUNTS, CONFIG, DEST, forwarderEnv, MIN, seedFleet } from "./fleet.ts";
import { cloudWatch, deno, runForwarder } from "./helpers.ts";

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    hours: { type: "string", default: "6" },
    runtime: { type: "string", default: "both" },
    "repeat-rate": { type: "string", default: "0.5" },
    "late-rate": { type: "string", default: "0.1" },
    "late-by": { type: "string", default: "300" },
    "lost-rate": { type: "string", default: "0.2" },
    services: { type: "string", default: "20" },
  },
});
const HOURS = Number(flags.hours);
/** Runs after the hours audited: enough for the last periods to be read again (twice recheck_after, and some). */
const TAIL_MINUTES = 25;
const STATS = ["SampleCount", "Sum", "Minimum", "Maximum"] as const;
const iso = (t: number) => new Date(t).toISOString();

const runtimes = flags.runtime === "both" ? ["bun", "deno"] : [flags.runtime!];
const command = (rt: string) =>
  rt === "deno"
    ? deno(["--allow-net", "--allow-env", "--allow-read", "--allow-write"])
    : { command: new URL("../node_modules/.bin/bun", import.meta.url).pathname, args: ["run"] };

interface Figures {
  runtime: string;
  runs: number;
  failedRuns: number;
  wallSeconds: number;
  audit: Record<string, number>;
  auditExit: number | null;
  compared: { periods: number; exact: number };
  /** PutMetricData in the destination: as the runs' summaries count them, received and applied. */
  writes: { counted: number; sent: number; applied: number };
}

async function soak(rt: string): Promise<Figures> {
  const started = performance.now();
  const end = Math.floor(Date.now() / MIN) * MIN;
  const start = end - HOURS * 60 * MIN;
  let clock = end + TAIL_MINUTES * MIN;
  const emu = await startEmulator({
    now: () => clock,
    listRepeatRate: Number(flags["repeat-rate"]),
    lateRate: Number(flags["late-rate"]),
    lateBySeconds: Number(flags["late-by"]),
  });
  try {
    await seedFleet(emu, start - 30 * MIN, end + TAIL_MINUTES * MIN, Number(flags.services));
    emu.faults.putAppliedResetRate = Number(flags["lost-rate"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fwd-soak-${rt}-`));
    const config = path.join(dir, "forwarder.yaml");
    fs.writeFileSync(config, `self_metrics: false\n${CONFIG.replace("    external_id: prod-ext-id\n", "")}`);
    const run = async (t: number, extra: string[] = []) => {
      clock = t;
      return await runForwarder(["--config", config, "--now", iso(t), ...extra], forwarderEnv(emu), {
        command: command(rt),
      });
    };
    let runs = 0;
    let failedRuns = 0;
    let counted = 0;
    const note = (r: { code: number | null; stdout: string }) => {
      runs++;
      counted += Number(/PutMetricData (\d+)/.exec(r.stdout)?.[1] ?? 0);
      if (r.code !== 0) failedRuns++;
    };
    const downtime = { from: start + 70 * MIN, to: start + 109 * MIN };
    for (let t = start; t <= end + TAIL_MINUTES * MIN; t += MIN) {
      if (t >= downtime.from && t < downtime.to) continue;
      const r = await run(t);
      note(r);
      if (r.code !== 0) {
        console.error(
          `${rt} ${iso(t)}: exit ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`,
        );
      }
      if (t === start + 200 * MIN) {
        note(await run(t, ["--from", iso(start + 120 * MIN), "--to", iso(start + 180 * MIN)]));
      }
      if ((t - start) % (60 * MIN) === 0) console.error(`${rt}: ${iso(t)}, ${runs} runs`);
    }
    // The writes seen at the endpoint: a write sent twice below the forwarder would be counted twice here.
    const c = emu.counts()[DEST]?.["eu-west-1"];
    const writes = {
      counted,
      sent: c?.calls["PutMetricData"] ?? 0,
      applied: c?.billed["PutMetricData"] ?? 0,
    };
    emu.faults.putAppliedResetRate = 0;
    const t = end + TAIL_MINUTES * MIN;
    const window = { from: start, to: end };
    const audit = await run(t, ["--audit", "--from", iso(window.from), "--to", iso(window.to), "--json"]);
    const doc = JSON.parse(audit.stdout || "{}") as { accountRegions?: Record<string, number>[] };
    const totals: Record<string, number> = {};
    for (const a of doc.accountRegions ?? []) {
      for (const k of ["exact", "short", "missing", "over", "differs", "pending"]) {
        totals[k] = (totals[k] ?? 0) + a[k]!;
      }
    }
    return {
      runtime: rt,
      runs,
      failedRuns,
      wallSeconds: Math.round((performance.now() - started) / 1000),
      audit: totals,
      auditExit: audit.code,
      compared: await compare(emu, window.from, window.to),
      writes,
    };
  } finally {
    await emu.stop();
  }
}

/**
 * The soak's own comparison, apart from the forwarder's audit: every ECS service stream the sources have (each
 * once, however ListMetrics repeats it), its four statistics per period in the source and the destination.
 */
async function compare(emu: Emulator, from: number, to: number) {
  const services = Number(flags.services);
  const sources: [string, string, string, number][] = [
    ["production", ACCOUNTS.production, "eu-west-1", 3],
    ["production", ACCOUNTS.production, "us-east-1", 3],
    ["acceptance", ACCOUNTS.acceptance, "eu-west-1", 3],
    ["big", ACCOUNTS.big, "eu-west-1", services],
  ];
  let periods = 0;
  let exact = 0;
  for (const [name, account, region, count] of sources) {
    // As tests/fleet.ts seeds them: each source's services, and Acme/App's one metric where it has few.
    const metrics: Metric[] = [];
    for (const metricName of ["CPUUtilization", "MemoryUtilization"]) {
      for (let s = 0; s < count; s++) {
        const dims = [{ Name: "ClusterName", Value: "shared" }, { Name: "ServiceName", Value: `svc-${s}` }];
        metrics.push({ Namespace: "AWS/ECS", MetricName: metricName, Dimensions: dims });
      }
    }
    if (count <= 3) {
      metrics.push({
        Namespace: "Acme/App",
        MetricName: "Latency",
        Dimensions: [{ Name: "Service", Value: "checkout" }],
      });
    }
    for (const m of metrics) {
      const target: Metric = {
        Namespace: `Forwarded/${m.Namespace}`,
        MetricName: m.MetricName!,
        Dimensions: [...m.Dimensions!, { Name: "SourceAccount", Value: name }, {
          Name: "SourceRegion",
          Value: region,
        }],
      };
      const source = await read(emu, account, region, m, from, to);
      if (source.size === 0) continue;
      const dest = await read(emu, DEST, "eu-west-1", target, from, to);
      for (const [t, s] of source) {
        periods++;
        const d = dest.get(t);
        if (
          d && d[0] === s[0] && Math.abs(d[1]! - s[1]!) <= 1e-9 * Math.max(1, Math.abs(s[1]!)) &&
          d[2] === s[2] && d[3] === s[3]
        ) {
          exact++;
        }
      }
    }
  }
  return { periods, exact };
}

async function read(
  emu: Emulator,
  account: string,
  region: string,
  metric: Metric,
  from: number,
  to: number,
) {
  const out = new Map<number, number[]>();
  let token: string | undefined;
  do {
    // With the SDK's retries: the emulator holds these reads to GetMetricData's quota too.
    const r = await cloudWatch(emu.url, account, region, 10).send(
      new GetMetricDataCommand({
        StartTime: new Date(from),
        EndTime: new Date(to),
        NextToken: token,
        MetricDataQueries: STATS.map((stat, i) => ({
          Id: `q${i}`,
          MetricStat: { Metric: metric, Period: 60, Stat: stat },
        })),
      }),
    );
    for (const res of r.MetricDataResults ?? []) {
      const i = Number(res.Id!.slice(1));
      res.Timestamps!.forEach((ts, k) => {
        const t = ts.getTime();
        const v = out.get(t) ?? [NaN, NaN, NaN, NaN];
        v[i] = res.Values![k]!;
        out.set(t, v);
      });
    }
    token = r.NextToken;
  } while (token);
  return out;
}

const settled = await Promise.allSettled(runtimes.map(soak));
let bad = false;
const results: Figures[] = [];
settled.forEach((r, i) => {
  if (r.status === "fulfilled") results.push(r.value);
  else {
    bad = true;
    console.log(`${runtimes[i]}: the soak itself failed: ${r.reason}`);
  }
});
for (const f of results) {
  const a = f.audit;
  const agree = f.compared.exact === (a["exact"] ?? -1) + 0 &&
    f.compared.periods === f.compared.exact;
  const exact = (a["short"] ?? 1) + (a["missing"] ?? 1) + (a["over"] ?? 1) + (a["differs"] ?? 1) === 0;
  if (
    !agree || !exact || f.auditExit !== 0 || f.writes.sent !== f.writes.applied ||
    f.writes.counted !== f.writes.sent
  ) bad = true;
  console.log(
    `${f.runtime}: ${f.runs} runs (${f.failedRuns} exit non-zero) in ${f.wallSeconds} s; audit (exit ${f.auditExit}): ${
      ["exact", "short", "missing", "over", "differs", "pending"].map((k) => `${a[k] ?? "?"} ${k}`).join(", ")
    }; own comparison: ${f.compared.exact} of ${f.compared.periods} periods exact; PutMetricData counted by the runs ${f.writes.counted}, received ${f.writes.sent}, applied ${f.writes.applied}`,
  );
}
console.log(JSON.stringify(results));
process.exitCode = bad ? 1 : 0;
