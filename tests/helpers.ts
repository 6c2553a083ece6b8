/** Shared test helpers: emulator clients signed as a given account, error-code assertions, processes. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { STSClient } from "@aws-sdk/client-sts";

/** Static credentials whose access key id ends in the account: the emulator acts as that account. */
export const credentialsFor = (account: string) => ({
  accessKeyId: `AKIA${account}`,
  secretAccessKey: "secret",
});

export function cloudWatch(url: string, account: string, region = "eu-west-1", maxAttempts = 1) {
  return new CloudWatchClient({ region, endpoint: url, credentials: credentialsFor(account), maxAttempts });
}

export function sts(url: string, account: string, region = "eu-west-1") {
  return new STSClient({ region, endpoint: url, credentials: credentialsFor(account), maxAttempts: 1 });
}

/** Asserts that a call fails with AWS's error code (the query-compatible code the SDK exposes). */
export async function rejectsWith(promise: Promise<unknown>, code: string, status?: number) {
  await assert.rejects(promise, (e: unknown) => {
    const err = e as { Code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(err.Code ?? err.name, code);
    if (status !== undefined) assert.equal(err.$metadata?.httpStatusCode, status);
    return true;
  });
}

export interface Runtime {
  name: "bun" | "deno";
  command: string;
  args: string[];
}

/** Both runtimes, each with the command that runs forward.ts under it, to run it under each in any test run. */
export function runtimes(): Runtime[] {
  const bin = new URL("../node_modules/.bin/", import.meta.url).pathname;
  return [
    { name: "bun", command: `${bin}bun`, args: ["run"] },
    // --allow-run lets the forwarder see that the holder of a lock is gone (process.kill(pid, 0)), so a run
    // after a SIGKILL takes the lock over at once rather than after the lease; state_test covers the lease.
    {
      name: "deno",
      command: `${bin}deno`,
      args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run"],
    },
  ];
}

/** The runtime running the tests, to run forward.ts as a process under the same one. */
export function runtime(): Runtime {
  const name = process.versions.bun ? "bun" : "deno";
  return runtimes().find((rt) => rt.name === name)!;
}

/**
 * The calls a run's summary counts, by operation, and of those the throttled ones: `calls: GetMetricData 13
 * (5 throttled), PutMetricData 2` gives `{ GetMetricData: 13, PutMetricData: 2 }` and `{ GetMetricData: 5 }`.
 */
export function summaryCalls(stdout: string) {
  const calls: Record<string, number> = {};
  const throttled: Record<string, number> = {};
  const list = /; calls: ([^;\n]+)/.exec(stdout)?.[1] ?? "";
  for (const [, op, n, t] of list.matchAll(/(\w+) (\d+)(?: \((\d+) throttled\))?/g)) {
    calls[op!] = Number(n);
    if (t !== undefined) throttled[op!] = Number(t);
  }
  return { calls, throttled };
}

export interface ProcessResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The command and its arguments before forward.ts; default: the current runtime's (see runtime()). */
  command?: { command: string; args: string[] };
  killAfterMs?: number;
}

/** A forward.ts process under way: its pid (for signals), and its result once it ends. */
export interface Started {
  pid: number;
  done: Promise<ProcessResult>;
  /** What it has written so far. */
  output(): { stdout: string; stderr: string };
}

/** Starts forward.ts as a user would, under the current runtime unless `command` says otherwise. */
export function startForwarder(
  args: string[],
  env: Record<string, string>,
  options: RunOptions = {},
): Started {
  const rt = options.command ?? runtime();
  const script = new URL("../forward.ts", import.meta.url).pathname;
  const child = spawn(rt.command, [...rt.args, script, ...args], {
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += String(d)));
  child.stderr.on("data", (d) => (stderr += String(d)));
  const done = new Promise<ProcessResult>((resolve, reject) => {
    const timer = options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => child.kill("SIGKILL"), options.killAfterMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid!, done, output: () => ({ stdout, stderr }) };
}

const LEVELS = ["error", "warn", "info", "debug"];

/**
 * What a run said on stderr at `level` or more severe, one message a line, without the time and the level
 * each log line starts with. A line that is no log line (a stack trace, say) is kept whole, so it shows.
 */
export function said(r: { stderr: string }, level: "error" | "warn" | "info" | "debug" = "warn"): string {
  const most = LEVELS.indexOf(level);
  return r.stderr.split("\n").filter(Boolean).map((line) => {
    const m = /^\S+ (ERROR|WARN|INFO|DEBUG) (.*)$/.exec(line);
    return m ? { rank: LEVELS.indexOf(m[1]!.toLowerCase()), text: m[2]! } : { rank: 0, text: line };
  }).filter((l) => l.rank <= most).map((l) => `${l.text}\n`).join("");
}

/** What a run said at the info level and above, less its summary line: the notes about its checkpoints. */
export const notes = (r: { stderr: string }) =>
  said(r, "info").split("\n").filter((l) => l && !/^(Forwarded|Would forward) \d+ datums/.test(l)).map((l) =>
    `${l}\n`
  ).join("");

/** Runs a command to its end, in `cwd` (the project's folder by default), with only the environment given. */
export function exec(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd = new URL("..", import.meta.url).pathname,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs forward.ts as a user would, under the current runtime unless `command` says otherwise. */
export function runForwarder(
  args: string[],
  env: Record<string, string>,
  options: RunOptions = {},
): Promise<ProcessResult> {
  return startForwarder(args, env, options).done;
}

/**
 * Deno with the permissions given, whichever runtime runs the tests: `--allow-net --allow-env` and read access
 * to the config alone is the documented command without checkpoints.
 */
export function deno(permissions: string[]): { command: string; args: string[] } {
  return {
    command: new URL("../node_modules/.bin/deno", import.meta.url).pathname,
    args: ["run", ...permissions],
  };
}

/** Waits until `done()` holds, checking every few milliseconds; fails after `timeoutMs`. */
export async function until(done: () => boolean, what: string, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
