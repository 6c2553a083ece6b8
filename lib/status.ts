/**
 * --status: every account-region of the config, read from the checkpoint store without its lease: how far it
 * is forwarded and how far behind that is, its streams, those in doubt and why, and its last error where its
 * last run failed; "never forwarded" where nothing is yet. A monitoring account's account-region has a row per
 * account read through it, as its listings found them ("no longer found" once its link is gone).
 */
import type { SourcePlan } from "./config.ts";
import { readableLag } from "./summary.ts";
import { readableFrom, type StreamState } from "./state.ts";
import { readStore, type SourceNote, type StoreContents } from "./store.ts";
import { plural } from "./errors.ts";
import { iso } from "./window.ts";

export interface SourceStatus {
  account: string;
  region: string;
  /** The monitoring account (its entry's name) the account is read through, if it is. */
  through?: string;
  /** The first period not yet forwarded of its furthest-behind stream (ISO), null before any. */
  forwardedUpTo: string | null;
  lagSeconds: number | null;
  streams: number;
  /** Streams a write of which may or may not have arrived: the destination is read before the next one. */
  inDoubt: number;
  /** When the destination can show the writes in doubt (ISO), so that a run reads it then; null if none. */
  doubtReadableAt: string | null;
  /** Streams the last listing did not find: metrics that stopped. */
  noLongerFound: number;
  /**
   * Streams whose checkpoint lies ahead of this host's clock, left by a run with --now or a clock ahead; the
   * next run moves them back to CloudWatch's time (lib/clock.ts).
   */
  ahead: number;
  lastError: string | null;
  errorAt: string | null;
  /** "no longer found": read through a monitoring account, none of its streams found by the last listing. */
  state: "ok" | "failing" | "never forwarded" | "no longer found";
}

/** The status of every configured account-region. */
export function statusOf(sources: SourcePlan[], contents: StoreContents, nowSeconds: number): SourceStatus[] {
  const byId = new Map<string, StreamState[]>();
  for (const [key, s] of Object.entries(contents.streams)) {
    const id = key.slice(0, key.indexOf(",", key.indexOf(",") + 1)) + "]";
    let list = byId.get(id);
    if (!list) byId.set(id, list = []);
    list.push(s);
  }
  const idOf = (account: string, region: string) => JSON.stringify([account, region]);
  return sources.flatMap((src) => {
    const id = idOf(src.account, src.region);
    const owners = Object.keys(contents.listings.get(id)?.owners ?? {}).sort();
    if (owners.length === 0) {
      return [rowOf(src.account, src.region, byId.get(id) ?? [], contents.sources.get(id), nowSeconds)];
    }
    // Current: found by the account-region's last listing, whichever account they belong to.
    let latest = -Infinity;
    for (const o of owners) {
      for (const s of byId.get(idOf(o, src.region)) ?? []) latest = Math.max(latest, s.seen ?? -Infinity);
    }
    return owners.map((o) => {
      const note = contents.sources.get(idOf(o, src.region));
      // A failure of the monitoring account-region as a whole is each of its accounts'.
      const failed = note?.errorAt === undefined ? contents.sources.get(id) : note;
      const row = rowOf(o, src.region, byId.get(idOf(o, src.region)) ?? [], failed, nowSeconds, latest);
      return { ...row, through: src.account };
    });
  });
}

/** One account-region's row: its streams' checkpoints, and the note of its last run. */
function rowOf(
  account: string,
  region: string,
  all: StreamState[],
  note: SourceNote | undefined,
  nowSeconds: number,
  latest = all.reduce((a, s) => Math.max(a, s.seen ?? -Infinity), -Infinity),
): SourceStatus {
  const current = all.filter((s) => (s.seen ?? latest) >= latest);
  let next = Infinity;
  for (const s of current) next = Math.min(next, s.next ?? Infinity);
  // A run that succeeds clears the error its account-region's last run left.
  const failing = note?.errorAt !== undefined;
  const forwarded = Number.isFinite(next);
  let readable = -Infinity;
  for (const s of current) for (const d of s.doubt ?? []) readable = Math.max(readable, readableFrom(d));
  return {
    account,
    region,
    forwardedUpTo: forwarded ? iso(next) : null,
    lagSeconds: forwarded ? nowSeconds - next : null,
    streams: current.length,
    inDoubt: current.filter((s) => s.doubt?.length).length,
    doubtReadableAt: Number.isFinite(readable) ? iso(readable) : null,
    noLongerFound: all.length - current.length,
    ahead: current.filter((s) => (s.next ?? -Infinity) > nowSeconds).length,
    lastError: failing ? note.lastError ?? null : null,
    errorAt: failing ? iso(note.errorAt!) : null,
    state: failing
      ? "failing"
      : forwarded
      ? "ok"
      : current.length === 0 && all.length > 0
      ? "no longer found"
      : "never forwarded",
  };
}

/** One line per account-region. */
export function statusLines(statuses: SourceStatus[], nowSeconds: number): string[] {
  return statuses.map((s) => {
    const where = `${s.account} ${s.region}${s.through === undefined ? "" : ` (through ${s.through})`}`;
    const lag = s.lagSeconds! < 0
      ? `${readableLag(-s.lagSeconds!)} ahead of the clock`
      : `${readableLag(s.lagSeconds!)} behind`;
    const progress = s.state === "no longer found"
      ? "none of its streams found by the last listing (its link is gone, or no longer shares them)"
      : s.forwardedUpTo === null
      ? "never forwarded"
      : `forwarded up to ${s.forwardedUpTo} (${lag}), ${plural(s.streams, "stream")}`;
    const ahead = s.ahead
      ? `, ${s.ahead} with a checkpoint ahead of the clock (left by a run with --now or a clock ahead: the next run moves it back to CloudWatch's time and reads those periods again, the destination first)`
      : "";
    const when = s.doubtReadableAt === null || s.doubtReadableAt <= iso(nowSeconds)
      ? "the next run reads the destination before writing them"
      : `CloudWatch shows what was written at ${s.doubtReadableAt}, and a run reads the destination then`;
    const doubt = s.inDoubt
      ? `, ${s.inDoubt} in doubt (a write that may or may not have arrived: ${when})`
      : "";
    const gone = s.noLongerFound ? `; ${s.noLongerFound} no longer found` : "";
    const error = s.lastError === null ? "" : `; its last run failed at ${s.errorAt}: ${s.lastError}`;
    return `${where}: ${progress}${ahead}${doubt}${gone}${error}`;
  });
}

/**
 * --status, as lines or (with --json) a JSON array; the store is read without taking its lease. Exits 1 while
 * any account-region's last run failed, so that a check can alert on it.
 */
export function printStatus(
  sources: SourcePlan[],
  file: string,
  args: { json: boolean; now: number | undefined },
  deps: { now: () => number; out: (line: string) => void },
): number {
  const now = args.now ?? Math.floor(deps.now() / 1000);
  const statuses = statusOf(sources, readStore(file), now);
  (args.json ? [JSON.stringify(statuses)] : statusLines(statuses, now)).forEach((l) => deps.out(l));
  return statuses.some((s) => s.state === "failing") ? 1 : 0;
}
