/**
 * --status: every account-region of the config, read from the checkpoint store without its lease: how far it
 * is forwarded and how far behind that is, its streams, those in doubt and why, and its last error where its
 * last run failed; "never forwarded" where nothing is yet.
 */
import type { SourcePlan } from "./config.ts";
import { readableLag } from "./run.ts";
import { readableFrom, type StreamState } from "./state.ts";
import { readStore, type StoreContents } from "./store.ts";
import { iso } from "./window.ts";

export interface SourceStatus {
  account: string;
  region: string;
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
  lastError: string | null;
  errorAt: string | null;
  state: "ok" | "failing" | "never forwarded";
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
  return sources.map((src) => {
    const id = JSON.stringify([src.account, src.region]);
    const all = byId.get(id) ?? [];
    let latest = -Infinity;
    for (const s of all) latest = Math.max(latest, s.seen ?? -Infinity);
    const current = all.filter((s) => (s.seen ?? latest) >= latest);
    let next = Infinity;
    for (const s of current) next = Math.min(next, s.next ?? Infinity);
    const note = contents.sources.get(id);
    // A run that succeeds clears the error its account-region's last run left.
    const failing = note?.errorAt !== undefined;
    const forwarded = Number.isFinite(next);
    let readable = -Infinity;
    for (const s of current) for (const d of s.doubt ?? []) readable = Math.max(readable, readableFrom(d));
    return {
      account: src.account,
      region: src.region,
      forwardedUpTo: forwarded ? iso(next) : null,
      lagSeconds: forwarded ? nowSeconds - next : null,
      streams: current.length,
      inDoubt: current.filter((s) => s.doubt?.length).length,
      doubtReadableAt: Number.isFinite(readable) ? iso(readable) : null,
      noLongerFound: all.length - current.length,
      lastError: failing ? note.lastError ?? null : null,
      errorAt: failing ? iso(note.errorAt!) : null,
      state: failing ? "failing" : forwarded ? "ok" : "never forwarded",
    };
  });
}

/** One line per account-region. */
export function statusLines(statuses: SourceStatus[], nowSeconds: number): string[] {
  return statuses.map((s) => {
    const where = `${s.account} ${s.region}`;
    const progress = s.forwardedUpTo === null
      ? "never forwarded"
      : `forwarded up to ${s.forwardedUpTo} (${readableLag(s.lagSeconds!)} behind), ${s.streams} streams`;
    const when = s.doubtReadableAt === null || s.doubtReadableAt <= iso(nowSeconds)
      ? "the next run reads the destination before writing them"
      : `CloudWatch shows what was written at ${s.doubtReadableAt}, and a run reads the destination then`;
    const doubt = s.inDoubt
      ? `, ${s.inDoubt} in doubt (a write that may or may not have arrived: ${when})`
      : "";
    const gone = s.noLongerFound ? `; ${s.noLongerFound} no longer found` : "";
    const error = s.lastError === null ? "" : `; its last run failed at ${s.errorAt}: ${s.lastError}`;
    return `${where}: ${progress}${doubt}${gone}${error}`;
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
