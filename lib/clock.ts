/**
 * CloudWatch's clock, the time a run works in. A period is complete when CloudWatch's clock says so, not the
 * host's: a host clock ahead (or a --now ahead) would read periods that have not happened yet, find them empty
 * or partial, and move checkpoints past them. A run asks the destination for its time first (the Date header
 * of a GetMetricData answer), and moves back any checkpoint an earlier mistake left ahead of that time.
 */
import type { ClockReading as Reading, Query } from "./aws.ts";
import type { Plan, SourcePlan } from "./config.ts";
import { ConfigError, describe, isPermissionError, plural } from "./errors.ts";
import type { Log } from "./log.ts";
import type { Clients } from "./run.ts";
import { keyOf, type Stream, whereOf } from "./discover.ts";
import { SELF_NAMESPACE } from "./selfmetrics.ts";
import { isAhead, pullBack } from "./state.ts";
import type { StepContext } from "./step.ts";
import { iso, newestEnd } from "./window.ts";

/**
 * A host clock further than this from CloudWatch's is said to be off. Within it, the Date header's whole
 * seconds and a network round trip are noise; beyond it, a clock needs fixing.
 */
export const SKEW_WARN_SECONDS = 60;

/**
 * The query the clock is asked with: the forwarder's own run metric, one metric billed. Any metric would do;
 * the answer's Date header is what is read.
 */
function clockQuery(): Query {
  return {
    Id: "clock",
    Metric: { Namespace: SELF_NAMESPACE, MetricName: "RunSeconds", Dimensions: [] },
    Period: 60,
    Stat: "SampleCount",
  };
}

/** The host's clock in epoch seconds: the time of a run that could not read CloudWatch's. */
export const hostTime = (deps: { now: () => number }) => Math.floor(deps.now() / 1000);

/**
 * The time a run works in, epoch seconds: CloudWatch's now, or `requested` (--now) where that is earlier; and
 * CloudWatch's now itself. A
 * --now later than CloudWatch's clock is refused: no period after it can be complete. A host clock off by more
 * than SKEW_WARN_SECONDS is said in `warn`.
 */
export function runTime(
  reading: Reading,
  hostMs: number,
  requested: number | undefined,
  warn: (line: string) => void,
): { nowSeconds: number; cloudWatchSeconds: number } {
  const offset = reading.cloudWatchMs - reading.hostMs;
  const cloudWatch = Math.floor((hostMs + offset) / 1000);
  const skew = Math.round(-offset / 1000);
  if (Math.abs(skew) > SKEW_WARN_SECONDS) {
    warn(
      `This host's clock is ${Math.abs(skew)} s ${skew > 0 ? "ahead of" : "behind"} CloudWatch's (host ${
        iso(Math.floor(hostMs / 1000))
      }, CloudWatch ${
        iso(cloudWatch)
      }): the run works in CloudWatch's time; set the host's clock right (chrony or systemd-timesyncd)`,
    );
  }
  if (requested === undefined) return { nowSeconds: cloudWatch, cloudWatchSeconds: cloudWatch };
  if (requested > cloudWatch + SKEW_WARN_SECONDS) {
    throw new ConfigError([
      `Cannot act as at --now ${iso(requested)}: it is later than CloudWatch's clock (${
        iso(cloudWatch)
      }), and no period after that is complete; give a time at or before it`,
    ]);
  }
  return { nowSeconds: Math.min(requested, cloudWatch), cloudWatchSeconds: cloudWatch };
}

/**
 * Moves back the checkpoints of an account-region's streams that lie ahead of CloudWatch's time less their
 * delay (left by an earlier run with --now or a host clock ahead), and says so once. The periods after the
 * newest complete one are read again, the destination first, so that what such a run wrote is not written
 * twice and nothing it skipped is lost.
 */
export async function repairAhead(
  src: SourcePlan,
  streams: Stream[],
  run: StepContext & { cloudWatchSeconds: number },
): Promise<void> {
  // CloudWatch's now, not the run's: a --now in the past leaves later checkpoints where they are, rightly.
  const now = run.cloudWatchSeconds;
  // Streams of one period and delay share the bound: one update for each such group.
  const groups = new Map<string, { bound: number; period: number; keys: string[] }>();
  const moved: Stream[] = [];
  let furthest = -Infinity;
  for (const s of streams) {
    const key = keyOf(src, s);
    const st = run.store.get(key);
    if (st === undefined || !isAhead(st, newestEnd(now, s.plan.period, 0), now)) continue;
    const bound = newestEnd(now, s.plan.period, s.plan.delay);
    const id = `${s.plan.period}|${bound}`;
    let g = groups.get(id);
    if (!g) groups.set(id, g = { bound, period: s.plan.period, keys: [] });
    g.keys.push(key);
    moved.push(s);
    furthest = Math.max(furthest, st.next ?? st.since ?? now);
  }
  if (moved.length === 0) return;
  run.log.warn(
    `Moved the checkpoints of ${plural(moved.length, "stream")} of ${
      whereOf(src, moved)
    } back to CloudWatch's time (${
      iso(now)
    }): an earlier run with --now or a clock ahead of CloudWatch's had moved them up to ${
      iso(furthest)
    }; the periods since are read again, the destination first`,
    { account: src.account, region: src.region },
  );
  if (run.dryRun) return;
  for (const g of groups.values()) {
    await run.store.update(g.keys, (st) => pullBack(st, g.bound, g.period, now));
  }
}

/**
 * Asks the destination for CloudWatch's time. Without it no period can be known complete, so a run that cannot
 * ask reads and writes nothing: said in one line, which is returned for the run's failure (lib/run.ts,
 * failedRun; in loop mode, the next pass asks again).
 */
export async function readClock(
  clients: Pick<Clients, "clock" | "calls" | "throttled">,
  plan: Plan,
  log: Log,
): Promise<Reading | string> {
  // The first call of a run: its counts start here (in loop mode, the last pass's are in its summary).
  for (const tally of [clients.calls, clients.throttled]) {
    for (const op of Object.keys(tally)) delete tally[op];
  }
  try {
    return await clients.clock(clockQuery());
  } catch (e) {
    if (isPermissionError(e)) throw e; // a flag the command line lacks: a usage error (exit 2)
    const line = `Cannot read CloudWatch's clock in the destination (${plan.destination.region}): ${
      describe(e)
    }; nothing was read or written`;
    log.error(line);
    return line;
  }
}
