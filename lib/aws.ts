/**
 * The only module that talks to the AWS SDK. It turns the SDK's clients into the narrow, plain-data
 * interfaces the pipeline stages use (times in epoch seconds), and owns credentials: one AssumeRole per
 * role, cached and refreshed before it expires.
 */
import {
  CloudWatchClient,
  GetMetricDataCommand,
  ListMetricsCommand,
  PutMetricDataCommand,
} from "@aws-sdk/client-cloudwatch";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";

export interface Dimension {
  Name: string;
  Value: string;
}

export interface Metric {
  Namespace: string;
  MetricName: string;
  Dimensions: Dimension[];
}

export interface Query {
  Id: string;
  Metric: Metric;
  Period: number;
  Stat: string;
  Unit?: string | undefined;
}

export interface QueryResult {
  Id: string;
  Timestamps: number[];
  Values: number[];
  /** Complete, PartialData (more on a later page), InternalError or Forbidden; absent means Complete. */
  StatusCode?: string | undefined;
}

export interface Datum {
  MetricName: string;
  Dimensions: Dimension[];
  /** Epoch seconds. */
  Timestamp: number;
  StatisticValues?: { SampleCount: number; Sum: number; Minimum: number; Maximum: number };
  Value?: number;
  Unit?: string;
  StorageResolution: 1 | 60;
}

export interface ListMetricsInput {
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value?: string }[];
  RecentlyActive?: "PT3H";
  NextToken?: string;
}

/** What the pipeline needs from CloudWatch, and nothing more: stages take this, tests pass fakes. */
export interface CloudWatchApi {
  listMetrics(input: ListMetricsInput): Promise<{ metrics: Metric[]; nextToken: string | undefined }>;
  getMetricData(input: {
    queries: Query[];
    start: number;
    end: number;
    maxDatapoints: number;
    nextToken?: string | undefined;
  }): Promise<{ results: QueryResult[]; nextToken: string | undefined }>;
  putMetricData(namespace: string, datums: Datum[]): Promise<void>;
}

/**
 * Retries per call, with the SDK's exponential backoff and jitter. More than the SDK's default of 3, since a
 * run that gives up leaves its periods to the next run but also reports the account as failed.
 */
const MAX_ATTEMPTS = 6;
/** A connection not made in this time is abandoned (and retried), rather than holding the run. */
const CONNECTION_TIMEOUT_MS = 5_000;
/**
 * A call not answered in this time fails (and is retried): a hung connection must not keep a run, and the
 * lock it holds, past the next timer tick. A full GetMetricData answer takes seconds, not a minute.
 */
const REQUEST_TIMEOUT_MS = 60_000;
/** STS refuses a session shorter than 900 s (AssumeRole.DurationSeconds); an hour is the default. */
const SESSION_SECONDS = 3600;
/** Refresh credentials this long before they expire, so no call is signed with a dying session. */
const REFRESH_MARGIN_MS = 5 * 60_000;

const VERSION = "0.1.0";
/**
 * A fixed user agent: the SDK's default one reads os.release(), which Deno refuses without --allow-sys.
 */
const userAgent = () => Promise.resolve([["cloudwatch-forwarder", VERSION]] as [string, string][]);

export interface Role {
  roleArn: string;
  externalId: string | undefined;
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };

/** Builds CloudWatch clients per role and region, assuming each role once and refreshing it when needed. */
export function connector(options: { stsRegion: string; now?: () => number; requestTimeoutMs?: number }) {
  const now = options.now ?? Date.now;
  const requestHandler = {
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  };
  const common = { maxAttempts: MAX_ATTEMPTS, defaultUserAgentProvider: userAgent, requestHandler };
  const sts = new STSClient({ region: options.stsRegion, ...common });
  const providers = new Map<string, () => Promise<Credentials>>();
  const assumed = (role: Role) => {
    const key = `${role.roleArn}|${role.externalId ?? ""}`;
    let provider = providers.get(key);
    if (!provider) providers.set(key, provider = roleCredentials(sts, role, now));
    return provider;
  };
  return function cloudWatch(region: string, role: Role | undefined): CloudWatchApi {
    return adapt(
      new CloudWatchClient({ region, ...common, ...(role ? { credentials: assumed(role) } : {}) }),
    );
  };
}

/** Credentials of an assumed role: AssumeRole on first use, and again shortly before they expire. */
function roleCredentials(sts: STSClient, role: Role, now: () => number): () => Promise<Credentials> {
  let current: Promise<Credentials> | undefined;
  let expires = 0;
  return () => {
    if (current === undefined || now() >= expires - REFRESH_MARGIN_MS) {
      // Callers that arrive while AssumeRole is under way share its answer.
      expires = Infinity;
      current = sts.send(
        new AssumeRoleCommand({
          RoleArn: role.roleArn,
          RoleSessionName: "cloudwatch-forwarder",
          DurationSeconds: SESSION_SECONDS,
          ...(role.externalId === undefined ? {} : { ExternalId: role.externalId }),
        }),
      ).then((r) => {
        const c = r.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
          throw new Error(`Cannot assume role "${role.roleArn}": STS returned no credentials`);
        }
        expires = c.Expiration.getTime();
        return {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          sessionToken: c.SessionToken,
          expiration: c.Expiration,
        };
      });
      // A failed AssumeRole is not cached: the next call asks again.
      current.catch(() => (current = undefined));
    }
    return current;
  };
}

/** The narrow, plain-data interface over an SDK client: times in epoch seconds, absent lists empty. */
function adapt(client: CloudWatchClient): CloudWatchApi {
  return {
    async listMetrics(input) {
      const r = await client.send(new ListMetricsCommand(input));
      const metrics = (r.Metrics ?? []).map((m) => ({
        Namespace: m.Namespace ?? input.Namespace,
        MetricName: m.MetricName ?? input.MetricName,
        Dimensions: (m.Dimensions ?? []).map((d) => ({ Name: d.Name ?? "", Value: d.Value ?? "" })),
      }));
      return { metrics, nextToken: r.NextToken };
    },
    async getMetricData(input) {
      const r = await client.send(
        new GetMetricDataCommand({
          MetricDataQueries: input.queries.map((q) => ({
            Id: q.Id,
            MetricStat: {
              Metric: q.Metric,
              Period: q.Period,
              Stat: q.Stat,
              ...(q.Unit ? { Unit: q.Unit as never } : {}),
            },
            ReturnData: true,
          })),
          StartTime: new Date(input.start * 1000),
          EndTime: new Date(input.end * 1000),
          ScanBy: "TimestampAscending",
          MaxDatapoints: input.maxDatapoints,
          ...(input.nextToken ? { NextToken: input.nextToken } : {}),
        }),
      );
      const results = (r.MetricDataResults ?? []).map((m) => ({
        Id: m.Id ?? "",
        Timestamps: (m.Timestamps ?? []).map((t) => t.getTime() / 1000),
        Values: m.Values ?? [],
        StatusCode: m.StatusCode,
      }));
      return { results, nextToken: r.NextToken };
    },
    async putMetricData(namespace, datums) {
      await client.send(
        new PutMetricDataCommand({
          Namespace: namespace,
          MetricData: datums.map((d) => ({
            ...d,
            Timestamp: new Date(d.Timestamp * 1000),
            Unit: d.Unit as never,
          })),
        }),
      );
    },
  };
}
