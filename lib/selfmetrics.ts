/**
 * The forwarder's own metrics, in its own namespace in the destination after each run, to alarm on: lag per
 * account-region (the forwarder falls behind), and the run's duration once a run (missing means it stopped).
 */
import type { CloudWatchApi, Datum, Dimension } from "./aws.ts";
import type { Plan } from "./config.ts";
import { describe } from "./errors.ts";
import { accountsOf } from "./discover.ts";
import type { SourceTotals } from "./run.ts";
import { lagsOf, type StepContext } from "./step.ts";

/** What one account (or account-region) did in a run, as the forwarder's own metrics count it. */
interface Counted {
  datums: number;
  streams: number;
  failed: boolean;
}

/** The forwarder's own namespace in the destination: metrics about its runs, to alarm on. */
export const SELF_NAMESPACE = "CloudWatchForwarder";

/**
 * How many of its own metrics the forwarder keeps: per account-region (and per account read through a
 * monitoring account) its datums forwarded, streams, errors and lag; per run its duration and the
 * account-regions that failed (see selfMetrics).
 */
export const selfMetricCount = (accountRegions: number) => 2 + 4 * accountRegions;

/**
 * The forwarder's own metrics for a run, written after it: `LagSeconds` per account-region (how far its
 * oldest stream is behind; alarm on it) and `RunSeconds` once a run (alarm on it going missing, which means
 * the forwarder stopped), with the datums, streams and errors beside them. A monitoring account's are of the
 * whole account-region, under its entry's name (its own metrics among them), so that the lag alarm of
 * --alarms watches every account linked to it, however many are linked later; and each account read through
 * it has its own, under its name.
 */
export function selfMetrics(
  run: { plan: Plan } & StepContext,
  results: (SourceTotals | undefined)[],
  lags: (number | undefined)[],
  seconds: number,
): Datum[] {
  const at = run.nowSeconds;
  const datum = (name: string, value: number, unit: string, dims: Dimension[] = []): Datum => ({
    MetricName: name,
    Dimensions: dims,
    Timestamp: at,
    Value: value,
    Unit: unit,
    StorageResolution: 60,
  });
  const out = [
    datum("RunSeconds", seconds, "Seconds"),
    datum("FailedAccountRegions", results.filter((r) => r === undefined).length, "Count"),
  ];
  const account = (region: string, name: string, o: Counted | undefined, lag: number | undefined) => {
    const dims = [{ Name: "Account", Value: name }, { Name: "Region", Value: region }];
    // An account-region a signal stopped the run before did nothing to count: only its lag is known.
    if (o !== undefined) {
      out.push(
        datum("Datums", o.datums, "Count", dims),
        datum("Streams", o.streams, "Count", dims),
        datum("Errors", o.failed ? 1 : 0, "Count", dims),
      );
    }
    if (lag !== undefined) out.push(datum("LagSeconds", lag, "Seconds", dims));
  };
  run.plan.sources.forEach((src, i) => {
    const r = results[i];
    const owners = [...r?.owners ?? []].filter(([name]) => name !== src.account);
    const failed = r === undefined || owners.some(([, o]) => o.failed !== undefined);
    const counted = r?.skipped ? undefined : { datums: r?.datums ?? 0, streams: r?.streams ?? 0, failed };
    account(src.region, src.account, counted, lags[i]);
    if (!src.linked) return;
    const lag = lagsOf(run, src);
    // Failed as a whole, the accounts its last listing read failed with it.
    const each = r === undefined
      ? accountsOf(src, run.store).map((name) => [name, { streams: 0, datums: 0, failed: "" }] as const)
      : owners;
    for (const [name, o] of each) {
      if (name === src.account) continue;
      account(
        src.region,
        name,
        r?.skipped ? undefined : { ...o, failed: o.failed !== undefined },
        lag.get(name),
      );
    }
  });
  return out;
}

/**
 * Writes the run's own metrics, given each account-region's totals (undefined where it failed) and lag; a
 * failure is said, and is no account-region's failure.
 */
export async function writeSelfMetrics(
  run: { plan: Plan; destination: Pick<CloudWatchApi, "putMetricData"> } & StepContext,
  results: (SourceTotals | undefined)[],
  lags: (number | undefined)[],
  seconds: number,
) {
  try {
    await run.destination.putMetricData(
      SELF_NAMESPACE,
      selfMetrics(run, results, lags, seconds),
      run.store.fence(),
    );
  } catch (e) {
    run.log.warn(`Cannot write the forwarder's own metrics to ${SELF_NAMESPACE}: ${describe(e)}`);
  }
}
