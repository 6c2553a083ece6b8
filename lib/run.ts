/**
 * A run: what the loop in forward.ts carries from stage to stage, and the mechanics around it that are not
 * AWS calls: the checkpoint store's permissions, remembering discovered streams, reporting refused data, and
 * the summary.
 */
import type { CloudWatchApi, Datum, Role } from "./aws.ts";
import { EXIT } from "./cli.ts";
import type { Plan, SourcePlan } from "./config.ts";
import type { Stream } from "./discover.ts";
import { ConfigError } from "./errors.ts";
import { describeDatum, type Publisher } from "./publish.ts";
import * as state from "./state.ts";
import { keyOf, knownKeys, type StepContext } from "./step.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";

export interface Run extends StepContext {
  plan: Plan;
  destination: CloudWatchApi;
  cloudWatch: (region: string, role: Role | undefined) => CloudWatchApi;
  publisher: Publisher;
  out: (line: string) => void;
}

/** What one account-region did in a run. */
export interface SourceTotals {
  streams: number;
  datums: number;
  refused: number;
}

/** The role to assume for an account (or the destination), if any. */
export const roleOf = (
  x: { roleArn: string | undefined; externalId: string | undefined },
): Role | undefined => x.roleArn ? { roleArn: x.roleArn, externalId: x.externalId } : undefined;

/** A replay window must lie in what PutMetricData still accepts. */
export function checkReplay(replay: { start: number; end: number } | undefined, nowSeconds: number) {
  if (replay === undefined) return;
  const { start, end } = replay;
  if (start >= end || start < nowSeconds - MAX_BACKFILL_SECONDS || end > nowSeconds) {
    throw new ConfigError([
      `Cannot replay ${iso(start)} to ${
        iso(end)
      }: the window must be in the past two weeks, and --from before --to`,
    ]);
  }
}

/** Opens the checkpoint store, or runs without one where the runtime may not touch files. */
export function openStore(file: string, readOnly: boolean, warn: (l: string) => void): state.Store {
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

/** Records that discovery found these streams, and forgets the source's streams it has not found for long. */
export async function remember(src: SourcePlan, streams: Stream[], run: Run) {
  if (run.dryRun) return;
  const found = new Set(streams.map((s) => keyOf(src, s)));
  await run.store.update([...found], (st) => ({ ...st, seen: run.nowSeconds }));
  const known = knownKeys(src, run.store).map((
    k,
  ): [string, state.StreamState | undefined] => [k, run.store.get(k)]);
  const gone = state.forgotten(known, found, run.nowSeconds);
  if (gone.length > 0) {
    run.warn(
      `Forgetting ${gone.length} streams of account "${src.account}" in ${src.region}: not found for ${
        state.FORGET_AFTER_SECONDS / 86_400
      } days`,
    );
    await run.store.update(gone, () => undefined);
  }
}

/** The number of datums in a step's write. */
export const countDatums = (byNamespace: Map<string, Datum[]>) =>
  [...byNamespace.values()].reduce((a, l) => a + l.length, 0);

/** A dry run prints each datum it would write, one line each. */
export function printDatums(byNamespace: Map<string, Datum[]>, out: (line: string) => void) {
  for (const [ns, list] of byNamespace) {
    for (const x of list) {
      out(`${ns} ${describeDatum(x)} ${JSON.stringify(x.StatisticValues ?? { Value: x.Value })}`);
    }
  }
}

/** Reports a datum CloudWatch refused for its data: said once, skipped, and not counted as forwarded. */
export const refusedFrom = (src: SourcePlan, run: Run, totals: SourceTotals) => (x: Datum, why: string) => {
  totals.refused++;
  totals.datums--;
  run.warn(
    `Cannot forward ${describeDatum(x)} from account "${src.account}" in ${src.region}: ${why}; skipped`,
  );
};

/** The summary line, and the exit code: 1 when any account-region failed. */
export function report(run: Run, results: (SourceTotals | undefined)[], seconds: number): number {
  const ok = results.filter((r) => r !== undefined);
  const sum = (k: keyof SourceTotals) => ok.reduce((a, r) => a + r[k], 0);
  run.out(
    `${run.dryRun ? "Would forward" : "Forwarded"} ${sum("datums")} datums of ${
      sum("streams")
    } streams from ${ok.length} of ${results.length} account-regions in ${seconds.toFixed(1)} s${
      sum("refused") ? `; ${sum("refused")} refused by CloudWatch and skipped` : ""
    }${run.dryRun ? " (dry run: nothing written)" : ""}`,
  );
  return ok.length === results.length ? EXIT.ok : EXIT.failed;
}
