/**
 * cloudwatch-forwarder: copies Amazon CloudWatch metrics from several AWS accounts into one, period by
 * period, so that every statistic in the destination equals the source's. One run forwards every complete
 * period owed since the last checkpoint: discover -> fetch -> put, per account and region.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import bundled from "./forwarder.yaml" with { type: "text" };
import { type CloudWatchApi, connector, type Datum, describe, type Role } from "./lib/aws.ts";
import { batches, mapLimit } from "./lib/batch.ts";
import { ConfigError, loadConfig, type Plan, type SourcePlan } from "./lib/config.ts";
import { discover, type Stream } from "./lib/discover.ts";
import { fetchStats, GMD_MAX_DATAPOINTS, queriesPerCall, statsOf } from "./lib/fetch.ts";
import { alreadyWritten, type Publisher, publisher, type Target, toDatums } from "./lib/publish.ts";
import * as state from "./lib/state.ts";
import { chunks, MAX_BACKFILL_SECONDS, owed, parseIso, type Window } from "./lib/window.ts";

const HELP = `Usage: forward.ts [options]

Copies CloudWatch metrics from the accounts in the config into the destination account, every complete
period since the last run, with exact SampleCount, Sum, Minimum, Maximum and Average.

Options:
  --config FILE     config file (default: the bundled forwarder.yaml)
  --check-config    check the config and exit
  --dry-run         fetch and print what would be written; write nothing
  --from ISO --to ISO
                    forward this window again (replay); periods already in the destination are skipped
  --now ISO         the time to act as now (for replays and tests)
  --status          print the last forwarded period and the lag per account and region
  --help            show this help

Exit codes: 0 done, 1 some account failed, 2 config or usage error, 3 state file unusable or locked.`;

export const EXIT = { ok: 0, failed: 1, usage: 2, state: 3 } as const;

/** Account-regions forwarded at once: enough to overlap latency, few enough to stay clear of API quotas. */
const SOURCE_CONCURRENCY = 4;
/** Periods fetched and written per chunk: bounds memory, and a crash loses at most one step's progress. */
const CHUNK_PERIODS = 1440;
/** Datapoints held at once: a step takes as many streams as fit in five full GetMetricData answers. */
const MAX_POINTS_IN_MEMORY = 5 * GMD_MAX_DATAPOINTS;
/** ListMetrics RecentlyActive=PT3H suffices while nothing older than this is owed (it is approximate). */
const RECENT_SECONDS = 2 * 3600;

export interface Deps {
  env: Record<string, string | undefined>;
  now: () => number;
  out: (line: string) => void;
  err: (line: string) => void;
  cloudWatch?: (region: string, role: Role | undefined) => CloudWatchApi;
}

interface Run {
  plan: Plan;
  nowSeconds: number;
  store: state.Store;
  destination: CloudWatchApi;
  cloudWatch: (region: string, role: Role | undefined) => CloudWatchApi;
  publisher: Publisher;
  replay: { start: number; end: number } | undefined;
  dryRun: boolean;
  /** Without checkpoints every period is in doubt: a run checks the destination before it writes. */
  stateless: boolean;
  out: (line: string) => void;
  warn: (line: string) => void;
}

const keyOf = (src: SourcePlan, s: Stream) =>
  JSON.stringify([
    src.account,
    src.region,
    s.plan.namespace,
    s.name,
    s.dims.map((d) => `${d.Name}=${d.Value}`),
    s.plan.period,
  ]);

