/**
 * cloudwatch-forwarder: copies Amazon CloudWatch metrics from several AWS accounts into one, period by
 * period, so that every statistic in the destination equals the source's.
 *
 * This file is the whole run, for whoever audits what the tool does to their accounts: arguments -> config ->
 * checkpoints -> for each account-region, several at once: discover -> for each step: settle -> intend ->
 * fetch -> publish -> commit -> the forwarder's own metrics -> summary. Every AWS call a run makes is made by
 * a stage named in pass() and forwardSource() below; lib/README.md says which module owns which.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import bundled from "./forwarder.yaml" with { type: "text" };
import type { CloudWatchApi, Role } from "./lib/aws.ts";
import { mapLimit } from "./lib/batch.ts";
import { type Args, EXIT, exitCodeOf, HELP, parseArgs } from "./lib/cli.ts";
import type { Plan, SourcePlan } from "./lib/config.ts";
import { streamsOf } from "./lib/discover.ts";
import { fetchStats } from "./lib/fetch.ts";
import { type Log, logger } from "./lib/log.ts";
import { planRun, printPlan } from "./lib/plan.ts";
import { alreadyWritten, datumsOf, type Producer, targetOf } from "./lib/publish.ts";
import * as r from "./lib/run.ts";
import { lagOf, writeSelfMetrics } from "./lib/selfmetrics.ts";
import * as state from "./lib/state.ts";
import { printStatus } from "./lib/status.ts";
import { forEachCall, recentOnly, steps } from "./lib/step.ts";
import { writeUnits } from "./lib/units.ts";

export { EXIT };

export interface Deps {
  env: Record<string, string | undefined>;
  now: () => number;
  out: (line: string) => void;
  err: (line: string) => void;
  cloudWatch?: (region: string, role: Role | undefined) => CloudWatchApi;
  sleep?: (ms: number) => Promise<void>;
  /** Whether stderr is a terminal, for the progress line. */
  tty?: boolean;
  /** Where SIGTERM and SIGINT are heard: a test passes its own. */
  onStop?: (stop: (signal: string) => void) => void;
}

export async function main(argv: string[], deps: Deps): Promise<number> {
  let log: Log | undefined;
  try {
    const args = parseArgs(argv);
    log = logger({
      format: args.logFormat,
      level: args.logLevel,
      env: deps.env,
      now: deps.now,
      write: deps.err,
    });
    if (args.help) return (deps.out(HELP), EXIT.ok);
    // Loaded here rather than above, so that --help answers without parsing YAML or loading the AWS SDK.
    const config = await import("./lib/config.ts");
    if (args.systemdUnits) {
      return writeUnits(args, config.unitFacts(args.config, bundled), import.meta.url, deps.out);
    }
    const { plan, name } = config.loadConfigFile(args.config, bundled, deps.env);
    if (args.checkConfig) return (deps.out(`${name}: OK, ${plan.sources.length} account-regions`), EXIT.ok);
    const configDir = path.dirname(args.config ? path.resolve(args.config) : fileURLToPath(import.meta.url));
    const paths = state.statePath(plan.stateFile, configDir, deps.env);
    if (args.status) return printStatus(plan.sources, paths.file, args, deps);
    const clients = await r.clientsFor(plan, deps, log); // the AWS SDK: AssumeRole counted, credentials never logged
    const stop = r.stopOnSignals(log, deps.onStop);
    const once = (nowSeconds: number) =>
      pass(r.startRun({ args, plan, paths, deps, log: log!, nowSeconds, clients, stop }), args, plan);
    if (args.every) return await r.every(args.every, once, stop, deps);
    return await once(args.now ?? Math.floor(deps.now() / 1000));
  } catch (e) {
    return exitCodeOf(e, (line) => (log ? log.error(line) : deps.err(line)));
  }
}

/** One run: every account-region, then the forwarder's own metrics and the summary. */
async function pass(run: r.Run, args: Args, plan: Plan): Promise<number> {
  try {
    r.checkReplay(run.replay, run.nowSeconds);
    if (args.plan) return (printPlan(await planRun(run), args.json, plan.interval, run.out), EXIT.ok);
    const started = run.clock();
    const results = await mapLimit(
      plan.sources,
      r.SOURCE_CONCURRENCY,
      (src) => r.runSource(src, run, forwardSource),
    );
    const seconds = (run.clock() - started) / 1000;
    if (plan.selfMetrics && !run.dryRun) await writeSelfMetrics(run, results, seconds); // PutMetricData
    const lags = plan.sources.map((src) => lagOf(run, src)).filter((l) => l !== undefined);
    return r.report(run, results, { seconds, lag: lags.length ? Math.max(...lags) : undefined });
  } finally {
    run.end();
  }
}

/** One account-region: its streams, then every step of periods they owe, oldest first. */
async function forwardSource(src: SourcePlan, run: r.Run, out: Producer, totals: r.SourceTotals) {
  const api = run.cloudWatch(src.region, r.roleOf(src)); // AssumeRole, once per role and run
  // ListMetrics every discovery_interval; in between, the streams the last listing found.
  const streams = await streamsOf(api, src, run, recentOnly(src, run));
  r.noteFound(totals, streams);
  const target = targetOf(run.plan, src);
  for await (const step of steps(src, streams, run)) {
    // GetMetricData in the destination, for the streams in doubt only: what is there already is left out.
    const present = await alreadyWritten(run.destination, step.inDoubt, target, step.window, step.period);
    if (!run.dryRun) await run.store.update(step.keys, (st) => state.intend(st, step.window, run.nowSeconds));
    const tally = r.stepTally(src, run, totals, step.keys);
    await forEachCall(run, step, async (part) => {
      const stats = await fetchStats(api, part.streams, part.window, part.period); // GetMetricData, source
      const datums = datumsOf(part.streams, stats, target, present, step.ownDoubt);
      tally.add(part.streams, stats, datums);
      if (run.dryRun) r.printDatums(datums.byNamespace, run.out);
      else out.write(datums.byNamespace, tally.refused); // PutMetricData, pooled over account-regions
    });
    if (run.dryRun) continue;
    await tally.confirm(out); // every datum of the step accepted by PutMetricData, or refused and reported
    await run.store.update(step.keys, (st) => state.commit(st, step.window));
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2), {
    env: process.env,
    now: Date.now,
    out: (l) => console.log(l),
    err: (l) => console.error(l),
    tty: process.stderr.isTTY === true,
  });
  process.exit(code);
}
