/**
 * CloudWatch's alarms and dashboards: PutMetricAlarm, DescribeAlarms and DeleteAlarms per account and Region,
 * PutDashboard, GetDashboard and ListDashboards per account (dashboards are global). Each request is checked
 * by the rules below, each from the API reference (Amazon CloudWatch API Reference, the operation named, and
 * its "Dashboard Body Structure and Syntax"). Alarms are kept, not evaluated: their state stays as created.
 */
import { Buffer } from "node:buffer";
import { AwsError, combination, invalid, missing } from "./errors.ts";
import { ASCII_CONTROL, BASIC_STATS, PERCENTILE, QUERY_ID } from "./limits.ts";
import {
  bool,
  checkNamespace,
  isObject,
  list,
  nextTokenSkip,
  num,
  parseDimensions,
  parseUnit,
  str,
  strings,
} from "./requests.ts";

/** PutMetricAlarm.AlarmName: 1 to 255 characters, no ASCII control characters (API reference). */
const ALARM_NAME_MAX = 255;
/** PutMetricAlarm.AlarmDescription: at most 1,024 characters (API reference). */
const DESCRIPTION_MAX = 1024;
/** PutMetricAlarm: at most 5 ARNs in each action list, each of 1 to 1,024 characters (API reference). */
const MAX_ACTIONS = 5;
const ACTION_MAX = 1024;
/** PutMetricAlarm.AlarmActions: each an ARN, arn:partition:service:region:account:resource (API reference) */
const ARN = /^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$/;
/** PutMetricAlarm.Period: 10, 20, 30 or any multiple of 60 (API reference). */
const isAlarmPeriod = (p: number) =>
  Number.isInteger(p) && p > 0 && (p % 60 === 0 || [10, 20, 30].includes(p));
/**
 * PutMetricAlarm.Period: Period x EvaluationPeriods at most 604,800 s (7 days), and at most 86,400 s (one
 * day) for periods under an hour (API reference).
 */
const MAX_EVALUATION_SECONDS = 604_800;
const MAX_EVALUATION_SECONDS_SHORT = 86_400;
const SHORT_PERIOD = 3600;
/** PutMetricAlarm.ComparisonOperator (API reference, ComparisonOperator). */
const COMPARISON_OPERATORS = new Set([
  "GreaterThanOrEqualToThreshold",
  "GreaterThanThreshold",
  "LessThanThreshold",
  "LessThanOrEqualToThreshold",
  "LessThanLowerOrGreaterThanUpperThreshold",
  "LessThanLowerThreshold",
  "GreaterThanUpperThreshold",
]);
/** PutMetricAlarm.TreatMissingData: breaching | notBreaching | ignore | missing (API reference). */
const TREAT_MISSING_DATA = new Set(["breaching", "notBreaching", "ignore", "missing"]);
/** PutMetricAlarm.EvaluateLowSampleCountPercentile: evaluate | ignore (API reference). */
const LOW_SAMPLE_COUNT = new Set(["evaluate", "ignore"]);
/** DescribeAlarms.MaxRecords: 1 to 100 (API reference); without it, this emulator answers pages of 50. */
const MAX_RECORDS = 100;
const DEFAULT_RECORDS = 50;
/** DescribeAlarms.AlarmNames and DeleteAlarms.AlarmNames: at most 100 names (API reference). */
const MAX_NAMES = 100;
/** DescribeAlarms.AlarmTypes (API reference, AlarmType); StateValue (API reference, StateValue). */
const ALARM_TYPES = new Set(["CompositeAlarm", "MetricAlarm", "LogAlarm"]);
const STATE_VALUES = new Set(["OK", "ALARM", "INSUFFICIENT_DATA"]);
/** PutDashboard.DashboardName: A-Z, a-z, 0-9, "-" and "_", at most 255 (API reference). */
const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;
/** ListDashboards.DashboardNamePrefix: at most 255 of A-Z, a-z, 0-9, ".", "-" and "_" (API reference). */
const DASHBOARD_PREFIX = /^[A-Za-z0-9._-]{1,255}$/;
/** ListDashboards: up to 1,000 dashboards a page (API reference). */
const DASHBOARDS_PAGE = 1000;
/** DashboardBody: a JSON object with a `widgets` array of 0 to 500 widgets (Dashboard Body Structure). */
const MAX_WIDGETS = 500;
/** Widget type (Dashboard Body Structure, Widgets Array Structure). */
const WIDGET_TYPES = ["metric", "text", "log", "alarm", "explorer", "custom"];
/** Widget x 0-23, y 0 or more, width 1-24, height 1-1000 (Dashboard Body Structure, Widgets Array). */
const WIDGET_BOUNDS: Record<string, [number, number]> = {
  x: [0, 23],
  y: [0, Infinity],
  width: [1, 24],
  height: [1, 1000],
};

