/**
 * The benchmark's fleet: source accounts x regions x streams of AWS/ECS service metrics, seeded straight into
 * an emulator's store with emu.seed (no API call, no validation), one call per stream and minute carrying a few
 * samples, so that a million streams take seconds.
 *
 * Run as a script, it is the benchmark's emulator process: it starts an emulator, seeds the fleet, prints one
 * JSON line `{"url", "streams", "seed_s"}` once it serves, and exits when its stdin closes (its parent gone).
 * A line `pass MS` on its stdin moves its clock on by MS, as if that much time had passed, and is answered
 * `passed`: backfilled data becomes readable only hours after it was written, as in CloudWatch.
 *   bun run tests/bench_fleet.ts --accounts N --regions N --streams N --from MS --to MS [--latency-ms N]
 *                                [--no-quotas] [--monitoring]
 * --monitoring links every source account to MONITORING (CloudWatch cross-account observability).
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type RawPut, startEmulator } from "../lib/emulator.ts";
import { MIN } from "./fleet.ts";

export interface Fleet {
  accounts: number;
  regions: number;
  /** Streams per account-region. */
  streams: number;
  /** Whether the source accounts are linked to MONITORING, and read through it. */
  monitoring: boolean;
}

/** The monitoring account the source accounts are linked to, with --monitoring. */
export const MONITORING = "444444444444";

export const NAMESPACE = "AWS/ECS";
export const NAMES = ["CPUUtilization", "MemoryUtilization"] as const;
export const DIMENSIONS = ["ClusterName", "ServiceName"] as const;
/** Source regions in the order a fleet takes them. */
const REGIONS = [
  "eu-west-1",
  "us-east-1",
  "eu-central-1",
  "us-west-2",
  "ap-southeast-1",
  "ap-northeast-1",
  "eu-north-1",
  "us-east-2",
  "ca-central-1",
  "sa-east-1",
];
/** Services per cluster: ListMetrics sees many clusters, as in a real account. */
const SERVICES_PER_CLUSTER = 100;

/** Twelve-digit source account ids, none of them the destination's. */
export const sourceAccounts = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => String(100_000_000_001 + i));

export function sourceRegions(n: number): string[] {
  if (n > REGIONS.length) throw new Error(`Cannot make a fleet of ${n} regions: at most ${REGIONS.length}`);
  return REGIONS.slice(0, n);
}

/** Stream j of an account-region: service j/2's CPU (even j) or memory (odd j), so half the streams each. */
export function streamOf(j: number): { name: string; dimensions: Record<string, string> } {
  const service = Math.floor(j / 2);
  return {
    name: NAMES[j % 2]!,
    dimensions: {
      ClusterName: `cluster-${Math.floor(service / SERVICES_PER_CLUSTER)}`,
      ServiceName: `service-${service}`,
    },
  };
}

/** The samples of stream j in one minute: three quarters, so that every sum is exact in floating point. */
export function samplesOf(j: number, minute: number): number[] {
  const base = ((j + minute) % 400) / 4;
  return [base, base + 0.25, base + 1.5];
}

/** Seeds every stream of the fleet with one sample set a minute over [from, to) (ms); returns the streams. */
export function seedBenchFleet(seed: (put: RawPut) => void, fleet: Fleet, from: number, to: number): number {
  for (const account of sourceAccounts(fleet.accounts)) {
    for (const region of sourceRegions(fleet.regions)) {
      for (let j = 0; j < fleet.streams; j++) {
        const { name, dimensions } = streamOf(j);
        for (let t = from; t < to; t += MIN) {
          seed({
            account,
            region,
            namespace: NAMESPACE,
            name,
            dimensions,
            timestamp: t,
            values: samplesOf(j, t / MIN),
          });
        }
      }
    }
  }
  return fleet.accounts * fleet.regions * fleet.streams;
}

async function serve(argv: string[]) {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      accounts: { type: "string" },
      regions: { type: "string" },
      streams: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      "latency-ms": { type: "string", default: "0" },
      "no-quotas": { type: "boolean", default: false },
      monitoring: { type: "boolean", default: false },
    },
    strict: true,
  });
  const fleet = {
    accounts: Number(o.accounts),
    regions: Number(o.regions),
    streams: Number(o.streams),
    monitoring: o.monitoring,
  };
  let passed = 0;
  const emu = await startEmulator({
    latencyMs: Number(o["latency-ms"]),
    quotas: !o["no-quotas"],
    now: () => Date.now() + passed,
    ...(fleet.monitoring && { links: { [MONITORING]: sourceAccounts(fleet.accounts) } }),
  });
  const started = performance.now();
  const streams = seedBenchFleet(emu.seed, fleet, Number(o.from), Number(o.to));
  const seedSeconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ url: emu.url, streams, seed_s: seedSeconds }));
  // The parent holds our stdin: when it ends, for whatever reason, so do we.
  process.stdin.on("end", () => process.exit(0));
  let input = "";
  process.stdin.on("data", (d) => {
    input += String(d);
    for (let nl = input.indexOf("\n"); nl >= 0; nl = input.indexOf("\n")) {
      const [word, ms] = input.slice(0, nl).split(" ");
      input = input.slice(nl + 1);
      if (word !== "pass" || !(Number(ms) >= 0)) throw new Error(`Cannot read the line "${word} ${ms}"`);
      passed += Number(ms);
      console.log("passed");
    }
  });
}

if (import.meta.main) await serve(process.argv.slice(2));
