/** lib/store.ts: checkpoints in SQLite, the lease, the one-time import, and continuity. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { StateError } from "../lib/errors.ts";
import { commit, intend, type StreamState } from "../lib/state.ts";
import { LEASE_MS, type OpenOptions, openStore, readStore, unusable } from "../lib/store.ts";

const NOW = Date.UTC(2026, 10, 24, 12);
const T = NOW / 1000;
const key = (name: string, account = "prod", region = "eu-west-1") =>
  JSON.stringify([account, region, "AWS/ECS", name, [], 60]);

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fwd-store-"));
const tempFile = () => path.join(tempDir(), "state.db");

function open(file: string, over: Partial<OpenOptions> = {}) {
  return openStore(file, {
    clock: () => NOW,
    nowSeconds: T,
    interval: 60,
    legacyFile: undefined,
    info: () => {},
    ...over,
  });
}

/** Changes the lease row directly, as another process would have left it. */
function setLease(file: string, columns: Record<string, string | number>) {
  const db = new DatabaseSync(file);
  for (const [k, v] of Object.entries(columns)) db.prepare(`UPDATE lease SET ${k} = ? WHERE id = 1`).run(v);
  db.close();
}

const digest = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

test("openStore() keeps every update, one row a stream, in a file private to its user", async () => {
  const file = tempFile();
  const store = open(file);
  await store.update([key("a"), key("b")], (s) => intend(s, { start: 0, end: 60 }, T));
  await store.update([key("a")], (s) => commit(s, { start: 0, end: 60 }));
  await store.update([key("c", "acc")], () => ({ seen: T }));
  await store.update([key("c", "acc")], () => undefined);
  assert.deepEqual(store.keys("prod", "eu-west-1").sort(), [key("a"), key("b")]);
  store.close();
  assert.deepEqual(readStore(file).streams, {
    [key("a")]: { first: 0, next: 60 },
    [key("b")]: { doubt: [[0, 60, T]] },
  });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  // The write-ahead log is folded in at the end of a run: the file alone is the whole state.
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["state.db"]);
  const again = open(file, { clock: () => NOW + 60_000, nowSeconds: T + 60 });
  assert.deepEqual(again.get(key("b")), { doubt: [[0, 60, T]] });
  again.close();
});

test("a store holds one object for equal checkpoints, written or read together", async () => {
  const file = tempFile();
  const store = open(file);
  await store.update([key("a"), key("b"), key("c")], (s) => ({ ...s, seen: T - 60 }));
  await store.update([key("a"), key("b")], (s) => ({ ...s, seen: T }));
  assert.equal(store.get(key("a")), store.get(key("b")));
  assert.notEqual(store.get(key("a")), store.get(key("c")));
  assert.deepEqual(store.get(key("c")), { seen: T - 60 });
  store.close();
  const again = open(file, { clock: () => NOW + 60_000, nowSeconds: T + 60 });
  assert.equal(again.get(key("a")), again.get(key("b")));
  assert.deepEqual(again.get(key("a")), { seen: T });
  assert.deepEqual(again.get(key("c")), { seen: T - 60 });
  again.close();
});

test("update() moves each checkpoint on once for all the streams that share it; equal results are one object", async () => {
  const store = open(tempFile());
  await store.update([key("a"), key("b"), key("c")], () => ({ next: 60 }));
  await store.update([key("d")], () => ({ next: 120 }));
  const moved: StreamState[] = [];
  await store.update([key("a"), key("b"), key("c"), key("d"), key("e")], (s) => {
    moved.push(s);
    return { next: 180 };
  });
  assert.deepEqual(moved, [{ next: 60 }, { next: 120 }, {}]);
  for (const k of ["b", "c", "d", "e"]) assert.equal(store.get(key(k)), store.get(key("a")));
  assert.deepEqual(store.get(key("e")), { next: 180 });
  store.close();
});

