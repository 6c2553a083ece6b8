/**
 * The faults an emulator can be told to make (latency, throttling, server errors, answers lost after a write
 * was applied, listings that name a metric twice or misattribute linked accounts' metrics, samples that arrive
 * late, refused roles, a clock off the host's) and the call counts it keeps, with the /_emulator/ endpoints
 * that change the one, and the cross-account links, and report the counts while it runs.
 */
import type { ServerResponse } from "node:http";
import { AwsError, throttling } from "./errors.ts";
import { linkProblems, type Links, linksJson, linksOf } from "./links.ts";
import { isObject } from "./requests.ts";

export interface Counts {
  /** Every request that names an operation, answered or not. */
  calls: Record<string, number>;
  /**
   * The units AWS bills for the calls it applied: one per call, but GetMetricData one per metric requested,
   * up to five statistics of a metric in a call as one (see billedMetrics in cloudwatch.ts).
   */
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
  /** Chance that ListMetrics names a metric it lists again, later on the same page or on the next. */
  listRepeatRate: number;
  /** Share of seeded samples (published by a source) readable only `lateBySeconds` after their timestamp. */
  lateRate: number;
  lateBySeconds: number;
  denyRoles: Set<string>;
  /** Seconds CloudWatch's clock is ahead of the base clock (the host's), behind when negative. */
  clockOffsetSeconds: number;
  /**
   * ListMetrics' OwningAccounts with IncludeLinkedAccounts: one account a metric (aligned), left out (missing),
   * or one entry short of Metrics (short), for a reader to show that it refuses a listing it cannot attribute.
   */
  owningAccounts: OwningAccountsFault;
}

export const OWNING_ACCOUNTS_FAULTS = ["aligned", "missing", "short"] as const;
export type OwningAccountsFault = (typeof OWNING_ACCOUNTS_FAULTS)[number];

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

/**
 * When a sample a source publishes becomes readable: at its timestamp + lateBySeconds for a lateRate share,
 * else at once (undefined). A service or agent can deliver a period's samples after a reader has read it (API
 * reference, PutMetricData: data can take up to hours to become available); a write applied by PutMetricData
 * itself is not made late here, since a reader of the destination relies on reading what was applied.
 */
export function lateUntil(faults: Faults, random: () => number, t: number): number | undefined {
  // No draw when the fault is off, so that an injected `random` sees the same sequence as before it.
  if (!(faults.lateRate > 0)) return undefined;
  return random() < faults.lateRate ? t + faults.lateBySeconds * 1000 : undefined;
}

/** The numeric faults POST /_emulator/faults sets, by their snake_case keys, and the values each takes. */
const NUMERIC_FAULTS = {
  latency_ms: ["latencyMs", "milliseconds"],
  throttle_rate: ["throttleRate", "rate"],
  error_rate: ["errorRate", "rate"],
  put_error_rate: ["putErrorRate", "rate"],
  put_reply_delay_ms: ["putReplyDelayMs", "milliseconds"],
  put_applied_reset_rate: ["putAppliedResetRate", "rate"],
  put_applied_error_rate: ["putAppliedErrorRate", "rate"],
  list_repeat_rate: ["listRepeatRate", "rate"],
  late_rate: ["lateRate", "rate"],
  late_by: ["lateBySeconds", "seconds"],
  clock_offset_seconds: ["clockOffsetSeconds", "offset"],
} as const;

const KNOWN_KEYS = [...Object.keys(NUMERIC_FAULTS), "owning_accounts", "deny_roles"];

/** What is wrong with the value of a numeric fault, if anything. */
function badValue(v: unknown, kind: "rate" | "milliseconds" | "seconds" | "offset"): string | undefined {
  if (kind === "rate") return typeof v === "number" && v >= 0 && v <= 1 ? undefined : "a number from 0 to 1";
  if (kind === "offset") {
    return typeof v === "number" && Number.isFinite(v)
      ? undefined
      : "a number of seconds (negative: behind the host's clock)";
  }
  return typeof v === "number" && v >= 0 && Number.isFinite(v)
    ? undefined
    : `a number of ${kind} (0 or more)`;
}

