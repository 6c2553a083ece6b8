/**
 * Reading and checking the fields of an AWS JSON 1.0 request body, as the CloudWatch operations share them:
 * wrong types are SerializationException, values out of the API reference's bounds InvalidParameterValue.
 */
import { AwsError, invalid, missing } from "./errors.ts";
import {
  BASIC_STATS,
  DIMENSION_NAME_MAX,
  DIMENSION_VALUE_MAX,
  NAME_MAX,
  PERCENTILE,
  UNITS,
} from "./limits.ts";
import type { Dimension } from "./store.ts";

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

export function parseDimensions(raw: unknown[] | undefined, where: string): Dimension[] {
  const dims: Dimension[] = [];
  for (const [i, d] of (raw ?? []).entries()) {
    if (!isObject(d)) throw new AwsError("SerializationException", `${where}.${i + 1} must be a structure`);
    const name = str(d, "Name", true);
    const value = str(d, "Value", true);
    if (name.length < 1 || name.length > DIMENSION_NAME_MAX) {
      throw invalid(
        `The value for parameter ${where}.member.${i + 1}.Name must be 1 to 255 characters long.`,
      );
    }
    if ((value.length < 1 || value.length > DIMENSION_VALUE_MAX)) {
      throw invalid(
        `The value for parameter ${where}.member.${i + 1}.Value must be 1 to 1024 characters long.`,
      );
    }
    if (dims.some((x) => x.Name === name)) {
      throw invalid(`The dimension name ${name} in ${where} is specified more than once.`);
    }
    dims.push({ Name: name, Value: value });
  }
  return dims;
}

export function checkNamespace(ns: string, where = "Namespace") {
  if (ns.length < 1 || ns.length > NAME_MAX || ns.includes(":")) {
    throw invalid(`The value ${ns} for parameter ${where} is invalid.`);
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

/** NextToken as this emulator writes it, "emu-N": N items (at most `max`) were returned already. */
export function nextTokenSkip(body: Record<string, unknown>, max = Infinity): number {
  const token = str(body, "NextToken");
  if (token === undefined) return 0;
  const m = /^emu-(\d+)$/.exec(token);
  if (!m || Number(m[1]) > max) {
    throw new AwsError(
      "InvalidNextToken",
      "The service returned an invalid NextToken.",
      400,
      "InvalidNextToken",
    );
  }
  return Number(m[1]);
}
