/**
 * The checkpoint store: SQLite through node:sqlite, which Bun and Deno both ship. One row per stream; an
 * intent or a commit is one transaction over the rows a step touches, on disk (WAL, synchronous=FULL) before
 * the call that follows it. The run's lease is a row in the same database: taken in a transaction, checked
 * and renewed in the same transaction as every state change, and again right before every PutMetricData
 * (`fence`), so a run that stalled past its lease learns it before it writes.
 *
 * Continuity: a checkpoint says what this store wrote. When the store was not used by the run just before
 * (a new store, one restored from a backup, copied or moved, or last used longer ago than the timer's
 * interval allows), something else may have written since, so `continuous` is false and the run reads the
 * destination before writing the periods owed. A steady run (the previous tick used this same file) trusts
 * its checkpoints and makes no extra call.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { describe, isPermissionError, oneLine, plural, StateError } from "./errors.ts";
import { type Doubt, parseLegacy, perCheckpoint, type StreamState, type Unchecked } from "./state.ts";
import { iso } from "./window.ts";

/** A run that makes no progress for this long loses its lease to the next run. */
export const LEASE_MS = 60_000;
/** Renewals on progress are spaced this far apart; every state change and fence renews regardless. */
const RENEW_EVERY_MS = LEASE_MS / 4;
/** "CWFW": marks a SQLite file as ours (PRAGMA application_id), so another program's database is refused. */
const APPLICATION_ID = 0x43574657;
/**
 * 2: `unchecked`, the periods to read again for late samples (lib/recheck.ts); `written`, the periods a replay
 * wrote apart from the span. 3: a listing's `owners`, the accounts a monitoring account's streams belong to.
 */
const SCHEMA_VERSION = 3;
/** A transaction waits this long for another process's transaction (SQLite's busy_timeout). */
const BUSY_TIMEOUT_MS = 5_000;

const SCHEMA = `
CREATE TABLE streams (
  key TEXT PRIMARY KEY,
  account TEXT NOT NULL,
  region TEXT NOT NULL,
  first INTEGER,
  next INTEGER,
  doubt TEXT,
  seen INTEGER,
  since INTEGER,
  unchecked TEXT,
  written TEXT
) WITHOUT ROWID;
CREATE INDEX streams_by_source ON streams (account, region);
CREATE TABLE lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  holder TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  started TEXT NOT NULL,
  expires INTEGER NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (
  account TEXT NOT NULL,
  region TEXT NOT NULL,
  last_ok INTEGER,
  last_error TEXT,
  error_at INTEGER,
  PRIMARY KEY (account, region)
) WITHOUT ROWID;
CREATE TABLE listings (
  account TEXT NOT NULL,
  region TEXT NOT NULL,
  listed_at INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  counts TEXT NOT NULL,
  owners TEXT,
  PRIMARY KEY (account, region)
) WITHOUT ROWID;
`;

export interface Store {
  /** The database file; undefined for a store kept in memory (no checkpoints). */
  readonly file: string | undefined;
  /** Whether the checkpoints continue what this store wrote (see the top of this file). */
  readonly continuous: boolean;
  get(key: string): StreamState | undefined;
  /** The keys of one account-region's streams. */
  keys(account: string, region: string): string[];
  /** How many streams an account-region has, without reading them. */
  count(account: string, region: string): number;
  /** Lets go of an account-region's rows held in memory; they are read again when next asked for. */
  release(account: string, region: string): void;
  /**
   * Applies a transition to streams (undefined removes one) in one transaction, under the lease. It depends on
   * the checkpoint alone, so streams that share a checkpoint object are moved on together, by one call.
   */
  update(keys: string[], f: (s: StreamState) => StreamState | undefined): Promise<void>;
  /** Checks and renews the lease; returns when it expires (epoch ms). A write must be sent well before. */
  fence(): number;
  /** Renews the lease if the last renewal is a while ago: the run is making progress. */
  touch(): void;
  /** The last listing of an account-region, undefined before the first. */
  listing(account: string, region: string): Listing | undefined;
  /** Records a listing (after the `seen` of the streams it found), under the lease. */
  setListing(account: string, region: string, listing: Listing): void;
  /** Records how an account-region's run went, for --status: done now, or failed with this error. */
  noteSource(account: string, region: string, failure: { error: string; at: number } | undefined): void;
  /** The same for several accounts of a region in one transaction: those read through a monitoring account. */
  noteSources(
    region: string,
    notes: [account: string, failure: { error: string; at: number } | undefined][],
  ): void;
  close(): void;
}

/** How many metrics the last listing of a plan returned: namespace-wide (`wide`), and per metric name. */
export interface PlanCounts {
  wide?: number;
  names: Record<string, number>;
}
/** Per plan (see planId), what its last listing returned: the next listing picks the cheaper way from it. */
export type ListingCounts = Record<string, PlanCounts>;

/** How an account-region's runs went: when one last succeeded, and the last failure. */
export interface SourceNote {
  lastOk?: number;
  lastError?: string;
  errorAt?: number;
}

