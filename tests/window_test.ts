import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidPeriod } from "../lib/limits.ts";
import { chunks, MAX_BACKFILL_SECONDS, newestEnd, owed, parseIso } from "../lib/window.ts";

const NOW = Date.UTC(2026, 10, 24, 12, 7, 30) / 1000;
const MIN = 60;

test("isValidPeriod() takes 1, 5, 10, 30 and multiples of 60 only", () => {
  for (const p of [1, 5, 10, 30, 60, 120, 300, 3600, 86_400]) assert.equal(isValidPeriod(p), true, String(p));
  for (const p of [0, -60, 2, 45, 59, 61, 90, 60.5]) assert.equal(isValidPeriod(p), false, String(p));
});

test("newestEnd() rounds now minus the delay down to the period", () => {
  const cases: [number, number, number][] = [
    // [period, delay, expected end relative to 12:00]
    [60, 120, 5 * MIN],
    [60, 0, 7 * MIN],
    [300, 120, 5 * MIN],
    [300, 0, 5 * MIN],
    [3600, 0, 0],
    [10, 0, 7 * MIN + 30],
  ];
  for (const [period, delay, end] of cases) {
    assert.equal(
      newestEnd(NOW, period, delay),
      Date.UTC(2026, 10, 24, 12) / 1000 + end,
      `${period}/${delay}`,
    );
  }
});

test("owed() gives a new stream the newest complete period only", () => {
  const end = newestEnd(NOW, 60, 120);
  assert.deepEqual(owed(undefined, NOW, { period: 60, delay: 120 }), { start: end - 60, end });
});

test("owed() runs from the checkpoint to the newest complete period, and is empty when caught up", () => {
  const end = newestEnd(NOW, 60, 120);
  assert.deepEqual(owed(end - 40 * MIN, NOW, { period: 60, delay: 120 }), { start: end - 40 * MIN, end });
  assert.deepEqual(owed(end, NOW, { period: 60, delay: 120 }), { start: end, end });
  // A checkpoint ahead of the clock (the clock went back) owes nothing and never moves back.
  assert.deepEqual(owed(end + 600, NOW, { period: 60, delay: 120 }), { start: end + 600, end: end + 600 });
});

test("owed() reports the periods older than PutMetricData accepts as lost, never silently", () => {
  const end = newestEnd(NOW, 60, 120);
  const checkpoint = end - 20 * 86_400;
  const w = owed(checkpoint, NOW, { period: 60, delay: 120 });
  const oldest = Math.ceil((NOW - MAX_BACKFILL_SECONDS) / 60) * 60;
  assert.deepEqual(w, { start: oldest, end, lost: { start: checkpoint, end: oldest } });
});

test("chunks() splits a window into whole chunks, oldest first, and nothing for an empty window", () => {
  assert.deepEqual(chunks({ start: 0, end: 600 }, 60, 4), [{ start: 0, end: 240 }, { start: 240, end: 480 }, {
    start: 480,
    end: 600,
  }]);
  assert.deepEqual(chunks({ start: 0, end: 240 }, 60, 4), [{ start: 0, end: 240 }]);
  assert.deepEqual(chunks({ start: 60, end: 60 }, 60, 4), []);
});

test("parseIso() takes ISO 8601 times and refuses anything else", () => {
  assert.equal(parseIso("2026-11-24T10:00:00Z"), Date.UTC(2026, 10, 24, 10) / 1000);
  assert.equal(parseIso("2026-11-24T10:00:00+01:00"), Date.UTC(2026, 10, 24, 9) / 1000);
  assert.equal(parseIso("2026-11-24"), Date.UTC(2026, 10, 24) / 1000);
  for (const bad of ["yesterday", "1700000000", "2026-13-45T99:00:00Z", ""]) {
    assert.equal(parseIso(bad), undefined, bad);
  }
});
