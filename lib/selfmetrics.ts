/**
 * The forwarder's own metrics, in its own namespace in the destination after each run, to alarm on: lag per
 * account-region (the forwarder falls behind), and the run's duration once a run (missing means it stopped).
 */
import type { CloudWatchApi, Datum, Dimension } from "./aws.ts";
import type { Plan } from "./config.ts";
import { describe } from "./errors.ts";
import type { SourceTotals } from "./run.ts";
import type { StepContext } from "./step.ts";

/** The forwarder's own namespace in the destination: metrics about its runs, to alarm on. */
export const SELF_NAMESPACE = "CloudWatchForwarder";

/**
 * How many of its own metrics the forwarder keeps: per account-region its datums forwarded, streams, errors
 * and lag; per run its duration and the account-regions that failed (see selfMetrics).
 */
export const selfMetricCount = (accountRegions: number) => 2 + 4 * accountRegions;

/**
 * The forwarder's own metrics for a run, written after it: `LagSeconds` per account-region (how far its
 * oldest stream is behind; alarm on it) and `RunSeconds` once a run (alarm on it going missing, which means
 * the forwarder stopped), with the datums, streams and errors beside them.
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
  run.plan.sources.forEach((src, i) => {
    const dims = [{ Name: "Account", Value: src.account }, { Name: "Region", Value: src.region }];
    const r = results[i];
    out.push(
      datum("Datums", r?.datums ?? 0, "Count", dims),
      datum("Streams", r?.streams ?? 0, "Count", dims),
      datum("Errors", r === undefined ? 1 : 0, "Count", dims),
    );
    const lag = lags[i];
    if (lag !== undefined) out.push(datum("LagSeconds", lag, "Seconds", dims));
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
