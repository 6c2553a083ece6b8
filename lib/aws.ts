/**
 * The only module that talks to the AWS SDK. It turns the SDK's clients into the narrow, plain-data
 * interfaces the pipeline stages use (times in epoch seconds), and owns credentials: one AssumeRole per
 * role, cached and refreshed before it expires.
 */
import {
  CloudWatchClient,
  type CloudWatchClientConfig,
  type ComparisonOperator,
  DeleteAlarmsCommand,
  DescribeAlarmsCommand,
  GetMetricDataCommand,
  ListMetricsCommand,
  PutDashboardCommand,
  PutMetricAlarmCommand,
  PutMetricDataCommand,
  type Statistic,
} from "@aws-sdk/client-cloudwatch";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { partition } from "@aws-sdk/core/client";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { pacer } from "./batch.ts";
import {
  blame,
  failedBeforeSending,
  isCredentialsError,
  isPermissionError,
  isRefused,
  isThrottled,
  neverSent,
  StateError,
  WriteInDoubt,
} from "./errors.ts";
import { QUOTA_TPS } from "./limits.ts";

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
  /** The account that holds the metric, read through a monitoring account (API reference, MetricDataQuery). */
  AccountId?: string | undefined;
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
  /** Absent: every metric name of the namespace (with these dimensions). */
  MetricName?: string;
  Dimensions: { Name: string; Value?: string }[];
  RecentlyActive?: "PT3H";
  /** In a monitoring account, the linked source accounts' metrics too (cross-account observability). */
  IncludeLinkedAccounts?: boolean;
  NextToken?: string;
}

/** A page of ListMetrics. */
export interface Listed {
  metrics: Metric[];
  nextToken: string | undefined;
  /** With IncludeLinkedAccounts, the account of each metric, "a 1:1 mapping" (API reference, ListMetrics). */
  owningAccounts?: string[] | undefined;
}

/** What the pipeline needs from CloudWatch, and nothing more: stages take this, tests pass fakes. */
export interface CloudWatchApi {
  listMetrics(input: ListMetricsInput): Promise<Listed>;
  getMetricData(input: {
    queries: Query[];
    start: number;
    end: number;
    maxDatapoints: number;
    nextToken?: string | undefined;
  }): Promise<{ results: QueryResult[]; nextToken: string | undefined }>;
  /**
   * Writes datums; `leaseEnds` (epoch ms) fences the write: it is not sent unless its answer is due before
   * then. Throws WriteInDoubt when CloudWatch may have applied it although the call failed.
   */
  putMetricData(namespace: string, datums: Datum[], leaseEnds?: number): Promise<void>;
}

/** CloudWatch's time as one answer told it, and the host's when that answer arrived (both epoch ms). */
export interface ClockReading {
  cloudWatchMs: number;
  hostMs: number;
}

/** CloudWatch's API as the SDK's clients give it, which can also tell CloudWatch's time. */
export interface ConnectedApi extends CloudWatchApi {
  /**
   * CloudWatch's clock: the Date header of the answer to a GetMetricData of `query` (one metric billed), with
   * the host's clock when it arrived (both epoch ms).
   */
  time(query: Query): Promise<ClockReading>;
}

/**
 * Attempts per call, with exponential backoff and jitter. More than the SDK's default of 3, since a run that
 * gives up leaves its periods to the next run but also reports the account as failed.
 */
const MAX_ATTEMPTS = 6;
/** A connection not made in this time is abandoned (and retried), rather than holding the run. */
const CONNECTION_TIMEOUT_MS = 5_000;
/**
 * A call not answered in this time fails: a hung connection must not keep a run, or its lease. A full
 * GetMetricData answer (100,800 datapoints) takes a second or two.
 */
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * A read is not sent again once its attempts have waited this long for answers (about two request timeouts),
 * so a hung endpoint costs an account-region half a minute, not six attempts of a full timeout each; nor does
 * AssumeRole take longer. Well under the lease (lib/store.ts).
 */
const CALL_DEADLINE_MS = 2 * REQUEST_TIMEOUT_MS + 5_000;
/**
 * The share of each quota the forwarder uses: calls leave at most this fast, so that differences in network
 * delay between calls, which can bunch their arrival, do not push an account-region over its quota.
 */
const QUOTA_SHARE = 0.9;
/** Backoff between our own attempts: full jitter up to this base doubled per attempt (as the SDK's). */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 20_000;
const backoff = (attempt: number, random: () => number) =>
  random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