test("update() of every stream of an account-region, or what only looks like it, moves those streams alone", async () => {
  const file = tempFile();
  const store = open(file);
  const mine = [key("a"), key("b"), key("c")];
  // Other account-regions whose names begin like this one's.
  const others = [key("a", "prod", "eu-west-10"), key("a", "prod2"), key("a", "pro")];
  const all = [...mine, ...others];
  const cases: { name: string; keys: string[]; moved: string[] }[] = [
    { name: "every stream", keys: mine, moved: mine },
    { name: "as many keys, one twice", keys: [key("a"), key("a"), key("b")], moved: [key("a"), key("b")] },
    {
      name: "as many keys, one elsewhere",
      keys: [key("a"), key("b"), others[0]!],
      moved: [key("a"), key("b"), others[0]!],
    },
  ];
  for (const [i, c] of cases.entries()) {
    const was = 600 * (i + 1);
    // Every stream with one checkpoint object, as a steady run has them.
    await store.update(all, () => ({ next: was }));
    await store.update(c.keys, () => ({ next: was + 60 }));
    const expected = Object.fromEntries(all.map((k) => [k, { next: c.moved.includes(k) ? was + 60 : was }]));
    for (const k of all) assert.deepEqual(store.get(k), expected[k], `${c.name}: ${k}`);
    assert.deepEqual(readStore(file).streams, expected, c.name);
  }
  store.close();
});

test("noteSource() keeps an account-region's last failure until a run of it succeeds", () => {
  const file = tempFile();
  const note = (at: number, failure?: string) => {
    const store = open(file, { clock: () => at * 1000, nowSeconds: at });
    store.noteSource("prod", "eu-west-1", failure === undefined ? undefined : { error: failure, at });
    store.close();
    return readStore(file).sources.get(JSON.stringify(["prod", "eu-west-1"]));
  };
  assert.deepEqual(note(T), { lastOk: T });
  assert.deepEqual(note(T + 60, "AccessDenied: no"), {
    lastOk: T,
    lastError: "AccessDenied: no",
    errorAt: T + 60,
  });
  // In the same second as the failure: the later run's word is what counts.
  assert.deepEqual(note(T + 60), { lastOk: T + 60 });
});

test("update() applies every transition or none", async () => {
  const file = tempFile();
  const store = open(file);
  await store.update([key("a")], () => ({ next: 60 }));
  await assert.rejects(
    store.update([key("a"), key("b")], (s) => {
      if (s.next === undefined) throw new Error("refused");
      return { next: 120 };
    }),
    /refused/,
  );
  assert.deepEqual(store.get(key("a")), { next: 60 });
  store.close();
  assert.deepEqual(readStore(file).streams, { [key("a")]: { next: 60 } });
});

test("openStore() refuses a second run while the first holds the lease, with a clear message", () => {
  const file = tempFile();
  const first = open(file);
  assert.throws(() => open(file), (e: unknown) => {
    assert.ok(e instanceof StateError);
    assert.match(
      e.message,
      new RegExp(
        `^Cannot lock state file ".*state\\.db": another run \\(pid ${process.pid} on .*, since .*\\) holds its lease until 2026-11-24T12:01:00Z$`,
      ),
    );
    return true;
  });
  first.close();
  open(file).close();
});

test("openStore() names a write lock held past the busy timeout, and leaves the file as it is", () => {
  const file = tempFile();
  open(file).close();
  const holder = new DatabaseSync(file);
  holder.exec("BEGIN IMMEDIATE");
  try {
    assert.throws(() => open(file), (e: unknown) => {
      assert.ok(e instanceof StateError);
      assert.equal(
        e.message,
        `Cannot use state file "${file}": another process has held its write lock for 5 s (a run paused or stopped in the middle of a write); nothing was changed, and the next run tries again`,
      );
      return true;
    });
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
  }
  open(file).close();
});

test("openStore() takes over a lease whose process is gone", () => {
  const file = tempFile();
  open(file); // never closed: its lease stays, as after a SIGKILL
  const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
  setLease(file, { pid: Number(dead) });
  open(file).close();
});

