/**
 * The forwarder's benchmark: prints figures, asserts nothing (timings belong here, not in tests).
 *   npm run bench -- [--accounts 3] [--regions 2] [--streams 2000] [--periods 1] [--latency-ms 25]
 *                    [--runtime bun|deno] [--quotas on|off] [--monitoring on|off]
 *   (or: node_modules/.bin/deno run -A tests/bench.ts [the same flags])
 *
 * What it measures: one steady run of forward.ts, as a process under --runtime, over a fleet of `accounts` x
 * `regions` account-regions of `streams` AWS/ECS metric streams each (tests/bench_fleet.ts), that owes
 * `periods` one-minute periods per stream, lists every account-region again and continues its checkpoints
 * (with --monitoring on, the same fleet read through one monitoring account the accounts are linked to, one
 * config entry with linked_accounts: CloudWatch cross-account observability):
 * - its wall time from spawn to exit, its peak RSS, its exit code and output;
 * - the emulator's calls per operation during the run, throttled calls and billed GetMetricData metrics,
 *   each against the minimum CloudWatch's limits allow for this fleet (minimumCalls): 1.00 is the target;
 * - the wall time against the quota-aware critical path (boundSeconds): 1.00 would be a perfect run;
 * - whether a sample of streams arrived exact: SampleCount, Sum, Minimum and Maximum per period in the
 *   destination equal the source's.
 * The last line printed is one JSON object with every figure, for scripts that compare runs.
 *
 * How: an emulator with the latency and quotas asked for is seeded with the fleet over the periods needed. A
 * warm-up run at T - periods minutes creates the checkpoint store, lists the streams and forwards one period;
 * the measured run at T then owes `periods` periods (config: interval = periods x 60 s, so its previous run is
 * within two intervals and the checkpoints are trusted; discovery_interval = 60 s, so it lists again).
 *
 * The emulator runs in a process of its own (tests/bench_fleet.ts, under the runtime running this file), which
 * seeds its store directly before it serves: no API call per datum, a million streams in a few seconds. In
 * this process it would serve the forwarder on the event loop that times the run and polls its memory: a
 * ListMetrics page that scans 50,000 streams, or the collection of a heap that holds a million of them, would
 * delay the exit event being timed. In its own process, on a two-core machine, the forwarder and the emulator
 * each have a core and this file's loop stays idle. The emulator's CPU time during the run is reported too:
 * it serves on one thread, so that time is about a floor under the wall time that no forwarder can go below.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { GetMetricDataCommand, type Metric } from "@aws-sdk/client-cloudwatch";
import type { Emulator } from "../lib/emulator.ts";
import {
  GMD_DEFAULT_MAX_DATAPOINTS,
  GMD_MAX_QUERIES,
  LIST_PAGE_SIZE,
  PUT_MAX_DATUMS,
  QUOTA_WINDOW_MS,
  STATISTICS_PER_BILLED_METRIC,
  TPS_QUOTAS,
} from "../lib/emulator/limits.ts";
import {
  DIMENSIONS,
  type Fleet,
  MONITORING,
  NAMES,
  NAMESPACE,
  sourceAccounts,
  sourceRegions,
  streamOf,
} from "./bench_fleet.ts";
import { DEST, MIN, writeConfig } from "./fleet.ts";
import { cloudWatch, deno, type ProcessResult, runtime, startForwarder } from "./helpers.ts";

interface Flags extends Fleet {
  periods: number;
  latencyMs: number;
  runtime: "bun" | "deno";
  quotas: boolean;
}

/** Whether the fleet is read through the monitoring account (MONITORING in tests/bench_fleet.ts). */
const linked = (f: Flags) => f.monitoring;

/** The statistics the forwarder reads per stream and period: one StatisticValues datum's worth. */
const STATISTICS = ["SampleCount", "Sum", "Minimum", "Maximum"] as const;
/** The config's delay (seconds): how long after a period ends the forwarder reads it. */
const DELAY_SECONDS = 120;
const DEST_REGION = "eu-west-1";
/** How often the forwarder's memory is read; VmHWM keeps the peak in between, so this only needs to beat exit. */
const RSS_POLL_MS = 5;
/** Streams per account-region whose forwarded data is compared: first, middle and last pairs of names. */
const SAMPLE_STREAMS = 6;
/**
 * How long after a write its data is surely readable: data more than 24 hours old at the write may take up to
 * 48 hours (PutMetricData, API reference), and a backfill writes such data. A minute more for the margin.
 */
