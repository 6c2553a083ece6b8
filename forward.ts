/**
 * cloudwatch-forwarder: copies Amazon CloudWatch metrics from several AWS accounts into one, period by
 * period, so that every statistic in the destination equals the source's.
 *
 * This file is the whole run, for whoever audits what the tool does to their accounts: arguments -> config ->
 * checkpoints -> for each account-region, several at once: discover -> for each step: fetch -> settle ->
 * intend -> publish -> commit -> summary. Every AWS call a run makes is made by a stage named in
 * forwardSource below; lib/README.md says which module owns which.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import bundled from "./forwarder.yaml" with { type: "text" };
import type { CloudWatchApi, Role } from "./lib/aws.ts";
import { budget, mapLimit } from "./lib/batch.ts";
import { EXIT, exitCodeOf, HELP, parseArgs } from "./lib/cli.ts";
import type { SourcePlan } from "./lib/config.ts";
import { fetchStats } from "./lib/fetch.ts";
import { GMD_MAX_DATAPOINTS } from "./lib/limits.ts";
import { planRun, printPlan } from "./lib/plan.ts";
import { writeUnits } from "./lib/units.ts";
import { alreadyWritten, datumsOf, type Producer, publisher, targetOf } from "./lib/publish.ts";
import {
  checkReplay,
  countDatums,
  openStore,
  printDatums,
  refusedFrom,
  report,
  roleOf,
  type Run,
  runSource,
  type SourceTotals,
  streamsOf,
  writeSelfMetrics,
} from "./lib/run.ts";
import * as state from "./lib/state.ts";
import { readStore, type Store } from "./lib/store.ts";
import { forEachCall, steps } from "./lib/step.ts";

export { EXIT };

/**
 * Account-regions forwarded at once. Each has quotas of its own, and what they hold together is bounded by
 * the datapoints budget: this only keeps the number of open connections sensible.
 */
const SOURCE_CONCURRENCY = 64;
/** Datapoints of GetMetricData answers held at once: eight full answers (about 30 MB). */
const MAX_POINTS_HELD = 8 * GMD_MAX_DATAPOINTS;

export interface Deps {
  env: Record<string, string | undefined>;
  now: () => number;
  out: (line: string) => void;
  err: (line: string) => void;
  cloudWatch?: (region: string, role: Role | undefined) => CloudWatchApi;
  sleep?: (ms: number) => Promise<void>;
}

export async function main(argv: string[], deps: Deps): Promise<number> {
  let store: Store | undefined;
  try {
    const args = parseArgs(argv);
    if (args.help) return (deps.out(HELP), EXIT.ok);
    // Loaded here rather than above, so that --help answers without parsing YAML or loading the AWS SDK.
    const { loadConfigFile, unitFacts } = await import("./lib/config.ts");
    if (args.systemdUnits) {
      const { interval, variables } = unitFacts(args.config, bundled);
      const o = { ...args, interval: args.every ?? interval, variables, script: new URL(import.meta.url) };
      return (writeUnits(args.systemdUnits, o, deps.out), EXIT.ok);
    }
    const { plan, name } = loadConfigFile(args.config, bundled, deps.env);
    if (args.checkConfig) return (deps.out(`${name}: OK, ${plan.sources.length} account-regions`), EXIT.ok);
    const nowSeconds = args.now ?? Math.floor(deps.now() / 1000);
    checkReplay(args.replay, nowSeconds);
    const configDir = path.dirname(args.config ? path.resolve(args.config) : fileURLToPath(import.meta.url));
    const paths = state.statePath(plan.stateFile, configDir, deps.env);
    if (args.status) {
      return (state.status(readStore(paths.file).streams, nowSeconds).forEach(deps.out), EXIT.ok);
    }
    const opening = { clock: deps.now, nowSeconds, interval: plan.interval, info: deps.err };
    // A plan, like a dry run, reads the store without taking its lease and writes nothing.
    store = openStore(paths, args.dryRun || args.plan, opening, deps.err);
    const connecting = { stsRegion: plan.destination.region, now: deps.now, onAnswer: () => store?.touch() };
    const cloudWatch = deps.cloudWatch ?? (await import("./lib/aws.ts")).connector(connecting);
    const destination = cloudWatch(plan.destination.region, roleOf(plan.destination));
    const run: Run = {
      plan,
      nowSeconds,
      store,
      cloudWatch,
      destination,
      publisher: publisher(destination, () => store!.fence()),
      replay: args.replay,
      dryRun: args.dryRun || args.plan,
      out: deps.out,
      warn: deps.err,
      sleep: deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      held: budget(MAX_POINTS_HELD),
    };
    if (args.plan) return (printPlan(await planRun(run), args.json, plan.interval, deps.out), EXIT.ok);
    const started = deps.now();
    const results = await mapLimit(
      plan.sources,
      SOURCE_CONCURRENCY,
      (src) => runSource(src, run, forwardSource),
    );
    const seconds = (deps.now() - started) / 1000;
    if (plan.selfMetrics && !run.dryRun) {
      await writeSelfMetrics(run, results, seconds, Math.floor(deps.now() / 1000)); // PutMetricData
    }
    return report(run, results, seconds);
  } catch (e) {
    return exitCodeOf(e, deps.err);
  } finally {
    store?.close();
  }
}

/** One account-region: its streams, then every step of periods they owe, oldest first. */
async function forwardSource(src: SourcePlan, run: Run, out: Producer): Promise<SourceTotals> {
  const api = run.cloudWatch(src.region, roleOf(src)); // AssumeRole, once per role and run
  const streams = await streamsOf(api, src, run); // ListMetrics every discovery_interval, else the kept listing
  const totals = { streams: streams.length, datums: 0, refused: 0 };
  const target = targetOf(run.plan, src);
  for await (const step of steps(src, streams, run)) {
    // GetMetricData in the destination, for the streams in doubt only: what is there already is left out.
    const present = await alreadyWritten(run.destination, step.inDoubt, target, step.window, step.period);
    if (!run.dryRun) await run.store.update(step.keys, (st) => state.intend(st, step.window, run.nowSeconds));
    await forEachCall(run, step, async (part) => {
      const stats = await fetchStats(api, part.streams, part.window, part.period); // GetMetricData, source
      const datums = datumsOf(part.streams, stats, target, present);
      totals.datums += countDatums(datums);
      if (run.dryRun) printDatums(datums, run.out);
      else out.write(datums, refusedFrom(src, run, totals)); // PutMetricData, pooled over account-regions
    });
    if (run.dryRun) continue;
    await out.flush(); // every datum of the step accepted, or refused and reported
    await run.store.update(step.keys, (st) => state.commit(st, step.window));
  }
  return totals;
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2), {
    env: process.env,
    now: Date.now,
    out: (l) => console.log(l),
    err: (l) => console.error(l),
  });
  process.exit(code);
}