test("openStore() takes over a lease that has not been renewed for its length, whoever holds it", () => {
  const file = tempFile();
  open(file);
  // A live process (this one) on another host: only the lease's end can tell that its run is over.
  setLease(file, { host: "elsewhere" });
  assert.throws(() => open(file, { clock: () => NOW + LEASE_MS - 1 }), /another run \(pid \d+ on elsewhere/);
  open(file, { clock: () => NOW + LEASE_MS + 1 }).close();
});

test("a store whose lease was taken over writes nothing more and lets no PutMetricData through", async () => {
  const file = tempFile();
  const stalled = open(file);
  await stalled.update([key("a")], () => ({ next: 60 }));
  setLease(file, { host: "elsewhere" });
  const next = open(file, { clock: () => NOW + LEASE_MS + 1 });
  await assert.rejects(
    stalled.update([key("a")], () => ({ next: 120 })),
    /^StateError: Cannot write state file ".*": another run took over its lease while this run was stalled/,
  );
  assert.throws(() => stalled.fence(), StateError);
  stalled.close(); // releases nothing of the other run's
  await next.update([key("b")], () => ({ next: 60 }));
  next.close();
  assert.deepEqual(readStore(file).streams, { [key("a")]: { next: 60 }, [key("b")]: { next: 60 } });
});

test("fence() renews the lease and gives its end; touch() renews it only now and then", () => {
  const file = tempFile();
  const clock = { now: NOW };
  const store = open(file, { clock: () => clock.now });
  const leaseEnd = () => {
    const db = new DatabaseSync(file, { readOnly: true });
    const row = db.prepare("SELECT expires FROM lease").get() as { expires: number };
    db.close();
    return Number(row.expires);
  };
  clock.now += 1_000;
  assert.equal(store.fence(), NOW + 1_000 + LEASE_MS);
  assert.equal(leaseEnd(), NOW + 1_000 + LEASE_MS);
  clock.now += 1_000;
  store.touch();
  assert.equal(leaseEnd(), NOW + 1_000 + LEASE_MS);
  clock.now += LEASE_MS / 4;
  store.touch();
  assert.equal(leaseEnd(), clock.now + LEASE_MS);
  store.close();
});

const foreign: [string, (file: string) => void, RegExp][] = [
  ["a text file", (f) => fs.writeFileSync(f, "hello\n".repeat(200)), /file is not a database/],
  ["another program's SQLite database", (f) => {
    const db = new DatabaseSync(f);
    db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    db.close();
  }, /it is not a cloudwatch-forwarder state file/],
  ["a state file of a newer version", (f) => {
    open(f).close();
    const db = new DatabaseSync(f);
    db.exec("PRAGMA user_version = 99");
    db.close();
  }, /it was written by a newer version \(schema 99\)/],
  ["a damaged state file", (f) => {
    const store = open(f);
    void store.update(Array.from({ length: 2000 }, (_, i) => key(`m${i}`)), () => ({ next: 60 }));
    store.close();
    const fd = fs.openSync(f, "r+");
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 8192);
    fs.closeSync(fd);
  }, /damaged|malformed/],
];
for (const [name, make, why] of foreign) {
  test(`openStore() and readStore() refuse ${name} in one line, and leave it as it was`, () => {
    const file = tempFile();
    make(file);
    const before = digest(file);
    for (const attempt of [() => open(file), () => readStore(file).streams]) {
      assert.throws(attempt, (e: unknown) => {
        assert.ok(e instanceof StateError, String(e));
        assert.match(e.message, /^Cannot (use|read) state file ".*state\.db": .*; it was left as it is/);
        assert.match(e.message, why);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    }
    assert.equal(digest(file), before);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["state.db"]);
  });
}

test("openStore() refuses a folder where the state file goes", () => {
  const file = tempFile();
  fs.mkdirSync(file);
  assert.throws(
    () => open(file),
    /^StateError: Cannot use state file ".*": ".*state\.db" is not a regular file$/,
  );
});

test("openStore() makes a store of an empty file, as a first run stopped right after creating it leaves", async () => {
  const file = tempFile();
  fs.writeFileSync(file, "");
  const store = open(file);
  await store.update([key("a")], () => ({ next: 60 }));
  store.close();
  assert.deepEqual(readStore(file).streams, { [key("a")]: { next: 60 } });
});

test("openStore() follows no symbolic link at the database or its log, and creates nothing through one", () => {
  const dir = tempDir();
  const target = path.join(dir, "elsewhere");
  fs.writeFileSync(target, "not yours");
  const file = path.join(dir, "state.db");
  const cases: [string, () => void][] = [
    ["to a file", () => fs.symlinkSync(target, file)],
    ["dangling", () => fs.symlinkSync(path.join(dir, "missing"), file)],
    ["at the log", () => {
      open(file).close();
      fs.symlinkSync(target, `${file}-wal`);
    }],
  ];
  for (const [name, plant] of cases) {
    for (const f of [file, `${file}-wal`]) fs.rmSync(f, { force: true });
    plant();
    assert.throws(() => open(file), /is a symbolic link, which the forwarder does not follow/, name);
    assert.equal(fs.readFileSync(target, "utf8"), "not yours", name);
    assert.equal(fs.existsSync(path.join(dir, "missing")), false, name);
  }
});

test("openStore() keeps the periods to read again and those a replay wrote, and upgrades a database of schema 1 in place", async () => {
  const file = tempFile();
  const unchecked: [number, number, number, number][] = [[T - 600, T, T - 480, T]];
  let store = open(file);
  const written: [number, number, number][] = [[T - 3600, T - 3000, T]];
  await store.update([key("a"), key("b")], () => ({ first: T - 600, next: T, unchecked, written }));
  store.close();
  assert.deepEqual(readStore(file).streams[key("a")], { first: T - 600, next: T, unchecked, written });
  // What the version before made: no column for them (nor for a listing's owners, of schema 3), schema 1.
  const db = new DatabaseSync(file);
  db.exec(
    "ALTER TABLE streams DROP COLUMN unchecked; ALTER TABLE streams DROP COLUMN written; ALTER TABLE listings DROP COLUMN owners; PRAGMA user_version = 1",
  );
  db.close();
  assert.deepEqual(readStore(file).streams[key("a")], { first: T - 600, next: T });
  store = open(file);
  await store.update([key("a")], (s) => ({ ...s, unchecked }));
  store.close();
  assert.deepEqual(readStore(file).streams, {
    [key("a")]: { first: T - 600, next: T, unchecked },
    [key("b")]: { first: T - 600, next: T },
  });
  const check = new DatabaseSync(file);
  assert.equal((check.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 3);
  check.prepare("UPDATE streams SET unchecked = ? WHERE key = ?").run("[[1,2,3]]", key("a"));
  check.close();
  assert.throws(() => readStore(file), /the periods to read again of stream .* is malformed/);
});

test("openStore() imports the JSON state of earlier versions once, and keeps the file aside", () => {
  const dir = tempDir();
  const file = path.join(dir, "forwarder-state.db");
  const legacy = path.join(dir, "forwarder-state.json");
  const streams = { [key("a")]: { first: 0, next: 60, seen: T }, [key("b")]: { doubt: [[0, 60, T]] } };
  fs.writeFileSync(legacy, JSON.stringify({ version: 1, streams }));
  const said: string[] = [];
  const store = open(file, { legacyFile: legacy, info: (l) => said.push(l) });
  // Written just now by the earlier version: its checkpoints are continued.
  assert.equal(store.continuous, true);
  store.close();
  assert.deepEqual(said, [`Imported 2 checkpoints from "${legacy}", kept as "${legacy}.imported"`]);
  assert.deepEqual(readStore(file).streams, streams);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["forwarder-state.db", "forwarder-state.json.imported"]);
});

test("openStore() leaves a store blank when the JSON state cannot be imported, so a later run tries again", () => {
  const dir = tempDir();
  const file = path.join(dir, "forwarder-state.db");
  const legacy = path.join(dir, "forwarder-state.json");
  fs.writeFileSync(legacy, '{"version":1,"streams":{"a":');
  assert.throws(
    () => open(file, { legacyFile: legacy }),
    /^StateError: Cannot import state file .*not valid JSON/,
  );
  fs.writeFileSync(legacy, JSON.stringify({ version: 1, streams: { [key("a")]: { next: 60 } } }));
  open(file, { legacyFile: legacy }).close();
  assert.deepEqual(readStore(file).streams, { [key("a")]: { next: 60 } });
});

test("openStore() keeps the database at a state_file as written, importing the JSON an earlier version left there", () => {
  const dir = tempDir();
  const file = path.join(dir, "checkpoints");
  const streams = { [key("a")]: { first: 0, next: 60, seen: T } };
  const malformed = '{"version":1,"streams":{"a":';
  fs.writeFileSync(file, malformed);
  // Refused as it is, and left where it is.
  assert.throws(
    () => open(file, { legacyFile: file }),
    /^StateError: Cannot import state file .*not valid JSON/,
  );
  assert.equal(fs.readFileSync(file, "utf8"), malformed);
  fs.writeFileSync(file, JSON.stringify({ version: 1, streams }));
  const said: string[] = [];
  open(file, { legacyFile: file, info: (l) => said.push(l) }).close();
  assert.deepEqual(said, [`Imported 1 checkpoint from "${file}.imported"`]);
  assert.deepEqual(readStore(file).streams, streams);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["checkpoints", "checkpoints.imported"]);
  // Opened again: the database is used, and nothing is imported twice.
  const again = open(file, { legacyFile: file, info: (l) => said.push(l) });
  again.close();
  assert.equal(said.length, 1);
});

