/**
 * CloudWatch's limits as the forwarder keeps to them, each from the Amazon CloudWatch API Reference. Below
 * every other module, so that the config's checks and the stages that batch calls read the same numbers. The
 * emulator keeps copies of its own on purpose: a mistake here is caught there.
 */

/** PutMetricData takes at most 1,000 metrics per request (API reference, PutMetricData). */
export const PUT_MAX_DATUMS = 1000;
/** PutMetricData requests are limited to 1 MB (API reference, PutMetricData). */
export const PUT_MAX_BYTES = 1_000_000;
/** A metric has at most 30 dimensions (API reference, MetricDatum.Dimensions). */
export const PUT_MAX_DIMENSIONS = 30;
/** MetricDatum.Timestamp may be up to two weeks in the past (API reference, MetricDatum). */
export const PUT_MAX_AGE_SECONDS = 14 * 86_400;

/** GetMetricData takes at most 500 MetricDataQuery entries per call (API reference, GetMetricData). */
export const GMD_MAX_QUERIES = 500;
/** GetMetricData returns at most 100,800 datapoints per call (API reference, MaxDatapoints). */
export const GMD_MAX_DATAPOINTS = 100_800;

/** ListMetrics.Dimensions takes at most 10 filters (API reference, ListMetrics). */
export const LIST_MAX_DIMENSION_FILTERS = 10;

/** Dimension.Name: 1 to 255 characters (API reference, Dimension). */
export const DIMENSION_NAME_MAX = 255;
/** Dimension.Value: 1 to 1,024 characters (API reference, Dimension). */
export const DIMENSION_VALUE_MAX = 1024;
/** Namespace: 1 to 255 characters (API reference, PutMetricData). */
export const NAMESPACE_MAX = 255;
/** MetricName: 1 to 255 characters (API reference, MetricDatum). */
export const METRIC_NAME_MAX = 255;

/** MetricDatum.Unit: the StandardUnit enumeration (API reference, MetricDatum). */
// deno-fmt-ignore
export const UNITS = [
  "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
  "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
  "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
  "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
] as const;

/** MetricStat.Period: 1, 5, 10 or 30 for high-resolution metrics, otherwise a multiple of 60 (API reference). */
export function isValidPeriod(period: number): boolean {
  return Number.isInteger(period) && period > 0 && (period % 60 === 0 || [1, 5, 10, 30].includes(period));
}

/**
 * Calls per second per account and region (CloudWatch User Guide, "CloudWatch service quotas"; adjustable in
 * Service Quotas, service code "monitoring"). A throttled call costs a round trip and a backoff.
 */
export const QUOTA_TPS = { GetMetricData: 50, ListMetrics: 25, PutMetricData: 500 } as const;

/** AlarmActions, OKActions, InsufficientDataActions: at most 5 ARNs each (API reference, PutMetricAlarm). */
export const ALARM_MAX_ACTIONS = 5;
/** Period x EvaluationPeriods: at most 7 days, 1 day if Period < 1 hour (API reference, PutMetricAlarm). */
export const ALARM_MAX_EVALUATION_SECONDS = 604_800;
/** DescribeAlarms answers at most 100 alarms a page (API reference, DescribeAlarms.MaxRecords). */
export const DESCRIBE_ALARMS_MAX_RECORDS = 100;
/** DeleteAlarms takes at most 100 names a call (API reference, DeleteAlarms.AlarmNames). */
export const DELETE_ALARMS_MAX_NAMES = 100;
/** DashboardName: A-Z, a-z, 0-9, "-" and "_", at most 255 (API reference, PutDashboard). */
export const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;
/** A dashboard holds 0 to 500 widgets (API reference, Dashboard Body Structure and Syntax). */
export const DASHBOARD_MAX_WIDGETS = 500;
