/**
 * cloudwatch-forwarder: copies Amazon CloudWatch metrics from several AWS accounts into one, period by
 * period, so that every statistic in the destination equals the source's.
 *
 * This file is the whole run, for whoever audits what the tool does to their accounts: arguments -> config ->
 * CloudWatch's clock -> checkpoints -> for each account-region, several at once: discover -> for each step:
 * settle -> intend -> fetch -> publish -> commit -> the forwarder's own metrics -> summary. Every AWS call a run makes is made by
 * a stage named in pass() and forwardSource() below; lib/README.md says which module owns which.
 */
import bundled from "./forwarder.yaml" with { type: "text" };
import type { CloudWatchApi, Role } from "./lib/aws.ts";
import { type Args, commandLine, EXIT, exit, exitCodeOf, HELP, nodeProcess, parseArgs } from "./lib/cli.ts";
import type { Plan, SourcePlan } from "./lib/config.ts";
import { plural } from "./lib/errors.ts";
import type { Log } from "./lib/log.ts";
import type { Producer } from "./lib/publish.ts";
import type { Run, SourceTotals } from "./lib/run.ts";

/** The stages (lib/stages.ts), loaded once the command line asks for more than --help, which answers at once. */
let s: typeof import("./lib/stages.ts");

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
  /** CloudWatch's clock, epoch ms, for a test's fake `cloudWatch` (the SDK's clients ask the destination). */
  cloudWatchNow?: () => number;
  /** Where SIGTERM and SIGINT are heard: a test passes its own. */
  onStop?: (stop: (signal: string) => void) => void;
}

export async function main(argv: string[], deps: Deps): Promise<number> {
  let log: Log | undefined;
  try {
    const args = parseArgs(argv);
    if (args.help) return (deps.out(HELP), EXIT.ok);
    s ??= await import("./lib/stages.ts");
    log = s.logger({
      format: args.logFormat,
      level: args.logLevel,
      env: deps.env,
      now: deps.now,
      write: deps.err,
    });
    if (args.systemdUnits) {
      return s.writeUnits(args, s.unitFacts(args.config, bundled), import.meta.url, deps.out);
    }
    const regions = { facts: (await import("./lib/aws.ts")).regionFacts, log }; // the AWS SDK's region list
    const { plan, name } = s.loadConfigFile(args.config, bundled, deps.env, regions);
    if (args.checkConfig) {
      return (deps.out(`${name}: OK, ${plural(plan.sources.length, "account-region")}`), EXIT.ok);
    }
    const paths = s.statePath(plan.stateFile, s.configFolder(args.config, import.meta.url), deps.env);
    if (args.status) return s.printStatus(plan.sources, paths.file, args, deps);
    s.checkHome(deps.env); // Deno without HOME: said once, before any call
    if (args.alarms || args.dashboard) return await s.monitor(plan, args, deps.out, log); // lib/monitoring.ts
    const clients = await s.clientsFor(plan, deps, log); // the AWS SDK: AssumeRole counted, credentials never logged
    const stop = s.stopOnSignals(log, deps.onStop);
    const once = async () => {
      s.checkReplay(args.replay, args.now ?? s.hostTime(deps)); // a usage error makes no call
      const o = { args, plan, paths, deps, log: log!, clients, stop };
      // GetMetricData in the destination, for CloudWatch's time: the time the run works in (lib/clock.ts).
      const reading = await s.readClock(clients, plan, log!);
      if (typeof reading === "string") return s.failedRun(o, reading);
      const time = s.runTime(reading, deps.now(), args.now, (l) => log!.warn(l));
      s.checkReplay(args.replay, time.nowSeconds); // before the store is opened: a usage error changes nothing
      return pass(s.startRun({ ...o, ...time }), args, plan);
    };
    if (args.every) return await s.every(args.every, once, stop, deps);
    return await once();
  } catch (e) {
    return exitCodeOf(e, log ?? { error: deps.err, problem: deps.err });
  }
}

/** One run: every account-region, then the forwarder's own metrics and the summary. */
async function pass(run: Run, args: Args, plan: Plan): Promise<number> {
  try {
    if (args.plan) return (s.printPlan(await s.planRun(run), args.json, plan.interval, run.out), EXIT.ok);
    if (args.audit) {
      return s.printAudit(await s.audit(run, run.replay!, args.repair), args.json, args.repair, run.out);
    }
    const started = run.clock();
    const results = await s.mapLimit(
      plan.sources,
      s.SOURCE_CONCURRENCY,
      (src) => s.runSource(src, run, forwardSource),
    );
    const seconds = (run.clock() - started) / 1000;
    // An account-region that failed is behind all the same: its lag is read from its checkpoints.
    const lags = plan.sources.map((src, i) => results[i]?.lag ?? s.lagOf(run, src));
    if (plan.selfMetrics && !run.dryRun) await s.writeSelfMetrics(run, results, lags, seconds); // PutMetricData
    const known = lags.filter((l) => l !== undefined);
    return s.report(run, results, { seconds, lag: known.length ? Math.max(...known) : undefined });
  } finally {
    run.end();
  }
}

/** One account-region: its streams, then every step of periods they owe, oldest first. */
async function forwardSource(src: SourcePlan, run: Run, out: Producer, totals: SourceTotals) {
  const api = run.cloudWatch(src.region, s.roleOf(src)); // AssumeRole, once per role and run
  // ListMetrics every discovery_interval; in between, the streams the last listing found.
  const { streams, unfound } = await s.streamsOf(api, src, run, s.recentOnly(src, run));
  s.noteFound(totals, streams, unfound); // what the config names and the listing did not find, said at the end
  await s.repairAhead(src, streams, run); // checkpoints an earlier run left ahead of CloudWatch's clock
  const target = s.targetOf(run.plan, src);
  for await (const step of s.steps(src, streams, run)) {
    // GetMetricData in the destination, for the streams in doubt only: what is there already is left out;
    // and for the periods read again for late samples: what reached it of them (lib/recheck.ts).
    const present = await s.alreadyWritten(run.destination, step.inDoubt, target, step.window, step.period);
    const landed = await s.landedIn(run.destination, step, target);
    if (!run.dryRun) await run.store.update(step.keys, (st) => s.intend(st, step.window, run.nowSeconds));
    const tally = s.stepTally(src, run, totals, step);
    await s.forEachCall(run, step, async (part) => {
      const stats = await s.fetchStats(api, part.streams, s.readWindow(part), part.period, tally.forbidden); // GetMetricData
      const datums = s.datumsOf(part, stats, target, present, step.ownDoubt, tally.over); // the new periods
      s.lateDatums(part.streams, stats, landed, target, tally.over, datums.byNamespace); // what came late
      tally.add(part.streams, stats, datums);
      if (run.dryRun) s.printDatums(datums.byNamespace, run.out);
      else await out.write(datums.byNamespace, tally.refused); // PutMetricData, pooled over account-regions
    });
    if (run.dryRun) continue;
    const done = await tally.confirm(out); // every datum accepted by PutMetricData, or refused and reported
    await run.store.update(done, (st) => s.forwarded(st, step, run.nowSeconds)); // less accounts Forbidden
  }
}

if (import.meta.main) {
  // The environment and the terminal are read from Node's process object only once asked for (see nodeProcess).
  const code = await main(commandLine(), {
    get env() {
      return nodeProcess().env;
    },
    now: Date.now,
    out: (l) => console.log(l),
    err: (l) => console.error(l),
    get tty() {
      return nodeProcess().stderr.isTTY === true;
    },
  });
  exit(code);
}