test("openStore() moves the database the version before kept beside a state_file to the path as written", () => {
  const dir = tempDir();
  const file = path.join(dir, "checkpoints");
  const previous = `${file}.db`;
  const store = open(previous);
  void store.update([key("a")], () => ({ first: 0, next: 60, seen: T }));
  store.close();
  const said: string[] = [];
  open(file, { legacyFile: file, previousFile: previous, info: (l) => said.push(l) }).close();
  assert.deepEqual(readStore(file).streams, { [key("a")]: { first: 0, next: 60, seen: T } });
  assert.equal(fs.existsSync(previous), false);
  // Moved, it is judged as any moved store: the next run reads the destination once before it writes.
  assert.deepEqual(said, [
    `Moved the state file "${previous}" to "${file}", the state_file as written`,
    `State file "${file}": it was moved, copied or restored since its last run, so the periods owed are read from the destination before they are written`,
  ]);
  // Once the path as written is in use, a file left at the old path is not touched.
  fs.writeFileSync(previous, "kept");
  open(file, { legacyFile: file, previousFile: previous }).close();
  assert.equal(fs.readFileSync(previous, "utf8"), "kept");
});

test("openStore() trusts checkpoints only where the previous tick used this same file", () => {
  const dir = tempDir();
  const file = path.join(dir, "state.db");
  const at = (seconds: number, f = file) => {
    const said: string[] = [];
    const s = open(f, {
      nowSeconds: T + seconds,
      clock: () => NOW + seconds * 1000,
      info: (l) => said.push(l),
    });
    s.close();
    return { continuous: s.continuous, said };
  };
  assert.deepEqual(at(0), { continuous: false, said: [] }); // new: nothing to continue
  assert.equal(at(60).continuous, true); // the next tick
  assert.equal(at(120).continuous, true);
  const backup = fs.readFileSync(file);
  const late = at(120 + 121);
  assert.deepEqual(late, {
    continuous: false,
    said: [
      `State file "${file}": its last run was at 2026-11-24T12:02:00Z, so the periods owed are read from the destination before they are written`,
    ],
  });
  // Restored from a backup in place (the same file, older content): its last run is too long ago.
  fs.writeFileSync(file, backup);
  assert.equal(at(300).continuous, false);
  assert.equal(at(360).continuous, true);
  // Copied or moved: another file, or the same file elsewhere, may not continue what the original wrote.
  const copy = path.join(dir, "copy.db");
  fs.copyFileSync(file, copy);
  assert.match(at(420, copy).said[0]!, /it was moved, copied or restored since its last run/);
  assert.equal(at(480, copy).continuous, true);
  const moved = path.join(dir, "moved.db");
  fs.renameSync(file, moved);
  assert.equal(at(540, moved).continuous, false);
});

