/**
 * Emulator benchmark: prints figures, asserts nothing (timings belong here, not in tests).
 *   node_modules/.bin/bun run tests/bench_emulator.ts    (or: deno run -A tests/bench_emulator.ts)
 * 1. 1,000 GetMetricData calls of 500 queries each, through the SDK, against an emulator in its own process.
 * 2. The emulator's memory with 100,000 metric streams of 10 samples each.
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { GetMetricDataCommand, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { startEmulator } from "../lib/emulator.ts";
import { cloudWatch, runtime } from "./helpers.ts";

const MIN = 60_000;
const now = Math.floor(Date.now() / MIN) * MIN;
const rt = runtime();

async function queries() {
  const script = new URL("../lib/emulator.ts", import.meta.url).pathname;
  // Quotas off: this measures how fast the emulator answers, and 1,000 calls in a row would otherwise be
  // held to the 50 GetMetricData calls a second it grants an account and region.
  const options = ["--port", "0", "--no-quotas"];
  const args = rt.name === "bun"
    ? ["run", script, ...options]
    : ["run", "--allow-net", "--allow-env", script, ...options];
  const child = spawn(rt.command, args, { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve) =>
    child.stdout.once("data", (d) => resolve(String(d).trim().split(" ").pop()!))
  );
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
    const started = performance.now();
    let points = 0;
    const calls = 1000;
    for (let i = 0; i < calls; i++) {
      const r = await cw.send(new GetMetricDataCommand(input));
      points += r.MetricDataResults!.reduce((a, m) => a + m.Values!.length, 0);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `GetMetricData: 1,000 calls x 500 queries (60 periods each, ${
        points.toLocaleString("en")
      } datapoints) in ${seconds.toFixed(1)} s: ${(calls / seconds).toFixed(0)} calls/s, ${
        ((seconds * 1000) / calls).toFixed(1)
      } ms a call`,
    );
  } finally {
    child.kill("SIGTERM");
  }
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
await memory();
