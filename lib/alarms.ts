/**
 * --alarms: the alarms on the forwarder's own metrics (lib/selfmetrics.ts) in the destination, one that fires
 * when runs stop and one per account-region that falls behind, built from the config alone. Only what differs
 * from DescribeAlarms' answer is put, so running it again changes nothing; the lag alarms of account-regions
 * no longer configured are deleted, and no alarm without the forwarder's prefix is touched.
 */
import type { MetricAlarm, MonitoringApi } from "./aws.ts";
import { batches } from "./batch.ts";
import type { Plan, SourcePlan } from "./config.ts";
import {
  ALARM_MAX_EVALUATION_SECONDS,
  DELETE_ALARMS_MAX_NAMES,
  DESCRIBE_ALARMS_MAX_RECORDS,
} from "./limits.ts";
import { SELF_NAMESPACE } from "./selfmetrics.ts";

/** Every alarm --alarms makes is named with this prefix. */
export const ALARM_PREFIX = "cloudwatch-forwarder-";
/** The alarms of account-regions: the only ones deleted, once their account-region has left the config. */
const LAG_PREFIX = `${ALARM_PREFIX}lag-`;
/**
 * Runs an alarm's period holds, so that a run a little late leaves no period without one; five minutes at
 * least, the period the README's alarms always had.
 */
const RUNS_PER_PERIOD = 3;
const MIN_PERIOD = 300;
/** Runs an account-region may miss before its lag alarm fires. */
const MISSED_RUNS = 3;

/** The alarms' period: a few runs long, in whole minutes, within what PutMetricAlarm allows. */
export function alarmPeriod(interval: number): number {
  const period = Math.max(MIN_PERIOD, Math.ceil((RUNS_PER_PERIOD * interval) / 60) * 60);
  return Math.min(period, ALARM_MAX_EVALUATION_SECONDS);
}

/**
 * The lag an account-region has in steady state stays under its longest delay plus period (lagOf in
 * lib/step.ts: now less the start of the next period owed); past that by MISSED_RUNS runs, it fell behind.
 */
function lagThreshold(src: SourcePlan, interval: number): number {
  return Math.max(...src.metrics.map((m) => m.delay + m.period)) + MISSED_RUNS * interval;
}

/** The alarms the config calls for, each notifying `actions` on alarm and on OK. */
export function alarmsFor(plan: Plan, actions: string[]): MetricAlarm[] {
  const period = alarmPeriod(plan.interval);
  const common = {
    ActionsEnabled: true,
    AlarmActions: actions,
    OKActions: actions,
    InsufficientDataActions: [],
    Namespace: SELF_NAMESPACE,
    Period: period,
    EvaluationPeriods: 1,
    DatapointsToAlarm: 1,
  };
  const stopped: MetricAlarm = {
    AlarmName: `${ALARM_PREFIX}stopped`,
    AlarmDescription:
      `No run of the forwarder ended in ${period} s: it stopped (its timer or host, or the destination's credentials). Made by forward.ts --alarms`,
    ...common,
    MetricName: "RunSeconds",
    Dimensions: [],
    Statistic: "SampleCount",
    Threshold: 1,
    ComparisonOperator: "LessThanThreshold",
    TreatMissingData: "breaching",
  };
  const behind = plan.sources.map((src): MetricAlarm => {
    const threshold = lagThreshold(src, plan.interval);
    return {
      AlarmName: `${LAG_PREFIX}${src.account}-${src.region}`,
      AlarmDescription:
        `Account "${src.account}" in ${src.region} is over ${threshold} s behind: its runs fail (a role, a permission, a quota); see forward.ts --status. Made by forward.ts --alarms`,
      ...common,
      MetricName: "LagSeconds",
      Dimensions: [{ Name: "Account", Value: src.account }, { Name: "Region", Value: src.region }],
      Statistic: "Maximum",
      Threshold: threshold,
      ComparisonOperator: "GreaterThanThreshold",
      // No lag written: the forwarder stopped, which the other alarm says, or the account-region has no
      // checkpoint yet.
      TreatMissingData: "missing",
    };
  });
  return [stopped, ...behind];
}

/** What bringing the destination's alarms to `wanted` takes, given those it has with the prefix. */
export interface AlarmChanges {
  create: MetricAlarm[];
  update: MetricAlarm[];
  /** Names of lag alarms whose account-region is no longer configured. */
  remove: string[];
  unchanged: number;
}

/** An alarm's settings as CloudWatch tells them apart: its action lists and dimensions are sets, in any order. */
const settings = (a: MetricAlarm) =>
  JSON.stringify([
    a.AlarmDescription,
    a.ActionsEnabled,
    [...a.AlarmActions].sort(),
    [...a.OKActions].sort(),
    [...a.InsufficientDataActions].sort(),
    a.Namespace,
    a.MetricName,
    a.Dimensions.map((d) => [d.Name, d.Value]).sort(),
    a.Statistic,
    a.Period,
    a.EvaluationPeriods,
    a.DatapointsToAlarm,
    a.Threshold,
    a.ComparisonOperator,
    a.TreatMissingData,
  ]);

/** The alarms to create, to update (any setting differs) and to delete. */
export function alarmChanges(wanted: MetricAlarm[], existing: MetricAlarm[]): AlarmChanges {
  const have = new Map(existing.map((a) => [a.AlarmName, a]));
  const names = new Set(wanted.map((a) => a.AlarmName));
  const changes: AlarmChanges = { create: [], update: [], remove: [], unchanged: 0 };
  for (const a of wanted) {
    const old = have.get(a.AlarmName);
    if (old === undefined) changes.create.push(a);
    else if (settings(old) !== settings(a)) changes.update.push(a);
    else changes.unchanged++;
  }
  changes.remove = existing.map((a) => a.AlarmName).filter((n) => n.startsWith(LAG_PREFIX) && !names.has(n));
  return changes;
}

/**
 * Brings the destination's alarms to `wanted`: DescribeAlarms (every page), then PutMetricAlarm for each one
 * new or changed, then DeleteAlarms for those of account-regions gone. Says each change on `out`.
 */
export async function putAlarms(
  api: MonitoringApi,
  wanted: MetricAlarm[],
  out: (line: string) => void,
): Promise<AlarmChanges> {
  const existing: MetricAlarm[] = [];
  let nextToken: string | undefined;
  do {
    const page = await api.describeAlarms({
      prefix: ALARM_PREFIX,
      maxRecords: DESCRIBE_ALARMS_MAX_RECORDS,
      nextToken,
    });
    existing.push(...page.alarms);
    nextToken = page.nextToken;
  } while (nextToken);
  const changes = alarmChanges(wanted, existing);
  for (const a of [...changes.create, ...changes.update]) {
    await api.putMetricAlarm(a);
    out(`${changes.create.includes(a) ? "Created" : "Updated"} alarm ${a.AlarmName}`);
  }
  for (const names of batches(changes.remove, DELETE_ALARMS_MAX_NAMES)) {
    await api.deleteAlarms(names);
    for (const n of names) out(`Deleted alarm ${n}: its account-region is no longer in the config`);
  }
  return changes;
}
