/**
 * Reading and checking the fields of an AWS JSON 1.0 request body, as the CloudWatch operations share them:
 * wrong types are SerializationException, values out of the API reference's bounds InvalidParameterValue.
 */
import { AwsError, invalid, missing } from "./errors.ts";
import {
  ASCII_CONTROL,
  BASIC_STATS,
  DIMENSION_NAME_MAX,
  DIMENSION_VALUE_MAX,
  MAX_DIMENSIONS,
  NAME_MAX,
  NAMESPACE_CHARS,
  NON_ASCII,
  PERCENTILE,
  UNITS,
} from "./limits.ts";
import type { Dimension, Position } from "./store.ts";

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

export function str(obj: Record<string, unknown>, key: string, required: true): string;
export function str(obj: Record<string, unknown>, key: string, required?: false): string | undefined;
export function str(obj: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw missing(key);
    return undefined;
  }
  if (typeof v !== "string") throw new AwsError("SerializationException", `${key} must be a string`);
  return v;
}

export function bool(obj: Record<string, unknown>, key: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new AwsError("SerializationException", `${key} must be a boolean`);
  return v;
}

/** Smithy's JSON protocols send non-finite doubles as the strings "NaN", "Infinity" and "-Infinity". */
export function num(v: unknown, what: string): number {
  if (v === "NaN" || v === "Infinity" || v === "-Infinity") {
    throw invalid(`The value ${v} for parameter ${what} is invalid: NaN and Infinity are not supported.`);
  }
  if (typeof v !== "number") throw new AwsError("SerializationException", `${what} must be a number`);
  return v;
}

export function list(obj: Record<string, unknown>, key: string): unknown[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new AwsError("SerializationException", `${key} must be a list`);
  return v;
}

/** A list whose items must all be strings, as Statistics and ExtendedStatistics are. */
export function strings(obj: Record<string, unknown>, key: string): string[] | undefined {
  const items = list(obj, key);
  items?.forEach((x, i) => {
    if (typeof x !== "string") {
      throw new AwsError("SerializationException", `${key}.member.${i + 1} must be a string`);
    }
  });
  return items as string[] | undefined;
}

/** Timestamps arrive as epoch seconds (the SDK's default for AWS JSON 1.0). Returns milliseconds. */
export function time(obj: Record<string, unknown>, key: string, required: boolean): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw missing(key);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new AwsError("SerializationException", `${key} must be a timestamp`);
  }
  return Math.round(v * 1000);
}

/** A metric's Dimensions: at most 30, each checked by checkDimension, no name twice. */
export function parseDimensions(raw: unknown[] | undefined, where: string): Dimension[] {
  if ((raw?.length ?? 0) > MAX_DIMENSIONS) {
    throw invalid(`The collection ${where} must not have more than ${MAX_DIMENSIONS} items.`);
  }
  const dims: Dimension[] = [];
  for (let i = 0; i < (raw?.length ?? 0); i++) {
    const { name, value } = checkDimension(raw![i], where, i + 1, true);
    if (dims.some((x) => x.Name === name)) {
      throw invalid(`The dimension name ${name} in ${where} is specified more than once.`);
    }
    dims.push({ Name: name, Value: value });
  }
  return dims;
}

/**
 * One Dimension (or DimensionFilter, whose Value is optional), member `index` of the list at `list`, by the
 * rules of the API reference, Dimension: a Name of 1-255 and a Value of 1-1,024 characters, both ASCII without
 * control characters and with at least one non-whitespace character, and a Name that does not start with a
 * colon. Messages name the member; its path is only written out for one (a call checks thousands).
 */
export function checkDimension(
  d: unknown,
  list: string,
  index: number,
  valueRequired: true,
): { name: string; value: string };
export function checkDimension(
  d: unknown,
  list: string,
  index: number,
  valueRequired: false,
): { name: string; value: string | undefined };
export function checkDimension(d: unknown, list: string, index: number, valueRequired: boolean) {
  if (!isObject(d)) {
    throw new AwsError("SerializationException", `${list}.member.${index} must be a structure`);
  }
  const name = str(d, "Name", true);
  const value = valueRequired ? str(d, "Value", true) : str(d, "Value");
  const nameProblem = textProblem(name, DIMENSION_NAME_MAX);
  if (nameProblem) throw invalid(`The value for parameter ${list}.member.${index}.Name ${nameProblem}`);
  if (name.startsWith(":")) {
    throw invalid(`The value for parameter ${list}.member.${index}.Name must not start with a colon.`);
  }
  const valueProblem = value === undefined ? undefined : textProblem(value, DIMENSION_VALUE_MAX);
  if (valueProblem) throw invalid(`The value for parameter ${list}.member.${index}.Value ${valueProblem}`);
  return { name, value };
}

/** Any character but printable ASCII: one test that passes most names and values without the two below. */
const NOT_PRINTABLE = /[^\x20-\x7e]/;

/**
 * What is wrong with a dimension name or value, in the order checked: its length, then ASCII only, no control
 * characters, not only whitespace; undefined when nothing is.
 */