/** Forwards one account-region: discover, then every owed chunk of periods, oldest first, step by step. */
async function forwardSource(src: SourcePlan, run: Run) {
  const api = run.cloudWatch(
    src.region,
    src.roleArn ? { roleArn: src.roleArn, externalId: src.externalId } : undefined,
  );
  const where = `account "${src.account}" in ${src.region}`;
  const streams = await discover(api, src.metrics, oldestOwed(src, run) >= run.nowSeconds - RECENT_SECONDS);
  if (!run.dryRun) await remember(src, streams, run);
  const totals = { datums: 0, refused: 0 };
  for (const { w, period, streams: group } of groupByWindow(src, streams, run)) {
    const keys = group.map((s) => keyOf(src, s));
    if (w.lost) {
      run.warn(
        `Cannot forward ${where}: ${group.length} streams missed ${iso(w.lost.start)} to ${
          iso(w.lost.end)
        }, older than PutMetricData accepts`,
      );
      // Said once: the checkpoint moves past what can no longer be written.
      if (!run.dryRun) await run.store.update(keys, (st) => state.commit(st, w.lost!));
    }
    for (const c of chunks(w, period, CHUNK_PERIODS)) {
      const readable = Math.max(
        0,
        ...keys.flatMap((k) => state.doubtIn(run.store.get(k), c)).map(state.readableFrom),
      );
      if (readable > run.nowSeconds) {
        run.warn(
          `Cannot forward ${where} from ${
            iso(c.start)
          } yet: what an interrupted run wrote there becomes readable in CloudWatch only at ${
            iso(readable)
          }, and is checked then`,
        );
        break;
      }
      for (
        const step of batches(
          group,
          Infinity,
          (s) => statsOf(s).length,
          queriesPerStep((c.end - c.start) / period),
        )
      ) {
        await forwardStep(api, src, step, c, period, run, totals);
      }
    }
  }
  return { streams: streams.length, ...totals };
}

/** Records that discovery found these streams, and forgets the source's streams it has not found for long. */
async function remember(src: SourcePlan, streams: Stream[], run: Run) {
  const found = new Set(streams.map((s) => keyOf(src, s)));
  await run.store.update([...found], (st) => ({ ...st, seen: run.nowSeconds }));
  const gone = state.forgotten(knownKeys(src, run).map((k) => [k, run.store.get(k)]), found, run.nowSeconds);
  if (gone.length > 0) {
    run.warn(
      `Forgetting ${gone.length} streams of account "${src.account}" in ${src.region}: not found for ${
        state.FORGET_AFTER_SECONDS / 86_400
      } days`,
    );
    await run.store.update(gone, () => undefined);
  }
}

/** Queries per step: whole GetMetricData calls, as many as keep the datapoints held within bounds. */
function queriesPerStep(periods: number): number {
  const perCall = queriesPerCall(periods);
  return perCall * Math.max(1, Math.floor(MAX_POINTS_IN_MEMORY / (periods * perCall)));
}

/**
 * One step, the unit a crash can interrupt: fetch the periods of [c.start, c.end) for these streams, leave out
 * what the destination already has where that is in doubt, record the intent, write, and commit.
 */
async function forwardStep(
  api: CloudWatchApi,
  src: SourcePlan,
  streams: Stream[],
  c: { start: number; end: number },
  period: number,
  run: Run,
  totals: { datums: number; refused: number },
) {
  const keys = streams.map((s) => keyOf(src, s));
  const target = targetOf(run.plan, src);
  const stats = await fetchStats(api, streams, c, period);
  // Without checkpoints, and in a replay, every period may already be there.
  const doubtful = streams.map((
    s,
    i,
  ) => (run.stateless || run.replay || state.doubtIn(run.store.get(keys[i]!), c).length > 0 ? s : undefined));
  const present = await alreadyWritten(run.destination, doubtful, target, c, period);
  const byNamespace = new Map<string, Datum[]>();
  streams.forEach((s, i) => {
    const ns = target(s).namespace;
    byNamespace.set(ns, [
      ...(byNamespace.get(ns) ?? []),
      ...toDatums(s, stats[i]!, target(s), (name, t) => present[i]!.has(`${name}@${t}`)),
    ]);
  });
  const count = [...byNamespace.values()].reduce((a, l) => a + l.length, 0);
  totals.datums += count;
  if (run.dryRun) {
    for (const [ns, list] of byNamespace) {
      for (const x of list) {
        run.out(`${ns} ${describeDatum(x)} ${JSON.stringify(x.StatisticValues ?? { Value: x.Value })}`);
      }
    }
    return;
  }
  await run.store.update(keys, (st) => state.intend(st, c, run.nowSeconds));
  await run.publisher.write(byNamespace, (x, why) => {
    totals.refused++;
    totals.datums--;
    run.warn(
      `Cannot forward ${describeDatum(x)} from account "${src.account}" in ${src.region}: ${why}; skipped`,
    );
  });
  await run.store.update(keys, (st) => state.commit(st, c));
}

