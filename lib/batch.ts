/** Splitting work into API-sized batches, and running a bounded number of tasks at once. */

/**
 * Splits items, in order, into batches of at most `maxCount` items whose weights add up to at most
 * `maxWeight`. An item heavier than `maxWeight` on its own gets a batch of its own.
 */
export function batches<T>(
  items: T[],
  maxCount: number,
  weight?: (item: T) => number,
  maxWeight = Infinity,
): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    const w = weight ? weight(item) : 0;
    if (current.length > 0 && (current.length >= maxCount || total + w > maxWeight)) {
      out.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += w;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Runs `task` over items with at most `limit` running at once; results keep the items' order. After a task
 * fails no new one starts, and the failure is thrown once those running have ended, so nothing is left
 * running behind the caller's back.
 */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await task(items[i]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/**
 * Paces calls: at most `limit` start within any `windowMs`, the stricter reading of a per-second quota (a
 * sliding window, not a bucket that refills). `acquire()` resolves when the caller may start, first come first
 * served.
 */
export function pacer(
  limit: number,
  o: { now: () => number; sleep: (ms: number) => Promise<void>; windowMs?: number },
): () => Promise<void> {
  const windowMs = o.windowMs ?? 1000;
  // The start times of the last `limit` calls, oldest first, in a ring.
  const starts = new Array<number>(limit).fill(-Infinity);
  let oldest = 0;
  let queue = Promise.resolve();
  return () => {
    const turn = queue.then(async () => {
      const wait = starts[oldest]! + windowMs - o.now();
      if (wait > 0) await o.sleep(wait);
      starts[oldest] = o.now();
      oldest = (oldest + 1) % limit;
    });
    queue = turn;
    return turn;
  };
}

/**
 * A shared budget of some quantity (datapoints held, say): `take(n)` resolves when n fits beside what is
 * taken, first come first served, with a function that gives it back. A request larger than the whole budget
 * is let through alone, so nothing waits forever.
 */
export function budget(total: number): (n: number) => Promise<() => void> {
  let used = 0;
  const waiting: { n: number; go: () => void }[] = [];
  const admit = () => {
    while (waiting.length > 0 && (used === 0 || used + waiting[0]!.n <= total)) {
      const w = waiting.shift()!;
      used += w.n;
      w.go();
    }
  };
  return (n) =>
    new Promise((resolve) => {
      waiting.push({ n, go: () => resolve(() => (used -= n, admit())) });
      admit();
    });
}