/** STS refuses a session shorter than 900 s (AssumeRole.DurationSeconds); an hour is the default. */
const SESSION_SECONDS = 3600;
/** Refresh credentials this long before they expire, so no call is signed with a dying session. */
const REFRESH_MARGIN_MS = 5 * 60_000;
/**
 * The connections of writes: one per PutMetricData, closed after its answer (the client sends `Connection:
 * close`), never one kept alive from an earlier call. Deno's node:http client sends a request again, unseen by
 * its caller, when the kept-alive connection it was sent on closes before an answer (maybeRetryRequest in
 * ext/node/polyfills/_http_client.js): a write CloudWatch applied before its connection dropped would be applied
 * twice. No limit on their number: an agent with one hands a finished connection on to a write waiting for
 * one, keep-alive or not. The publisher and the pace bound how many are open.
 */
const CONNECTION_PER_WRITE = { keepAlive: false, maxSockets: Infinity };

const VERSION = "0.1.0";
/**
 * A fixed user agent: the SDK's default one reads os.release(), which Deno refuses without --allow-sys.
 */
const userAgent = () => Promise.resolve([["cloudwatch-forwarder", VERSION]] as [string, string][]);

/**
 * The Regions an account can use without enabling them: those launched before March 20, 2019 (AWS Account
 * Management Reference Guide, "Enable or disable AWS Regions in your account"; Account API reference,
 * ListRegions, RegionOptStatus ENABLED_BY_DEFAULT). Every later Region of the aws partition is an opt-in
 * Region, so this list is complete for good.
 */
const ENABLED_BY_DEFAULT = new Set([
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "ca-central-1",
  "sa-east-1",
  "eu-central-1",
  "eu-north-1",
  "eu-west-1",
  "eu-west-2",
  "eu-west-3",
  "ap-northeast-1",
  "ap-northeast-2",
  "ap-northeast-3",
  "ap-south-1",
  "ap-southeast-1",
  "ap-southeast-2",
]);
/** The middle word of AWS's region names, area-direction-number: eu-west-1, ap-southeast-2, il-central-1. */
const REGION_DIRECTIONS = [
  "north",
  "south",
  "east",
  "west",
  "central",
  "northeast",
  "northwest",
  "southeast",
  "southwest",
];

/** What this AWS SDK's partition data says of a region name (see regionFacts). */
export type RegionFacts =
  | { listed: true; optIn: boolean }
  | {
    listed: false;
    /** Whether it would be an opt-in Region: it falls in the aws partition, whose later Regions all are. */
    optIn: boolean;
    /** Regions the SDK lists of every two-letter area, and of the name's own area (us-gov in us-gov-west-1). */
    regions: string[];
  };

/** partition() adds a listed region's own entry, its description, to its partition's (PartitionsInfo). */
const isListed = (region: string) =>
  (partition(region) as { description?: string }).description !== undefined;
/** The listed regions of these areas. AWS numbers an area's regions of one direction from 1 up: eu-west-1, -2, -3. */
function listedIn(areas: string[]): string[] {
  const found: string[] = [];
  for (const a of areas) {
    for (const d of REGION_DIRECTIONS) {
      for (let n = 1; isListed(`${a}-${d}-${n}`); n++) found.push(`${a}-${d}-${n}`);
    }
  }
  return found;
}
const LETTERS = [..."abcdefghijklmnopqrstuvwxyz"];
let listedTwoLetter: string[] | undefined;

/**
 * What this AWS SDK's partition data says of a region name. The SDK exports partition(), which answers for one
 * name, and not the list behind it (nor can Deno read the SDK's files without --allow-read); so the regions it
 * lists are found by asking it of every name of AWS's scheme, once, and only once a name is not listed.
 */
export function regionFacts(region: string): RegionFacts {
  const optIn = partition(region).name === "aws" && !ENABLED_BY_DEFAULT.has(region);
  if (isListed(region)) return { listed: true, optIn };
  listedTwoLetter ??= listedIn(LETTERS.flatMap((a) => LETTERS.map((b) => a + b)));
  const area = region.split("-").slice(0, -2).join("-");
  return { listed: false, optIn, regions: [...new Set([...listedTwoLetter, ...listedIn([area])])] };
}

export interface Role {
  roleArn: string;
  externalId: string | undefined;
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };

