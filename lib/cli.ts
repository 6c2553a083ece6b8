/** The command line: options, help text and exit codes. Loads nothing heavy, so --help answers at once. */
import { ConfigError, describe, isPermissionError, oneLine, StateError } from "./errors.ts";
import { ALARM_MAX_ACTIONS, DASHBOARD_NAME } from "./limits.ts";
import { parseIso } from "./window.ts";

export const HELP = `Usage: forward.ts [options]

Copies CloudWatch metrics from the accounts in the config into the destination account, every complete
period since the last run, with exact SampleCount, Sum, Minimum, Maximum and Average, and prints a summary.

Options:
  --config FILE       config file (default: the bundled forwarder.yaml)
  --check-config      check the config and print how many account-regions it names, or every problem
  --dry-run           fetch and print each datum a run would write, then the summary; write nothing, to
                      CloudWatch or to the checkpoints
  --from ISO --to ISO forward this window again (replay); periods already in the destination are skipped
  --now ISO           the time to act as now (for replays and tests)
  --every DURATION    keep running: one pass every DURATION (60s, 5m, 1h), aligned to it; SIGTERM or
                      SIGINT ends the step under way, commits it and exits 0
  --status            a line per account-region: the period it is forwarded up to, its lag, its streams,
                      those in doubt or no longer found, and its last run's error; exits 1 while the last
                      run of any failed
  --plan              list the streams (ListMetrics, where a listing is due), then print the calls of the
                      next run per account-region, and a month of runs with its cost; reads no metric data,
                      only CloudWatch's time
  --audit             with --from and --to: compare every stream and period of the window, source against
                      destination; per account-region, periods exact, short (late samples), missing, over
                      (written twice), differs, and pending (not forwarded yet); exits 1 if any is short,
                      missing, over or differs, or an account-region could not be audited. Writes nothing
  --repair            with --audit: write the difference where the destination is short or missing, up to
                      the stream's checkpoint; exits 1 if anything is left but pending periods
  --json              with --status: a JSON array, one object per account-region; with --plan or --audit:
                      one JSON object
  --systemd-units DIR write a systemd service and timer for this runtime, forward.ts, the config and any
                      --log-format and --log-level, on the config's interval; name the variables it reads
  --user NAME         with --systemd-units: run as this user instead of a dynamic one
  --alarms            create or update the alarms on the forwarder's own metrics in the destination: one if
                      runs stop, one per account-region that falls behind; delete those of account-regions
                      no longer in the config. With --dry-run: print them (PutMetricAlarm input), call nothing
  --alarm-action ARN  with --alarms: notify this ARN (an SNS topic, say) on alarm and on OK; up to 5
  --dashboard         put a dashboard in the destination: the forwarder's health, and the forwarded metrics
                      of each metrics entry by account. With --dry-run: print it, call nothing
  --dashboard-name N  with --dashboard: its name (default cloudwatch-forwarder)
  --log-format F      text (default) or json: one line per event on stderr
  --log-level L       error, warn, info (default) or debug
  --help              show this help, whatever else is given

Options that do not go together are refused; --config, --log-format and --log-level go with any.

Exit codes: 0 done, 1 some account-region failed (--status, --audit: as above), 2 config or usage error
(or a Deno permission missing), 3 state file unusable, held by another run, or its lease lost.`;

/** Exit codes; a permission Deno was not given is a usage error: the command line lacks a flag. */
export const EXIT = { ok: 0, failed: 1, usage: 2, state: 3 } as const;

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Args {
  config: string | undefined;
  checkConfig: boolean;
  dryRun: boolean;
  status: boolean;
  plan: boolean;
  json: boolean;
  /** Compare the window of `replay` (--from, --to) in the source and the destination. */
  audit: boolean;
  repair: boolean;
  help: boolean;
  /** Epoch seconds. */
  now: number | undefined;
  replay: { start: number; end: number } | undefined;
  /** Seconds between passes in loop mode. */
  every: number | undefined;
  systemdUnits: string | undefined;
  user: string | undefined;
  /** Make the alarms on the forwarder's own metrics, with these actions (ARNs) on alarm and on OK. */
  alarms: boolean;
  alarmActions: string[];
  /** Put the dashboard, under this name when one is given. */
  dashboard: boolean;
  dashboardName: string | undefined;
  logFormat: "text" | "json";
  logLevel: LogLevel;
}