/**
 * The problems of a POST /_emulator/faults body, one a line: unknown keys (a misspelt fault would otherwise
 * change nothing and pass for a fault that is on), and values a fault does not take.
 */
function faultProblems(f: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const unknown = Object.keys(f).filter((k) => !KNOWN_KEYS.includes(k));
  if (unknown.length > 0) {
    problems.push(
      `unknown ${unknown.length === 1 ? "key" : "keys"} ${unknown.map((k) => `"${k}"`).join(", ")} (known: ${
        KNOWN_KEYS.join(", ")
      })`,
    );
  }
  for (const [key, [, kind]] of Object.entries(NUMERIC_FAULTS)) {
    const why = key in f ? badValue(f[key], kind) : undefined;
    if (why) problems.push(`"${key}" takes ${why}`);
  }
  const owning = f["owning_accounts"];
  if (owning !== undefined && !OWNING_ACCOUNTS_FAULTS.includes(owning as OwningAccountsFault)) {
    problems.push(`"owning_accounts" takes one of ${OWNING_ACCOUNTS_FAULTS.map((o) => `"${o}"`).join(", ")}`);
  }
  const roles = f["deny_roles"];
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === "string"))) {
    problems.push(`"deny_roles" takes a list of role ARNs`);
  }
  return problems;
}

/**
 * GET /_emulator/counts; POST /_emulator/faults with any of the fields above, owning_accounts and deny_roles;
 * GET /_emulator/links, and POST /_emulator/links with `{ MONITORING: [SOURCE, ...] }`, which replaces them all.
 */
export function control(
  emu: { faults: Faults; counts: Record<string, Record<string, Counts>>; links: Links },
  method: string,
  url: string,
  body: Buffer,
  res: ServerResponse,
) {
  const { faults } = emu;
  if (method === "GET" && url === "/_emulator/counts") return answer(res, 200, emu.counts);
  if (method === "GET" && url === "/_emulator/links") return answer(res, 200, linksJson(emu.links));
  if (method === "POST" && url === "/_emulator/links") {
    const links = jsonObject(body, "links", res);
    if (links === undefined) return;
    const problems = linkProblems(links);
    if (problems.length > 0) {
      return answer(res, 400, { message: `Cannot set the links: ${problems.join("; ")}` });
    }
    emu.links.clear();
    for (const [monitoring, sources] of linksOf(links as Record<string, string[]>)) {
      emu.links.set(monitoring, sources);
    }
    return answer(res, 200, linksJson(emu.links));
  }
  if (method === "POST" && url === "/_emulator/faults") {
    const f = jsonObject(body, "faults", res);
    if (f === undefined) return;
    // All or nothing: a body with a problem changes no fault.
    const problems = faultProblems(f);
    if (problems.length > 0) {
      return answer(res, 400, { message: `Cannot set the faults: ${problems.join("; ")}` });
    }
    for (const [key, [field]] of Object.entries(NUMERIC_FAULTS)) {
      const v = f[key];
      if (typeof v === "number") faults[field] = v;
    }
    if (typeof f["owning_accounts"] === "string") {
      faults.owningAccounts = f["owning_accounts"] as OwningAccountsFault;
    }
    if (Array.isArray(f["deny_roles"])) faults.denyRoles = new Set(f["deny_roles"].map(String));
    return answer(res, 200, { ...faults, denyRoles: [...faults.denyRoles] });
  }
  return answer(res, 404, { message: `No such emulator endpoint: ${method} ${url}` });
}

/** A control endpoint's body as a JSON object; answers HTTP 400 and returns undefined when it is not one. */
function jsonObject(body: Buffer, what: string, res: ServerResponse): Record<string, unknown> | undefined {
  let f: unknown;
  try {
    f = JSON.parse(body.toString("utf8") || "{}");
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    answer(res, 400, { message: `Cannot set the ${what}: the body is not valid JSON (${why})` });
    return undefined;
  }
  if (isObject(f)) return f;
  answer(res, 400, { message: `Cannot set the ${what}: the body is not an object` });
  return undefined;
}

function answer(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