function textProblem(text: string, max: number): string | undefined {
  if (text.length < 1 || text.length > max) return `must be 1 to ${max} characters long.`;
  if (NOT_PRINTABLE.test(text)) {
    if (NON_ASCII.test(text)) return "contains non-ASCII characters.";
    if (ASCII_CONTROL.test(text)) return "contains control characters.";
  }
  // Printable ASCII is only whitespace if it is only spaces, so it must start with one.
  if (text.charCodeAt(0) === 32 && text.trim() === "") {
    return "must contain at least one non-whitespace character.";
  }
  return undefined;
}

/** A Namespace: 1-255 characters of the user guide's set, not beginning with a colon. */
export function checkNamespace(ns: string, where = "Namespace") {
  if (ns.length < 1 || ns.length > NAME_MAX) {
    throw invalid(`The value for parameter ${where} must be 1 to ${NAME_MAX} characters long.`);
  }
  if (!NAMESPACE_CHARS.test(ns)) {
    throw invalid(
      `The value ${ns} for parameter ${where} is invalid: use letters, digits, spaces and the characters . - _ / # :`,
    );
  }
  if (ns.startsWith(":")) {
    throw invalid(`The value ${ns} for parameter ${where} must not start with a colon.`);
  }
}

export function parseUnit(obj: Record<string, unknown>): string | undefined {
  const unit = str(obj, "Unit");
  if (unit !== undefined && !UNITS.has(unit)) {
    throw invalid(`The value ${unit} for parameter Unit is not one of the standard units.`);
  }
  return unit;
}

export function checkPeriod(period: number, where: string) {
  // MetricStat.Period: 1, 5, 10, 30 (high resolution) or any multiple of 60.
  if (!Number.isInteger(period) || period < 1 || !(period % 60 === 0 || [1, 5, 10, 30].includes(period))) {
    throw invalid(`The parameter ${where} must be 1, 5, 10, 30 or a multiple of 60.`);
  }
}

export function checkStat(stat: string, where: string) {
  if (!BASIC_STATS.has(stat) && !PERCENTILE.test(stat)) {
    throw invalid(`The value ${stat} for parameter ${where} is not a valid statistic.`);
  }
}

/**
 * NextToken as this emulator writes it, "emu-N", where N (at most `max`) says where the next page starts: the
 * datapoints GetMetricData returned already, or ListMetrics' position among the account and Region's streams.
 */
export function nextTokenSkip(body: Record<string, unknown>, max = Infinity): number {
  const token = str(body, "NextToken");
  if (token === undefined) return 0;
  const m = /^emu-(\d+)$/.exec(token);
  if (!m || Number(m[1]) > max) throw invalidToken();
  return Number(m[1]);
}

/** A position in ListMetrics' NextToken: N, in the caller's own streams, or ACCOUNT:N in another account's. */
const POSITION = String.raw`(?:\d{12}:)?\d+`;
const LIST_TOKEN = new RegExp(`^emu-(${POSITION})(?:\\+(${POSITION}(?:\\.${POSITION})*))?$`);

/**
 * ListMetrics' NextToken, "emu-P" or "emu-P+Q.R": P is the position where the next page starts, Q, R the
 * positions of streams listed before P that the page names again (at most `most`). `accounts` are those the
 * listing runs through, in order (one at least), and `created` how many streams each has: a position is at
 * most that.
 */
export function listToken(
  body: Record<string, unknown>,
  caller: string,
  accounts: string[],
  created: (account: string) => number,
  most: number,
): { from: Position; repeats: Position[] } {
  const token = str(body, "NextToken");
  if (token === undefined) return { from: { account: accounts[0]!, seq: 0 }, repeats: [] };
  const m = LIST_TOKEN.exec(token);
  if (!m) throw invalidToken();
  const position = (p: string): Position => {
    const [account, seq] = p.includes(":") ? p.split(":") as [string, string] : [caller, p];
    return { account, seq: Number(seq) };
  };
  const from = position(m[1]!);
  const repeats = m[2]?.split(".").map(position) ?? [];
  const rank = new Map(accounts.map((a, i) => [a, i]));
  const at = rank.get(from.account);
  const before = (r: Position) => {
    const i = rank.get(r.account);
    return i !== undefined && at !== undefined && (i < at || (i === at && r.seq < from.seq));
  };
  if (
    at === undefined || from.seq > created(from.account) || repeats.length > most || !repeats.every(before)
  ) {
    throw invalidToken();
  }
  return { from, repeats };
}

/** ListMetrics' NextToken, as listToken reads it, for a listing by `caller`. */
export function writeListToken(next: Position, repeats: Position[], caller: string): string {
  const position = (p: Position) => (p.account === caller ? `${p.seq}` : `${p.account}:${p.seq}`);
  return `emu-${position(next)}${repeats.length > 0 ? `+${repeats.map(position).join(".")}` : ""}`;
}

/** InvalidNextToken: a token this emulator did not write, or one for another listing. */
export const invalidToken = () =>
  new AwsError("InvalidNextToken", "The service returned an invalid NextToken.", 400, "InvalidNextToken");
