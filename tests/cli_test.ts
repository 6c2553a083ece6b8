/** The command line: which options go together, --help whatever else is given, and counts in messages. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs } from "../lib/cli.ts";
import { ConfigError, plural } from "../lib/errors.ts";
import { runForwarder } from "./helpers.ts";

const FROM = "2026-11-24T10:00:00Z";
const TO = "2026-11-24T11:00:00Z";

/** Each option as given in the table, with its value; --audit with the window it cannot go without. */
const OPTIONS: Record<string, string[][]> = {
  "--help": [["--help"]],
  "--config": [["--config", "forwarder.yaml"]],
  "--check-config": [["--check-config"]],
  "--dry-run": [["--dry-run"]],
  "--from/--to": [["--from", FROM], ["--to", TO]],
  "--now": [["--now", TO]],
  "--every": [["--every", "60s"]],
  "--status": [["--status"]],
  "--plan": [["--plan"]],
  "--audit": [["--audit"], ["--from", FROM], ["--to", TO]],
  "--repair": [["--repair"]],
  "--json": [["--json"]],
  "--systemd-units": [["--systemd-units", "/etc/systemd/system"]],
  "--user": [["--user", "forwarder"]],
  "--log-format": [["--log-format", "json"]],
  "--log-level": [["--log-level", "debug"]],
};

const EVERY = "--every runs on the clock, pass after pass: it does not go with";
const JSON_ALONE = "--json goes with --status, --plan or --audit";
const REPAIR_ALONE = "--repair goes with --audit";
const USER_ALONE = "--user goes with --systemd-units";

/**
 * Every pair of options, the first given first, and what the command line makes of them: "ok", "help", or the
 * usage error (after "Cannot parse arguments: "). The first mode named (--every, --systemd-units,
 * --check-config, --status, --plan, --audit) is the one asked for; --config, --log-format and --log-level go
 * with any; --now with a run, a replay, --status, --plan and --audit, as the time they act at.
 */
