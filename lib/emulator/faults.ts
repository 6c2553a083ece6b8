/**
 * The faults an emulator can be told to make (latency, throttling, server errors, answers lost after a write
 * was applied, refused roles) and the call counts it keeps, with the /_emulator/ endpoints that change the one
 * and report the other while it runs.
 */
import type { ServerResponse } from "node:http";
import { AwsError, throttling } from "./errors.ts";
import { isObject } from "./requests.ts";

export interface Counts {
  /** Every request that names an operation, answered or not. */
  calls: Record<string, number>;
  /** The units AWS bills for the calls it applied (GetMetricData: one per query). */
  billed: Record<string, number>;
  /** Calls refused with Throttling for being over the operation's quota (not those --throttle-rate makes). */
  throttled: Record<string, number>;
}

export interface Faults {
  latencyMs: number;
  throttleRate: number;
  errorRate: number;
  /** Share of PutMetricData calls answered HTTP 500, on top of errorRate: a destination that refuses writes. */
  putErrorRate: number;
  /** Milliseconds a PutMetricData answer is held after the data was stored. */
  putReplyDelayMs: number;
  /** Share of PutMetricData calls applied (stored, billed) whose connection is then destroyed unanswered. */
  putAppliedResetRate: number;
  /** Share of PutMetricData calls applied (stored, billed), then answered HTTP 500 InternalFailure. */
  putAppliedErrorRate: number;
  denyRoles: Set<string>;
}

/** Adds n to one of an account and region's counts of an operation. */
export function count(
  counts: Record<string, Record<string, Counts>>,
  account: string,
  region: string,
  kind: keyof Counts,
  op: string,
  n = 1,
) {
  const byRegion = counts[account] ??= {};
  const c = byRegion[region] ??= { calls: {}, billed: {}, throttled: {} };
  c[kind][op] = (c[kind][op] ?? 0) + n;
}

const internalFailure = () =>
  new AwsError(
    "InternalFailure",
    "The request processing has failed because of an unknown error, exception or failure.",
    500,
  );

/** Throttles or fails a CloudWatch call at the rates set, before the operation runs. */
export function injectFaults(faults: Faults, random: () => number, op: string) {
  const r = random();
  if (r < faults.throttleRate) throw throttling();
  if (r < faults.throttleRate + faults.errorRate) throw internalFailure();
  if (op === "PutMetricData" && random() < faults.putErrorRate) throw internalFailure();
}

/** Thrown once a write is applied, for the server to destroy the connection instead of answering. */
export class ConnectionReset extends Error {}

/**
 * Loses the answer to a PutMetricData call that was applied, at the rates set: the connection reset, or HTTP
 * 500. The client cannot tell either from a write that never happened, which is why it must not just retry.
 */
export function loseAnswer(faults: Faults, random: () => number) {
  const rate = faults.putAppliedResetRate + faults.putAppliedErrorRate;
  // No draw when the faults are off, so that an injected `random` sees the same sequence as before them.
  if (!(rate > 0)) return;
  const r = random();
  if (r < faults.putAppliedResetRate) throw new ConnectionReset("The answer was lost: connection reset");
  if (r < rate) throw internalFailure();
}

/** The numeric faults POST /_emulator/faults sets, by their snake_case keys. */
const NUMERIC_FAULTS = {
  latency_ms: "latencyMs",
  throttle_rate: "throttleRate",
  error_rate: "errorRate",
  put_error_rate: "putErrorRate",
  put_reply_delay_ms: "putReplyDelayMs",
  put_applied_reset_rate: "putAppliedResetRate",
  put_applied_error_rate: "putAppliedErrorRate",
} as const;

/** GET /_emulator/counts, and POST /_emulator/faults with any of the fields above and deny_roles. */
export function control(
  faults: Faults,
  counts: Record<string, Record<string, Counts>>,
  method: string,
  url: string,
  body: Buffer,
  res: ServerResponse,
) {
  if (method === "GET" && url === "/_emulator/counts") return answer(res, 200, counts);
  if (method === "POST" && url === "/_emulator/faults") {
    let f: unknown;
    try {
      f = JSON.parse(body.toString("utf8") || "{}");
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return answer(res, 400, { message: `Cannot set the faults: the body is not valid JSON (${why})` });
    }
    if (!isObject(f)) {
      return answer(res, 400, { message: "Cannot set the faults: the body is not an object" });
    }
    for (const [key, field] of Object.entries(NUMERIC_FAULTS)) {
      const v = f[key];
      if (typeof v === "number") faults[field] = v;
    }
    if (Array.isArray(f["deny_roles"])) faults.denyRoles = new Set(f["deny_roles"].map(String));
    return answer(res, 200, { ...faults, denyRoles: [...faults.denyRoles] });
  }
  return answer(res, 404, { message: `No such emulator endpoint: ${method} ${url}` });
}

function answer(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
