/**
 * --alarms and --dashboard: the destination set up to watch the forwarder and what it forwards, from the
 * config alone, and left as the config says however often they run. They read and write no checkpoint.
 */
import { alarmsFor, putAlarms } from "./alarms.ts";
import type { MonitoringApi } from "./aws.ts";
import { type Args, EXIT } from "./cli.ts";
import type { Plan } from "./config.ts";
import { dashboardFor, DEFAULT_DASHBOARD } from "./dashboard.ts";
import { ConfigError, describe, isPermissionError } from "./errors.ts";
import { DASHBOARD_MAX_WIDGETS } from "./limits.ts";
import type { Log } from "./log.ts";
import { roleOf } from "./run.ts";

/** The destination's CloudWatch for alarms and dashboards: the SDK's (loaded only now), or a test's fake. */
export type Connect = (plan: Plan, log: Log) => Promise<MonitoringApi>;

const connect: Connect = async (plan, log) => {
  const { monitoring } = await import("./aws.ts");
  const region = plan.destination.region;
  return monitoring(region, roleOf(plan.destination), { stsRegion: region, secret: (v) => log.secret(v) });
};

/**
 * Puts the alarms (--alarms) or the dashboard (--dashboard), or with --dry-run prints them, as the input of
 * PutMetricAlarm and PutDashboard, without a call. Returns the exit code: 1 if a call failed.
 */
export async function monitor(
  plan: Plan,
  args: Args,
  out: (line: string) => void,
  log: Log,
  connectTo: Connect = connect,
): Promise<number> {
  const region = plan.destination.region;
  if (args.alarms && !plan.selfMetrics) {
    throw new ConfigError([
      "Cannot make alarms: the config sets self_metrics to false, so the forwarder writes none of the metrics they watch (at self_metrics)",
    ]);
  }
  const alarms = args.alarms ? alarmsFor(plan, args.alarmActions) : [];
  const name = args.dashboardName ?? DEFAULT_DASHBOARD;
  const dashboard = args.dashboard ? dashboardFor(plan, name) : undefined;
  if (args.dryRun) {
    for (const a of alarms) out(JSON.stringify(a));
    if (dashboard) out(JSON.stringify({ DashboardName: name, DashboardBody: dashboard.body }));
    return EXIT.ok;
  }
  try {
    if (args.alarms) {
      if (args.alarmActions.length === 0) log.info("No --alarm-action given: the alarms notify no one");
      const c = await putAlarms(await connectTo(plan, log), alarms, out);
      out(
        `Alarms in ${region}: ${c.create.length} created, ${c.update.length} updated, ${c.remove.length} deleted, ${c.unchanged} unchanged`,
      );
    }
    if (dashboard) {
      const warnings = await (await connectTo(plan, log)).putDashboard(name, dashboard.body);
      for (const w of warnings) log.warn(`Dashboard "${name}": ${w}`);
      if (!dashboard.byAccount && plan.destination.accountDimension !== null) {
        log.warn(
          `Dashboard "${name}" draws all accounts in one graph per metric name: a graph per account would take more than the ${DASHBOARD_MAX_WIDGETS} widgets a dashboard holds`,
        );
      }
      out(`Put dashboard ${name}: ${dashboard.widgets} widgets, graphs of ${region}`);
    }
    return EXIT.ok;
  } catch (e) {
    if (isPermissionError(e)) throw e; // a flag Deno needs: exit 2, as for any run
    log.error(
      `Cannot put the ${args.alarms ? "alarms" : `dashboard "${name}"`} in ${region}: ${describe(e)}`,
    );
    return EXIT.failed;
  }
}