const READABLE_AFTER_MS = (48 * 60 + 1) * MIN;
/**
 * The operations counted, GetMetricData split by side: in the sources it is the run's reading, in the
 * destination it is settling (reading what is there already), which a continuous run should not need.
 */
const OPERATIONS = [
  "AssumeRole",
  "ListMetrics",
  "GetMetricData_source",
  "GetMetricData_destination",
  "PutMetricData",
] as const;
type Operation = (typeof OPERATIONS)[number];
type Counts = ReturnType<Emulator["counts"]>;

/** forward.ts's command line per runtime: the documented ones, with checkpoints on. */
const FORWARDER_COMMANDS = {
  bun: { command: new URL("../node_modules/.bin/bun", import.meta.url).pathname, args: ["run"] },
  deno: deno(["--allow-net", "--allow-env", "--allow-read", "--allow-write"]),
};

function parseFlags(argv: string[]): Flags {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      accounts: { type: "string", default: "3" },
      regions: { type: "string", default: "2" },
      streams: { type: "string", default: "2000" },
      periods: { type: "string", default: "1" },
      "latency-ms": { type: "string", default: "25" },
      runtime: { type: "string", default: "bun" },
      quotas: { type: "string", default: "on" },
      monitoring: { type: "string", default: "off" },
    },
    strict: true,
  });
  const count = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`Cannot parse --${name} "${v}": expected ${min} or more`);
    }
    return n;
  };
  if (o.runtime !== "bun" && o.runtime !== "deno") {
    throw new Error(`Cannot parse --runtime "${o.runtime}": expected bun or deno`);
  }
  for (const flag of ["quotas", "monitoring"] as const) {
    if (o[flag] !== "on" && o[flag] !== "off") {
      throw new Error(`Cannot parse --${flag} "${o[flag]}": expected on or off`);
    }
  }
  return {
    accounts: count("accounts", o.accounts, 1),
    regions: count("regions", o.regions, 1),
    streams: count("streams", o.streams, 1),
    periods: count("periods", o.periods, 1),
    latencyMs: count("latency-ms", o["latency-ms"], 0),
    runtime: o.runtime,
    quotas: o.quotas === "on",
    monitoring: o.monitoring === "on",
  };
}

const flagsJson = (f: Flags) => ({
  accounts: f.accounts,
  regions: f.regions,
  streams: f.streams,
  periods: f.periods,
  latency_ms: f.latencyMs,
  runtime: f.runtime,
  quotas: f.quotas ? "on" : "off",
  monitoring: f.monitoring ? "on" : "off",
});

// ---- The emulator process ----

interface FleetEmulator {
  url: string;
  seedSeconds: number;
  child: ChildProcess;
}

/** Starts tests/bench_fleet.ts, which seeds the fleet over [from, to) and then serves; resolves once it does. */
function startFleet(f: Flags, from: number, to: number): Promise<FleetEmulator> {
  const rt = runtime();
  const script = new URL("./bench_fleet.ts", import.meta.url).pathname;
  const args = [
    ...rt.args,
    script,
    ...["--accounts", f.accounts, "--regions", f.regions, "--streams", f.streams].map(String),
    ...["--from", from, "--to", to, "--latency-ms", f.latencyMs].map(String),
    ...(f.quotas ? [] : ["--no-quotas"]),
    ...(f.monitoring ? ["--monitoring"] : []),
  ];
  // stdin stays open: the emulator exits when it closes, so it never outlives this process.
  const child = spawn(rt.command, args, { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const onReady = (d: unknown) => {
      out += String(d);
      if (!out.includes("\n")) return;
      child.stdout!.off("data", onReady);
      const ready = JSON.parse(out.split("\n")[0]!) as { url: string; seed_s: number };
      resolve({ url: ready.url, seedSeconds: ready.seed_s, child });
    };
    child.stdout!.on("data", onReady);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`Cannot start the emulator: it exited with ${code}`)));
  });
}

