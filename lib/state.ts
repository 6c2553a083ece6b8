/**
 * Checkpoints, so that every period reaches the destination once: never lost, never counted twice. Pure
 * transitions over one stream's state, tested with tables; lib/store.ts keeps them in SQLite.
 *
 * Protocol. Each stream has a forwarded span [first, next), periods known to be in the destination, and
 * `doubt`, ranges of periods that may be there. For each step (a chunk of periods of some streams):
 *   1. intend: add the chunk to `doubt`, in a transaction that is on disk before the write is sent;
 *   2. PutMetricData, retried only where CloudWatch certainly did not apply it (throttled, or never sent);
 *   3. commit: grow the span over the chunk, drop the doubt inside it.
 * A crash between 1 and 3, or a write whose answer was lost, leaves the chunk in doubt. Before writing into a
 * doubtful period, a run reads the destination's SampleCount for it and skips the periods already there
 * (PutMetricData accepts or refuses a call whole, and each metric and period is one datum, so a period is
 * either fully there or not). CloudWatch may take up to 2 hours to show data that was 3 to 24 hours old when
 * written, and up to 48 hours for older data, so each doubtful range keeps when it was written, and a run
 * waits until the destination can show it before it reads. A replay (--from/--to) leaves out the span and
 * reads the destination for the rest of its window; a replayed range apart from the span stays in doubt
 * after it is written, so whoever reaches it later checks first.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { StateError } from "./errors.ts";

/** Periods [start, end) that may be in the destination, written at `at` (all epoch seconds). */
export type Doubt = [start: number, end: number, at: number];

/**
 * Periods [start, end) forwarded and not yet read again for samples that arrived late: read first at `first`,
 * the newest of them at `last` (all epoch seconds).
 */
export type Unchecked = [start: number, end: number, first: number, last: number];

export interface StreamState {
  /** The stream's forwarded span is [first, next): every period in it reached the destination. */
  first?: number;
  next?: number;
  doubt?: Doubt[];
  /**
   * Periods apart from the span that a replay wrote, written at `at`: known to be in the destination, so not in
   * doubt, yet a run that reaches them reads the destination first, as for periods in doubt.
   */
  written?: Doubt[];
  /** Forwarded periods to read again in the source once `recheck_after` has passed (see lib/recheck.ts). */
  unchecked?: Unchecked[];
  /** When discovery last found the stream (ListMetrics, or the config for static streams). */
  seen?: number;
  /**
   * For a stream discovery found that has no checkpoint yet: its first period owed (where the previous
   * listing ended, so a new service's first minutes are not lost).
   */
  since?: number;
}

/** The folder of the config in use: the one given, or the bundled one beside forward.ts (`scriptUrl`). */
export const configFolder = (config: string | undefined, scriptUrl: string) =>
  path.dirname(config ? path.resolve(config) : fileURLToPath(scriptUrl));

/**
 * The checkpoint database: the config's `state_file` as written (relative to the config's folder), else
 * systemd's StateDirectory, else beside the config. `legacy` is where the JSON state of earlier versions may
 * be, imported once: beside the default database, or the `state_file` itself where it still holds JSON.
 * `previous` is where the version before this one kept the database of that `state_file` (its name ending
 * in .db), moved to the path as written when that is free.
 */
export function statePath(
  stateFile: string | undefined,
  configDir: string,
  env: Record<string, string | undefined>,
): { file: string; legacy: string; previous?: string } {
  if (!stateFile) {
    const file = path.join(env["STATE_DIRECTORY"]?.split(":")[0] || configDir, "forwarder-state.db");
    return { file, legacy: file.replace(/\.db$/, ".json") };
  }
  const file = path.resolve(configDir, stateFile);
  const previous = `${file.replace(/\.(json|db)$/, "")}.db`;
  return previous === file ? { file, legacy: file } : { file, legacy: file, previous };
}

// ---- Pure transitions, tested with tables ----

/** Records that the periods of [start, end) may reach the destination from `at` on. */
export function intend(s: StreamState, w: { start: number; end: number }, at: number): StreamState {
  // A step that only reads periods again (lib/recheck.ts) has nothing of its own in doubt.
  if (w.start >= w.end) return s;
  const doubt: Doubt[] = s.doubt?.length ? merge([...s.doubt, [w.start, w.end, at]]) : [[w.start, w.end, at]];
  return { ...s, doubt };
}

/**
 * Records that [start, end) is in the destination. A window that touches the forwarded span joins it; one
 * apart from it (a replay) stays in doubt, so whoever reaches it later checks before writing.
 */