/** The operations of this module, as the dispatch in cloudwatch.ts asks. */
export const MONITORING_OPERATIONS = new Set([
  "PutMetricAlarm",
  "DescribeAlarms",
  "DeleteAlarms",
  "PutDashboard",
  "GetDashboard",
  "ListDashboards",
]);

interface Dashboard {
  body: string;
  /** Epoch seconds. */
  modified: number;
}

/** An emulator's alarms and dashboards. */
export class Monitoring {
  /** `account region` -> alarm name -> the alarm as DescribeAlarms answers it. */
  readonly alarms = new Map<string, Map<string, Record<string, unknown>>>();
  /** account -> dashboard name -> dashboard. */
  readonly dashboards = new Map<string, Map<string, Dashboard>>();

  alarmsOf(account: string, region: string) {
    const key = `${account} ${region}`;
    let m = this.alarms.get(key);
    if (!m) this.alarms.set(key, m = new Map());
    return m;
  }

  dashboardsOf(account: string) {
    let m = this.dashboards.get(account);
    if (!m) this.dashboards.set(account, m = new Map());
    return m;
  }
}

/** Runs one of MONITORING_OPERATIONS at `now` (epoch ms); returns its answer. */
export function callMonitoring(
  monitoring: Monitoring,
  now: number,
  account: string,
  region: string,
  op: string,
  body: Record<string, unknown>,
): unknown {
  const alarms = monitoring.alarmsOf(account, region);
  if (op === "PutMetricAlarm") return putMetricAlarm(alarms, now, account, region, body);
  if (op === "DescribeAlarms") return describeAlarms(alarms, body);
  if (op === "DeleteAlarms") return deleteAlarms(alarms, body);
  const dashboards = monitoring.dashboardsOf(account);
  if (op === "PutDashboard") return putDashboard(dashboards, now, body);
  if (op === "GetDashboard") return getDashboard(dashboards, account, body);
  return listDashboards(dashboards, account, body);
}

