import { test } from "node:test";
import assert from "node:assert/strict";
import { batches, mapLimit } from "../lib/batch.ts";

test("batches() splits by count: empty, one, exactly the limit, limit + 1", () => {
  const n = (k: number) => Array.from({ length: k }, (_, i) => i);
  const sizes = (k: number) => batches(n(k), 3).map((b) => b.length);
  assert.deepEqual(sizes(0), []);
  assert.deepEqual(sizes(1), [1]);
  assert.deepEqual(sizes(3), [3]);
  assert.deepEqual(sizes(4), [3, 1]);
  assert.deepEqual(batches(n(7), 3).flat(), n(7));
});

test("batches() splits by weight, and gives an item heavier than the limit a batch of its own", () => {
  const w = (x: number) => x;
  assert.deepEqual(batches([4, 4, 4], 10, w, 8), [[4, 4], [4]]);
  assert.deepEqual(batches([4, 4, 4], 10, w, 7), [[4], [4], [4]]);
  assert.deepEqual(batches([1, 20, 1], 10, w, 8), [[1], [20], [1]]);
  assert.deepEqual(batches([8], 10, w, 8), [[8]]);
});

test("mapLimit() keeps order and never runs more than the limit at once", async () => {
  let running = 0;
  let most = 0;
  const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, x));
    running--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(most, 2);
});