const WITH_VALUE = new Set([
  "--config",
  "--from",
  "--to",
  "--now",
  "--every",
  "--systemd-units",
  "--user",
  "--alarm-action",
  "--dashboard-name",
  "--log-format",
  "--log-level",
]);
const BARE = new Set([
  "--check-config",
  "--dry-run",
  "--status",
  "--plan",
  "--audit",
  "--repair",
  "--json",
  "--alarms",
  "--dashboard",
  "--help",
]);

/**
 * The ways to run, each with the options it takes; options go together only where one of them takes them all.
 * Where several are named, the first on the command line is the one asked for, and the rest are refused.
 */
const MODES: { flag: string; takes: string[]; why?: string }[] = [
  { flag: "--every", takes: [], why: "runs on the clock, pass after pass" },
  { flag: "--systemd-units", takes: ["--user"] },
  { flag: "--check-config", takes: [] },
  { flag: "--status", takes: ["--now", "--json"] },
  { flag: "--plan", takes: ["--now", "--json"] },
  { flag: "--audit", takes: ["--from", "--to", "--now", "--json", "--repair"] },
  { flag: "--alarms", takes: ["--alarm-action", "--dry-run"] },
  { flag: "--dashboard", takes: ["--dashboard-name", "--dry-run"] },
];
/** A run once, where no mode is named: at another time, a replay, or a dry run of either. */
const RUN = ["--dry-run", "--from", "--to", "--now"];
/** Where the config is and how the log reads: for any mode (--systemd-units writes them into the service). */
const ANY = ["--config", "--log-format", "--log-level"];

const usage = (message: string) => new ConfigError([oneLine(`Cannot parse arguments: ${message}`)]);
const quoted = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
/** "a", "a or b", "a, b or c". */
const either = (items: string[]) =>
  items.length > 1 ? `${items.slice(0, -1).join(", ")} or ${items.at(-1)}` : items[0];

/** A duration such as 60s, 5m, 1h or a number of seconds, from 10 s to a day. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(s|m|h)?$/.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * (m[2] === "h" ? 3600 : m[2] === "m" ? 60 : 1);
  return seconds >= 10 && seconds <= 86_400 ? seconds : undefined;
}

/** Parses the options; throws ConfigError with a one-line message for anything it cannot take. */
export function parseArgs(argv: string[]): Args {
  const flags: Record<string, string | true> = {};
  const alarmActions: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (Object.hasOwn(flags, a) && a !== "--alarm-action") throw usage(`${a} is given twice`);
    if (WITH_VALUE.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw usage(`${a} needs a value`);
      flags[a] = v;
      if (a === "--alarm-action") alarmActions.push(v);
    } else if (BARE.has(a)) flags[a] = true;
    else throw usage(`unknown option ${quoted(a)} (see --help)`);
  }
  const value = (name: string) => (typeof flags[name] === "string" ? flags[name] : undefined);
  const set = (f: string) => Object.hasOwn(flags, f);
  const time = (name: string) => {
    const v = value(name);
    if (v === undefined) return undefined;
    const t = parseIso(v);
    if (t === undefined) {
      throw new ConfigError([
        `Cannot parse ${name} ${quoted(v)}: expected an ISO 8601 time such as 2026-11-24T10:00:00Z`,
      ]);
    }
    return t;
  };
  const [from, to] = [time("--from"), time("--to")];
  const every = value("--every");
  const everySeconds = every === undefined ? undefined : parseDuration(every);
  if (every !== undefined && everySeconds === undefined) {
    throw usage(`--every takes a duration from 10s to 24h, such as 60s or 5m, not ${quoted(every)}`);
  }
  const logFormat = value("--log-format") ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw usage(`--log-format takes text or json, not ${quoted(logFormat)}`);
  }
  const logLevel = value("--log-level") ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw usage(`--log-level takes ${LOG_LEVELS.join(", ")}, not ${quoted(logLevel)}`);
  }
  if (!set("--help")) {
    if (set("--from") !== set("--to")) throw new ConfigError(["Cannot replay: --from and --to go together"]);
    checkTogether(Object.keys(flags).filter((f) => !ANY.includes(f)), set);
    checkMonitoring(alarmActions, value("--dashboard-name"));
  }
  return {
    config: value("--config"),
    checkConfig: flags["--check-config"] === true,
    dryRun: flags["--dry-run"] === true,
    status: flags["--status"] === true,
    plan: flags["--plan"] === true,
    json: flags["--json"] === true,
    audit: flags["--audit"] === true,
    repair: flags["--repair"] === true,
    help: flags["--help"] === true,
    now: time("--now"),
    replay: from !== undefined && to !== undefined ? { start: from, end: to } : undefined,
    every: everySeconds,
    systemdUnits: value("--systemd-units"),
    user: value("--user"),
    alarms: set("--alarms"),
    alarmActions: [...new Set(alarmActions)],
    dashboard: set("--dashboard"),
    dashboardName: value("--dashboard-name"),
    logFormat,
    logLevel: logLevel as LogLevel,
  };
}

