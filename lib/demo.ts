/**
 * npm run demo: starts the emulator with the demo fleet, runs forward.ts against it as a user would (first
 * as if half an hour ago, then now, so the second run backfills), and shows source and destination
 * statistics side by side.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { type CloudWatchApi, connector, type Metric } from "./aws.ts";
import { fetchValues } from "./fetch.ts";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
const STATS = ["SampleCount", "Sum", "Minimum", "Maximum", "Average"];
const ACCOUNTS: [string, string, string[]][] = [
  ["production", "111111111111", ["eu-west-1", "us-east-1"]],
  ["acceptance", "222222222222", ["eu-west-1"]],
  ["test", "333333333333", ["eu-west-1"]],
];

function startEmulator(): Promise<{ url: string; stop(): void }> {
  const child = spawn(bin("bun"), [
    "run",
    path.join(root, "lib", "emulator.ts"),
    "--port",
    "0",
    "--seed",
    "demo",
  ], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.once("data", (d) => {
      const url = /http:\/\/\S+/.exec(String(d))?.[0];
      if (!url) return reject(new Error(`Cannot start the emulator: it said "${String(d).trim()}"`));
      resolve({ url, stop: () => child.kill("SIGTERM") });
    });
  });
}

function forward(args: string[], env: Record<string, string>): Promise<number> {
  console.log(`\n$ bun run forward.ts ${args.join(" ")}`);
  const child = spawn(bin("bun"), ["run", path.join(root, "forward.ts"), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
}

/** The forwarder's environment: the emulator, the shared account's key, and the three role variables. */
function demoEnv(url: string): Record<string, string> {
  const env: Record<string, string> = {
    AWS_ENDPOINT_URL: url,
    // The shared account: an access key that ends in its account id, as the emulator reads it.
    AWS_ACCESS_KEY_ID: "AKIA999999999999",
    AWS_SECRET_ACCESS_KEY: "demo",
    AWS_REGION: "eu-west-1",
    STATE_DIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), "cloudwatch-forwarder-demo-")),
  };
  for (const [name, account] of ACCOUNTS) {
    env[roleVariable(name)] = `arn:aws:iam::${account}:role/CrossAccountTransfer`;
  }
  return env;
}

const roleVariable = (account: string) => `${account.toUpperCase()}_CROSSACCOUNT_TRANSFER_ROLE_ARN`;

/** Source and destination statistics of one forwarded metric, per statistic: period start -> value. */
interface Sides {
  source: Map<number, number>[];
  destination: Map<number, number>[];
}

/**
 * Reads both sides back the way the forwarder reads, assuming each source account's role, and calls `each`
 * for every forwarded metric.
 */
async function compare(
  env: Record<string, string>,
  window: { start: number; end: number },
  each: (title: string, account: string, sides: Sides) => void,
) {
  const cloudWatch = connector({ stsRegion: "eu-west-1" });
  const destination = cloudWatch("eu-west-1", undefined);
  const read = async (api: CloudWatchApi, metric: Metric) => {
    const values = STATS.map(() => new Map<number, number>());
    const items = STATS.map((stat) => ({ metric, stat, unit: undefined }));
    await fetchValues(api, items, window, 60, (k, t, v) => values[k]!.set(t, v));
    return values;
  };
  for (const [name, , regions] of ACCOUNTS) {
    for (const region of regions) {
      const source = cloudWatch(region, { roleArn: env[roleVariable(name)]!, externalId: undefined });
      for (const metricName of ["CPUUtilization", "MemoryUtilization"]) {
        const listed = await source.listMetrics({
          Namespace: "AWS/ECS",
          MetricName: metricName,
          Dimensions: [{ Name: "ServiceName" }],
        });
        for (const m of listed.metrics) {
          const added = [{ Name: "SourceAccount", Value: name }, { Name: "SourceRegion", Value: region }];
          const forwarded = {
            Namespace: "Forwarded/AWS/ECS",
            MetricName: metricName,
            Dimensions: [...m.Dimensions, ...added],
          };
          const title = `${name} ${region} ${metricName} ${
            m.Dimensions.map((d) => `${d.Name}=${d.Value}`).join(" ")
          }`;
          each(title, name, {
            source: await read(source, m),
            destination: await read(destination, forwarded),
          });
        }
      }
    }
  }
}

/** The newest three periods of a metric, source and destination side by side. */
function printTable(title: string, { source, destination }: Sides) {
  const rows = [...source[0]!.keys()].sort();
  const row = (side: Map<number, number>[], t: number) =>
    side.map((s) => (s.get(t) ?? NaN).toFixed(2).padStart(8)).join("");
  const header = ["count", "sum", "min", "max", "avg"].map((h) => h.padStart(8)).join("");
  console.log(`\n${title}`);
  console.log(
    `  ${"".padEnd(7)}${"source (AWS/ECS)".padStart(40)}  |${"destination (Forwarded/AWS/ECS)".padStart(40)}`,
  );
  console.log(`  ${"period".padEnd(7)}${header}  |${header}`);
  for (const t of rows.slice(-3)) {
    const at = new Date(t * 1000).toISOString().slice(11, 16);
    console.log(`  ${at.padEnd(7)}${row(source, t)}  |${row(destination, t)}`);
  }
}

async function demo(url: string): Promise<number> {
  const env = demoEnv(url);
  Object.assign(process.env, env);
  console.log(`Emulator with the demo fleet at ${url}; destination account 999999999999.`);
  const now = Math.floor(Date.now() / 60_000) * 60;
  const earlier = new Date((now - 30 * 60) * 1000).toISOString();
  let code = await forward(["--now", earlier], env);
  code ||= await forward([], env);
  code ||= await forward(["--status"], env);
  if (code !== 0) throw new Error(`forward.ts exited with ${code}`);
  let periods = 0, matched = 0, shown = 0;
  await compare(env, { start: now - 33 * 60, end: now - 2 * 60 }, (title, account, sides) => {
    for (const t of sides.source[0]!.keys()) {
      periods++;
      if (sides.source.every((s, k) => s.get(t) === sides.destination[k]!.get(t))) matched++;
    }
    if (shown < 2 && account !== "test") {
      shown++;
      printTable(title, sides);
    }
  });
  console.log(
    `\n${matched} of ${periods} forwarded periods have all five statistics equal in the destination.`,
  );
  return matched === periods && periods > 0 ? 0 : 1;
}

const emulator = await startEmulator();
try {
  process.exitCode = await demo(emulator.url);
} finally {
  emulator.stop();
}