export interface ConnectorOptions {
  stsRegion: string;
  /** Wall clock, epoch ms: credential expiry and the write fence. */
  now?: () => number;
  requestTimeoutMs?: number;
  /** Called on every answered call: the run is making progress. */
  onAnswer?: () => void;
  /**
   * Called for every request that left for AWS, by its operation (`GetMetricData`, `AssumeRole`, ...): each
   * attempt of a call, as AWS counts and bills them, `throttled` when AWS refused it for its rate. Not called
   * for a request that never left: no connection made, or held back by the write fence.
   */
  onSent?: (operation: string, throttled: boolean) => void;
  /** Told every credential STS hands out, so that no log line shows one. */
  secret?: (value: string) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

type HandlerOptions = NonNullable<CloudWatchClientConfig["requestHandler"]>;

/** Builds CloudWatch clients per role and region, assuming each role once and refreshing it when needed. */
export function connector(options: ConnectorOptions) {
  const now = options.now ?? Date.now;
  const requestTimeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const requestHandler = {
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout,
    throwOnRequestTimeout: true,
  };
  const common = { maxAttempts: MAX_ATTEMPTS, defaultUserAgentProvider: userAgent, requestHandler };
  const deadline = CALL_DEADLINE_MS * requestTimeout / REQUEST_TIMEOUT_MS;
  const sts = counted(unlogged(new STSClient({ region: options.stsRegion, ...common })), options.onSent);
  // CloudWatch's clock less the host's (ms), as the last reading of it found: every client made after signs by
  // it, so that a host clock more than 15 minutes off (which AWS refuses to sign by) costs no refused call.
  const clock = {
    offset: 0,
    learned(offset: number) {
      clock.offset = sts.config.systemClockOffset = offset;
    },
  };
  const providers = new Map<string, () => Promise<Credentials>>();
  const assumed = (role: Role) => {
    const key = `${role.roleArn}|${role.externalId ?? ""}`;
    let provider = providers.get(key);
    if (!provider) providers.set(key, provider = roleCredentials(sts, role, now, deadline, options));
    return provider;
  };
  const writes: WriteOptions = {
    now,
    requestTimeout,
    sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    random: options.random ?? Math.random,
  };
  const answered = options.onAnswer ?? (() => {});
  // One pacer per account (as its role, or the default credentials), region and operation: the quotas' unit.
  const pacers = new Map<string, () => Promise<void>>();
  const paced = (role: Role | undefined, region: string) => (op: keyof typeof QUOTA_TPS) => {
    const key = `${role?.roleArn ?? "default"}|${region}|${op}`;
    let acquire = pacers.get(key);
    if (!acquire) {
      pacers.set(key, acquire = pacer(Math.floor(QUOTA_TPS[op] * QUOTA_SHARE), { now, sleep: writes.sleep }));
    }
    return acquire();
  };
  return function cloudWatch(region: string, role: Role | undefined): ConnectedApi {
    // The SDK sends each call once: read() and write() decide what is sent again, and when.
    const client = (handler: HandlerOptions, credentials: Pick<CloudWatchClientConfig, "credentials">) => {
      const c = new CloudWatchClient({
        region,
        ...common,
        ...credentials,
        maxAttempts: 1,
        requestHandler: handler,
        systemClockOffset: clock.offset,
      });
      return counted(unlogged(c), options.onSent);
    };
    const reader = client(requestHandler, role ? { credentials: assumed(role) } : {});
    // Writes get a client of their own for their connections, made at the first write (a source is only read),
    // signed with the reader's credentials, so that the default ones are looked up once.
    let writer: CloudWatchClient | undefined;
    const writing = () =>
      writer ??= client(
        { ...requestHandler, httpAgent: CONNECTION_PER_WRITE, httpsAgent: CONNECTION_PER_WRITE },
        { credentials: reader.config.credentials },
      );
    const as = role ? `as role "${role.roleArn}"` : "as the default credentials";
    return adapt({ reader, writer: writing }, writes, {
      answered,
      deadline,
      pace: paced(role, region),
      as,
      learned: clock.learned,
    });
  };
}

/**
 * A client without the SDK's logger middleware: it copies every request and answer through their schemas for
 * a logger, even the default one that writes nothing, which at 500 queries a call is most of a run's CPU.
 */
function unlogged<T extends { middlewareStack: { remove(name: string): boolean } }>(client: T): T {
  client.middlewareStack.remove("loggerMiddleware");
  return client;
}

/**
 * Tells `onSent` of every request of a client that left for AWS: each one its HTTP handler took, less those
 * that never connected, once its answer is read, so that a throttled one is told apart. Per attempt: the
 * SDK's own retries (AssumeRole's) each pass this step again.
 */
function counted<T>(client: T, onSent: ConnectorOptions["onSent"]): T {
  if (!onSent) return client;
  const { config, middlewareStack } = client as unknown as SdkClient;
  const handed = new WeakSet<object>();
  const handler = config.requestHandler;
  const handle = handler.handle.bind(handler);
  handler.handle = (request, options) => {
    // An attempt out of time before it reached the handler is refused there at once, without being sent.
    if (!options?.abortSignal?.aborted) handed.add(request);
    return handle(request, options);
  };
  middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName).replace(/Command$/, "");
      try {
        const result = await next(args);
        if (handed.has(args.request)) onSent(operation, false);
        return result;
      } catch (e) {
        if (handed.has(args.request) && !neverSent(e)) onSent(operation, isThrottled(e));
        throw e;
      }
    },
    // Outside the deserializer, which turns AWS's answer into the error read here; inside the SDK's retries.
    { step: "deserialize", priority: "high", name: "countSent" },
  );
  return client;
}