/** A ListMetrics listing of an account-region: when, of which config, and what it returned. */
export interface Listing {
  listedAt: number;
  /** The config the listing was made for: a listing of another config is not reused. */
  fingerprint: string;
  counts: ListingCounts;
  /**
   * Through a monitoring account: the accounts whose streams the account-region holds, by name, with their
   * ids (lib/discover.ts, accountsOf).
   */
  owners?: Record<string, string>;
}

/** The account and region a stream key names (keys are JSON arrays that begin with them). */
export function sourceOf(key: string): [account: string, region: string] {
  const [account, region] = JSON.parse(`${sourcePrefix(key)}]`) as [string, string];
  return [account, region];
}

/**
 * The start of a key that names its account and region, `["account","region"`: neither may hold a comma
 * (the config's rules), so it ends at the key's second comma. Cheaper than parsing the key.
 */
const sourcePrefix = (key: string) => key.slice(0, key.indexOf(",", key.indexOf(",") + 1));
const prefixOf = (account: string, region: string) => JSON.stringify([account, region]).slice(0, -1);

/** A store kept in memory: each run forwards the newest complete period and remembers nothing. */
export function memoryStore(
  initial: Record<string, StreamState> = {},
  listings = new Map<string, Listing>(),
  continuous = false,
): Store {
  const streams = new Map(Object.entries(initial));
  return {
    noteSource() {},
    noteSources() {},
    listing: (account, region) => listings.get(JSON.stringify([account, region])),
    setListing: (account, region, listing) => void listings.set(JSON.stringify([account, region]), listing),
    file: undefined,
    continuous,
    get: (k) => streams.get(k),
    keys: (account, region) => [...streams.keys()].filter((k) => k.startsWith(prefixOf(account, region))),
    count(account, region) {
      return this.keys(account, region).length;
    },
    release() {},
    update(keys, f) {
      const move = once(f);
      for (const k of keys) {
        const next = move(streams.get(k));
        if (next) streams.set(k, next);
        else streams.delete(k);
      }
      return Promise.resolve();
    },
    fence: () => Infinity,
    touch() {},
    close() {},
  };
}

/** Everything a store holds, as read without its lease. */
export interface StoreContents {
  streams: Record<string, StreamState>;
  listings: Map<string, Listing>;
  /** Per account-region (JSON of [account, region]), how its runs went. */
  sources: Map<string, SourceNote>;
  continuous: boolean;
}

/** Every stream's state, read without taking the lease: for --status, --plan and --dry-run. */
export function readStore(
  file: string,
  now?: { nowSeconds: number; interval: number },
): StoreContents {
  if (!fs.existsSync(file)) {
    return { streams: {}, listings: new Map(), sources: new Map(), continuous: false };
  }
  checkPath(file);
  // Read-write where allowed, though nothing is written: the last connection to close folds the log away.
  let db: DatabaseSync;
  try {
    db = openDatabase(file, false);
  } catch {
    db = openDatabase(file, true);
  }
  try {
    checkOurs(db, file);
    const streams: Record<string, StreamState> = {};
    readRows(db, file, undefined, (key, state) => (streams[key] = state));
    const listings = new Map<string, Listing>();
    for (const row of db.prepare("SELECT * FROM listings").iterate()) {
      const l = row as unknown as ListingRow;
      listings.set(JSON.stringify([l.account, l.region]), listingOf(l, file));
    }
    const sources = new Map<string, SourceNote>();
    for (const row of db.prepare("SELECT * FROM sources").iterate()) {
      const n = row as unknown as {
        account: string;
        region: string;
        last_ok: number | null;
        last_error: string | null;
        error_at: number | null;
      };
      sources.set(JSON.stringify([n.account, n.region]), {
        ...(n.last_ok === null ? {} : { lastOk: Number(n.last_ok) }),
        ...(n.last_error === null ? {} : { lastError: n.last_error }),
        ...(n.error_at === null ? {} : { errorAt: Number(n.error_at) }),
      });
    }
    // Whether a run now would trust these checkpoints, judged as openStore judges it, for --plan.
    const continuous = now !== undefined && judge(db, identityOf(file), now).continuous;
    return { streams, listings, sources, continuous };
  } catch (e) {
    throw unusable(file, e);
  } finally {
    db.close();
  }
}

export interface OpenOptions {
  /** Wall clock, epoch ms: the lease's time. */
  clock: () => number;
  /** The run's "now", epoch seconds: the time checkpoints are measured in. */
  nowSeconds: number;
  /** Seconds between runs: a store last used longer ago than this allows is not trusted to be continuous. */
  interval: number;
  /** The pre-SQLite JSON state to import once, if it exists; it may be the database's own path. */
  legacyFile: string | undefined;
  /** Where the version before kept this database, moved to `file` when `file` does not exist yet. */
  previousFile?: string | undefined;
  info: (line: string) => void;
}