export function commit(s: StreamState, w: { start: number; end: number }): StreamState {
  const span = s.next === undefined ? undefined : { first: s.first ?? s.next, next: s.next };
  const joins = span === undefined || (w.start <= span.next && w.end >= span.first);
  const first = joins ? Math.min(span?.first ?? w.start, w.start) : span.first;
  const next = joins ? Math.max(span?.next ?? w.end, w.end) : span.next;
  let doubt = without(s.doubt ?? [], first, next);
  let written = without(s.written ?? [], first, next);
  if (!joins) {
    // A window apart from the span is now known written: out of doubt, kept as written, when it was.
    const at = doubtIn(s, w).reduce((a, d) => Math.max(a, d[2]), 0);
    doubt = without(doubt, w.start, w.end);
    written = merge([...written, [w.start, w.end, at]]);
  }
  const { doubt: _, since: __, written: ___, ...rest } = s;
  return {
    ...rest,
    first,
    next,
    ...(doubt.length > 0 ? { doubt } : {}),
    ...(written.length > 0 ? { written } : {}),
  };
}

/** Ranges less the periods [start, end). */
const without = (ranges: Doubt[], start: number, end: number) =>
  ranges.flatMap(([a, b, at]): Doubt[] =>
    [[a, Math.min(b, start), at], [Math.max(a, end), b, at]].filter(([x, y]) => x! < y!) as Doubt[]
  );

/** The parts of a window outside a stream's forwarded span: what a replay may have to write. */
export function outsideSpan(s: StreamState | undefined, w: { start: number; end: number }) {
  if (s?.next === undefined) return [w];
  const first = s.first ?? s.next;
  return [{ start: w.start, end: Math.min(w.end, first) }, { start: Math.max(w.start, s.next), end: w.end }]
    .filter((r) => r.start < r.end);
}

/**
 * A stream no longer found for this long is forgotten: ListMetrics stops listing metrics after two weeks
 * without data (API reference, ListMetrics), and PutMetricData would refuse its missed periods anyway.
 */
export const FORGET_AFTER_SECONDS = 15 * 86_400;

/** The streams to forget: known, not found by this discovery, and not found by any for FORGET_AFTER. */
export function forgotten(
  known: [string, StreamState | undefined][],
  found: Set<string>,
  nowSeconds: number,
): string[] {
  return known.filter(([k, s]) =>
    !found.has(k) && (s?.seen ?? nowSeconds) < nowSeconds - FORGET_AFTER_SECONDS
  ).map(([k]) => k);
}

/**
 * Where a stream resumes: its checkpoint, or, for a stream whose first write never completed, the first
 * period it tried, so that a failure on the first run loses nothing.
 */
export function resumeAt(s: StreamState | undefined): number | undefined {
  return s?.next ?? s?.doubt?.[0]?.[0] ?? s?.since;
}

/**
 * `f` worked out once per checkpoint object, for all the streams that share it: the store holds equal
 * checkpoints as one object (lib/store.ts), so an account-region's streams share a handful.
 */
export function perCheckpoint<T>(f: (s: StreamState | undefined) => T): (s: StreamState | undefined) => T {
  const made = new Map<StreamState | undefined, T>();
  return (s) => {
    if (!made.has(s)) made.set(s, f(s));
    return made.get(s) as T;
  };
}

/**
 * Whether a stream's state was left by a run whose clock was ahead of CloudWatch's (a --now or a host clock
 * ahead): its checkpoint past `edge`, the end of the newest period CloudWatch's clock has reached, or a time
 * of its own after `now`. A longer `delay` than the last run's is no mistake, so `edge` ignores the delay.
 */
export function isAhead(s: StreamState, edge: number, now: number): boolean {
  return (s.next ?? -Infinity) > edge || (s.since ?? -Infinity) > edge || (s.seen ?? -Infinity) > now ||
    (s.doubt ?? []).some((d) => d[2] > now) || (s.written ?? []).some((d) => d[2] > now) ||
    (s.unchecked ?? []).some((u) => u[3] > now);
}

/**
 * A stream's state moved back to CloudWatch's time. The periods a run read at a time still to come (a range to
 * read again, or in doubt, from after `now`) may have been read before they were complete, found empty or in
 * part; so may those after `bound`, the end of the newest complete period. The checkpoint moves back to the
 * first such period and the periods from there are put in doubt: the destination is read before they are
 * written again, so that what is there is not written twice (a period there in part gets the rest from the
 * recheck of lib/recheck.ts). A span wholly ahead goes, and the stream starts again at its newest complete
 * period, as a new stream does. Times after `now` become `now`.
 */