// -- PutMetricAlarm --
function putMetricAlarm(
  alarms: Map<string, Record<string, unknown>>,
  now: number,
  account: string,
  region: string,
  body: Record<string, unknown>,
) {
  const name = str(body, "AlarmName", true);
  if (name.length < 1 || name.length > ALARM_NAME_MAX || ASCII_CONTROL.test(name)) {
    throw invalid(
      `The value for parameter AlarmName must be 1 to ${ALARM_NAME_MAX} characters without control characters.`,
    );
  }
  const description = str(body, "AlarmDescription");
  if (description !== undefined && description.length > DESCRIPTION_MAX) {
    throw invalid(`The value for parameter AlarmDescription must be at most ${DESCRIPTION_MAX} characters.`);
  }
  const actions = Object.fromEntries(
    ["OKActions", "AlarmActions", "InsufficientDataActions"].map((k) => [k, checkActions(body, k)]),
  );
  const metric = checkMetric(body);
  const evaluation = checkEvaluation(body, metric.Period);
  const treat = str(body, "TreatMissingData");
  if (treat !== undefined && !TREAT_MISSING_DATA.has(treat)) {
    throw invalid(
      `The value ${treat} for parameter TreatMissingData is invalid: use breaching, notBreaching, ignore or missing.`,
    );
  }
  const low = str(body, "EvaluateLowSampleCountPercentile");
  if (low !== undefined && !LOW_SAMPLE_COUNT.has(low)) {
    throw invalid(
      `The value ${low} for parameter EvaluateLowSampleCountPercentile is invalid: use evaluate or ignore.`,
    );
  }
  const old = alarms.get(name);
  const at = now / 1000;
  // An update replaces every setting, and leaves the alarm's state as it was (API reference, PutMetricAlarm).
  alarms.set(name, {
    AlarmName: name,
    AlarmArn: `arn:aws:cloudwatch:${region}:${account}:alarm:${name}`,
    ...(description === undefined ? {} : { AlarmDescription: description }),
    AlarmConfigurationUpdatedTimestamp: at,
    ActionsEnabled: bool(body, "ActionsEnabled") ?? true,
    ...actions,
    StateValue: old?.["StateValue"] ?? "INSUFFICIENT_DATA",
    StateReason: old?.["StateReason"] ?? "Unchecked: Initial alarm creation",
    StateUpdatedTimestamp: old?.["StateUpdatedTimestamp"] ?? at,
    ...metric,
    ...evaluation,
    ...(treat === undefined ? {} : { TreatMissingData: treat }),
    ...(low === undefined ? {} : { EvaluateLowSampleCountPercentile: low }),
  });
  return {};
}

/** An action list: at most 5 ARNs (API reference, PutMetricAlarm). */
function checkActions(body: Record<string, unknown>, key: string): string[] {
  const actions = strings(body, key) ?? [];
  if (actions.length > MAX_ACTIONS) {
    throw invalid(
      `The collection ${key} must not have more than ${MAX_ACTIONS} items; it has ${actions.length}.`,
    );
  }
  for (const a of actions) {
    if (a.length < 1 || a.length > ACTION_MAX || !ARN.test(a)) {
      throw invalid(
        `The value ${a} for parameter ${key} is invalid: an action is an ARN of 1 to ${ACTION_MAX} characters.`,
      );
    }
  }
  return actions;
}

/** The metric an alarm watches: a name, a namespace, dimensions, one statistic, a period, a unit. */
function checkMetric(body: Record<string, unknown>) {
  for (const k of ["Metrics", "EvaluationCriteria", "ThresholdMetricId"]) {
    if (body[k] !== undefined && body[k] !== null) {
      throw invalid(
        `${k}: alarms on metric math, queries and anomaly detection are not supported by this emulator.`,
      );
    }
  }
  const name = str(body, "MetricName");
  if (name === undefined) throw missing("MetricName");
  if (name.length < 1 || name.length > ALARM_NAME_MAX) {
    throw invalid(`The value for parameter MetricName must be 1 to ${ALARM_NAME_MAX} characters long.`);
  }
  const namespace = str(body, "Namespace", true);
  checkNamespace(namespace);
  // At most 30 dimensions, each a Dimension (API reference, PutMetricAlarm.Dimensions).
  const dims = parseDimensions(list(body, "Dimensions"), "Dimensions");
  // "You must specify either Statistic or ExtendedStatistic but not both" (API reference, PutMetricAlarm).
  const stat = str(body, "Statistic");
  const extended = str(body, "ExtendedStatistic");
  if (stat !== undefined && extended !== undefined) {
    throw combination(
      "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
    );
  }
  if (stat === undefined && extended === undefined) {
    throw combination("The parameter Statistic or ExtendedStatistic must be specified with MetricName.");
  }
  if (stat !== undefined && !BASIC_STATS.has(stat)) {
    throw invalid(
      `The value ${stat} for parameter Statistic is invalid: use SampleCount, Average, Sum, Minimum or Maximum.`,
    );
  }
  if (extended !== undefined && !PERCENTILE.test(extended)) {
    throw invalid(
      `The value ${extended} for parameter ExtendedStatistic is not a percentile this emulator knows.`,
    );
  }
  // Period is required for alarms on a static threshold (API reference, PutMetricAlarm).
  if (body["Period"] === undefined) throw missing("Period");
  const period = num(body["Period"], "Period");
  if (!isAlarmPeriod(period)) throw invalid("The parameter Period must be 10, 20, 30 or a multiple of 60.");
  const unit = parseUnit(body);
  return {
    MetricName: name,
    Namespace: namespace,
    ...(stat === undefined ? { ExtendedStatistic: extended } : { Statistic: stat }),
    Dimensions: dims,
    Period: period,
    ...(unit === undefined ? {} : { Unit: unit }),
  };
}

