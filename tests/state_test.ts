import { test } from "node:test";
import assert from "node:assert/strict";
import {
  commit,
  doubtIn,
  FORGET_AFTER_SECONDS,
  forgotten,
  intend,
  outsideSpan,
  parseLegacy,
  perCheckpoint,
  readableFrom,
  resumeAt,
  statePath,
  type StreamState,
} from "../lib/state.ts";
import { StateError } from "../lib/errors.ts";

const T = 10_000;

test("intend() adds the window to the doubt with when it was written, merging touching ranges", () => {
  const cases: [StreamState, [number, number], StreamState][] = [
    [{}, [0, 60], { doubt: [[0, 60, T]] }],
    [{ next: 0 }, [0, 60], { next: 0, doubt: [[0, 60, T]] }],
    [{ next: 0, doubt: [[0, 60, T - 5]] }, [60, 120], { next: 0, doubt: [[0, 120, T]] }],
    [{ next: 0, doubt: [[300, 360, T - 5]] }, [0, 60], { next: 0, doubt: [[0, 60, T], [300, 360, T - 5]] }],
  ];
  for (const [s, [start, end], want] of cases) assert.deepEqual(intend(s, { start, end }, T), want);
});

test("commit() grows the forwarded span by windows that touch it, and keeps windows apart from it as written", () => {
  const cases: [StreamState, [number, number], StreamState][] = [
    // A stream's first write starts its span.
    [{ doubt: [[0, 60, T]] }, [0, 60], { first: 0, next: 60 }],
    [{ first: 0, next: 60, doubt: [[60, 180, T]] }, [60, 120], {
      first: 0,
      next: 120,
      doubt: [[120, 180, T]],
    }],
    [{ first: 0, next: 60, doubt: [[0, 120, T]] }, [0, 120], { first: 0, next: 120 }],
    // A replay beyond next, or before first without touching it, is known written, not in doubt: whoever
    // reaches it reads the destination first all the same. Doubt it does not cover stays.
    [{ first: 0, next: 60, doubt: [[300, 360, T]] }, [300, 360], {
      first: 0,
      next: 60,
      written: [[300, 360, T]],
    }],
    [{ first: 600, next: 660, doubt: [[0, 60, T]] }, [0, 60], {
      first: 600,
      next: 660,
      written: [[0, 60, T]],
    }],
    [{ first: 0, next: 60, doubt: [[120, 420, T]], written: [[480, 540, T - 60]] }, [300, 360], {
      first: 0,
      next: 60,
      doubt: [[120, 300, T], [360, 420, T]],
      written: [[300, 360, T], [480, 540, T - 60]],
    }],
    // A span that grows over what a replay wrote takes it in.
    [{ first: 0, next: 60, written: [[60, 120, T]] }, [60, 180], { first: 0, next: 180 }],
    // A replay that ends where the span begins extends it back; one inside it changes nothing.
    [{ first: 600, next: 660, doubt: [[540, 600, T]] }, [540, 600], { first: 540, next: 660 }],
    [{ first: 0, next: 600, doubt: [[60, 120, T]] }, [60, 120], { first: 0, next: 600 }],
    // What commit does not own is kept.
    [{ first: 0, next: 60, seen: T }, [60, 120], { first: 0, next: 120, seen: T }],
  ];
  for (const [s, [start, end], want] of cases) assert.deepEqual(commit(s, { start, end }), want);
});

test("outsideSpan() leaves out the periods already forwarded", () => {
  assert.deepEqual(outsideSpan(undefined, { start: 0, end: 600 }), [{ start: 0, end: 600 }]);
  assert.deepEqual(outsideSpan({ first: 120, next: 240 }, { start: 0, end: 600 }), [{ start: 0, end: 120 }, {
    start: 240,
    end: 600,
  }]);
  assert.deepEqual(outsideSpan({ first: 120, next: 240 }, { start: 120, end: 240 }), []);
  assert.deepEqual(outsideSpan({ first: 120, next: 240 }, { start: 180, end: 300 }), [{
    start: 240,
    end: 300,
  }]);
});

test("doubtIn() gives the doubtful part of a window", () => {
  assert.deepEqual(doubtIn(undefined, { start: 0, end: 60 }), []);
  assert.deepEqual(doubtIn({ doubt: [[30, 90, T], [200, 260, T]] }, { start: 60, end: 240 }), [[60, 90, T], [
    200,
    240,
    T,
  ]]);
  assert.deepEqual(doubtIn({ doubt: [[0, 60, T]] }, { start: 60, end: 120 }), []);
});

