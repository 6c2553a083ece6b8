/**
 * The emulator's own copies of the AWS limits and value rules, each from the AWS API reference (Amazon
 * CloudWatch API Reference, AWS STS API Reference), and the billing rule it counts by (CloudWatch pricing
 * page). The forwarder keeps its own; a mistake in one is caught by the other.
 */

/** PutMetricData: at most 1,000 metrics per request (API reference, PutMetricData). */
export const PUT_MAX_DATUMS = 1000;
/** PutMetricData: a request body of at most 1 MB, read here as 1,000,000 bytes (API reference, PutMetricData). */
export const PUT_MAX_BYTES = 1_000_000;
/** Dimensions: at most 30 per metric (API reference, MetricDatum, Metric, GetMetricStatistics). */
export const MAX_DIMENSIONS = 30;
/** Dimension: Name 1-255 characters, Value 1-1024 characters (API reference, Dimension). */
export const DIMENSION_NAME_MAX = 255;
export const DIMENSION_VALUE_MAX = 1024;
/** MetricDatum.Values: at most 150 values per datum (API reference, MetricDatum). */
export const MAX_VALUES = 150;
/** MetricDatum.Value: within -2^360 to 2^360, no NaN or infinity (API reference, MetricDatum). */
export const MAX_MAGNITUDE = 2 ** 360;
/** MetricDatum.Timestamp: at most two weeks old and two hours ahead (API reference, MetricDatum). */
export const MAX_AGE_MS = 14 * 86_400_000;
export const MAX_AHEAD_MS = 2 * 3_600_000;
/**
 * PutMetricData: data 3 to 24 hours old can take up to 2 hours to become readable, data 24 hours old or more
 * up to 48 hours (API reference, PutMetricData).
 */
export const LAG_AFTER_3H_FROM = 3 * 3_600_000;
export const LAG_AFTER_3H = 2 * 3_600_000;
export const LAG_AFTER_24H_FROM = 24 * 3_600_000;
export const LAG_AFTER_24H = 48 * 3_600_000;
/** Namespace and MetricName: 1-255 characters (API reference, PutMetricData, MetricDatum). */
export const NAME_MAX = 255;
/**
 * Namespace: letters, digits, period, hyphen, underscore, forward slash, hash, colon and space (User Guide,
 * CloudWatch concepts, Namespaces), not beginning with a colon (API reference, the Namespace pattern `[^:].*`).
 */
export const NAMESPACE_CHARS = /^[A-Za-z0-9.\-_/#: ]*$/;
/** Dimension Name and Value: ASCII characters only (API reference, Dimension). */
export const NON_ASCII = /[\u0080-\uffff]/;
/** Dimension Name and Value: no ASCII control characters (API reference, Dimension). */
// deno-lint-ignore no-control-regex
export const ASCII_CONTROL = /[\x00-\x1f\x7f]/;
/** GetMetricData.MetricDataQueries: at most 500 queries per call (API reference, GetMetricData). */
export const GMD_MAX_QUERIES = 500;
/** GetMetricData.MaxDatapoints: 100,800 when not given (API reference, GetMetricData). */
export const GMD_DEFAULT_MAX_DATAPOINTS = 100_800;
/**
 * GetMetricData billing: "You can request up to five statistics for the same metric in a single GetMetricData
 * API request. Additional statistics are billed as an additional metric" (CloudWatch pricing page).
 */
export const STATISTICS_PER_BILLED_METRIC = 5;
/** GetMetricStatistics: at most 1,440 datapoints per call (API reference, GetMetricStatistics). */
export const GMS_MAX_DATAPOINTS = 1440;
/** GetMetricStatistics: Statistics 1-5 items, ExtendedStatistics 1-10 (API reference, GetMetricStatistics). */
export const GMS_MAX_STATISTICS = 5;
export const GMS_MAX_EXTENDED = 10;
/** ListMetrics: pages of at most 500 metrics, then NextToken (API reference, ListMetrics). */
export const LIST_PAGE_SIZE = 500;
/** ListMetrics.Dimensions: at most 10 filters (API reference, ListMetrics). */
export const LIST_MAX_DIMENSION_FILTERS = 10;
/** ListMetrics.RecentlyActive: PT3H is its one valid value (API reference, ListMetrics). */
export const RECENTLY_ACTIVE_MS = 3 * 3_600_000;
/**
 * Calls per second per account, Region and operation; a call over its quota is answered HTTP 400 Throttling,
 * "Rate exceeded" (User Guide, CloudWatch service quotas).
 */
export const TPS_QUOTAS: ReadonlyMap<string, number> = new Map([
  ["GetMetricData", 50],
  ["GetMetricStatistics", 400],
  ["ListMetrics", 25],
  ["PutMetricData", 500],
]);
/** "Per second" read as at most N calls started in any 1,000 ms, the strictest reading (User Guide, quotas). */
export const QUOTA_WINDOW_MS = 1000;
/**
 * SigV4: "signed portions of requests are valid within 15 minutes of the timestamp in the request" (IAM User
 * Guide, AWS Signature Version 4 for API requests); further from the service's clock they are refused.
 */
export const SIGNED_TIME_SKEW_MS = 15 * 60_000;
/** Cross-account observability: a source account shares with at most 5 monitoring accounts (User Guide). */
export const MONITORING_PER_SOURCE = 5;
/** MetricDataQuery.AccountId and ListMetrics.OwningAccount: 1 to 255 characters (API reference). */
export const ACCOUNT_ID_MAX = 255;
/** AssumeRole.DurationSeconds: 900 to 43,200, default 3,600 (STS API reference, AssumeRole). */
export const ROLE_MIN_SECONDS = 900;
export const ROLE_MAX_SECONDS = 43_200;
export const ROLE_DEFAULT_SECONDS = 3600;
/** MetricDatum.Unit: the StandardUnit enumeration (API reference, MetricDatum). */
// deno-fmt-ignore
export const UNITS = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);
export const BASIC_STATS = new Set(["SampleCount", "Average", "Sum", "Minimum", "Maximum"]);
/** MetricDataQuery.Id: a lowercase letter first, then letters, digits and underscores (API reference). */
export const QUERY_ID = /^[a-z][a-zA-Z0-9_]{0,254}$/;
export const PERCENTILE = /^p(\d{1,2}(\.\d{1,2})?|100)$/;