/** How the alarm compares: its evaluation periods, datapoints to alarm, threshold and operator. */
function checkEvaluation(body: Record<string, unknown>, period: number) {
  if (body["EvaluationPeriods"] === undefined) throw missing("EvaluationPeriods");
  const periods = num(body["EvaluationPeriods"], "EvaluationPeriods");
  if (!Number.isInteger(periods) || periods < 1) {
    throw invalid("The parameter EvaluationPeriods must be an integer of 1 or more.");
  }
  const most = period < SHORT_PERIOD ? MAX_EVALUATION_SECONDS_SHORT : MAX_EVALUATION_SECONDS;
  if (period * periods > most) {
    throw invalid(
      `Period (${period}) multiplied by EvaluationPeriods (${periods}) must not be more than ${most} seconds.`,
    );
  }
  const datapoints = body["DatapointsToAlarm"] === undefined
    ? undefined
    : num(body["DatapointsToAlarm"], "DatapointsToAlarm");
  if (datapoints !== undefined && (!Number.isInteger(datapoints) || datapoints < 1 || datapoints > periods)) {
    throw invalid("The parameter DatapointsToAlarm must be an integer from 1 to EvaluationPeriods.");
  }
  if (body["Threshold"] === undefined) throw missing("Threshold");
  const threshold = num(body["Threshold"], "Threshold");
  const operator = str(body, "ComparisonOperator", true);
  if (!COMPARISON_OPERATORS.has(operator)) {
    throw invalid(`The value ${operator} for parameter ComparisonOperator is not a comparison operator.`);
  }
  return {
    EvaluationPeriods: periods,
    ...(datapoints === undefined ? {} : { DatapointsToAlarm: datapoints }),
    Threshold: threshold,
    ComparisonOperator: operator,
  };
}

// -- DescribeAlarms --
function describeAlarms(alarms: Map<string, Record<string, unknown>>, body: Record<string, unknown>) {
  const names = strings(body, "AlarmNames");
  const prefix = str(body, "AlarmNamePrefix");
  // "If this parameter is specified, you cannot specify AlarmNames" (API reference, DescribeAlarms).
  if (names !== undefined && prefix !== undefined) {
    throw combination(
      "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
    );
  }
  if ((names?.length ?? 0) > MAX_NAMES) {
    throw invalid(`The collection AlarmNames must not have more than ${MAX_NAMES} items.`);
  }
  if (prefix !== undefined && (prefix.length < 1 || prefix.length > ALARM_NAME_MAX)) {
    throw invalid(`The value for parameter AlarmNamePrefix must be 1 to ${ALARM_NAME_MAX} characters long.`);
  }
  const types = strings(body, "AlarmTypes");
  for (const t of types ?? []) {
    if (!ALARM_TYPES.has(t)) throw invalid(`The value ${t} for parameter AlarmTypes is not an alarm type.`);
  }
  const state = str(body, "StateValue");
  if (state !== undefined && !STATE_VALUES.has(state)) {
    throw invalid(
      `The value ${state} for parameter StateValue is invalid: use OK, ALARM or INSUFFICIENT_DATA.`,
    );
  }
  const max = body["MaxRecords"] === undefined ? DEFAULT_RECORDS : num(body["MaxRecords"], "MaxRecords");
  if (!Number.isInteger(max) || max < 1 || max > MAX_RECORDS) {
    throw invalid(`The parameter MaxRecords must be an integer from 1 to ${MAX_RECORDS}.`);
  }
  const action = str(body, "ActionPrefix");
  // Only metric alarms are kept here; without AlarmTypes only those are asked for (API reference).
  const matching = types !== undefined && !types.includes("MetricAlarm")
    ? []
    : [...alarms.values()].filter((a) => {
      const name = a["AlarmName"] as string;
      if (names !== undefined && !names.includes(name)) return false;
      if (prefix !== undefined && !name.startsWith(prefix)) return false;
      if (state !== undefined && a["StateValue"] !== state) return false;
      const all = ["OKActions", "AlarmActions", "InsufficientDataActions"].flatMap((k) => a[k] as string[]);
      return action === undefined || all.some((x) => x.startsWith(action));
    }).sort((a, b) => ((a["AlarmName"] as string) < (b["AlarmName"] as string) ? -1 : 1));
  const skip = nextTokenSkip(body, matching.length);
  const end = skip + max;
  return {
    MetricAlarms: matching.slice(skip, end),
    CompositeAlarms: [],
    ...(end < matching.length ? { NextToken: `emu-${end}` } : {}),
  };
}