/** Moves the emulator's clock on by `ms`, as if that much time had passed (see tests/bench_fleet.ts). */
function passTime(emu: FleetEmulator, ms: number): Promise<void> {
  return new Promise((resolve) => {
    emu.child.stdout!.once("data", () => resolve());
    emu.child.stdin!.write(`pass ${ms}\n`);
  });
}

async function countsOf(url: string): Promise<Counts> {
  const r = await fetch(`${url}/_emulator/counts`);
  return (await r.json()) as Counts;
}

// ---- The forwarder process ----

/** The forwarder's config for the fleet, as JSON (which YAML reads as it is). */
function configFor(f: Flags): string {
  return JSON.stringify(
    {
      destination: { region: DEST_REGION },
      defaults: { period: 60, delay: DELAY_SECONDS },
      interval: f.periods * 60,
      discovery_interval: 60,
      accounts: linked(f)
        ? [{
          name: "monitoring",
          role_arn: `arn:aws:iam::${MONITORING}:role/reader`,
          regions: sourceRegions(f.regions),
          linked_accounts: true,
        }]
        : sourceAccounts(f.accounts).map((id) => ({
          name: id,
          role_arn: `arn:aws:iam::${id}:role/transfer`,
          regions: sourceRegions(f.regions),
        })),
      metrics: [{ namespace: NAMESPACE, names: NAMES, dimensions: DIMENSIONS }],
    },
    null,
    2,
  );
}

const forwarderEnv = (url: string) => ({
  AWS_ENDPOINT_URL: url,
  AWS_ACCESS_KEY_ID: `AKIA${DEST}`,
  AWS_SECRET_ACCESS_KEY: "secret",
  AWS_REGION: DEST_REGION,
});

interface Measured extends ProcessResult {
  wallSeconds: number;
  peakRssKb: number;
  /** As of the last poll before exit. */
  cpuSeconds: number;
}

/**
 * The kernel's high-water mark of a process's resident memory (VmHWM, kB), or 0 once it is gone. The kernel
 * keeps the peak itself, so polling finds the true peak however short it was, as long as one read comes
 * after it: sampling the current RSS (VmRSS) would miss peaks between two reads.
 */
function highWaterKb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readProc(pid, "status"));
  return m ? Number(m[1]) : 0;
}

/** USER_HZ: the unit of /proc/<pid>/stat's times, 100 on every Linux architecture the runtimes support. */
const CLOCK_TICKS = 100;

/**
 * CPU seconds a process has used (user and system), or 0 once it is gone: with the wall time, whether it was
 * computing or waiting for answers, and for the emulator, whether it was the one keeping the forwarder waiting.
 */
function cpuSeconds(pid: number): number {
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const fields = readProc(pid, "stat").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLOCK_TICKS;
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return "";
  }
}