test("readableFrom() waits as long as CloudWatch may take to show data of that age", () => {
  const H = 3600;
  const cases: [number, number][] = [
    // [age of the oldest period when written, wait]
    [0, 0],
    [3 * H - 60, 0],
    [3 * H, 2 * H],
    [24 * H - 60, 2 * H],
    [24 * H, 48 * H],
    [13 * 24 * H, 48 * H],
  ];
  for (const [age, wait] of cases) {
    assert.equal(readableFrom([T - age, T - age + 60, T]), T + wait, `age ${age}`);
  }
});

test("statePath() takes the config's state_file as written, else systemd's STATE_DIRECTORY, else the config's folder", () => {
  const cases: [string | undefined, Record<string, string>, ReturnType<typeof statePath>][] = [
    [undefined, { STATE_DIRECTORY: "/var/lib/fwd" }, {
      file: "/var/lib/fwd/forwarder-state.db",
      legacy: "/var/lib/fwd/forwarder-state.json",
    }],
    [undefined, { STATE_DIRECTORY: "/var/lib/a:/var/lib/b" }, {
      file: "/var/lib/a/forwarder-state.db",
      legacy: "/var/lib/a/forwarder-state.json",
    }],
    [undefined, {}, { file: "/etc/fwd/forwarder-state.db", legacy: "/etc/fwd/forwarder-state.json" }],
    ["state/fwd.db", { STATE_DIRECTORY: "/x" }, {
      file: "/etc/fwd/state/fwd.db",
      legacy: "/etc/fwd/state/fwd.db",
    }],
    // The version before kept a state_file's database beside it, its name ending in .db.
    ["/var/lib/x/checkpoints", {}, {
      file: "/var/lib/x/checkpoints",
      legacy: "/var/lib/x/checkpoints",
      previous: "/var/lib/x/checkpoints.db",
    }],
    ["/srv/fwd.json", {}, { file: "/srv/fwd.json", legacy: "/srv/fwd.json", previous: "/srv/fwd.db" }],
  ];
  for (const [stateFile, env, want] of cases) assert.deepEqual(statePath(stateFile, "/etc/fwd", env), want);
});

test("resumeAt() is the checkpoint, or the first period tried by a stream that never completed a write", () => {
  assert.equal(resumeAt(undefined), undefined);
  assert.equal(resumeAt({}), undefined);
  assert.equal(resumeAt({ next: 120, doubt: [[60, 180, T]] }), 120);
  assert.equal(resumeAt({ doubt: [[60, 120, T], [300, 360, T]] }), 60);
});

test("forgotten() picks the streams not found now and not found for 15 days", () => {
  const t = 100 * 86_400;
  const known: [string, StreamState | undefined][] = [
    ["found", { next: 0, seen: 0 }],
    ["recent", { next: 0, seen: t - FORGET_AFTER_SECONDS }],
    ["old", { next: 0, seen: t - FORGET_AFTER_SECONDS - 1 }],
    ["never-seen", { next: 0 }],
  ];
  assert.deepEqual(forgotten(known, new Set(["found"]), t), ["old"]);
});

test("parseLegacy() reads the JSON state of earlier versions and refuses anything else in one line", () => {
  const key = JSON.stringify(["prod", "eu-west-1", "AWS/ECS", "CPUUtilization", [], 60]);
  assert.deepEqual(parseLegacy(JSON.stringify({ version: 1, streams: { [key]: { next: 60 } } }), "s.json"), {
    [key]: { next: 60 },
  });
  const bad: [string, string][] = [
    ["{ not json", "not valid JSON"],
    ['{"version":1,"streams":{"a":{"next":6', "not valid JSON"],
    ['{"version":7}', "not a version 1 state file"],
    ['{"version":1}', '"streams" is missing'],
    [`{"version":1,"streams":{${JSON.stringify(key)}:{"next":"x"}}}`, "is malformed"],
    ['{"version":1,"streams":{"not-a-key":{"next":60}}}', "is malformed"],
  ];
  for (const [text, why] of bad) {
    assert.throws(() => parseLegacy(text, "s.json"), (e: unknown) => {
      assert.ok(e instanceof StateError);
      assert.match(
        e.message,
        new RegExp(`^Cannot import state file "s.json": .*${why}.*; it was left as it is`),
      );
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
});

test("perCheckpoint() works a function out once per checkpoint object, no checkpoint included", () => {
  const a: StreamState = { next: 60 };
  const alike: StreamState = { next: 60 };
  const asked: (StreamState | undefined)[] = [];
  const f = perCheckpoint((s) => (asked.push(s), resumeAt(s)));
  assert.deepEqual([a, a, undefined, alike, undefined, a].map(f), [60, 60, undefined, 60, undefined, 60]);
  // Equal checkpoints that are other objects are asked about again: the store shares what is equal.
  assert.deepEqual(asked, [a, undefined, alike]);
  assert.equal(asked[2], alike);
});