// -- DeleteAlarms --
function deleteAlarms(alarms: Map<string, Record<string, unknown>>, body: Record<string, unknown>) {
  const names = strings(body, "AlarmNames");
  if (names === undefined) throw missing("AlarmNames");
  if (names.length > MAX_NAMES) {
    throw invalid(`The collection AlarmNames must not have more than ${MAX_NAMES} items.`);
  }
  // "If you specify an incorrect alarm name or make any other error in the operation, no alarms are deleted"
  // (API reference, DeleteAlarms).
  const unknown = names.filter((n) => !alarms.has(n));
  if (unknown.length > 0) {
    throw new AwsError("ResourceNotFound", `${unknown.join(", ")} not found`, 404, "ResourceNotFound");
  }
  for (const n of names) alarms.delete(n);
  return {};
}

// -- PutDashboard --
function putDashboard(dashboards: Map<string, Dashboard>, now: number, body: Record<string, unknown>) {
  const name = str(body, "DashboardName", true);
  if (!DASHBOARD_NAME.test(name)) {
    throw invalid(
      `The value ${name} for parameter DashboardName is invalid: use 1 to 255 of A-Z, a-z, 0-9, - and _.`,
    );
  }
  const text = str(body, "DashboardBody", true);
  const problems = dashboardProblems(text);
  if (problems.length > 0) {
    const list = JSON.stringify(problems.map((p) => ({ dataPath: p.DataPath, message: p.Message })));
    throw new AwsError(
      "InvalidParameterInput",
      `The dashboard body is invalid, there are ${problems.length} validation errors: ${list}`,
      400,
      "DashboardInvalidInputError",
    );
  }
  dashboards.set(name, { body: text, modified: now / 1000 });
  return { DashboardValidationMessages: [] };
}

/** What is wrong with a dashboard body, as DashboardValidationMessages: a JSON pointer, what it should be. */
export function dashboardProblems(text: string): { DataPath: string; Message: string }[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [{ DataPath: "", Message: "The field DashboardBody must be a valid JSON object" }];
  }
  if (!isObject(body)) return [{ DataPath: "", Message: "Should be object" }];
  const widgets = body["widgets"];
  if (widgets === undefined) return [{ DataPath: "", Message: "Should have required property 'widgets'" }];
  if (!Array.isArray(widgets)) return [{ DataPath: "/widgets", Message: "Should be array" }];
  if (widgets.length > MAX_WIDGETS) {
    return [{ DataPath: "/widgets", Message: `Should NOT have more than ${MAX_WIDGETS} items` }];
  }
  return widgets.flatMap((w, i) => widgetProblems(w, `/widgets/${i}`));
}

