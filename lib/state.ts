/**
 * Checkpoints, so that every period reaches the destination once: never lost, never counted twice.
 *
 * Protocol. Each stream has a forwarded span [first, next), periods known to be in the destination, and
 * `doubt`, ranges of periods that may be there. For each step (a chunk of periods of some streams):
 *   1. intend: add the chunk to `doubt` and write the file (atomically: temporary file, fsync, rename);
 *   2. PutMetricData;
 *   3. commit: grow the span over the chunk, drop the doubt inside it, and write the file.
 * A crash between 1 and 3 leaves the chunk in doubt. Before writing into a doubtful period, the next run
 * reads the destination's SampleCount for it and skips the periods already there (PutMetricData accepts or
 * refuses a call whole, and each metric and period is one datum, so a period is either fully there or not).
 * CloudWatch may take up to 2 hours to show data that was 3 to 24 hours old when written, and up to 48 hours
 * for older data, so each doubtful range keeps when it was written, and a run waits until the destination can
 * show it before it reads. A replay (--from/--to) leaves out the span and reads the destination for the rest
 * of its window; a replayed range apart from the span stays in doubt after it is written, so whoever reaches
 * it later checks first.
 *
 * One run at a time holds `<state file>.lock` (created exclusively), and touches it every 10 s. A lock is
 * stale when its process is gone (where the runtime can tell) or when it has not been touched for a minute;
 * a stale lock is taken over under a second exclusive file, so two runs that find it stale cannot both take
 * it, and a run checks that it still holds the lock before every write of the state.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { StateError } from "./errors.ts";
import { iso } from "./window.ts";

/** Periods [start, end) that may be in the destination, written at `at` (all epoch seconds). */
export type Doubt = [start: number, end: number, at: number];

export interface StreamState {
  /** The stream's forwarded span is [first, next): every period in it reached the destination. */
  first?: number;
  next?: number;
  doubt?: Doubt[];
  /** When discovery last found the stream (ListMetrics, or the config for static streams). */
  seen?: number;
}

interface StateFile {
  version: 1;
  streams: Record<string, StreamState>;
}

/**
 * The state file: the config's `state_file` (relative to the config's folder), else systemd's
 * StateDirectory, else beside the config.
 */
export function statePath(
  stateFile: string | undefined,
  configDir: string,
  env: Record<string, string | undefined>,
): string {
  if (stateFile) return path.resolve(configDir, stateFile);
  return path.join(env["STATE_DIRECTORY"]?.split(":")[0] || configDir, "forwarder-state.json");
}

// ---- Pure transitions, tested with tables ----

/** Records that the periods of [start, end) may reach the destination from `at` on. */
export function intend(s: StreamState, w: { start: number; end: number }, at: number): StreamState {
  return { ...s, doubt: merge([...(s.doubt ?? []), [w.start, w.end, at]]) };
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
  const doubt = (s.doubt ?? []).flatMap(([a, b, at]): Doubt[] =>
    [[a, Math.min(b, first), at], [Math.max(a, next), b, at]].filter(([x, y]) => x! < y!) as Doubt[]
  );
  const { doubt: _, ...rest } = s;
  return doubt.length > 0 ? { ...rest, first, next, doubt } : { ...rest, first, next };
}

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
  return s?.next ?? s?.doubt?.[0]?.[0];
}

/** The part of [start, end) that is in doubt. */
export function doubtIn(s: StreamState | undefined, w: { start: number; end: number }): Doubt[] {
  return (s?.doubt ?? [])
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

function parse(text: string, file: string): StateFile {
  const bad = (why: string) =>
    new StateError(
      `Cannot read state file "${file}": ${why}; it was left as it is: repair it, or move it away to start afresh`,
    );
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof data !== "object" || data === null || (data as StateFile).version !== 1) {
    throw bad("not a version 1 state file");
  }
  const streams = (data as StateFile).streams;
  if (typeof streams !== "object" || streams === null) throw bad(`"streams" is missing`);
  const isTime = (x: unknown) => typeof x === "number" && Number.isInteger(x);
  for (const [key, s] of Object.entries(streams)) {
    const ok = typeof s === "object" && s !== null &&
      (s.first === undefined || isTime(s.first)) &&
      (s.next === undefined || isTime(s.next)) &&
      (s.doubt === undefined ||
        (Array.isArray(s.doubt) &&
          s.doubt.every((r) => Array.isArray(r) && r.length === 3 && r.every(isTime))));
    if (!ok) throw bad(`the entry for stream ${key} is malformed`);
  }
  return data as StateFile;
}