test("readStore() reads while a run holds the lease, and finds nothing where there is no file", async () => {
  const file = tempFile();
  const store = open(file);
  await store.update([key("a")], () => ({ next: 60 }));
  assert.deepEqual(readStore(file).streams, { [key("a")]: { next: 60 } });
  store.close();
  assert.deepEqual(readStore(path.join(tempDir(), "none.db")), {
    streams: {},
    listings: new Map(),
    sources: new Map(),
    continuous: false,
  });
});

test("unusable() tells a full disk or a failing device, which leave the file as it was, from a damaged file, which is to be moved away", () => {
  const file = "/var/lib/cloudwatch-forwarder/forwarder-state.db";
  const cannot = `Cannot use state file "${file}"`;
  const kept = "nothing was changed, and the next run goes on from its checkpoints";
  // What node:sqlite throws (errcode, and the code and message both runtimes give), what Deno throws without
  // errcode for some, and what node:fs throws.
  const sqlite = (errcode: number | undefined, message: string) =>
    Object.assign(
      new Error(message),
      { code: "ERR_SQLITE_ERROR", errstr: message },
      errcode ? { errcode } : {},
    );
  const system = (code: string, message: string) => Object.assign(new Error(message), { code });
  for (
    const [name, error, expected] of [
      [
        "SQLITE_FULL",
        sqlite(13, "database or disk is full"),
        `${cannot}: the disk is full (database or disk is full); ${kept} once space is freed on the device that holds it`,
      ],
      [
        "SQLITE_FULL without errcode",
        sqlite(undefined, "database or disk is full"),
        `${cannot}: the disk is full (database or disk is full); ${kept} once space is freed on the device that holds it`,
      ],
      [
        "ENOSPC",
        system("ENOSPC", `ENOSPC: no space left on device, open '${file}'`),
        `${cannot}: the disk is full (ENOSPC: no space left on device, open '${file}'); ${kept} once space is freed on the device that holds it`,
      ],
      [
        "SQLITE_IOERR_WRITE",
        sqlite(778, "disk I/O error"),
        `${cannot}: the device that holds it could not read or write it (disk I/O error): a full disk, or a failing one; ${kept} once space is freed or the device is repaired`,
      ],
      [
        "SQLITE_IOERR without errcode",
        sqlite(undefined, "disk I/O error"),
        `${cannot}: the device that holds it could not read or write it (disk I/O error): a full disk, or a failing one; ${kept} once space is freed or the device is repaired`,
      ],
      [
        "SQLITE_CORRUPT",
        sqlite(11, "database disk image is malformed"),
        `${cannot}: it is damaged (database disk image is malformed); it was left as it is: restore it from a backup, or move it away to start afresh`,
      ],
      [
        "SQLITE_CORRUPT without errcode (Deno)",
        sqlite(undefined, "database disk image is malformed"),
        `${cannot}: it is damaged (database disk image is malformed); it was left as it is: restore it from a backup, or move it away to start afresh`,
      ],
      [
        "SQLITE_NOTADB",
        sqlite(26, "file is not a database"),
        `${cannot}: it is damaged (file is not a database); it was left as it is: restore it from a backup, or move it away to start afresh`,
      ],
      [
        "SQLITE_READONLY_DBMOVED",
        sqlite(1032, "attempt to write a readonly database"),
        `${cannot}: it cannot be opened or written there (attempt to write a readonly database); nothing was changed: check that its folder exists and that the forwarder may write to the file and to the folder`,
      ],
      [
        "EROFS",
        system("EROFS", `EROFS: read-only file system, open '${file}'`),
        `${cannot}: it cannot be opened or written there (EROFS: read-only file system, open '${file}'); nothing was changed: check that its folder exists and that the forwarder may write to the file and to the folder`,
      ],
      [
        "anything else",
        sqlite(1, "no such table: streams"),
        `${cannot}: Error: no such table: streams; it was left as it is: repair it, or move it away to start afresh`,
      ],
    ] as const
  ) {
    const e = unusable(file, error);
    assert.ok(e instanceof StateError, name);
    assert.equal(e.message, expected, name);
  }
});