const PAIRS: [string, string, string][] = [
  ...Object.keys(OPTIONS).slice(1).map((b): [string, string, string] => ["--help", b, "help"]),

  ["--config", "--check-config", "ok"],
  ["--config", "--dry-run", "ok"],
  ["--config", "--from/--to", "ok"],
  ["--config", "--now", "ok"],
  ["--config", "--every", "ok"],
  ["--config", "--status", "ok"],
  ["--config", "--plan", "ok"],
  ["--config", "--audit", "ok"],
  ["--config", "--repair", REPAIR_ALONE],
  ["--config", "--json", JSON_ALONE],
  ["--config", "--systemd-units", "ok"],
  ["--config", "--user", USER_ALONE],
  ["--config", "--log-format", "ok"],
  ["--config", "--log-level", "ok"],

  ["--check-config", "--dry-run", "--check-config does not go with --dry-run"],
  ["--check-config", "--from/--to", "--check-config does not go with --from or --to"],
  ["--check-config", "--now", "--check-config does not go with --now"],
  ["--check-config", "--every", "--check-config does not go with --every"],
  ["--check-config", "--status", "--check-config does not go with --status"],
  ["--check-config", "--plan", "--check-config does not go with --plan"],
  ["--check-config", "--audit", "--check-config does not go with --audit"],
  ["--check-config", "--repair", "--check-config does not go with --repair"],
  ["--check-config", "--json", "--check-config does not go with --json"],
  ["--check-config", "--systemd-units", "--check-config does not go with --systemd-units"],
  ["--check-config", "--user", "--check-config does not go with --user"],
  ["--check-config", "--log-format", "ok"],
  ["--check-config", "--log-level", "ok"],

  // A dry run of a run once, of a replay, at another time.
  ["--dry-run", "--from/--to", "ok"],
  ["--dry-run", "--now", "ok"],
  ["--dry-run", "--every", `${EVERY} --dry-run`],
  ["--dry-run", "--status", "--status does not go with --dry-run"],
  ["--dry-run", "--plan", "--plan does not go with --dry-run"],
  ["--dry-run", "--audit", "--audit does not go with --dry-run"],
  ["--dry-run", "--repair", REPAIR_ALONE],
  ["--dry-run", "--json", JSON_ALONE],
  ["--dry-run", "--systemd-units", "--systemd-units does not go with --dry-run"],
  ["--dry-run", "--user", USER_ALONE],
  ["--dry-run", "--log-format", "ok"],
  ["--dry-run", "--log-level", "ok"],

  ["--from/--to", "--now", "ok"],
  ["--from/--to", "--every", `${EVERY} --from or --to`],
  ["--from/--to", "--status", "--status does not go with --from or --to"],
  // A plan is of the next scheduled run; --audit prints what its window costs before it reads.
  ["--from/--to", "--plan", "--plan does not go with --from or --to"],
  ["--from/--to", "--audit", "ok"],
  ["--from/--to", "--repair", REPAIR_ALONE],
  ["--from/--to", "--json", JSON_ALONE],
  ["--from/--to", "--systemd-units", "--systemd-units does not go with --from or --to"],
  ["--from/--to", "--user", USER_ALONE],
  ["--from/--to", "--log-format", "ok"],
  ["--from/--to", "--log-level", "ok"],

  ["--now", "--every", `${EVERY} --now`],
  ["--now", "--status", "ok"],
  ["--now", "--plan", "ok"],
  ["--now", "--audit", "ok"],
  ["--now", "--repair", REPAIR_ALONE],
  ["--now", "--json", JSON_ALONE],
  ["--now", "--systemd-units", "--systemd-units does not go with --now"],
  ["--now", "--user", USER_ALONE],
  ["--now", "--log-format", "ok"],
  ["--now", "--log-level", "ok"],

  ["--every", "--status", `${EVERY} --status`],
  ["--every", "--plan", `${EVERY} --plan`],
  ["--every", "--audit", `${EVERY} --audit`],
  ["--every", "--repair", `${EVERY} --repair`],
  ["--every", "--json", `${EVERY} --json`],
  ["--every", "--systemd-units", `${EVERY} --systemd-units`],
  ["--every", "--user", `${EVERY} --user`],
  ["--every", "--log-format", "ok"],
  ["--every", "--log-level", "ok"],

  ["--status", "--plan", "--status does not go with --plan"],
  ["--status", "--audit", "--status does not go with --audit"],
  ["--status", "--repair", "--status does not go with --repair"],
  ["--status", "--json", "ok"],
  ["--status", "--systemd-units", "--status does not go with --systemd-units"],
  ["--status", "--user", "--status does not go with --user"],
  ["--status", "--log-format", "ok"],
  ["--status", "--log-level", "ok"],

  ["--plan", "--audit", "--plan does not go with --audit"],
  ["--plan", "--repair", "--plan does not go with --repair"],
  ["--plan", "--json", "ok"],
  ["--plan", "--systemd-units", "--plan does not go with --systemd-units"],
  ["--plan", "--user", "--plan does not go with --user"],
  ["--plan", "--log-format", "ok"],
  ["--plan", "--log-level", "ok"],

  ["--audit", "--repair", "ok"],
  ["--audit", "--json", "ok"],
  ["--audit", "--systemd-units", "--audit does not go with --systemd-units"],
  ["--audit", "--user", "--audit does not go with --user"],
  ["--audit", "--log-format", "ok"],
  ["--audit", "--log-level", "ok"],

  ["--repair", "--json", REPAIR_ALONE],
  ["--repair", "--systemd-units", "--systemd-units does not go with --repair"],
  ["--repair", "--user", REPAIR_ALONE],
  ["--repair", "--log-format", REPAIR_ALONE],
  ["--repair", "--log-level", REPAIR_ALONE],

  ["--json", "--systemd-units", "--systemd-units does not go with --json"],
  ["--json", "--user", JSON_ALONE],
  ["--json", "--log-format", JSON_ALONE],
  ["--json", "--log-level", JSON_ALONE],

  // The service logs as the units were asked for (lib/units.ts).
  ["--systemd-units", "--user", "ok"],
  ["--systemd-units", "--log-format", "ok"],
  ["--systemd-units", "--log-level", "ok"],

  ["--user", "--log-format", USER_ALONE],
  ["--user", "--log-level", USER_ALONE],

  ["--log-format", "--log-level", "ok"],
];