/** Runs forward.ts under the runtime asked for; measures wall time from spawn to exit, peak RSS and CPU. */
async function runForward(f: Flags, args: string[], env: Record<string, string>): Promise<Measured> {
  const started = performance.now();
  const { pid, done } = startForwarder(args, env, { command: FORWARDER_COMMANDS[f.runtime] });
  let peakRssKb = 0;
  let cpu = 0;
  const poll = setInterval(() => {
    peakRssKb = Math.max(peakRssKb, highWaterKb(pid));
    cpu = Math.max(cpu, cpuSeconds(pid));
  }, RSS_POLL_MS);
  try {
    const result = await done;
    return { ...result, wallSeconds: (performance.now() - started) / 1000, peakRssKb, cpuSeconds: cpu };
  } finally {
    clearInterval(poll);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

// ---- What the run did, and the least it could have done ----

interface Tally {
  calls: Record<string, number>;
  throttled: Record<string, number>;
  billedGmd: { source: number; destination: number };
}

/** The emulator's counts during the run (after - before), by operation, GetMetricData split by side. */
function tally(before: Counts, after: Counts): Tally {
  const zero = () => Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<string, number>;
  const t: Tally = { calls: zero(), throttled: zero(), billedGmd: { source: 0, destination: 0 } };
  for (const [account, regions] of Object.entries(after)) {
    for (const [region, c] of Object.entries(regions)) {
      const was = before[account]?.[region];
      const side = account === DEST ? "destination" : "source";
      const key = (op: string) => (op === "GetMetricData" ? `GetMetricData_${side}` : op);
      for (const kind of ["calls", "throttled"] as const) {
        for (const [op, n] of Object.entries(c[kind])) {
          t[kind][key(op)] = (t[kind][key(op)] ?? 0) + n - (was?.[kind][op] ?? 0);
        }
      }
      t.billedGmd[side] += (c.billed["GetMetricData"] ?? 0) - (was?.billed["GetMetricData"] ?? 0);
    }
  }
  return t;
}

/**
 * The fewest calls CloudWatch's limits allow for this run, from the fleet as seeded:
 * - AssumeRole: one per role, that is per source account;
 * - ListMetrics: per account-region one listing (one namespace and one dimension set hold both names) of
 *   ceil(streams / 500) pages;
 * - GetMetricData in the sources: per account-region ceil(queries / 500) with queries = streams x 4
 *   statistics, or ceil(periods x queries / 100,800) where the datapoints need more calls;
 * - GetMetricData in the destination: none, since the checkpoints continue;
 * - PutMetricData: ceil(datums / 1,000) over the whole run, one datum per stream and period, and one call for
 *   the forwarder's own metrics, which are in a namespace of their own (a call writes one namespace).
 * Through a monitoring account, its regions are the account-regions, each with every account's streams: one
 * AssumeRole, and per region one listing and ceil(queries / 500) GetMetricData calls of them all.
 */
function minimumCalls(f: Flags): Record<Operation, number> {
  const accountRegions = linked(f) ? f.regions : f.accounts * f.regions;
  const perAccountRegion = linked(f) ? f.accounts * f.streams : f.streams;
  const queries = perAccountRegion * STATISTICS.length;
  const readCalls = Math.max(
    Math.ceil(queries / GMD_MAX_QUERIES),
    Math.ceil((f.periods * queries) / GMD_DEFAULT_MAX_DATAPOINTS),
  );
  return {
    AssumeRole: linked(f) ? 1 : f.accounts,
    ListMetrics: accountRegions * Math.ceil(perAccountRegion / LIST_PAGE_SIZE),
    GetMetricData_source: accountRegions * readCalls,
    // CloudWatch's clock, read before anything else; a steady store reads nothing else back.
    GetMetricData_destination: 1,
    PutMetricData: Math.ceil((perAccountRegion * f.periods * accountRegions) / PUT_MAX_DATUMS) + 1,
  };
}

/** calls / minimum; where the minimum is 0, 1 for no call and null (no finite ratio) for any. */
const ratio = (calls: number, minimum: number) =>
  minimum === 0 ? (calls === 0 ? 1 : null) : round(calls / minimum, 2);

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/**
 * The earliest the last of `calls` calls can be answered, in seconds from the first one's start, under the
 * emulator's rules: a call costs one `latency` (lib/emulator/http.ts sleeps half of it before processing and
 * half after, so a round trip is one latency, not two), and an operation's quota admits `quota` calls in any
 * 1,000 ms per account-region (a sliding window, lib/emulator/quotas.ts), so call k starts no earlier than one
 * second after call k - quota. `chained` calls wait for the one before (the pages of a listing); the others
 * may all be in flight at once (GetMetricData, PutMetricData).
 */
function earliestEnd(calls: number, o: { quota: number; latency: number; chained: boolean }): number {
  const starts: number[] = [];
  for (let k = 0; k < calls; k++) {
    let t = o.chained && k > 0 ? starts[k - 1]! + o.latency : 0;
    if (k >= o.quota) t = Math.max(t, starts[k - o.quota]! + QUOTA_WINDOW_MS / 1000);
    starts.push(t);
  }
  return calls === 0 ? 0 : starts[calls - 1]! + o.latency;
}

/**
 * bound_s, the quota-aware critical path: the shortest a run can take with this latency and these quotas,
 * leaving out the time the forwarder spends on its own (starting up, computing). Per account-region, calls
 * that must follow one another do: AssumeRole, then the pages of its listing one after another, then its
 * GetMetricData calls; each phase takes at least its round trips and no less than its quota allows
 * (earliestEnd, which is max(round trips x latency, calls / quota) made exact for a sliding window: the
 * window lets `quota` calls start at once, so the first `quota` calls cost one round trip, not a second).
 * Every account-region of this fleet is the same, so the largest is any one. After its reads comes the
 * destination's write phase: every PutMetricData of the run against the destination's own quota of 500 a
 * second, one round trip at the least (the last write follows the last read).
 */
function boundSeconds(f: Flags, minimum: Record<Operation, number>) {
  const latency = f.latencyMs / 1000;
  const quota = (op: string) => (f.quotas ? TPS_QUOTAS.get(op)! : Infinity);
  const accountRegions = linked(f) ? f.regions : f.accounts * f.regions;
  const phases = {
    assume: earliestEnd(1, { quota: Infinity, latency, chained: true }),
    list: earliestEnd(minimum.ListMetrics / accountRegions, {
      quota: quota("ListMetrics"),
      latency,
      chained: true,
    }),
    read: earliestEnd(minimum.GetMetricData_source / accountRegions, {
      quota: quota("GetMetricData"),
      latency,
      chained: false,
    }),
    write: earliestEnd(minimum.PutMetricData, { quota: quota("PutMetricData"), latency, chained: false }),
  };
  return { phases, total: phases.assume + phases.list + phases.read + phases.write };
}

// ---- Exactness of a sample ----

type Series = Record<string, [number, number][]>;

/** Every statistic of the statistic set, per period over [from, to), for each metric: in calls of 500 queries. */
async function readStats(
  client: ReturnType<typeof cloudWatch>,
  metrics: Metric[],
  from: number,
  to: number,
): Promise<Series[]> {
  const queries = metrics.flatMap((metric, m) =>
    STATISTICS.map((stat) => ({
      Id: `m${m}_${stat}`,
      MetricStat: { Metric: metric, Period: 60, Stat: stat },
    }))
  );
  const out: Series[] = metrics.map(() => ({}));
  for (let i = 0; i < queries.length; i += GMD_MAX_QUERIES) {
    let token: string | undefined;
    do {
      const r = await client.send(
        new GetMetricDataCommand({
          StartTime: new Date(from),
          EndTime: new Date(to),
          ScanBy: "TimestampAscending",
          MetricDataQueries: queries.slice(i, i + GMD_MAX_QUERIES),
          ...(token ? { NextToken: token } : {}),
        }),
      );
      for (const res of r.MetricDataResults ?? []) {
        const [m, stat] = res.Id!.slice(1).split("_") as [string, string];
        const points = res.Timestamps!.map((t, k): [number, number] => [t.getTime(), res.Values![k]!]);
        (out[Number(m)]![stat] ??= []).push(...points);
      }
      token = r.NextToken;
    } while (token);
  }
  return out;
}

/** Indexes of the streams compared per account-region: the first, middle and last ones, both names each. */
function samplePicks(streams: number): number[] {
  const mid = Math.floor(streams / 4) * 2;
  const picks = [0, 1, mid, mid + 1, streams - 2, streams - 1].filter((j) => j >= 0 && j < streams);
  return [...new Set(picks)].slice(0, SAMPLE_STREAMS);
}

/**
 * Compares a few streams per account-region, source and destination, over [from, to): the same statistics per
 * period, and as many periods as were seeded (so that two empty answers do not pass for exact).
 */
async function verifySample(url: string, f: Flags, from: number, to: number) {
  const periods = (to - from) / MIN;
  const sources: Series[] = [];
  const targets: Metric[] = [];
  for (const account of sourceAccounts(f.accounts)) {
    for (const region of sourceRegions(f.regions)) {
      const streams = samplePicks(f.streams).map(streamOf);
      const dims = (d: Record<string, string>) => Object.entries(d).map(([Name, Value]) => ({ Name, Value }));
      const metrics = streams.map((s) => ({
        Namespace: NAMESPACE,
        MetricName: s.name,
        Dimensions: dims(s.dimensions),
      }));
      sources.push(...await readStats(cloudWatch(url, account, region, 3), metrics, from, to));
      targets.push(...streams.map((s) => ({
        Namespace: `Forwarded/${NAMESPACE}`,
        MetricName: s.name,
        Dimensions: dims({ ...s.dimensions, SourceAccount: account, SourceRegion: region }),
      })));
    }
  }
  const forwarded = await readStats(cloudWatch(url, DEST, DEST_REGION, 3), targets, from, to);
  const wrong =
    sources.filter((s, i) =>
      STATISTICS.some((st) => s[st]?.length !== periods) || JSON.stringify(s) !== JSON.stringify(forwarded[i])
    ).length;
  return { exact: wrong === 0, streams: sources.length, periods: sources.length * periods, wrong };
}

// ---- Report ----

const n = (x: number) => x.toLocaleString("en");
const pad = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(28) : c.padStart(10))).join("");

