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

/** Runs `task` over items with at most `limit` running at once; results keep the items' order. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
