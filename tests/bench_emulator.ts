/**
 * Emulator benchmark: prints figures, asserts nothing (timings belong here, not in tests).
 *   node_modules/.bin/bun run tests/bench_emulator.ts    (or: deno run -A tests/bench_emulator.ts)
 * 1. 1,000 GetMetricData calls of 500 queries each, through the SDK, against an emulator in its own process;
 *    the wall time a call, and the emulator's CPU time (from /proc, on Linux).
 * 2. The benchmark's fleet, 1,000,000 streams (tests/bench_fleet.ts), in an emulator process of its own: its
 *    RSS, and its CPU time per ListMetrics page as the forwarder lists, per
 *    GetMetricData call of 500 queries over one period, and per PutMetricData call of 1,000 statistic sets to
 *    new streams and to the same streams again.
 * 3. The emulator's memory with 100,000 metric streams of 10 samples each.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import process from "node:process";
import {
  type CloudWatchClient,
  GetMetricDataCommand,
  ListMetricsCommand,
  type ListMetricsCommandInput,
  type MetricDatum,
  PutMetricDataCommand,
} from "@aws-sdk/client-cloudwatch";
import { startEmulator } from "../lib/emulator.ts";
import { DIMENSIONS, NAMES, NAMESPACE, sourceAccounts, streamOf } from "./bench_fleet.ts";
import { cloudWatch, runtime } from "./helpers.ts";

const MIN = 60_000;
const now = Math.floor(Date.now() / MIN) * MIN;
const rt = runtime();
/** The fleet of figure 2: the size `npm run bench -- --accounts 10 --regions 2 --streams 50000` runs. */
const FLEET = { accounts: 10, regions: 2, streams: 50_000 };

/** Starts a script under this runtime; resolves with the child and the first line it prints. */
function serve(script: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const path = new URL(script, import.meta.url).pathname;
  const run = rt.name === "bun" ? ["run", path, ...args] : ["run", "--allow-all", path, ...args];
  // stdin stays open: bench_fleet.ts exits when it closes.
  const child = spawn(rt.command, run, { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += String(d);
      if (out.includes("\n")) resolve({ child, line: out.split("\n")[0]! });
    });
    child.on("exit", (code) => reject(new Error(`Cannot start ${script}: it exited with ${code}`)));
  });
}

/** A process's CPU milliseconds so far (user and system, from /proc), or NaN where there is no /proc. */
function cpuMs(pid: number): number {
  try {
    // utime and stime, in clock ticks of 10 ms, are the 12th and 13th fields after the command name.
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Runs `calls` calls one after another; prints the wall and the emulator's CPU milliseconds a call. */
async function perCall(label: string, pid: number, calls: number, call: (i: number) => Promise<unknown>) {
  const [cpu, started] = [cpuMs(pid), performance.now()];
  for (let i = 0; i < calls; i++) await call(i);
  const wall = (performance.now() - started) / calls;
  const emulator = (cpuMs(pid) - cpu) / calls;
  console.log(
    `${label}: ${wall.toFixed(2)} ms a call, the emulator's CPU ${
      Number.isNaN(emulator) ? "n/a" : `${emulator.toFixed(2)} ms`
    } a call (${calls.toLocaleString("en")} calls)`,
  );
}

async function queries() {
  // Quotas off: this measures how fast the emulator answers, and 1,000 calls in a row would otherwise be
  // held to the 50 GetMetricData calls a second it grants an account and region.
  const { child, line } = await serve("../lib/emulator.ts", ["--port", "0", "--no-quotas"]);
  const url = line.trim().split(" ").pop()!;
  try {
    const cw = cloudWatch(url, "111111111111");
    // 500 streams, an hour of three samples a minute.
    for (let s = 0; s < 500; s += 5) {
      const data = [];
      for (let k = s; k < s + 5; k++) {
        for (let m = 0; m < 60; m++) {
          data.push({
            MetricName: "CPU",
            Dimensions: [{ Name: "Service", Value: `svc-${k}` }],
            Timestamp: new Date(now - (60 - m) * MIN),
            Values: [1, 2, 3],
          });
        }
      }
      await cw.send(new PutMetricDataCommand({ Namespace: "Bench", MetricData: data }));
    }
    const queries = Array.from({ length: 500 }, (_, k) => ({
      Id: `q${k}`,
      MetricStat: {
        Metric: {
          Namespace: "Bench",
          MetricName: "CPU",
          Dimensions: [{ Name: "Service", Value: `svc-${k}` }],
        },
        Period: 60,
        Stat: k % 5 === 0 ? "p99" : "Average",
      },
    }));
    const input = { StartTime: new Date(now - 60 * MIN), EndTime: new Date(now), MetricDataQueries: queries };
    let points = 0;
    await perCall("GetMetricData: 500 queries over 60 periods", child.pid!, 1000, async () => {
      const r = await cw.send(new GetMetricDataCommand(input));
      points += r.MetricDataResults!.reduce((n, m) => n + m.Values!.length, 0);
    });
    console.log(`  ${points.toLocaleString("en")} datapoints in all`);
  } finally {
    child.kill("SIGTERM");
  }
}

/** Figure 2: the benchmark's fleet in an emulator process of its own, read and written as the forwarder does. */
async function fleet() {
  const [from, to] = [now - 3 * MIN, now - MIN];
  const args = Object.entries({ ...FLEET, from, to }).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const { child, line } = await serve("./bench_fleet.ts", [...args, "--no-quotas"]);
  const { url, streams, seed_s } = JSON.parse(line) as { url: string; streams: number; seed_s: number };
  const rss = () => {
    const kb = /VmRSS:\s+(\d+)/.exec(
      fs.existsSync("/proc") ? fs.readFileSync(`/proc/${child.pid}/status`, "utf8") : "",
    );
    return kb ? `${(Number(kb[1]) / 1024).toFixed(0)} MB` : "n/a";
  };
  console.log(
    `Fleet: ${streams.toLocaleString("en")} streams seeded in ${seed_s.toFixed(1)} s; emulator RSS ${rss()}`,
  );
  try {
    const source = cloudWatch(url, sourceAccounts(1)[0]!);
    // Reads first: their warm-up takes the collection of what seeding left behind.
    await reads(source, child.pid!, to);
    await listings(source, child.pid!);
    await writes(cloudWatch(url, "999999999999"), child.pid!, to);
    console.log(`Fleet: emulator RSS ${rss()} at the end`);
  } finally {
    child.stdin!.end();
  }
}

/** One account-region's listing, as the forwarder lists it; then each of its pages again, measured. */
async function listings(cw: CloudWatchClient, pid: number) {
  const requests: ListMetricsCommandInput[] = [];
  for (const name of NAMES) {
    let token: string | undefined;
    do {
      const Dimensions = DIMENSIONS.map((Name) => ({ Name }));
      requests.push({
        Namespace: NAMESPACE,
        MetricName: name,
        Dimensions,
        ...(token ? { NextToken: token } : {}),
      });
      token = (await cw.send(new ListMetricsCommand(requests.at(-1)!))).NextToken;
    } while (token);
  }
  const label = `ListMetrics: a page of 500 of ${
    (FLEET.streams / NAMES.length).toLocaleString("en")
  } streams`;
  await perCall(label, pid, requests.length, (i) => cw.send(new ListMetricsCommand(requests[i]!)));
}

/** The statistics the forwarder reads of a stream for a period. */
const STATISTICS = ["SampleCount", "Sum", "Minimum", "Maximum"];

/** GetMetricData as the forwarder reads: 125 streams' statistics over the last period seeded. */
async function reads(cw: CloudWatchClient, pid: number, to: number) {
  const input = (i: number) => ({
    StartTime: new Date(to - MIN),
    EndTime: new Date(to),
    MetricDataQueries: Array.from({ length: 500 }, (_, k) => {
      const { name, dimensions } = streamOf((i * 125 + Math.floor(k / 4)) % FLEET.streams);
      const Dimensions = Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value }));
      const Metric = { Namespace: NAMESPACE, MetricName: name, Dimensions };
      return { Id: `q${k}`, MetricStat: { Metric, Period: 60, Stat: STATISTICS[k % 4]! } };
    }),
  });
  const call = (i: number) => cw.send(new GetMetricDataCommand(input(i)));
  for (let i = 0; i < 50; i++) await call(i);
  await perCall("GetMetricData: 500 queries over one period", pid, 200, call);
}

