/** The command line: options, help text and exit codes. Loads nothing heavy, so --help answers at once. */
import { ConfigError, describe, isPermissionError, StateError } from "./errors.ts";
import { parseIso } from "./window.ts";

export const HELP = `Usage: forward.ts [options]

Copies CloudWatch metrics from the accounts in the config into the destination account, every complete
period since the last run, with exact SampleCount, Sum, Minimum, Maximum and Average.

Options:
  --config FILE     config file (default: the bundled forwarder.yaml)
  --check-config    check the config and exit
  --dry-run         fetch and print what would be written; write nothing
  --from ISO --to ISO
                    forward this window again (replay); periods already in the destination are skipped
  --now ISO         the time to act as now (for replays and tests)
  --status          print the last forwarded period and the lag per account and region
  --plan            list the streams and print the calls the next run makes and the cost a month, without
                    fetching any data
  --json            --status and --plan print one JSON object
  --help            show this help

Exit codes: 0 done, 1 some account failed, 2 config or usage error, 3 state file unusable or locked.`;

/** Exit codes; a permission Deno was not given is a usage error: the command line lacks a flag. */
export const EXIT = { ok: 0, failed: 1, usage: 2, state: 3 } as const;

export interface Args {
  config: string | undefined;
  checkConfig: boolean;
  dryRun: boolean;
  status: boolean;
  plan: boolean;
  json: boolean;
  help: boolean;
  /** Epoch seconds. */
  now: number | undefined;
  replay: { start: number; end: number } | undefined;
}

const WITH_VALUE = new Set(["--config", "--from", "--to", "--now"]);
const BARE = new Set(["--check-config", "--dry-run", "--status", "--plan", "--json", "--help"]);

/** Parses the options; throws ConfigError with a one-line message for anything it cannot take. */
export function parseArgs(argv: string[]): Args {
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (WITH_VALUE.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError([`Cannot parse arguments: ${a} needs a value`]);
      flags[a] = v;
    } else if (BARE.has(a)) flags[a] = true;
    else throw new ConfigError([`Cannot parse arguments: unknown option "${a}" (see --help)`]);
  }
  const time = (name: string) => {
    const v = flags[name];
    if (typeof v !== "string") return undefined;
    const t = parseIso(v);
    if (t === undefined) {
      throw new ConfigError([
        `Cannot parse ${name} "${v}": expected an ISO 8601 time such as 2026-11-24T10:00:00Z`,
      ]);
    }
    return t;
  };
  const [from, to] = [time("--from"), time("--to")];
  if ((from === undefined) !== (to === undefined)) {
    throw new ConfigError(["Cannot replay: --from and --to go together"]);
  }
  return {
    config: typeof flags["--config"] === "string" ? flags["--config"] : undefined,
    checkConfig: flags["--check-config"] === true,
    dryRun: flags["--dry-run"] === true,
    status: flags["--status"] === true,
    plan: flags["--plan"] === true,
    json: flags["--json"] === true,
    help: flags["--help"] === true,
    now: time("--now"),
    replay: from !== undefined && to !== undefined ? { start: from, end: to } : undefined,
  };
}

/** The exit code for an error that ends a run, after reporting it; anything unforeseen is rethrown. */
export function exitCodeOf(e: unknown, err: (line: string) => void): number {
  if (e instanceof ConfigError) return (e.problems.forEach((p) => err(p)), EXIT.usage);
  if (e instanceof StateError) return (err(e.message), EXIT.state);
  if (isPermissionError(e)) return (err(`Cannot run forward.ts: ${describe(e)}`), EXIT.usage);
  throw e;
}