/** Renews the lease, unless another run took it over while this one was stalled. */
function renewLease(db: DatabaseSync, file: string, lease: Lease, clock: () => number) {
  const holder = db.prepare("SELECT holder FROM lease WHERE id = 1").get() as { holder: string } | undefined;
  if (holder?.holder !== lease.holder) {
    throw new StateError(
      `Cannot write state file "${file}": another run took over its lease while this run was stalled; this run stops without writing`,
    );
  }
  lease.renewed = clock();
  lease.expires = lease.renewed + LEASE_MS;
  db.prepare("UPDATE lease SET expires = ? WHERE id = 1").run(lease.expires);
}

/** An account-region's last success (which clears its last failure), or its last failure, for --status. */
function noteSourceRow(
  db: DatabaseSync,
  account: string,
  region: string,
  note: { error: string; at: number } | { ok: number },
) {
  if ("error" in note) {
    db.prepare(
      "INSERT INTO sources (account, region, last_error, error_at) VALUES (?, ?, ?, ?) ON CONFLICT (account, region) DO UPDATE SET last_error = excluded.last_error, error_at = excluded.error_at",
    ).run(account, region, note.error, note.at);
  } else {
    db.prepare(
      "INSERT INTO sources (account, region, last_ok) VALUES (?, ?, ?) ON CONFLICT (account, region) DO UPDATE SET last_ok = excluded.last_ok, last_error = NULL, error_at = NULL",
    ).run(account, region, note.ok);
  }
}

/** Opens (or creates) the store and takes its lease. */
export function openStore(file: string, o: OpenOptions): Store {
  checkPath(file);
  if (o.previousFile !== undefined) movePrevious(o.previousFile, file, o.info);
  o = { ...o, legacyFile: o.legacyFile === file ? legacyInPlace(file) : o.legacyFile };
  createExclusively(file);
  const db = openDatabase(file, false);
  let lease: Lease | undefined;
  try {
    const identity = identityOf(file);
    const imported = initialise(db, file, identity, o);
    checkOurs(db, file);
    upgrade(db, file);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
    lease = takeLease(db, file, o.clock);
    if (imported !== undefined && o.legacyFile!.endsWith(".imported")) {
      o.info(`Imported ${plural(imported, "checkpoint")} from "${o.legacyFile}"`);
    } else if (imported !== undefined) {
      fs.renameSync(o.legacyFile!, `${o.legacyFile}.imported`);
      o.info(
        `Imported ${
          plural(imported, "checkpoint")
        } from "${o.legacyFile}", kept as "${o.legacyFile}.imported"`,
      );
    }
    const continuous = continuity(db, file, identity, o);
    return sqliteStore(db, file, lease, continuous, o.clock, o.nowSeconds);
  } catch (e) {
    if (lease) releaseLease(db, lease);
    db.close();
    throw e instanceof StateError || isPermissionError(e) ? e : unusable(file, e);
  }
}

/** The files of a SQLite database in WAL mode: the database, its log and the log's index. */
const WAL_FILES = ["", "-wal", "-shm"];

/**
 * The database the version before kept beside a `state_file` (its name ending in .db), moved to the path as
 * written, with its log, when nothing is there yet: its checkpoints go on, and nothing is read twice.
 */
function movePrevious(previous: string, file: string, info: (line: string) => void) {
  if (fs.existsSync(file) || !fs.existsSync(previous)) return;
  for (const end of WAL_FILES) if (fs.existsSync(previous + end)) fs.renameSync(previous + end, file + end);
  info(`Moved the state file "${previous}" to "${file}", the state_file as written`);
}

const SQLITE_HEADER = "SQLite format 3\0";

/**
 * Where a `state_file` still holds the JSON state of an earlier version: checked, then renamed aside to
 * make room for the database, and imported from there (an import that fails leaves the database blank, and
 * is tried again from the renamed file). Returns the file to import, if any.
 */