function printOutput(label: string, text: string, maxLines = 10) {
  const lines = text.trimEnd().split("\n").filter(Boolean);
  for (const l of lines.slice(0, maxLines)) console.log(`  ${label} ${l}`);
  if (lines.length > maxLines) console.log(`  ${label} ... (${lines.length - maxLines} more lines)`);
}

function printCalls(t: Tally, minimum: Record<Operation, number>) {
  console.log(pad(["operation", "calls", "minimum", "ratio", "throttled"]));
  const ops = [...new Set([...OPERATIONS, ...Object.keys(t.calls)])];
  for (const op of ops) {
    const min = minimum[op as Operation] ?? 0;
    const r = ratio(t.calls[op] ?? 0, min);
    console.log(
      pad([op, n(t.calls[op] ?? 0), n(min), r === null ? "over 0" : r.toFixed(2), n(t.throttled[op] ?? 0)]),
    );
  }
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

// ---- The benchmark ----

async function main(argv: string[]) {
  const f = parseFlags(argv);
  const accountRegions = f.accounts * f.regions;
  const streams = f.streams * accountRegions;
  console.log(`flags: ${JSON.stringify(flagsJson(f))}`);
  // T on the minute, near the emulator's clock: it refuses data more than two weeks old.
  const now = Math.floor(Date.now() / MIN) * MIN;
  // The warm-up's period and the periods owed: [T - periods - 1 minutes, T) less the delay.
  const from = now - (f.periods + 1) * MIN - DELAY_SECONDS * 1000;
  const to = now - DELAY_SECONDS * 1000;
  const emu = await startFleet(f, from, to);
  const config = writeConfig(configFor(f));
  try {
    console.log(
      `fleet: ${n(streams)} streams in ${accountRegions} account-regions, ${
        f.periods + 1
      } minutes, seeded in ${
        emu.seedSeconds.toFixed(2)
      } s (emulator under ${runtime().name}, in its own process)`,
    );
    const env = forwarderEnv(emu.url);
    const warm = await runForward(f, ["--config", config, "--now", iso(now - f.periods * MIN)], env);
    console.log(`warm-up run: exit ${warm.code} in ${warm.wallSeconds.toFixed(1)} s`);
    if (warm.code !== 0) {
      throw new Error(`Cannot benchmark: the warm-up run exited ${warm.code}\n${warm.stderr}`);
    }
    await quotaWindowPasses();
    const [before, emulatorCpu] = [await countsOf(emu.url), cpuSeconds(emu.child.pid!)];
    const run = await runForward(f, ["--config", config, "--now", iso(now)], env);
    const calls = tally(before, await countsOf(emu.url));
    const emulatorCpuSeconds = cpuSeconds(emu.child.pid!) - emulatorCpu;
    await quotaWindowPasses();
    // What a backfill wrote more than 3 hours after its time is readable only up to 48 hours later.
    await passTime(emu, READABLE_AFTER_MS);
    const check = await verifySample(emu.url, f, from, to);
    report(f, { run, calls, check, emulatorCpuSeconds });
    if (run.code !== 0) {
      console.error(`FAILED: the measured run of forward.ts exited ${run.code}`);
      process.exitCode = 1;
    }
  } finally {
    emu.child.kill("SIGTERM");
    fs.rmSync(path.dirname(config), { recursive: true, force: true });
  }
}

/** Waits out the quota window, so that one phase's calls take no room from the next's. */
const quotaWindowPasses = () => new Promise((r) => setTimeout(r, QUOTA_WINDOW_MS + 100));

interface Outcome {
  run: Measured;
  calls: Tally;
  check: Awaited<ReturnType<typeof verifySample>>;
  /** CPU seconds the emulator spent during the measured run. */
  emulatorCpuSeconds: number;
}

/** Prints the figures for people, then as one JSON object on the last line, for scripts. */
function report(f: Flags, o: Outcome) {
  const minimum = minimumCalls(f);
  const bound = boundSeconds(f, minimum);
  const fig = figures(f, o, minimum, bound.total);
  const { run, calls: t, check } = o;
  console.log(
    `measured run: exit ${run.code}, wall ${run.wallSeconds.toFixed(2)} s, peak RSS ${
      fig.peak_rss_mb.toFixed(0)
    } MB, CPU ${run.cpuSeconds.toFixed(1)} s; the emulator's CPU ${
      o.emulatorCpuSeconds.toFixed(1)
    } s (a floor under the wall time)`,
  );
  printOutput("stdout|", run.stdout);
  printOutput("stderr|", run.stderr);
  console.log("");
  printCalls(t, minimum);
  const overall = fig.calls_ratio.overall?.toFixed(2) ?? "over 0";
  console.log(pad(["overall", n(sum(t.calls)), n(sum(minimum)), overall, n(fig.throttled)]));
  console.log("");
  // A stream's statistics asked in one call bill ceil(statistics / 5) metrics (pricing page): 4 bill as 1.
  const leastBilled = Math.ceil(STATISTICS.length / STATISTICS_PER_BILLED_METRIC);
  console.log(
    `billed GetMetricData metrics: ${n(t.billedGmd.source + t.billedGmd.destination)} (${
      n(t.billedGmd.destination)
    } in the destination), ${
      fig.billed_gmd_metrics_per_stream.toFixed(2)
    } per stream (minimum ${leastBilled})`,
  );
  const p = bound.phases;
  console.log(
    `bound: ${bound.total.toFixed(3)} s (assume ${p.assume.toFixed(3)} + list ${p.list.toFixed(3)} + read ${
      p.read.toFixed(3)
    } + write ${p.write.toFixed(3)}); wall_ratio ${fig.wall_ratio ?? "-"}`,
  );
  console.log(
    `exact: ${check.exact ? "yes" : "no"} (${check.streams} streams sampled, ${check.periods} periods${
      check.wrong ? `, ${check.wrong} streams differ` : ""
    })`,
  );
  console.log(JSON.stringify(fig));
}

/** Every figure of the run, as the JSON line has them. */
function figures(f: Flags, o: Outcome, minimum: Record<Operation, number>, boundS: number) {
  const t = o.calls;
  const streams = f.streams * f.accounts * f.regions;
  const calls = { ...t.calls, ...Object.fromEntries(OPERATIONS.map((op) => [op, t.calls[op] ?? 0])) };
  return {
    flags: flagsJson(f),
    streams,
    calls,
    minimum,
    calls_ratio: {
      ...Object.fromEntries(OPERATIONS.map((op) => [op, ratio(calls[op]!, minimum[op])])),
      overall: ratio(sum(t.calls), sum(minimum)),
    },
    wall_s: round(o.run.wallSeconds, 3),
    bound_s: round(boundS, 3),
    wall_ratio: boundS > 0 ? round(o.run.wallSeconds / boundS, 2) : null,
    peak_rss_mb: round(o.run.peakRssKb / 1024, 1),
    cpu_s: round(o.run.cpuSeconds, 2),
    emulator_cpu_s: round(o.emulatorCpuSeconds, 2),
    throttled: sum(t.throttled),
    throttled_by_operation: t.throttled,
    billed_gmd_metrics_per_stream: round((t.billedGmd.source + t.billedGmd.destination) / streams, 2),
    exit_code: o.run.code,
    exact: o.check.exact,
  };
}

if (import.meta.main) await main(process.argv.slice(2));