function widgetProblems(w: unknown, at: string): { DataPath: string; Message: string }[] {
  if (!isObject(w)) return [{ DataPath: at, Message: "Should be object" }];
  const problems: { DataPath: string; Message: string }[] = [];
  const say = (path: string, message: string) =>
    problems.push({ DataPath: `${at}${path}`, Message: message });
  if (w["type"] === undefined) say("", "Should have required property 'type'");
  else if (!WIDGET_TYPES.includes(w["type"] as string)) {
    say("/type", `Should be equal to one of the allowed values: ${WIDGET_TYPES.join(", ")}`);
  }
  for (const [k, [least, most]] of Object.entries(WIDGET_BOUNDS)) {
    const v = w[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= least && (v as number) <= most)) {
      say(`/${k}`, `Should be an integer from ${least}${most === Infinity ? " up" : ` to ${most}`}`);
    }
  }
  const props = w["properties"];
  if (props === undefined) say("", "Should have required property 'properties'");
  else if (!isObject(props)) say("/properties", "Should be object");
  else if (w["type"] === "text" && typeof props["markdown"] !== "string") {
    say("/properties", "Should have required property 'markdown'");
  } else if (w["type"] === "metric") problems.push(...metricProblems(props, `${at}/properties`));
  return problems;
}

/** A metric widget's properties: its region, and each line a metric or an expression with a query id. */
function metricProblems(props: Record<string, unknown>, at: string) {
  const problems: { DataPath: string; Message: string }[] = [];
  if (typeof props["region"] !== "string") {
    problems.push({ DataPath: at, Message: "Should have required property 'region'" });
  }
  const metrics = props["metrics"];
  if (metrics === undefined) return problems;
  if (!Array.isArray(metrics)) {
    return [...problems, { DataPath: `${at}/metrics`, Message: "Should be array" }];
  }
  const ids = new Set<string>();
  metrics.forEach((line, i) => {
    const path = `${at}/metrics/${i}`;
    if (!Array.isArray(line) || line.length === 0) {
      return void problems.push({ DataPath: path, Message: "Should be a non-empty array" });
    }
    const options = line.at(-1);
    const id = isObject(options) ? options["id"] : undefined;
    if (id === undefined) return;
    // An id names a line for expressions, as MetricDataQuery.Id does (API reference, MetricDataQuery).
    if (typeof id !== "string" || !QUERY_ID.test(id) || ids.has(id)) {
      problems.push({
        DataPath: `${path}/${line.length - 1}/id`,
        Message: "Should be a unique id starting with a lowercase letter",
      });
    }
    ids.add(String(id));
  });
  return problems;
}

// -- GetDashboard, ListDashboards --
const dashboardArn = (account: string, name: string) => `arn:aws:cloudwatch::${account}:dashboard/${name}`;

function getDashboard(dashboards: Map<string, Dashboard>, account: string, body: Record<string, unknown>) {
  const name = str(body, "DashboardName", true);
  const d = dashboards.get(name);
  if (!d) {
    throw new AwsError("ResourceNotFound", `Dashboard ${name} does not exist`, 404, "DashboardNotFoundError");
  }
  return { DashboardArn: dashboardArn(account, name), DashboardBody: d.body, DashboardName: name };
}

function listDashboards(dashboards: Map<string, Dashboard>, account: string, body: Record<string, unknown>) {
  const prefix = str(body, "DashboardNamePrefix");
  if (prefix !== undefined && !DASHBOARD_PREFIX.test(prefix)) {
    throw invalid(
      `The value ${prefix} for parameter DashboardNamePrefix is invalid: use A-Z, a-z, 0-9, ., - and _.`,
    );
  }
  const names = [...dashboards.keys()].filter((n) => prefix === undefined || n.startsWith(prefix)).sort();
  const skip = nextTokenSkip(body, names.length);
  const end = skip + DASHBOARDS_PAGE;
  return {
    DashboardEntries: names.slice(skip, end).map((n) => ({
      DashboardName: n,
      DashboardArn: dashboardArn(account, n),
      LastModified: dashboards.get(n)!.modified,
      Size: Buffer.byteLength(dashboards.get(n)!.body),
    })),
    ...(end < names.length ? { NextToken: `emu-${end}` } : {}),
  };
}