function legacyInPlace(file: string): string | undefined {
  const imported = `${file}.imported`;
  let head = "";
  try {
    const fd = fs.openSync(file, "r");
    try {
      const bytes = new Uint8Array(SQLITE_HEADER.length);
      head = String.fromCharCode(...bytes.subarray(0, fs.readSync(fd, bytes, 0, bytes.length, 0)));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw e;
  }
  if (head === "" || head === SQLITE_HEADER) return fs.existsSync(imported) ? imported : undefined;
  // Malformed JSON is refused here, with the file left where it is.
  parseLegacy(fs.readFileSync(file, "utf8"), file);
  fs.renameSync(file, imported);
  return imported;
}

/** A stream's row, as far as it is read (the account and region are in its key), as an array (see readRows). */
type Row = [
  key: string,
  first: number | null,
  next: number | null,
  doubt: string | null,
  seen: number | null,
  since: number | null,
  unchecked: string | null,
  written: string | null,
];

/**
 * Reads the checkpoints of an account-region's streams, or of every stream, equal ones shared (see share).
 * Rows come as arrays: as objects they would have a null prototype, which V8 makes a dictionary each, several
 * times the size. An account-region's come at once, which is faster; every stream's one by one, to keep
 * --status small beside a large fleet.
 */
function readRows(
  db: DatabaseSync,
  file: string,
  source: [account: string, region: string] | undefined,
  each: (key: string, state: StreamState) => void,
) {
  const select = db.prepare(
    `SELECT key, first, next, doubt, seen, since, ${schema2Columns(db)} FROM streams${
      source ? " WHERE account = ? AND region = ?" : ""
    }`,
  );
  select.setReturnArrays(true);
  const rows = (source ? select.all(...source) : select.iterate()) as Iterable<unknown> as Iterable<Row>;
  const state = sharedStates(file);
  for (const row of rows) each(row[0], state(row));
}

interface Lease {
  holder: string;
  renewed: number;
  expires: number;
}

function sqliteStore(
  db: DatabaseSync,
  file: string,
  lease: Lease,
  continuous: boolean,
  clock: () => number,
  nowSeconds: number,
) {
  // Each account-region's rows, read when first asked for.
  const sources = new Map<string, Map<string, StreamState>>();
  const rowsOf = (prefix: string): Map<string, StreamState> => {
    const had = sources.get(prefix);
    if (had) return had;
    const rows = new Map<string, StreamState>();
    sources.set(prefix, rows);
    readRows(db, file, JSON.parse(`${prefix}]`) as [string, string], (key, state) => rows.set(key, state));
    return rows;
  };
  // A run asks for the keys of one account-region after another: its rows are found again without cutting
  // the key, as long as the key starts with the last one's prefix.
  let last = { prefix: "", rows: new Map<string, StreamState>() };
  const rowsFor = (key: string) => {
    if (!key.startsWith(last.prefix) || key.charCodeAt(last.prefix.length) !== 44) {
      const prefix = sourcePrefix(key);
      last = { prefix, rows: rowsOf(prefix) };
    }
    return last.rows;
  };
  const renew = () => renewLease(db, file, lease, clock);
  const noteSources: Store["noteSources"] = (region, notes) =>
    transaction(db, file, () => {
      renew();
      for (const [account, failure] of notes) {
        noteSourceRow(db, account, region, failure ?? { ok: nowSeconds });
      }
    });
  const store: Store = {
    file,
    continuous,
    listing(account, region) {
      const row = db.prepare("SELECT * FROM listings WHERE account = ? AND region = ?").get(account, region);
      return row === undefined ? undefined : listingOf(row as unknown as ListingRow, file);
    },
    noteSource: (account, region, failure) => noteSources(region, [[account, failure]]),
    noteSources,
    setListing(account, region, l) {
      transaction(db, file, () => {
        renew();
        db.prepare(
          "INSERT OR REPLACE INTO listings (account, region, listed_at, fingerprint, counts, owners) VALUES (?, ?, ?, ?, ?, ?)",
        ).run(
          account,
          region,
          l.listedAt,
          l.fingerprint,
          JSON.stringify(l.counts),
          l.owners ? JSON.stringify(l.owners) : null,
        );
      });
    },
    get: (key) => rowsFor(key).get(key),
    keys: (account, region) => [...rowsOf(prefixOf(account, region)).keys()],
    count(account, region) {
      const loaded = sources.get(prefixOf(account, region));
      if (loaded) return loaded.size;
      const row = db.prepare("SELECT count(*) AS n FROM streams WHERE account = ? AND region = ?")
        .get(account, region) as { n: number };
      return Number(row.n);
    },
    release(account, region) {
      sources.delete(prefixOf(account, region));
      last = { prefix: "", rows: new Map() };
    },
    update: rowWriter(db, file, rowsFor, renew),
    fence() {
      transaction(db, file, renew, false);
      return lease.expires;
    },
    touch() {
      if (clock() - lease.renewed >= RENEW_EVERY_MS) transaction(db, file, renew, false);
    },
    close() {
      releaseLease(db, lease);
      try {
        // An empty write-ahead log after each run: the file alone is the whole state, for backups and copies.
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {
        // Another process reading it: the log is folded in by whoever closes last.
      }
      db.close();
    },
  };
  return store;
}

/** A store's update(): the transitions in one transaction under the lease, then the rows held in memory. */
function rowWriter(
  db: DatabaseSync,
  file: string,
  rowsFor: (key: string) => Map<string, StreamState>,
  renew: () => void,
): Store["update"] {
  const insert = db.prepare(
    "INSERT INTO streams (key, account, region, first, next, doubt, seen, since, unchecked, written) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  // An existing row is updated in place, which leaves the index alone: three times as fast as replacing it.
  const change = db.prepare(
    "UPDATE streams SET first = ?, next = ?, doubt = ?, seen = ?, since = ?, unchecked = ?, written = ? WHERE key = ?",
  );
  const remove = db.prepare("DELETE FROM streams WHERE key = ?");
  // Every row of an account-region at once: SQLite walks them in order, two to three times as fast as row by row.
  const changeSource = db.prepare(
    "UPDATE streams SET first = ?, next = ?, doubt = ?, seen = ?, since = ?, unchecked = ?, written = ? WHERE account = ? AND region = ?",
  );
  return (keys, f) => {
    try {
      const before = keys.map((k) => rowsFor(k).get(k));
      // A steady step's streams share a handful of checkpoints: each is moved on, and turned into columns, once.
      const shared = new Map<string, StreamState>();
      const moved = (s: StreamState) => {
        const next = f(s);
        if (next === undefined) return undefined;
        const columns = toColumns(next);
        return { state: share(shared, columns, () => next), columns };
      };
      const after = before.map(once(moved));
      // Through a monitoring account a step's streams belong to many accounts: each one's taken on its own.
      const runs = bySource(keys, rowsFor).map(([a, b]) => {
        const part = <T>(list: T[]) => (a === 0 && b === list.length ? list : list.slice(a, b));
        return { a, b, whole: after[a] !== undefined && isWholeSource(part(keys), part(before), rowsFor) };
      });
      transaction(db, file, () => {
        renew();
        for (const { a, b, whole } of runs) {
          if (whole) {
            changeSource.run(...after[a]!.columns, ...sourceOf(keys[a]!));
            continue;
          }
          for (let i = a; i < b; i++) {
            const [k, m] = [keys[i]!, after[i]];
            if (m === undefined) remove.run(k);
            else if (before[i] !== undefined) change.run(...m.columns, k);
            else insert.run(k, ...sourceOf(k), ...m.columns);
          }
        }
      });
      keys.forEach((k, i) => {
        const m = after[i];
        if (m === undefined) rowsFor(k).delete(k);
        else rowsFor(k).set(k, m.state);
      });
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

/** Where keys change account-region: [start, end) of each run of keys of one. */
function bySource(keys: string[], rowsFor: (key: string) => Map<string, StreamState>): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  let rows = keys.length > 0 ? rowsFor(keys[0]!) : undefined;
  for (let i = 1; i <= keys.length; i++) {
    const next = i < keys.length ? rowsFor(keys[i]!) : undefined;
    if (next === rows) continue;
    runs.push([start, i]);
    [start, rows] = [i, next];
  }
  return runs;
}

/**
 * Whether keys are every stream of one account-region, all with one checkpoint: a steady run's steps, and the
 * listing that finds them again, move an account-region's streams together.
 */
function isWholeSource(
  keys: string[],
  before: (StreamState | undefined)[],
  rowsFor: (key: string) => Map<string, StreamState>,
): boolean {
  const rows = keys.length > 0 ? rowsFor(keys[0]!) : undefined;
  if (rows === undefined || before[0] === undefined || keys.length !== rows.size) return false;
  // Row by row if any stream has another checkpoint or is of another account-region, or a key is repeated
  // (so that as many keys leave a stream out).
  return before.every((s) => s === before[0]) && keys.every((k) => rowsFor(k) === rows) &&
    new Set(keys).size === rows.size;
}

interface ListingRow {
  account: string;
  region: string;
  listed_at: number;
  fingerprint: string;
  counts: string;
  /** Absent in a database of schema 2, read without upgrading it. */
  owners?: string | null;
}

function listingOf(row: ListingRow, file: string): Listing {
  try {
    const listing = {
      listedAt: Number(row.listed_at),
      fingerprint: row.fingerprint,
      counts: JSON.parse(row.counts),
    };
    return typeof row.owners === "string" ? { ...listing, owners: JSON.parse(row.owners) } : listing;
  } catch {
    throw new StateError(
      `Cannot read state file "${file}": the listing of ${row.account} ${row.region} is malformed; it was left as it is`,
    );
  }
}

/**
 * One object for equal checkpoints read or written together: a steady run's streams mostly have the same, so
 * 100,000 streams hold a handful of them instead of 100,000. A checkpoint is never changed in place (the
 * transitions in lib/state.ts make new ones), so sharing one is safe.
 */
function share(shared: Map<string, StreamState>, columns: readonly unknown[], make: () => StreamState) {
  const id = columns.join("|");
  let s = shared.get(id);
  if (s === undefined) shared.set(id, s = make());
  return s;
}

/** Reads rows into checkpoints, equal ones shared (see share). */
function sharedStates(file: string): (row: Row) => StreamState {
  const shared = new Map<string, StreamState>();
  // Rows come in key order, so a row is most often like the one before: that one is compared first.
  let last: { row: Row; state: StreamState } | undefined;
  const alike = (a: Row, b: Row) =>
    a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] && a[5] === b[5] && a[6] === b[6] &&
    a[7] === b[7];
  return (row) => {
    if (last !== undefined && alike(row, last.row)) return last.state;
    const state = share(shared, row.slice(1), () => fromRow(row, file));
    last = { row, state };
    return state;
  };
}

/** The checkpoint of a stream that has none yet. */
const NONE: StreamState = Object.freeze({});

/** A transition applied once per checkpoint object, for all the streams that share it (see share). */
const once = <T>(f: (s: StreamState) => T) => perCheckpoint((s) => f(s ?? NONE));

const toColumns = (s: StreamState) =>
  [
    s.first ?? null,
    s.next ?? null,
    s.doubt?.length ? JSON.stringify(s.doubt) : null,
    s.seen ?? null,
    s.since ?? null,
    s.unchecked?.length ? JSON.stringify(s.unchecked) : null,
    s.written?.length ? JSON.stringify(s.written) : null,
  ] as const;

function fromRow(
  [key, first, next, doubtText, seen, since, uncheckedText, writtenText]: Row,
  file: string,
): StreamState {
  const s: StreamState = {};
  if (first !== null) s.first = Number(first);
  if (next !== null) s.next = Number(next);
  if (seen !== null) s.seen = Number(seen);
  if (since !== null) s.since = Number(since);
  if (doubtText !== null) s.doubt = ranges(doubtText, 3, `the doubt of stream ${key}`, file) as Doubt[];
  if (writtenText !== null) {
    s.written = ranges(writtenText, 3, `the periods a replay wrote of stream ${key}`, file) as Doubt[];
  }
  if (uncheckedText !== null) {
    s.unchecked = ranges(uncheckedText, 4, `the periods to read again of stream ${key}`, file) as Unchecked[];
  }
  return s;
}

/** A column that holds a list of ranges of whole numbers, each of `size` (a Doubt, an Unchecked). */
function ranges(text: string, size: number, what: string, file: string): number[][] {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    // Reported below.
  }
  const isTime = (x: unknown) => typeof x === "number" && Number.isInteger(x);
  if (!Array.isArray(list) || !list.every((r) => Array.isArray(r) && r.length === size && r.every(isTime))) {
    throw new StateError(`Cannot read state file "${file}": ${what} is malformed; it was left as it is`);
  }
  return list as number[][];
}

/**
 * Runs `f` in a write transaction (BEGIN IMMEDIATE: waits for, and then excludes, other writers). One that
 * is not `durable` is not flushed to disk when it commits (the next durable one flushes it): a lease renewal,
 * made before every PutMetricData, where a flush costs many times the renewal itself; should the machine
 * lose power, the run that held the lease is gone with it.
 */
function transaction(db: DatabaseSync, file: string, f: () => void, durable = true) {
  if (!durable) {
    // Only a setting of this connection, which touches no file.
    db.exec("PRAGMA synchronous = NORMAL");
    try {
      return transaction(db, file, f);
    } finally {
      db.exec("PRAGMA synchronous = FULL");
    }
  }
  try {
    db.exec("BEGIN IMMEDIATE");
  } catch (e) {
    throw unusable(file, e);
  }
  try {
    f();
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e instanceof StateError ? e : unusable(file, e);
  }
}

/**
 * SQLite's primary result codes (sqlite.org, "Result and Error Codes") and the text SQLite gives each: Deno's
 * node:sqlite leaves `errcode` out of some errors, whose message is that text all the same.
 */
const SQLITE = {
  READONLY: [8, "attempt to write a readonly database"],
  IOERR: [10, "disk I/O error"],
  CORRUPT: [11, "database disk image is malformed"],
  FULL: [13, "database or disk is full"],
  CANTOPEN: [14, "unable to open database file"],
  NOTADB: [26, "file is not a database"],
} as const;

/** What an error says of the file or the device under it, from SQLite's result code or the system's. */
function trouble(e: unknown): "full" | "io" | "damaged" | "unwritable" | undefined {
  const x = e as { errcode?: unknown; code?: unknown; message?: unknown };
  // An extended code carries the primary one in its low byte: SQLITE_IOERR_WRITE is 778, 3 << 8 | 10.
  const primary = typeof x?.errcode === "number" ? x.errcode & 0xff : undefined;
  const is = ([code, text]: readonly [number, string]) =>
    primary === undefined ? String(x?.message).startsWith(text) : primary === code;
  if (is(SQLITE.FULL) || x?.code === "ENOSPC" || x?.code === "EDQUOT") return "full";
  if (is(SQLITE.IOERR) || x?.code === "EIO") return "io";
  if (is(SQLITE.CORRUPT) || is(SQLITE.NOTADB)) return "damaged";
  if (is(SQLITE.READONLY) || is(SQLITE.CANTOPEN) || ["EROFS", "EACCES", "EPERM"].includes(String(x?.code))) {
    return "unwritable";
  }
  return undefined;
}

/** Whether the file system that holds `file` has no block left for it, where that can be asked. */
function noSpaceLeft(file: string): boolean {
  try {
    return fs.statfsSync(path.dirname(file)).bavail === 0;
  } catch {
    return false;
  }
}

/**
 * The StateError for a failure to use the store, in one line that says what went wrong and what to do: a
 * full disk or a failing device leaves the file as it was (SQLite undoes a transaction it cannot finish), so
 * the next run goes on from its checkpoints; only a damaged file is to be restored or moved away.
 */
export function unusable(file: string, e: unknown): Error {
  if (e instanceof StateError || isPermissionError(e)) return e as Error;
  const cannot = `Cannot use state file "${file}"`;
  const said = oneLine(e instanceof Error ? e.message : String(e));
  // SQLITE_BUSY past the busy timeout: a process holds the write lock, as one paused inside a transaction does.
  if (/database is locked/.test(said)) {
    return new StateError(
      `${cannot}: another process has held its write lock for ${
        BUSY_TIMEOUT_MS / 1000
      } s (a run paused or stopped in the middle of a write); nothing was changed, and the next run tries again`,
    );
  }
  const kept = "nothing was changed, and the next run goes on from its checkpoints";
  // SQLite calls a full disk an I/O error where the shared-memory file under its write-ahead log cannot grow.
  const kind = trouble(e);
  switch (kind === "io" && noSpaceLeft(file) ? "full" : kind) {
    case "full":
      return new StateError(
        `${cannot}: the disk is full (${said}); ${kept} once space is freed on the device that holds it`,
      );
    case "io":
      return new StateError(
        `${cannot}: the device that holds it could not read or write it (${said}): a full disk, or a failing one; ${kept} once space is freed or the device is repaired`,
      );
    case "damaged":
      return new StateError(
        `${cannot}: it is damaged (${said}); it was left as it is: restore it from a backup, or move it away to start afresh`,
      );
    case "unwritable":
      return new StateError(
        `${cannot}: it cannot be opened or written there (${said}); nothing was changed: check that its folder exists and that the forwarder may write to the file and to the folder`,
      );
  }
  return new StateError(
    `${cannot}: ${describe(e)}; it was left as it is: repair it, or move it away to start afresh`,
  );
}

/** Refuses links and anything but a regular file where the database and its companions go. */
function checkPath(file: string) {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(f);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") continue;
      throw isPermissionError(e) ? e : unusable(file, e);
    }
    if (st.isSymbolicLink()) {
      throw new StateError(
        `Cannot use state file "${file}": "${f}" is a symbolic link, which the forwarder does not follow`,
      );
    }
    if (!st.isFile()) throw new StateError(`Cannot use state file "${file}": "${f}" is not a regular file`);
  }
}

/** Creates the database file private to this user, refusing to follow a link planted there meanwhile. */
function createExclusively(file: string) {
  try {
    fs.closeSync(fs.openSync(file, "wx", 0o600));
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return;
    throw isPermissionError(e) ? e : unusable(file, e);
  }
}

function openDatabase(file: string, readOnly: boolean): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { readOnly });
  } catch (e) {
    throw isPermissionError(e) ? e : unusable(file, e);
  }
  try {
    // Nothing that writes: a database that is not ours must be left exactly as it is.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (e) {
    db.close();
    throw unusable(file, e);
  }
  return db;
}