/** An alarm action: an ARN (API reference, PutMetricAlarm.AlarmActions), partition and service named. */
const ARN = /^arn:[^:\s]+:[^:\s]+:[^:\s]*:[^:\s]*:\S+$/;

/** The values of --alarm-action and --dashboard-name: refused here, before any call, not by CloudWatch. */
function checkMonitoring(actions: string[], dashboardName: string | undefined) {
  const distinct = new Set(actions);
  if (distinct.size > ALARM_MAX_ACTIONS) {
    throw usage(
      `--alarm-action takes at most ${ALARM_MAX_ACTIONS} ARNs, as many as an alarm holds; ${distinct.size} were given`,
    );
  }
  const wrong = actions.find((a) => !ARN.test(a));
  if (wrong !== undefined) {
    throw usage(
      `--alarm-action takes an ARN such as arn:aws:sns:eu-west-1:111111111111:alerts, not ${quoted(wrong)}`,
    );
  }
  if (dashboardName !== undefined && !DASHBOARD_NAME.test(dashboardName)) {
    throw usage(`--dashboard-name takes 1 to 255 letters, digits, "-" and "_", not ${quoted(dashboardName)}`);
  }
}

/** Refuses options that do not go together (in the order given), naming the first mode and what it refuses. */
function checkTogether(given: string[], set: (f: string) => boolean) {
  const isMode = (f: string) => MODES.some((m) => m.flag === f);
  const mode = MODES.find((m) => m.flag === given.find(isMode));
  if (mode === undefined) {
    const stray = given.find((f) => !RUN.includes(f));
    if (stray !== undefined) {
      throw usage(
        `${stray} goes with ${either(MODES.filter((m) => m.takes.includes(stray)).map((m) => m.flag))}`,
      );
    }
    return;
  }
  const other = given.filter((f) => f !== mode.flag && !mode.takes.includes(f));
  // Another mode is what matters; the options that come with it would only blur the line.
  const shown = other.some(isMode) ? other.filter(isMode) : other;
  if (shown.length > 0) {
    throw usage(`${mode.flag} ${mode.why ? `${mode.why}: it ` : ""}does not go with ${shown.join(" or ")}`);
  }
  if (mode.flag === "--audit" && !set("--from")) {
    throw usage("--audit needs the window to compare: --from and --to");
  }
}

/**
 * The exit code for an error that ends a run, after reporting it: config problems as compilers print theirs
 * (Log.problem), the rest as errors. Anything unforeseen is rethrown.
 */
export function exitCodeOf(
  e: unknown,
  say: { error: (line: string) => void; problem: (line: string) => void },
): number {
  if (e instanceof ConfigError) return (e.problems.forEach((p) => say.problem(p)), EXIT.usage);
  if (e instanceof StateError) return (say.error(e.message), EXIT.state);
  if (isPermissionError(e)) return (say.error(`Cannot run forward.ts: ${describe(e)}`), EXIT.usage);
  throw e;
}

type NodeProcess = typeof import("node:process");
/** Deno's own: the command line and the exit need none of Node's compatibility layer. */
const deno = (globalThis as { Deno?: { args: string[]; exit(code: number): never } }).Deno;
/**
 * Node's process object. Deno makes it on first use, with the rest of Node's compatibility layer, which takes
 * longer than all else --help does: it is touched only once a run needs it. Bun's is its own, and cheap.
 */
export const nodeProcess = (): NodeProcess => (globalThis as unknown as { process: NodeProcess }).process;
/** The command line's arguments. */
export const commandLine = (): string[] => deno ? [...deno.args] : nodeProcess().argv.slice(2);
/** Ends the process at once: a run's open sockets would keep it alive. */
export const exit = (code: number): never => deno ? deno.exit(code) : nodeProcess().exit(code);
