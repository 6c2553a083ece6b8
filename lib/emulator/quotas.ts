/**
 * CloudWatch's per-second call quotas, kept per account, Region and operation as AWS keeps them: a sliding
 * window of the calls started in the last second, on a monotonic clock so that a wall-clock step (or a test's
 * `now` far in the past) cannot open or close the window.
 */
import { QUOTA_WINDOW_MS, TPS_QUOTAS } from "./limits.ts";

export class Quotas {
  /** account|region|operation -> when its calls in the current window started, oldest first */
  readonly #started = new Map<string, number[]>();

  /** `clock`: milliseconds on a monotonic clock, such as performance.now. */
  constructor(readonly clock: () => number) {}

  /** Records a call as started and returns true, or returns false when its operation's quota is used up. */
  admit(account: string, region: string, op: string): boolean {
    const quota = TPS_QUOTAS.get(op);
    if (quota === undefined) return true;
    const t = this.clock();
    const key = `${account}|${region}|${op}`;
    let started = this.#started.get(key);
    if (!started) this.#started.set(key, started = []);
    // The window is the 1,000 ms up to t, (t - 1000, t]: two calls exactly 1,000 ms apart share none.
    let gone = 0;
    while (gone < started.length && started[gone]! <= t - QUOTA_WINDOW_MS) gone++;
    started.splice(0, gone);
    // A throttled call was refused, not started: it takes no room in the window.
    if (started.length >= quota) return false;
    started.push(t);
    return true;
  }
}