/**
 * Per account and region: the oldest checkpoint of the streams its last discovery found, how far behind it
 * is, what is in doubt, and how many streams were not found again (metrics that stopped).
 */
export function status(streams: Record<string, StreamState>, nowSeconds: number): string[] {
  const by = new Map<string, StreamState[]>();
  for (const [key, s] of Object.entries(streams)) {
    const [account, region] = JSON.parse(key) as [string, string];
    by.set(`${account} ${region}`, [...(by.get(`${account} ${region}`) ?? []), s]);
  }
  if (by.size === 0) return ["No checkpoints yet"];
  return [...by].sort().map(([k, all]) => {
    const latest = Math.max(...all.map((s) => s.seen ?? -Infinity));
    const current = all.filter((s) => (s.seen ?? latest) >= latest);
    const next = Math.min(...current.map((s) => s.next ?? Infinity));
    const doubt = current.filter((s) => s.doubt?.length).length;
    const gone = all.length - current.length;
    const upTo = Number.isFinite(next)
      ? `${iso(next)} (${Math.round((nowSeconds - next) / 60)} min behind)`
      : "- (nothing forwarded yet)";
    return `${k}: forwarded up to ${upTo}, ${current.length} streams${doubt ? `, ${doubt} in doubt` : ""}${
      gone ? `; ${gone} no longer found` : ""
    }`;
  });
}

/**
 * Deno refuses file access without --allow-read/--allow-write; the forwarder then runs without state. An
 * operating system's refusal (EACCES) is not this: it is a StateError, since checkpoints were asked for.
 */
export function isPermissionError(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === "NotCapable" || name === "PermissionDenied";
}

export interface Store {
  readonly file: string | undefined;
  get(key: string): StreamState | undefined;
  keys(): string[];
  /** Applies a transition to streams (undefined removes one) and persists the result before returning. */
  update(keys: string[], f: (s: StreamState) => StreamState | undefined): Promise<void>;
  close(): void;
}

/** State kept in memory only: each run forwards the newest complete period and remembers nothing. */
export function memoryStore(initial: Record<string, StreamState> = {}): Store {
  const streams = new Map(Object.entries(initial));
  return {
    file: undefined,
    get: (k) => streams.get(k),
    keys: () => [...streams.keys()],
    update(keys, f) {
      for (const k of keys) {
        const next = f(streams.get(k) ?? {});
        if (next) streams.set(k, next);
        else streams.delete(k);
      }
      return Promise.resolve();
    },
    close() {},
  };
}

/** Reads the state file without locking it, for --status. */
export function readState(file: string): Record<string, StreamState> {
  if (!fs.existsSync(file)) return {};
  return parse(fs.readFileSync(file, "utf8"), file).streams;
}

