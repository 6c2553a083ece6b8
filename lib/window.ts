/**
 * Time windows, in epoch seconds and aligned to the period. Pure: the clock is passed in.
 * A window [start, end) holds whole periods; a period is named by its start.
 */
import { PUT_MAX_AGE_SECONDS } from "./limits.ts";

/**
 * How far back a run forwards: what PutMetricData accepts, less an hour, so that a period read at the edge
 * is still accepted when it is written a little later.
 */
export const MAX_BACKFILL_SECONDS = PUT_MAX_AGE_SECONDS - 3600;

/** End of the newest period that is complete and has waited `delay` seconds for CloudWatch to settle. */
export function newestEnd(nowSeconds: number, period: number, delay: number): number {
  return Math.floor((nowSeconds - delay) / period) * period;
}

export interface Window {
  start: number;
  end: number;
  /** Periods that are too old to be written any more, reported and never silently dropped. */
  lost?: { start: number; end: number };
}

/**
 * The periods a stream owes: from its checkpoint (or, for a new stream, the newest complete period only) up
 * to the newest complete period, cut at what PutMetricData still accepts.
 */
export function owed(
  checkpoint: number | undefined,
  nowSeconds: number,
  { period, delay }: { period: number; delay: number },
): Window {
  const end = newestEnd(nowSeconds, period, delay);
  const start = checkpoint ?? end - period;
  const oldest = Math.ceil((nowSeconds - MAX_BACKFILL_SECONDS) / period) * period;
  if (start < oldest && start < end) {
    return { start: Math.min(oldest, end), end, lost: { start, end: Math.min(oldest, end) } };
  }
  return { start, end: Math.max(start, end) };
}

/** Splits a window into chunks of at most `maxPeriods` periods, oldest first. */
export function chunks(w: { start: number; end: number }, period: number, maxPeriods: number) {
  const out: { start: number; end: number }[] = [];
  for (let s = w.start; s < w.end; s += period * maxPeriods) {
    out.push({ start: s, end: Math.min(w.end, s + period * maxPeriods) });
  }
  return out;
}

/** Parses an ISO 8601 time into epoch seconds, or undefined when it is not one. */
export function parseIso(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** An epoch time in seconds as ISO 8601, without milliseconds. */
export const iso = (t: number) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
