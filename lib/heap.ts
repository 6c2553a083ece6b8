/**
 * Keeps a run's memory near what it holds. A large run makes garbage far faster than it keeps data (answers
 * parsed, datums built and sent, checkpoints replaced), and both runtimes let the heap grow to several times
 * what is alive before they collect: at 120,000 streams, hundreds of megabytes. tidy(), called after every
 * answer and every checkpoint update (lib/run.ts), collects once memory has grown by its headroom since the
 * last collection.
 */
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";

/**
 * Growth allowed between collections: a few full answers' worth, or a tenth of what is alive if more. A run's
 * peak is what is alive plus this, so it is small; a large heap takes longer to collect, hence the share.
 */
const HEADROOM_BYTES = 24 * 1024 * 1024;
const HEADROOM_SHARE = 0.1;

interface Bun {
  gc(sync: boolean): void;
}

/**
 * What grows between collections, as cheaply as it can be read: under Bun its resident memory (the heap is
 * a small part; its allocator keeps freed memory until a collection returns it), under Deno V8's old
 * generation (young garbage goes in cheap collections of its own).
 */
function grown(bun: Bun | undefined): () => number {
  if (bun) return () => process.memoryUsage.rss();
  return () => {
    let n = 0;
    for (const s of v8.getHeapSpaceStatistics()) {
      if (s.space_name === "old_space" || s.space_name === "large_object_space") n += s.space_used_size;
    }
    return n;
  };
}

/** A full collection: Bun's own (which also returns its allocator's free memory), or V8's, once exposed. */
function collector(bun: Bun | undefined): () => void {
  if (bun) return () => bun.gc(true);
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

interface Memory {
  used: () => number;
  collect: () => void;
}
let runtime: Memory | undefined;

function runtimeMemory(): Memory {
  const bun = (globalThis as { Bun?: Bun }).Bun;
  return runtime ??= { used: grown(bun), collect: collector(bun) };
}

/** tidy(): collects once `used` has grown by the headroom since the last collection (or since now). */
export function heapKeeper({ used, collect }: Memory = runtimeMemory()): () => void {
  let floor = used();
  return () => {
    if (used() <= floor + Math.max(HEADROOM_BYTES, floor * HEADROOM_SHARE)) return;
    collect();
    floor = used();
  };
}