/** Locks and opens the state file (creating it on first use). */
export function openStore(file: string): Store {
  const lock = lockFile(file);
  try {
    const state: StateFile = fs.existsSync(file)
      ? parse(fs.readFileSync(file, "utf8"), file)
      : { version: 1, streams: {} };
    let writing = Promise.resolve();
    // A run stopped by systemd or Ctrl-C gives the lock back; what it left in doubt is checked next time.
    const onSignal = (signal: NodeJS.Signals) => {
      lock.release();
      process.exit(signal === "SIGINT" ? 130 : 143);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    return {
      file,
      get: (k) => state.streams[k],
      keys: () => Object.keys(state.streams),
      update(keys, f) {
        // Writes are queued so that concurrent sources never interleave two writes of the file.
        writing = writing.then(() => {
          lock.check();
          for (const k of keys) {
            const next = f(state.streams[k] ?? {});
            if (next) state.streams[k] = next;
            else delete state.streams[k];
          }
          return writeAtomic(file, JSON.stringify(state));
        });
        return writing;
      },
      close() {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        lock.release();
      },
    };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Writes a temporary file, flushes it to disk and renames it over the old one: never half-written. */
function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  // The rename itself is durable once the folder is flushed; not every runtime or file system allows it.
  try {
    const dir = fs.openSync(path.dirname(file), "r");
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    // Best effort: the file is whole either way, at worst the previous version after a power loss.
  }
  return Promise.resolve();
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/** The host name tells a lock held on another machine (a shared state folder) from one held here. */
function hostName(): string {
  try {
    return os.hostname();
  } catch {
    // Deno asks for --allow-sys here; the file tells the same to anyone who may read files.
    try {
      return fs.readFileSync("/etc/hostname", "utf8").trim();
    } catch {
      return "unknown";
    }
  }
}

/** Whether a process on this host is alive; undefined where the runtime will not tell (Deno without --allow-run). */
function isAlive(pid: number): boolean | undefined {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true;
    return undefined;
  }
}

/** A running holder touches its lock this often... */
const HEARTBEAT_MS = 10_000;
/** ...so a lock untouched for this long is stale, even where its process cannot be checked (or is elsewhere). */
export const LOCK_LEASE_MS = 60_000;

function lockFile(file: string): { release(): void; check(): void } {
  const lock = `${file}.lock`;
  const mine: LockInfo = { pid: process.pid, host: hostName(), started: new Date().toISOString() };
  const text = JSON.stringify(mine);
  const create = () => {
    const fd = fs.openSync(lock, "wx", 0o600);
    fs.writeSync(fd, text);
    fs.closeSync(fd);
  };
  const held = (why: string) => new StateError(`Cannot lock state file "${file}": ${why}`);
  try {
    create();
  } catch (e) {
    if (isPermissionError(e)) throw e;
    if ((e as { code?: string }).code !== "EEXIST") throw held(e instanceof Error ? e.message : String(e));
    let current = "";
    let age = 0;
    try {
      current = fs.readFileSync(lock, "utf8");
      age = Date.now() - fs.statSync(lock).mtimeMs;
    } catch {
      // It went away between our attempt and this read: another run just released or took it.
    }
    let other: Partial<LockInfo> = {};
    try {
      other = JSON.parse(current) as LockInfo;
    } catch {
      // A lock file cut short by a crash while it was being written: its owner is gone.
    }
    const dead = other.host === mine.host && typeof other.pid === "number" && isAlive(other.pid) === false;
    const stale = current !== "" && (other.pid === undefined || dead || age > LOCK_LEASE_MS);
    if (!stale) {
      throw held(
        `another run (pid ${other.pid ?? "?"} on ${other.host ?? "?"}, since ${
          other.started ?? "?"
        }) holds "${lock}"`,
      );
    }
    takeOver(lock, current, create, held);
  }
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      fs.utimesSync(lock, now, now);
    } catch {
      // A missed beat only shortens the lease; check() finds a lock that was lost.
    }
  }, HEARTBEAT_MS);
  (heartbeat as { unref?: () => void }).unref?.();
  let released = false;
  return {
    /** Throws unless this run still holds the lock: a run that lost it must not write. */
    check() {
      let current = "";
      try {
        current = fs.readFileSync(lock, "utf8");
      } catch {
        // Gone: treated as lost below.
      }
      if (current !== text) throw held(`the lock "${lock}" was taken over while this run held it`);
    },
    release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      try {
        if (fs.readFileSync(lock, "utf8") === text) fs.unlinkSync(lock);
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
}

/** Replaces a stale lock, under a second lock so that only one of several runs finding it stale wins. */
function takeOver(lock: string, staleText: string, create: () => void, held: (why: string) => Error) {
  const guard = `${lock}.takeover`;
  const claim = () => fs.writeFileSync(guard, String(process.pid), { flag: "wx" });
  try {
    claim();
  } catch {
    // A guard outlives its lease only when the run taking over died in those few lines.
    let age = 0;
    try {
      age = Date.now() - fs.statSync(guard).mtimeMs;
    } catch {
      // Gone meanwhile.
    }
    if (age <= LOCK_LEASE_MS) throw held(`another run is taking over the stale lock "${lock}"`);
    fs.rmSync(guard, { force: true });
    claim();
  }
  try {
    let current = "";
    try {
      current = fs.readFileSync(lock, "utf8");
    } catch {
      // Removed meanwhile by its owner.
    }
    if (current !== "" && current !== staleText) throw held(`another run took "${lock}" first`);
    if (current !== "") fs.unlinkSync(lock);
    create();
  } finally {
    fs.unlinkSync(guard);
  }
}