/** The target namespace and the account and region dimensions of a source's streams. */
function targetOf(plan: Plan, src: SourcePlan): (s: Stream) => Target {
  const d = plan.destination;
  const dims = [[d.accountDimension, src.account], [d.regionDimension, src.region]]
    .filter((x): x is [string, string] => typeof x[0] === "string").map(([Name, Value]) => ({ Name, Value }));
  return (s) => ({ namespace: d.namespace.replaceAll("{namespace}", s.plan.namespace), dims });
}

/** The state keys of a source's streams. */
function knownKeys(src: SourcePlan, run: Run): string[] {
  const prefix = JSON.stringify([src.account, src.region]).slice(0, -1);
  return run.store.keys().filter((k) => k.startsWith(prefix));
}

/** The oldest period a source owes, which decides whether ListMetrics may ask for recent metrics only. */
function oldestOwed(src: SourcePlan, run: Run): number {
  if (run.replay) return run.replay.start;
  const known = knownKeys(src, run);
  return Math.min(run.nowSeconds, ...known.map((k) => state.resumeAt(run.store.get(k)) ?? run.nowSeconds));
}

/** Streams that owe the same periods, so that one GetMetricData call can serve them together. */
function groupByWindow(src: SourcePlan, streams: Stream[], run: Run) {
  const groups = new Map<string, { w: Window; period: number; streams: Stream[] }>();
  for (const s of streams) {
    const st = run.store.get(keyOf(src, s));
    // A replay leaves out the stream's forwarded span: those periods are in the destination already.
    const windows: Window[] = run.replay
      ? state.outsideSpan(st, aligned(run.replay, s.plan.period))
      : [owed(state.resumeAt(st), run.nowSeconds, s.plan)];
    for (const w of windows) {
      const key = `${s.plan.period}|${w.start}|${w.end}|${w.lost?.start}`;
      const g = groups.get(key) ?? { w, period: s.plan.period, streams: [] };
      groups.set(key, g);
      g.streams.push(s);
    }
  }
  return [...groups.values()];
}

const describeDatum = (x: Datum) =>
  `${x.MetricName} ${x.Dimensions.map((y) => `${y.Name}=${y.Value}`).join(",")} at ${iso(x.Timestamp)}`;

const aligned = (w: { start: number; end: number }, period: number): Window => ({
  start: Math.floor(w.start / period) * period,
  end: Math.floor(w.end / period) * period,
});

const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");

