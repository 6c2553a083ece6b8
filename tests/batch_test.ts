import { test } from "node:test";
import assert from "node:assert/strict";
import { batches, budget, mapLimit, pacer } from "../lib/batch.ts";

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

test("mapLimit() starts nothing after a failure, and throws it once the running tasks have ended", async () => {
  const started: number[] = [];
  let running = 0;
  let endedAfterThrow = false;
  await assert.rejects(
    mapLimit([1, 2, 3, 4, 5], 2, async (x) => {
      started.push(x);
      running++;
      await new Promise((r) => setTimeout(r, x === 1 ? 1 : 20));
      running--;
      if (x === 1) throw new Error("first fails");
      endedAfterThrow = true;
      return x;
    }),
    (e: unknown) => (assert.equal(running, 0), /first fails/.test(String(e))),
  );
  assert.deepEqual(started, [1, 2]);
  assert.equal(endedAfterThrow, true);
});

test("pacer() lets at most the limit start in any window, first come first served", async () => {
  const clock = { now: 0 };
  const slept: number[] = [];
  const acquire = pacer(3, {
    now: () => clock.now,
    sleep: (ms) => (slept.push(ms), clock.now += ms, Promise.resolve()),
  });
  const started: number[] = [];
  const calls = Array.from({ length: 7 }, (_, i) => acquire().then(() => started.push(clock.now * 100 + i)));
  await Promise.all(calls);
  // Three at 0, three when the first window has passed, one more after the second.
  assert.deepEqual(started, [0, 1, 2, 100_003, 100_004, 100_005, 200_006]);
  assert.deepEqual(slept, [1000, 1000]);
  clock.now += 5_000;
  await acquire();
  assert.deepEqual(slept, [1000, 1000], "a quiet window lets the next start at once");
});

test("pacer() waits only for what is left of the window", async () => {
  const clock = { now: 0 };
  const slept: number[] = [];
  const acquire = pacer(2, {
    now: () => clock.now,
    sleep: (ms) => (slept.push(ms), clock.now += ms, Promise.resolve()),
  });
  await acquire();
  clock.now = 400;
  await acquire();
  clock.now = 700;
  await acquire(); // the first started at 0: 300 ms of its window are left
  await acquire(); // the second started at 400: it waits until 1,400
  assert.deepEqual(slept, [300, 400]);
});

test("budget() admits takes while they fit, in order, and a take larger than the budget alone", async () => {
  const take = budget(10);
  const order: string[] = [];
  const a = await take(6);
  const b = take(5).then((release) => (order.push("b"), release));
  const c = take(1).then((release) => (order.push("c"), release));
  await new Promise((r) => setTimeout(r, 1));
  assert.equal(order.length, 0, "c fits, but waits behind b: first come first served");
  a();
  const releaseB = await b;
  const releaseC = await c;
  assert.deepEqual(order, ["b", "c"]);
  const big = take(50).then((release) => (order.push("big"), release));
  await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(order, ["b", "c"]);
  releaseB();
  releaseC();
  (await big)();
  assert.deepEqual(order, ["b", "c", "big"]);
});