/** PutMetricData as the forwarder writes: 1,000 statistic sets a call, with its two dimensions added. */
async function writes(cw: CloudWatchClient, pid: number, to: number) {
  const data = (i: number, t: number): MetricDatum[] =>
    Array.from({ length: 1000 }, (_, k) => {
      const { name, dimensions } = streamOf(i * 1000 + k);
      const Dimensions = Object.entries({
        ...dimensions,
        SourceAccount: "100000000001",
        SourceRegion: "eu-west-1",
      })
        .map(([Name, Value]) => ({ Name, Value }));
      const StatisticValues = { SampleCount: 3, Sum: 6.5 + k, Minimum: 1, Maximum: 4.25 };
      return { MetricName: name, Dimensions, Timestamp: new Date(t), StatisticValues, StorageResolution: 60 };
    });
  const put = (t: number) => (i: number) =>
    cw.send(new PutMetricDataCommand({ Namespace: `Forwarded/${NAMESPACE}`, MetricData: data(i, t) }));
  await perCall("PutMetricData: 1,000 statistic sets to new streams", pid, 50, put(to - 2 * MIN));
  await perCall("PutMetricData: 1,000 statistic sets to the same streams", pid, 50, put(to - MIN));
}

async function memory() {
  const before = process.memoryUsage();
  // Quotas off, as above: the figures are the emulator's own, not CloudWatch's limits.
  const emu = await startEmulator({ quotas: false });
  for (let i = 0; i < 100_000; i++) {
    for (let m = 0; m < 10; m++) {
      emu.seed({
        account: "111111111111",
        region: "eu-west-1",
        namespace: "Bench",
        name: "CPU",
        timestamp: now - m * MIN,
        values: [m],
        dimensions: { Service: `svc-${i}`, Cluster: "c" },
      });
    }
  }
  const after = process.memoryUsage();
  const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
  console.log(
    `Memory: ${emu.streamCount().toLocaleString("en")} streams x 10 samples: heap +${
      mb(after.heapUsed - before.heapUsed)
    }, rss +${mb(after.rss - before.rss)} (${
      ((after.heapUsed - before.heapUsed) / 100_000).toFixed(0)
    } bytes a stream)`,
  );
  await emu.stop();
}

console.log(`Runtime: ${rt.name} ${process.versions.bun ?? process.versions["deno"] ?? ""}`);
await queries();
await fleet();
await memory();