/** The command line for two options: an option both bring (--from with --audit) is given once. */
function argvOf(a: string, b: string): string[] {
  const groups = [...OPTIONS[a]!, ...OPTIONS[b]!];
  return groups.filter((g, i) => groups.findIndex((h) => h[0] === g[0]) === i).flat();
}

/** What parseArgs() makes of a command line, as the table says it. */
function outcome(argv: string[]): string {
  try {
    return parseArgs(argv).help ? "help" : "ok";
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.problems.length, 1, "one line");
    return e.problems[0]!.replace(/^Cannot parse arguments: /, "");
  }
}

test("parseArgs() takes or refuses every pair of options as the table says", () => {
  const names = Object.keys(OPTIONS);
  const decided = new Set(PAIRS.map(([a, b]) => `${a} ${b}`));
  for (const [i, a] of names.entries()) {
    for (const b of names.slice(i + 1)) assert.ok(decided.has(`${a} ${b}`), `no row for ${a} with ${b}`);
  }
  assert.equal(PAIRS.length, (names.length * (names.length - 1)) / 2, "one row a pair");
  for (const [a, b, expected] of PAIRS) {
    const argv = argvOf(a, b);
    assert.equal(outcome(argv), expected, argv.join(" "));
  }
});

test("parseArgs() names the first mode given, and only the modes that do not go with it", () => {
  assert.equal(
    outcome(["--audit", "--from", FROM, "--to", TO, "--plan", "--status"]),
    "--audit does not go with --plan or --status",
  );
  assert.equal(outcome(["--plan", "--audit", "--from", FROM, "--to", TO]), "--plan does not go with --audit");
  assert.equal(outcome(["--every", "60s", "--status", "--json"]), `${EVERY} --status`);
  assert.equal(outcome(["--status", "--dry-run", "--now", TO]), "--status does not go with --dry-run");
});

test("parseArgs() asks --audit for its window, refuses half a window and an option given twice", () => {
  assert.equal(outcome(["--audit"]), "--audit needs the window to compare: --from and --to");
  assert.equal(
    outcome(["--audit", "--now", TO, "--json"]),
    "--audit needs the window to compare: --from and --to",
  );
  assert.throws(() => parseArgs(["--from", FROM]), { message: "Cannot replay: --from and --to go together" });
  assert.equal(outcome(["--status", "--status"]), "--status is given twice");
  assert.equal(outcome(["--config", "a.yaml", "--config", "b.yaml"]), "--config is given twice");
  // Not an option at all, whatever Object.prototype holds.
  assert.equal(outcome(["constructor"]), 'unknown option "constructor" (see --help)');
});

test("parseArgs() answers --help whatever else is given, but still refuses an unknown option", () => {
  assert.equal(outcome(["--status", "--plan", "--every", "60s", "--help"]), "help");
  assert.equal(outcome(["--help", "--from", FROM]), "help");
  assert.equal(outcome(["--help", "--verbose"]), 'unknown option "--verbose" (see --help)');
});

test("forward.ts refuses options that do not go together with exit code 2 and one line", async () => {
  const r = await runForwarder(["--status", "--plan"], {});
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, "Cannot parse arguments: --status does not go with --plan\n");
});

test("plural() says one of a noun in the singular, any other count in the plural, as the count is shown", () => {
  const cases: [number, string, string][] = [
    [0, "stream", "0 streams"],
    [1, "stream", "1 stream"],
    [2, "account-region", "2 account-regions"],
    [1, "account-region", "1 account-region"],
  ];
  for (const [n, noun, expected] of cases) assert.equal(plural(n, noun), expected);
  const count = (x: number) => Math.round(x).toLocaleString("en-US");
  assert.equal(plural(1200, "datum", count), "1,200 datums");
  // Shown as 1 is read as one.
  assert.equal(plural(0.6, "metric", count), "1 metric");
});
