/**
 * What an operator reads of a run, with forward.ts as a process against the demo fleet: the summary naming an
 * account-region that failed and its call, once in the journal, and saying that a run was stopped; a run that
 * could send nothing (Deno without HOME) said once, up front; a write that never left never called in doubt.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { connector } from "../lib/aws.ts";
import { errorCode, WriteInDoubt } from "../lib/errors.ts";
import { DEMO_ACCOUNTS, type Emulator, startEmulator } from "../lib/emulator.ts";
import { deno, exec, type ProcessResult, runForwarder, said, startForwarder, until } from "./helpers.ts";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const script = path.join(root, "forward.ts");
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fwd-sum-"));
const roleOf = (account: keyof typeof DEMO_ACCOUNTS) =>
  `arn:aws:iam::${DEMO_ACCOUNTS[account]}:role/transfer`;

/** The bundled config's variables, pointed at the emulator, with checkpoints in a folder of their own. */
const bundledEnv = (emu: Emulator): Record<string, string> => ({
  AWS_ENDPOINT_URL: emu.url,
  AWS_ACCESS_KEY_ID: "AKIA999999999999",
  AWS_SECRET_ACCESS_KEY: "secret",
  STATE_DIRECTORY: tempDir(),
  PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: roleOf("production"),
  ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: roleOf("acceptance"),
  TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: roleOf("test"),
});

async function withDemo(
  options: { denyRoles?: string[]; latencyMs?: number },
  f: (emu: Emulator) => Promise<void>,
) {
  const emu = await startEmulator({ seed: "demo", ...options });
  try {
    await f(emu);
  } finally {
    await emu.stop();
  }
}

test("forward.ts summary: names the account-region that failed and the call that failed, and exits 1", async () => {
  await withDemo({ denyRoles: [roleOf("test")] }, async (emu) => {
    const r = await runForwarder([], bundledEnv(emu));
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stdout,
      /^Forwarded 30 datums of 30 streams from 3 of 4 account-regions in [\d.]+ s; failed: test eu-west-1 \(AssumeRole: AccessDenied\); calls: [^;\n]+; largest lag \d+ min\n$/,
    );
  });
});

test("deno run forward.ts without HOME: one line naming HOME and the fix, exit 2, and no call sent", async () => {
  await withDemo({}, async (emu) => {
    const d = deno(["--allow-net", "--allow-env"]);
    // As a system service without the generated unit: no HOME, and no --allow-sys.
    const r = await exec(d.command, [...d.args, script], {
      PATH: process.env["PATH"] ?? "",
      ...bundledEnv(emu),
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^\S+ ERROR Cannot run forward\.ts: HOME is not set, so the AWS SDK would look up the home folder, which Deno refuses without --allow-sys: set HOME \(the service --systemd-units writes sets it\), or add --allow-sys\n$/,
    );
    assert.deepEqual(emu.counts(), {});
  });
});

test("putMetricData() that fails before its request is made (no credentials to sign it) is no write in doubt", async () => {
  // No credentials anywhere the default chain looks.
  const env = {
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    AWS_PROFILE: "nobody",
    AWS_SHARED_CREDENTIALS_FILE: path.join(tempDir(), "none"),
    AWS_CONFIG_FILE: path.join(tempDir(), "none"),
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL: "http://127.0.0.1:9",
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(env);
  try {
    const sent: string[] = [];
    const cloudWatch = connector({ stsRegion: "eu-west-1", onSent: (op) => sent.push(op) });
    const datum = { MetricName: "m", Dimensions: [], Timestamp: Math.floor(Date.now() / 1000), Value: 1 };
    await assert.rejects(
      cloudWatch("eu-west-1", undefined).putMetricData("X", [{ ...datum, StorageResolution: 60 }]),
      (e: unknown) => {
        assert.ok(!(e instanceof WriteInDoubt), String(e));
        assert.equal(errorCode(e), "CredentialsProviderError");
        return true;
      },
    );
    assert.deepEqual(sent, []);
  } finally {
    set(saved);
  }
});

/** Runs forward.ts with stdout and stderr on one file, as systemd connects both to the journal; its text. */
function withOneStream(
  env: Record<string, string>,
  journal: boolean,
): Promise<{ code: number | null; text: string }> {
  const file = path.join(tempDir(), "journal");
  const fd = fs.openSync(file, "w");
  const st = fs.fstatSync(fd);
  const child = spawn(process.execPath, [...runArgs(), script], {
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: os.tmpdir(),
      NO_COLOR: "1",
      ...env,
      ...(journal ? { JOURNAL_STREAM: `${st.dev}:${st.ino}` } : {}),
    },
    stdio: ["ignore", fd, fd],
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      fs.closeSync(fd);
      resolve({ code, text: fs.readFileSync(file, "utf8") });
    });
  });
}

/** The arguments before forward.ts for the runtime running the tests, with the permissions a run needs. */
const runArgs = () => process.versions.bun ? ["run"] : ["run", "--allow-all"];

test("forward.ts under systemd: the summary reaches the journal once, as a log line with its priority; elsewhere on stdout and in the log", async () => {
  await withDemo({}, async (emu) => {
    const env = bundledEnv(emu);
    const journal = await withOneStream(env, true);
    assert.equal(journal.code, 0, journal.text);
    assert.match(
      journal.text,
      /^<6>INFO Forwarded 36 datums of 36 streams from 4 of 4 account-regions in [\d.]+ s; [^\n]+\n$/,
    );
    // Elsewhere (a terminal, a script reading stdout) the line is on stdout, and in the log.
    const plain = await withOneStream({ ...env, STATE_DIRECTORY: tempDir() }, false);
    assert.equal(plain.code, 0, plain.text);
    // The destination has the period already: this run writes nothing.
    assert.match(
      plain.text,
      /^Forwarded 0 datums of 36 streams [^\n]+\n\S+ INFO Forwarded 0 datums of 36 streams [^\n]+\n$/,
    );
  });
});

test("forward.ts stopped by SIGTERM while it forwards: the summary says it was stopped and what it had done, exit 0", async () => {
  // Each call answered after 300 ms: the run is under way when the signal comes.
  await withDemo({ latencyMs: 300 }, async (emu) => {
    const started = startForwarder(["--log-level", "debug"], bundledEnv(emu));
    await until(() => started.output().stderr.includes(" DEBUG Step: "), "a step has started");
    process.kill(started.pid, "SIGTERM");
    const r: ProcessResult = await started.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^Stopped by SIGTERM: forwarded \d+ datums of \d+ streams from 4 of 4 account-regions in [\d.]+ s; calls: [^;\n]+(; largest lag \d+ min)?; the next run goes on from where this one stopped\n$/,
    );
    assert.match(said(r, "info"), /^Stopping on SIGTERM: the steps under way finish and are committed\n/m);
  });
});
