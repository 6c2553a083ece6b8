/**
 * The faults an emulator can be told to make (latency, throttling, server errors, refused roles) and the call
 * counts it keeps, with the /_emulator/ endpoints that change the one and report the other while it runs.
 */
import type { ServerResponse } from "node:http";
import { AwsError } from "./errors.ts";

export interface Counts {
  calls: Record<string, number>;
  billed: Record<string, number>;
}

export interface Faults {
  latencyMs: number;
  throttleRate: number;
  errorRate: number;
  /** Share of PutMetricData calls answered HTTP 500, on top of errorRate: a destination that refuses writes. */
  putErrorRate: number;
  /** Milliseconds a PutMetricData answer is held after the data was stored. */
  putReplyDelayMs: number;
  denyRoles: Set<string>;
}

/** Every request that names an operation is a call; only answered ones are billed, as AWS bills them. */
export function count(
  counts: Record<string, Record<string, Counts>>,
  account: string,
  region: string,
  op: string,
  billed: number | undefined,
) {
  const byRegion = counts[account] ??= {};
  const c = byRegion[region] ??= { calls: {}, billed: {} };
  if (billed === undefined) c.calls[op] = (c.calls[op] ?? 0) + 1;
  else c.billed[op] = (c.billed[op] ?? 0) + billed;
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
  if (r < faults.throttleRate) throw new AwsError("Throttling", "Rate exceeded", 400);
  if (r < faults.throttleRate + faults.errorRate) throw internalFailure();
  if (op === "PutMetricData" && random() < faults.putErrorRate) throw internalFailure();
}

/** GET /_emulator/counts, and POST /_emulator/faults with any of the fields below (snake_case). */
export function control(
  faults: Faults,
  counts: Record<string, Record<string, Counts>>,
  method: string,
  url: string,
  body: Buffer,
  res: ServerResponse,
) {
  if (method === "GET" && url === "/_emulator/counts") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify(counts));
  }
  if (method === "POST" && url === "/_emulator/faults") {
    const f = JSON.parse(body.toString("utf8") || "{}") as Record<string, unknown>;
    if (typeof f["latency_ms"] === "number") faults.latencyMs = f["latency_ms"];
    if (typeof f["throttle_rate"] === "number") faults.throttleRate = f["throttle_rate"];
    if (typeof f["error_rate"] === "number") faults.errorRate = f["error_rate"];
    if (typeof f["put_error_rate"] === "number") faults.putErrorRate = f["put_error_rate"];
    if (typeof f["put_reply_delay_ms"] === "number") faults.putReplyDelayMs = f["put_reply_delay_ms"];
    if (Array.isArray(f["deny_roles"])) faults.denyRoles = new Set(f["deny_roles"].map(String));
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ ...faults, denyRoles: [...faults.denyRoles] }));
  }
  res.writeHead(404, { "content-type": "application/json" });
  return res.end(JSON.stringify({ message: `No such emulator endpoint: ${method} ${url}` }));
}