type SentHandler = (args: { request: object }) => Promise<unknown>;

/** The parts of an SDK client that counted() uses. */
interface SdkClient {
  config: {
    requestHandler: {
      handle(request: object, options?: { abortSignal?: AbortSignal | undefined }): Promise<unknown>;
    };
  };
  middlewareStack: {
    add(
      middleware: (next: SentHandler, context: { commandName?: string }) => SentHandler,
      options: { step: "deserialize"; priority: "high"; name: string },
    ): void;
  };
}

/** Credentials of an assumed role: AssumeRole on first use, and again shortly before they expire. */
function roleCredentials(
  sts: STSClient,
  role: Role,
  now: () => number,
  deadline: number,
  hooks: Pick<ConnectorOptions, "secret">,
): () => Promise<Credentials> {
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
        { abortSignal: AbortSignal.timeout(deadline) },
      ).catch((e) => {
        throw blame(
          (e as Error)?.name === "AbortError" ? timedOut(deadline) : e,
          `AssumeRole of "${role.roleArn}"`,
        );
      }).then((r) => {
        const c = r.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
          throw new Error(`Cannot assume role "${role.roleArn}": STS returned no credentials`);
        }
        for (const value of [c.AccessKeyId, c.SecretAccessKey, c.SessionToken]) hooks.secret?.(value);
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

/** Options of the reads and writes of one client: see adapt(). */
interface CallOptions {
  answered: () => void;
  deadline: number;
  pace: (op: keyof typeof QUOTA_TPS) => Promise<void>;
  /** Whose credentials sign the calls, for the lines that say which failed. */
  as: string;
  /** Told CloudWatch's clock less the host's (ms) when time() reads it. */
  learned: (offsetMs: number) => void;
}

/**
 * Reads, each sent again as long as it failed without a refusal (throttled, a server error, a lost connection,
 * no answer in time, a signing time AWS refused and the SDK corrected), each time after a backoff and at the
 * pace again, within about two request timeouts of waiting for answers: a read can be sent any number of times,
 * and the SDK's own retries would not wait for the pace.
 */
function reads(writes: WriteOptions, { answered, deadline, pace, as }: CallOptions) {
  return async <T>(
    op: keyof typeof QUOTA_TPS,
    send: (o: { abortSignal: AbortSignal }) => Promise<T>,
  ): Promise<T> => {
    let waited = 0;
    for (let attempt = 1;; attempt++) {
      await pace(op);
      const sent = writes.now();
      try {
        const r = await send({
          abortSignal: AbortSignal.timeout(writes.requestTimeout + CONNECTION_TIMEOUT_MS),
        });
        answered();
        return r;
      } catch (e) {
        waited += writes.now() - sent;
        const again = isThrottled(e) || skewCorrected(e) ||
          !(isRefused(e) || isPermissionError(e) || isCredentialsError(e));
        if (again && attempt < MAX_ATTEMPTS && waited + writes.requestTimeout <= deadline) {
          await writes.sleep(backoff(attempt, writes.random));
          continue;
        }
        const call = `${op} ${as}${attempt > 1 ? ` (${attempt} attempts)` : ""}`;
        throw blame((e as Error)?.name === "AbortError" ? timedOut(writes.requestTimeout) : e, call);
      }
    }
  };
}

/**
 * The narrow, plain-data interface over SDK clients: times in epoch seconds, absent lists empty. Reads go through
 * `reader`, on kept-alive connections; writes through `writer()`, a connection each.
 */
function adapt(
  { reader, writer }: { reader: CloudWatchClient; writer: () => CloudWatchClient },
  writes: WriteOptions,
  options: CallOptions,
): ConnectedApi {
  const { answered, pace, as, learned } = options;
  const read = reads(writes, options);
  return {
    async listMetrics(input) {
      const { command, output } = plainJson(new ListMetricsCommand({}), input);
      await read("ListMetrics", (o) => reader.send(command, o));
      const r = output() as { Metrics?: Partial<Metric>[]; NextToken?: string; OwningAccounts?: string[] };
      const metrics = (r.Metrics ?? []).map((m) => ({
        Namespace: m.Namespace ?? input.Namespace,
        MetricName: m.MetricName ?? input.MetricName ?? "",
        Dimensions: m.Dimensions ?? [],
      }));
      // OwningAccounts only where the listing asked for linked accounts' metrics, and CloudWatch answered it.
      return {
        metrics,
        nextToken: r.NextToken,
        ...(r.OwningAccounts ? { owningAccounts: r.OwningAccounts } : {}),
      };
    },
    async time(query) {
      // Whole minutes a minute back: a period CloudWatch accepts whatever the host's clock says.
      const end = Math.floor(writes.now() / 60_000) * 60;
      const { Id, Metric, Period, Stat } = query;
      const wire = {
        MetricDataQueries: [{ Id, MetricStat: { Metric, Period, Stat } }],
        StartTime: end - 60,
        EndTime: end,
      };
      const { command, date } = plainJson(
        new GetMetricDataCommand({ MetricDataQueries: [], StartTime: new Date(0), EndTime: new Date(0) }),
        wire,
      );
      await read("GetMetricData", (o) => reader.send(command, o));
      const hostMs = writes.now();
      const cloudWatchMs = Date.parse(date() ?? "");
      if (Number.isNaN(cloudWatchMs)) {
        throw new Error(`GetMetricData ${as} answered without a Date header that tells CloudWatch's time`);
      }
      // The header is in whole seconds, cut down: CloudWatch's time was half a second later on average.
      learned(cloudWatchMs + 500 - hostMs);
      return { cloudWatchMs: cloudWatchMs + 500, hostMs };
    },
    async getMetricData(input) {
      const wire = {
        MetricDataQueries: input.queries.map((q) => ({
          Id: q.Id,
          MetricStat: {
            Metric: q.Metric,
            Period: q.Period,
            Stat: q.Stat,
            ...(q.Unit ? { Unit: q.Unit } : {}),
          },
          ...(q.AccountId ? { AccountId: q.AccountId } : {}),
          ReturnData: true,
        })),
        StartTime: input.start,
        EndTime: input.end,
        ScanBy: "TimestampAscending",
        MaxDatapoints: input.maxDatapoints,
        ...(input.nextToken ? { NextToken: input.nextToken } : {}),
      };
      const { command, output } = plainJson(
        new GetMetricDataCommand({ MetricDataQueries: [], StartTime: new Date(0), EndTime: new Date(0) }),
        wire,
      );
      await read("GetMetricData", (o) => reader.send(command, o));
      const r = output() as { MetricDataResults?: QueryResult[]; NextToken?: string };
      const results = (r.MetricDataResults ?? []).map((m) => ({
        Id: m.Id,
        Timestamps: m.Timestamps ?? [],
        Values: m.Values ?? [],
        StatusCode: m.StatusCode,
      }));
      return { results, nextToken: r.NextToken };
    },
    async putMetricData(namespace, datums, leaseEnds = Infinity) {
      // Datums are already in the wire's shape: timestamps in epoch seconds, as AWS JSON 1.0 sends them.
      const wire = { Namespace: namespace, MetricData: datums };
      const command = () =>
        plainJson(new PutMetricDataCommand({ Namespace: namespace, MetricData: [] }), wire).command;
      const o = { ...writes, pace: () => pace("PutMetricData") };
      await write(writer(), command, leaseEnds, o).catch((e) => {
        throw blame(e, `PutMetricData ${as}`);
      });
      answered();
    },
  };
}

/** A metric alarm as PutMetricAlarm takes it and DescribeAlarms answers it: the settings --alarms makes. */
export interface MetricAlarm {
  AlarmName: string;
  AlarmDescription: string;
  ActionsEnabled: boolean;
  AlarmActions: string[];
  OKActions: string[];
  InsufficientDataActions: string[];
  Namespace: string;
  MetricName: string;
  Dimensions: Dimension[];
  /** The settings below are absent from DescribeAlarms' answer for alarms of other kinds (math, percentiles). */
  Statistic: Statistic | undefined;
  Period: number | undefined;
  EvaluationPeriods: number | undefined;
  DatapointsToAlarm: number | undefined;
  Threshold: number | undefined;
  ComparisonOperator: ComparisonOperator | undefined;
  TreatMissingData: string | undefined;
}

/** What --alarms and --dashboard need of the destination's CloudWatch: stages take this, tests pass fakes. */
export interface MonitoringApi {
  /** One page of the metric alarms whose names start with `prefix`. */
  describeAlarms(input: { prefix: string; maxRecords: number; nextToken?: string | undefined }): Promise<{
    alarms: MetricAlarm[];
    nextToken: string | undefined;
  }>;
  /** Creates the alarm, or replaces every setting of the alarm of that name. */
  putMetricAlarm(alarm: MetricAlarm): Promise<void>;
  deleteAlarms(names: string[]): Promise<void>;
  /** Creates the dashboard, or replaces the one of that name whole; returns CloudWatch's warnings about it. */
  putDashboard(name: string, body: string): Promise<string[]>;
}

/**
 * The destination's alarms and dashboards, for --alarms and --dashboard: a handful of calls, each of which can
 * be sent again without harm, so the SDK's own retries (throttling included) are all they need.
 */
export function monitoring(
  region: string,
  role: Role | undefined,
  options: Pick<ConnectorOptions, "stsRegion" | "secret">,
): MonitoringApi {
  const common = {
    maxAttempts: MAX_ATTEMPTS,
    defaultUserAgentProvider: userAgent,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  };
  const assumed = (r: Role) => {
    const sts = unlogged(new STSClient({ region: options.stsRegion, ...common }));
    return { credentials: roleCredentials(sts, r, Date.now, CALL_DEADLINE_MS, options) };
  };
  const client = unlogged(new CloudWatchClient({ region, ...common, ...(role ? assumed(role) : {}) }));
  const as = role ? `as role "${role.roleArn}"` : "as the default credentials";
  const send = async <T>(op: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (e) {
      throw blame(e, `${op} ${as}`);
    }
  };
  return {
    async describeAlarms({ prefix, maxRecords, nextToken }) {
      const r = await send("DescribeAlarms", () =>
        client.send(
          new DescribeAlarmsCommand({
            AlarmNamePrefix: prefix,
            AlarmTypes: ["MetricAlarm"],
            MaxRecords: maxRecords,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
        ));
      const alarms = (r.MetricAlarms ?? []).map((a) => ({
        AlarmName: a.AlarmName ?? "",
        AlarmDescription: a.AlarmDescription ?? "",
        ActionsEnabled: a.ActionsEnabled ?? true,
        AlarmActions: a.AlarmActions ?? [],
        OKActions: a.OKActions ?? [],
        InsufficientDataActions: a.InsufficientDataActions ?? [],
        Namespace: a.Namespace ?? "",
        MetricName: a.MetricName ?? "",
        Dimensions: (a.Dimensions ?? []).map((d) => ({ Name: d.Name ?? "", Value: d.Value ?? "" })),
        Statistic: a.Statistic,
        Period: a.Period,
        EvaluationPeriods: a.EvaluationPeriods,
        DatapointsToAlarm: a.DatapointsToAlarm,
        Threshold: a.Threshold,
        ComparisonOperator: a.ComparisonOperator,
        TreatMissingData: a.TreatMissingData,
      }));
      return { alarms, nextToken: r.NextToken };
    },
    async putMetricAlarm(alarm) {
      await send("PutMetricAlarm", () => client.send(new PutMetricAlarmCommand(alarm)));
    },
    async deleteAlarms(names) {
      await send("DeleteAlarms", () => client.send(new DeleteAlarmsCommand({ AlarmNames: names })));
    },
    async putDashboard(name, body) {
      const r = await send(
        "PutDashboard",
        () => client.send(new PutDashboardCommand({ DashboardName: name, DashboardBody: body })),
      );
      return (r.DashboardValidationMessages ?? []).map((m) => `${m.DataPath ?? ""}: ${m.Message ?? ""}`);
    },
  };
}

const utf8 = new TextEncoder();

/**
 * Sends a command with a request body written by JSON.stringify, and reads a successful answer with
 * JSON.parse, where the SDK would walk its schemas over every query and datapoint: at 500 queries a call that
 * costs milliseconds a call, most of a large run's CPU. The command is built with an empty input, which is
 * what the SDK serialises; its request body is then replaced by `wire`, before compression, content length and
 * signing. Errors keep the SDK's own parsing, so their codes are read as for any other call.
 */
function plainJson<C>(command: C, wire: unknown) {
  let parsed: unknown = {};
  let date: string | undefined;
  const stack = (command as unknown as { middlewareStack: MiddlewareStack }).middlewareStack;
  stack.add(
    (next) => (args) => {
      // Bytes rather than a string: signing and sending would each encode a string again.
      (args.request as { body: Uint8Array }).body = utf8.encode(JSON.stringify(wire));
      return next(args);
    },
    { step: "serialize", priority: "low", name: "plainJsonBody" },
  );
  stack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as {
        statusCode?: number;
        headers?: Record<string, string>;
        body?: AsyncIterable<Uint8Array>;
      };
      date = response.headers?.["date"];
      if (response.statusCode === 200 && response.body) {
        const chunks: Uint8Array[] = [];
        for await (const chunk of response.body) chunks.push(chunk);
        const text = Buffer.concat(chunks).toString("utf8");
        parsed = text ? JSON.parse(text) : {};
        response.body = Readable.from([Buffer.from("{}")]);
      }
      return result;
    },
    // The innermost step, so the SDK's deserializer sees an empty answer and nothing is parsed twice.
    { step: "deserialize", priority: "low", name: "plainJsonAnswer" },
  );
  return { command, output: () => parsed, date: () => date };
}

/** The part of a command's middleware stack that plainJson uses. */
interface MiddlewareStack {
  add(
    middleware: (next: Handler) => Handler,
    options: { step: "serialize" | "deserialize"; priority: "low"; name: string },
  ): void;
}
type Handler = (args: { request: unknown }) => Promise<{ response: unknown }>;

/**
 * A call AWS refused for its signing time, more than 15 minutes off its clock, after which the SDK set its
 * clock by the answer's Date header: it was not applied, and signed again it is accepted.
 */
const skewCorrected = (e: unknown) =>
  (e as { $metadata?: { clockSkewCorrected?: boolean } })?.$metadata?.clockSkewCorrected === true;

/** A call not answered in time. */
const timedOut = (ms: number) =>
  Object.assign(new Error(`no answer within ${Math.round(ms)} ms`), { name: "TimeoutError" });

interface WriteOptions {
  pace?: () => Promise<void>;
  now: () => number;
  requestTimeout: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

/**
 * Sends a PutMetricData, which is not idempotent: it is sent again only where CloudWatch certainly did not
 * apply it (throttled, or the connection was never made). Any other failure after it was sent is a
 * WriteInDoubt; one before it was sent (failedBeforeSending) is not. The lease fence is checked right before
 * each attempt leaves.
 */
async function write(
  client: CloudWatchClient,
  command: () => PutMetricDataCommand,
  leaseEnds: number,
  o: WriteOptions,
) {
  for (let attempt = 1;; attempt++) {
    await o.pace?.();
    const c = command();
    c.middlewareStack.add(
      (next) => (args) => {
        if (o.now() + o.requestTimeout >= leaseEnds) {
          throw new StateError(
            "Cannot write: the run's lease on its state ends before this write could be answered",
          );
        }
        return next(args);
      },
      // The innermost step, after signing: nothing of this attempt has left yet.
      { step: "deserialize", priority: "low", name: "leaseFence" },
    );
    try {
      await client.send(c, { abortSignal: AbortSignal.timeout(o.requestTimeout + CONNECTION_TIMEOUT_MS) });
      return;
    } catch (e) {
      if (e instanceof StateError) throw e;
      const again = isThrottled(e) || neverSent(e) || skewCorrected(e);
      if (again && attempt < MAX_ATTEMPTS) {
        await o.sleep(backoff(attempt, o.random));
        continue;
      }
      if (again || isRefused(e) || failedBeforeSending(e)) throw e;
      throw new WriteInDoubt(e);
    }
  }
}