/**
 * Gives a blank database (new, or left empty by a first run stopped right after creating it) its tables, and
 * the JSON state of earlier versions, all in one transaction: a failed import leaves it blank, to be tried
 * again. Returns how many checkpoints were imported, or undefined when there was nothing to import.
 */
function initialise(db: DatabaseSync, file: string, identity: string, o: OpenOptions): number | undefined {
  let imported: number | undefined;
  transaction(db, file, () => {
    const id = (db.prepare("PRAGMA application_id").get() as { application_id: number }).application_id;
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }).n;
    if (Number(id) !== 0 || Number(tables) > 0) return;
    db.exec(SCHEMA);
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = ${SCHEMA_VERSION}`);
    if (o.legacyFile !== undefined) imported = importLegacy(db, o.legacyFile, identity, o);
  });
  return imported;
}

/** A database of an earlier schema gains the columns of the later ones, in one transaction. */
function upgrade(db: DatabaseSync, file: string) {
  const from = schemaOf(db);
  if (from >= SCHEMA_VERSION) return;
  transaction(db, file, () => {
    if (from < 2) {
      db.exec("ALTER TABLE streams ADD COLUMN unchecked TEXT; ALTER TABLE streams ADD COLUMN written TEXT");
    }
    if (from < 3) db.exec("ALTER TABLE listings ADD COLUMN owners TEXT");
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

const schemaOf = (db: DatabaseSync) =>
  Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);

/** What a read selects for the columns of schema 2: a database of schema 1, read without upgrading it, has none. */
const schema2Columns = (db: DatabaseSync) => (schemaOf(db) >= 2 ? "unchecked, written" : "NULL, NULL");

/** Refuses a database that is not ours, or is from a newer version, before anything is written to it. */
function checkOurs(db: DatabaseSync, file: string) {
  const id = (db.prepare("PRAGMA application_id").get() as { application_id: number }).application_id;
  const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (id !== APPLICATION_ID) {
    throw new StateError(
      `Cannot use state file "${file}": it is not a cloudwatch-forwarder state file; it was left as it is`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new StateError(
      `Cannot use state file "${file}": it was written by a newer version (schema ${version}); it was left as it is`,
    );
  }
  const check = db.prepare("PRAGMA quick_check(1)").get() as { quick_check: string };
  if (check.quick_check !== "ok") {
    throw new StateError(
      `Cannot use state file "${file}": it is damaged (${
        oneLine(check.quick_check)
      }); it was left as it is: restore it from a backup, or move it away to start afresh`,
    );
  }
}

/** The host name tells a lease held on another machine (a shared state folder) from one held here. */
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

interface LeaseRow {
  holder: string;
  pid: number;
  host: string;
  started: string;
  expires: number;
}

/** Takes the lease: free, expired, or held by a process of this host that is gone. */
function takeLease(db: DatabaseSync, file: string, clock: () => number): Lease {
  const host = hostName();
  const lease: Lease = { holder: crypto.randomUUID(), renewed: clock(), expires: clock() + LEASE_MS };
  transaction(db, file, () => {
    const other = db.prepare("SELECT * FROM lease WHERE id = 1").get() as LeaseRow | undefined;
    const gone = other !== undefined && other.host === host && isAlive(Number(other.pid)) === false;
    if (other !== undefined && Number(other.expires) > lease.renewed && !gone) {
      throw new StateError(
        `Cannot lock state file "${file}": another run (pid ${other.pid} on ${other.host}, since ${other.started}) holds its lease until ${
          iso(Math.ceil(Number(other.expires) / 1000))
        }`,
      );
    }
    db.prepare(
      "INSERT OR REPLACE INTO lease (id, holder, pid, host, started, expires) VALUES (1, ?, ?, ?, ?, ?)",
    )
      .run(lease.holder, process.pid, host, new Date(lease.renewed).toISOString(), lease.expires);
  });
  return lease;
}

function releaseLease(db: DatabaseSync, lease: Lease) {
  try {
    db.prepare("DELETE FROM lease WHERE holder = ?").run(lease.holder);
  } catch {
    // Taken over, or the database went away: nothing of ours to release.
  }
}

/**
 * Decides whether the checkpoints continue what this store wrote, and records this run: the file's identity
 * (where it is, which file it is) and when it was last used, in the run's time.
 */
function continuity(db: DatabaseSync, file: string, identity: string, o: OpenOptions): boolean {
  const { continuous, why } = judge(db, identity, o);
  if (why !== undefined) {
    o.info(
      `State file "${file}": ${why}, so the periods owed are read from the destination before they are written`,
    );
  }
  transaction(db, file, () => {
    const set = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    set.run("identity", identity);
    set.run("last_run", String(o.nowSeconds));
  });
  return continuous;
}

/** Whether a run now continues this store's last run (see the top of this file), and if not, why, when known. */
function judge(db: DatabaseSync, identity: string, o: { nowSeconds: number; interval: number }) {
  const meta = new Map(
    (db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[]).map((
      r,
    ) => [r.key, r.value]),
  );
  const lastRun = meta.has("last_run") ? Number(meta.get("last_run")) : undefined;
  const gap = lastRun === undefined ? Infinity : o.nowSeconds - lastRun;
  const continuous = meta.get("identity") === identity && gap >= 0 && gap <= trustHorizon(o.interval);
  const why = continuous || lastRun === undefined
    ? undefined
    : meta.get("identity") !== identity
    ? "it was moved, copied or restored since its last run"
    : `its last run was at ${iso(lastRun)}`;
  return { continuous, why };
}

/** Which file this is, and where: a copy, a restored backup or a moved file differs from the original. */
function identityOf(file: string): string {
  const st = fs.statSync(file);
  return `${st.dev}:${st.ino}:${path.resolve(file)}`;
}

/**
 * The longest gap between runs over which checkpoints are trusted: the previous tick's, with half an interval
 * to spare for a timer's jitter. A missed tick is not trusted: something else (a restored copy, a run without
 * checkpoints) may have run in its place.
 */
export const trustHorizon = (interval: number) => interval * 1.5;

/** A key of the JSON state, which wrote dimensions as "Name=Value", as this store writes it: [Name, Value]. */
function legacyKey(key: string): string {
  const [account, region, namespace, name, dims, period] = JSON.parse(key) as unknown[];
  const pairs = (dims as unknown[]).map((d) => {
    if (typeof d !== "string") return d;
    const at = d.indexOf("=");
    return [d.slice(0, at), d.slice(at + 1)];
  });
  return JSON.stringify([account, region, namespace, name, pairs, period]);
}

/** Copies the JSON state of earlier versions into a new database; undefined when there is none. */
function importLegacy(
  db: DatabaseSync,
  legacyFile: string,
  identity: string,
  o: OpenOptions,
): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(legacyFile, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined;
    throw e;
  }
  const streams = parseLegacy(text, legacyFile);
  const insert = db.prepare(
    "INSERT OR REPLACE INTO streams (key, account, region, first, next, doubt, seen, since, unchecked, written) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  for (const [key, s] of Object.entries(streams)) {
    insert.run(legacyKey(key), ...sourceOf(key), ...toColumns(s));
  }
  // The JSON file was last written by its last run, and is continued by this database: continuity is judged
  // by how long ago that was, in the run's time.
  const age = Math.max(0, Math.round((o.clock() - fs.statSync(legacyFile).mtimeMs) / 1000));
  const set = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  set.run("last_run", String(o.nowSeconds - age));
  set.run("identity", identity);
  return Object.keys(streams).length;
}
