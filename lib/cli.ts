/** The command line: options, help text and exit codes. Loads nothing heavy, so --help answers at once. */
import { ConfigError, describe, isPermissionError, oneLine, StateError } from "./errors.ts";
import { parseIso } from "./window.ts";

export const HELP = `Usage: forward.ts [options]

Copies CloudWatch metrics from the accounts in the config into the destination account, every complete
period since the last run, with exact SampleCount, Sum, Minimum, Maximum and Average.

Options:
  --config FILE       config file (default: the bundled forwarder.yaml)
  --check-config      check the config and exit
  --dry-run           fetch and print what would be written; write nothing
  --from ISO --to ISO forward this window again (replay); periods already in the destination are skipped
  --now ISO           the time to act as now (for replays and tests)
  --every DURATION    keep running: one pass every DURATION (60s, 5m, 1h), aligned to it; SIGTERM or
                      SIGINT ends the step under way, commits it and exits 0
  --status            every account-region: last forwarded period, lag, streams, errors; exits 1 while
                      the last run of any failed
  --plan              list the streams; print the calls the next run makes and the cost a month, without
                      fetching any data
  --audit             with --from and --to: compare every stream and period of the window, source against
                      destination; per account-region, periods exact, short (late samples), missing, over
                      (written twice), differs, and pending (not forwarded yet); exit 0 only if all are exact.
                      Writes nothing
  --repair            with --audit: write the difference where the destination is short or missing
  --json              with --status: a JSON array, one object per account-region; with --plan or --audit:
                      one JSON object
  --systemd-units DIR write a systemd service and timer for this runtime, forward.ts and the config
  --user NAME         with --systemd-units: run as this user instead of a dynamic one
  --log-format F      text (default) or json: one line per event on stderr
  --log-level L       error, warn, info (default) or debug
  --help              show this help

Exit codes: 0 done, 1 some account failed, 2 config or usage error (or a Deno permission missing),
3 state file unusable, held by another run, or its lease lost.`;

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
  "--help",
]);

const usage = (message: string) => new ConfigError([oneLine(`Cannot parse arguments: ${message}`)]);
const quoted = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);

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
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (WITH_VALUE.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw usage(`${a} needs a value`);
      flags[a] = v;
    } else if (BARE.has(a)) flags[a] = true;
    else throw usage(`unknown option ${quoted(a)} (see --help)`);
  }
  const value = (name: string) => (typeof flags[name] === "string" ? flags[name] : undefined);
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
  if ((from === undefined) !== (to === undefined)) {
    throw new ConfigError(["Cannot replay: --from and --to go together"]);
  }
  const every = value("--every");
  const everySeconds = every === undefined ? undefined : parseDuration(every);
  if (every !== undefined && everySeconds === undefined) {
    throw usage(`--every takes a duration from 10s to 24h, such as 60s or 5m, not ${quoted(every)}`);
  }
  const once = ["--now", "--from", "--dry-run", "--plan", "--status", "--check-config", "--systemd-units"]
    .filter((f) => flags[f] !== undefined);
  if (every !== undefined && once.length > 0) {
    throw usage(`--every runs on the clock, pass after pass: it does not go with ${once.join(" or ")}`);
  }
  const logFormat = value("--log-format") ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw usage(`--log-format takes text or json, not ${quoted(logFormat)}`);
  }
  const logLevel = value("--log-level") ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw usage(`--log-level takes ${LOG_LEVELS.join(", ")}, not ${quoted(logLevel)}`);
  }
  if (value("--user") !== undefined && value("--systemd-units") === undefined) {
    throw usage("--user goes with --systemd-units");
  }
  const set = (f: string) => flags[f] !== undefined;
  if (set("--repair") && !set("--audit")) throw usage("--repair goes with --audit");
  if (set("--audit")) {
    if (from === undefined) throw usage("--audit needs the window to compare: --from and --to");
    const other = ["--dry-run", "--plan", "--status", "--check-config", "--systemd-units", "--every"].filter(
      set,
    );
    if (other.length > 0) throw usage(`--audit does not go with ${other.join(" or ")}`);
  }
  if (set("--json") && !["--status", "--plan", "--audit"].some(set)) {
    throw usage("--json goes with --status, --plan or --audit");
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
    logFormat,
    logLevel: logLevel as LogLevel,
  };
}

/** The exit code for an error that ends a run, after reporting it; anything unforeseen is rethrown. */
export function exitCodeOf(e: unknown, err: (line: string) => void): number {
  if (e instanceof ConfigError) return (e.problems.forEach((p) => err(p)), EXIT.usage);
  if (e instanceof StateError) return (err(e.message), EXIT.state);
  if (isPermissionError(e)) return (err(`Cannot run forward.ts: ${describe(e)}`), EXIT.usage);
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