export function pullBack(s: StreamState, bound: number, period: number, now: number): StreamState {
  const at = (t: number) => Math.min(t, now);
  let from = bound;
  for (const u of s.unchecked ?? []) if (u[3] > now) from = Math.min(from, u[0]);
  for (const d of s.doubt ?? []) if (d[2] > now) from = Math.min(from, d[0]);
  const { first: _, next: __, doubt: ___, written: ____, unchecked: _____, ...rest } = s;
  const out: StreamState = rest;
  const doubt: Doubt[] = (s.doubt ?? []).map(([a, b, t]) => [a, b, at(t)]);
  if (s.next !== undefined) {
    const first = s.first ?? s.next;
    if (s.next <= from) Object.assign(out, { first, next: s.next });
    else if (first < from) {
      Object.assign(out, { first, next: from });
      doubt.push([from, s.next, now]);
    } else doubt.push([Math.min(first, bound - period), s.next, now]);
  }
  if (doubt.length > 0) out.doubt = merge(doubt);
  if (s.written?.length) out.written = s.written.map(([a, b, t]) => [a, b, at(t)]);
  // What is read again from `from` on is recorded afresh when it is forwarded.
  const unchecked = (s.unchecked ?? []).filter((u) => u[0] < from)
    .map(([a, b, f, l]): Unchecked => [a, Math.min(b, from), at(f), at(l)]);
  if (unchecked.length > 0) out.unchecked = unchecked;
  if (s.since !== undefined && s.since > bound) out.since = bound - period;
  if (s.seen !== undefined) out.seen = at(s.seen);
  return out;
}

/** The part of [start, end) that is in doubt. */
export function doubtIn(s: StreamState | undefined, w: { start: number; end: number }): Doubt[] {
  return clip(s?.doubt ?? [], w);
}

/**
 * The part of [start, end) a run reads in the destination before writing: in doubt, or written by a replay.
 */
export function toReadFirst(s: StreamState | undefined, w: { start: number; end: number }): Doubt[] {
  return s?.written?.length ? [...doubtIn(s, w), ...clip(s.written, w)] : doubtIn(s, w);
}

function clip(ranges: Doubt[], w: { start: number; end: number }): Doubt[] {
  return ranges
    .map(([a, b, at]): Doubt => [Math.max(a, w.start), Math.min(b, w.end), at])
    .filter(([a, b]) => a < b);
}

/** CloudWatch shows data 3 to 24 hours old at its writing within 2 hours (PutMetricData API reference)... */
const LAG_AFTER_3H = 2 * 3600;
/** ...and data 24 hours old or more within 48 hours. */
const LAG_AFTER_24H = 48 * 3600;

/** When the destination can be trusted to show what was written for a doubtful range. */
export function readableFrom([start, , at]: Doubt): number {
  const age = at - start;
  return at + (age >= 86_400 ? LAG_AFTER_24H : age >= 3 * 3600 ? LAG_AFTER_3H : 0);
}

function merge(ranges: Doubt[]): Doubt[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Doubt[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) [last[1], last[2]] = [Math.max(last[1], r[1]), Math.max(last[2], r[2])];
    else out.push([r[0], r[1], r[2]]);
  }
  return out;
}

/** Reads the JSON state file of earlier versions (version 1), for its one-time import. */
export function parseLegacy(text: string, file: string): Record<string, StreamState> {
  const bad = (why: string) =>
    new StateError(
      `Cannot import state file "${file}": ${why}; it was left as it is: repair it, or move it away to start afresh`,
    );
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof data !== "object" || data === null || (data as { version?: unknown }).version !== 1) {
    throw bad("not a version 1 state file");
  }
  const streams = (data as { streams?: unknown }).streams;
  if (typeof streams !== "object" || streams === null) throw bad(`"streams" is missing`);
  const isTime = (x: unknown) => typeof x === "number" && Number.isInteger(x);
  for (const [key, s] of Object.entries(streams)) {
    const ok = typeof s === "object" && s !== null &&
      (s.first === undefined || isTime(s.first)) &&
      (s.next === undefined || isTime(s.next)) &&
      (s.seen === undefined || isTime(s.seen)) &&
      (s.doubt === undefined ||
        (Array.isArray(s.doubt) &&
          s.doubt.every((r: unknown) => Array.isArray(r) && r.length === 3 && r.every(isTime))));
    let source: unknown;
    try {
      source = JSON.parse(key);
    } catch {
      // Reported below.
    }
    const keyOk = Array.isArray(source) && typeof source[0] === "string" && typeof source[1] === "string";
    if (!ok || !keyOk) throw bad(`the entry for stream ${key.slice(0, 200)} is malformed`);
  }
  return streams as Record<string, StreamState>;
}