function parseArgs(argv: string[]) {
  const flags: Record<string, string | true> = {};
  const withValue = new Set(["--config", "--from", "--to", "--now"]);
  const bare = new Set(["--check-config", "--dry-run", "--status", "--help"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (withValue.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError([`Cannot parse arguments: ${a} needs a value`]);
      flags[a] = v;
    } else if (bare.has(a)) flags[a] = true;
    else throw new ConfigError([`Cannot parse arguments: unknown option "${a}" (see --help)`]);
  }
  const time = (name: string) => {
    const v = flags[name];
    if (typeof v !== "string") return undefined;
    const t = parseIso(v);
    if (t === undefined) {
      throw new ConfigError([
        `Cannot parse ${name} "${v}": expected an ISO 8601 time such as 2026-11-24T10:00:00Z`,
      ]);
    }
    return t;
  };
  return { flags, from: time("--from"), to: time("--to"), now: time("--now") };
}

/** Opens the checkpoint store, or runs without one where the runtime may not touch files. */
function openStore(file: string, readOnly: boolean, warn: (l: string) => void): state.Store {
  try {
    return readOnly ? state.memoryStore(state.readState(file)) : state.openStore(file);
  } catch (e) {
    if (!state.isPermissionError(e)) throw e;
    warn(
      `Checkpoints are off: no permission to use "${file}", so only the newest complete period is forwarded and missed runs are not backfilled; under Deno add --allow-read --allow-write to turn them on`,
    );
    return state.memoryStore();
  }
}

export async function main(argv: string[], deps: Deps): Promise<number> {
  let store: state.Store | undefined;
  try {
    const { flags, from, to, now } = parseArgs(argv);
    if (flags["--help"]) return (deps.out(HELP), EXIT.ok);
    const file = typeof flags["--config"] === "string" ? flags["--config"] : undefined;
    const text = file === undefined ? bundled : readConfig(file);
    const plan = loadConfig(text, file ?? "forwarder.yaml", deps.env);
    if (flags["--check-config"]) {
      return (deps.out(`${file ?? "forwarder.yaml"}: OK, ${plan.sources.length} account-regions`), EXIT.ok);
    }
    const nowSeconds = now ?? Math.floor(deps.now() / 1000);
    if ((from === undefined) !== (to === undefined)) {
      throw new ConfigError(["Cannot replay: --from and --to go together"]);
    }
    if (
      from !== undefined && to !== undefined &&
      (from >= to || from < nowSeconds - MAX_BACKFILL_SECONDS || to > nowSeconds)
    ) {
      throw new ConfigError([
        `Cannot replay ${iso(from)} to ${
          iso(to)
        }: the window must be in the past two weeks, and --from before --to`,
      ]);
    }
    const configDir = file === undefined
      ? path.dirname(fileURLToPath(import.meta.url))
      : path.dirname(path.resolve(file));
    const stateFile = plan.stateFile
      ? path.resolve(configDir, plan.stateFile)
      : state.defaultStatePath(deps.env, configDir);
    if (flags["--status"]) {
      return (state.status(state.readState(stateFile), nowSeconds).forEach((l) => deps.out(l)), EXIT.ok);
    }
    store = openStore(stateFile, flags["--dry-run"] === true, deps.err);
    const cloudWatch = deps.cloudWatch ?? connector({ stsRegion: plan.destination.region, now: deps.now });
    const d = plan.destination;
    const destination = cloudWatch(
      d.region,
      d.roleArn ? { roleArn: d.roleArn, externalId: d.externalId } : undefined,
    );
    const run: Run = {
      plan,
      nowSeconds,
      store,
      cloudWatch,
      destination,
      publisher: publisher(destination),
      replay: from !== undefined && to !== undefined ? { start: from, end: to } : undefined,
      dryRun: flags["--dry-run"] === true,
      stateless: store.file === undefined && flags["--dry-run"] !== true,
      out: deps.out,
      warn: deps.err,
    };
    const started = deps.now();
    const results = await mapLimit(
      plan.sources,
      SOURCE_CONCURRENCY,
      (src) => {
        run.publisher.join();
        return forwardSource(src, run).catch((e) => {
          deps.err(`Cannot forward account "${src.account}" in ${src.region}: ${describe(e)}`);
          return undefined;
        }).finally(() => run.publisher.leave());
      },
    );
    const ok = results.filter((r) => r !== undefined);
    const sum = (k: "streams" | "datums" | "refused") => ok.reduce((a, r) => a + r[k], 0);
    deps.out(
      `${run.dryRun ? "Would forward" : "Forwarded"} ${sum("datums")} datums of ${
        sum("streams")
      } streams from ${ok.length} of ${results.length} account-regions in ${
        ((deps.now() - started) / 1000).toFixed(1)
      } s${sum("refused") ? `; ${sum("refused")} refused by CloudWatch and skipped` : ""}${
        run.dryRun ? " (dry run: nothing written)" : ""
      }`,
    );
    return ok.length === results.length ? EXIT.ok : EXIT.failed;
  } catch (e) {
    if (e instanceof ConfigError) return (e.problems.forEach((p) => deps.err(p)), EXIT.usage);
    if (e instanceof state.StateError) return (deps.err(e.message), EXIT.state);
    throw e;
  } finally {
    store?.close();
  }
}

function readConfig(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError([`Cannot read config "${file}": ${describe(e)}`]);
  }
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
