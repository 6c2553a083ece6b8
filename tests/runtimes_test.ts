/**
 * The documented command lines, exactly as a user types them, with the bundled forwarder.yaml, against the
 * demo fleet: `deno run --allow-net --allow-env forward.ts` and `bun run forward.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DEMO_ACCOUNTS, type Emulator, startEmulator } from "../lib/emulator.ts";
import { exec, said } from "./helpers.ts";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));

function bundledEnv(emu: Emulator, stateDirectory: string) {
  return {
    PATH: process.env["PATH"] ?? "",
    HOME: os.tmpdir(),
    NO_COLOR: "1",
    AWS_ENDPOINT_URL: emu.url,
    AWS_ACCESS_KEY_ID: "AKIA999999999999",
    AWS_SECRET_ACCESS_KEY: "secret",
    STATE_DIRECTORY: stateDirectory,
    PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.production}:role/transfer`,
    ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.acceptance}:role/transfer`,
    TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.test}:role/transfer`,
  };
}

const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fwd-rt-"));

test("deno run --allow-net --allow-env forward.ts runs the bundled config without checkpoints, says so once, and never writes a period twice", async () => {
  const emu = await startEmulator({ seed: "demo" });
  try {
    const dir = tempDir();
    const env = bundledEnv(emu, dir);
    const first = await exec(bin("deno"), ["run", "--allow-net", "--allow-env", "forward.ts"], env);
    assert.equal(first.code, 0, first.stderr);
    // On the real clock the newest complete period ended 2 to 3 minutes ago, by the second the run starts in.
    assert.match(
      first.stdout,
      /^Forwarded 36 datums of 36 streams from 4 of 4 account-regions in [\d.]+ s; calls: [^;\n]+; largest lag [23] min\n$/,
    );
    assert.equal(said(first).split("\n").filter(Boolean).length, 1);
    assert.match(
      said(first),
      /^Checkpoints are off: .*; under Deno add --allow-read --allow-write to turn them on\. Do not leave this running beside the forwarder with checkpoints: .*\n$/,
    );
    // A second run within the same minute finds the newest period already in the destination.
    const second = await exec(bin("deno"), ["run", "--allow-net", "--allow-env", "forward.ts"], env);
    assert.match(second.stdout, /^Forwarded 0 datums of 36 streams/);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    await emu.stop();
  }
});

test("bun run forward.ts runs the bundled config with checkpoints in STATE_DIRECTORY", async () => {
  const emu = await startEmulator({ seed: "demo" });
  try {
    const dir = tempDir();
    const r = await exec(bin("bun"), ["run", "forward.ts"], bundledEnv(emu, dir));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(said(r), "");
    assert.match(r.stdout, /^Forwarded 36 datums of 36 streams from 4 of 4 account-regions/);
    assert.deepEqual(fs.readdirSync(dir), ["forwarder-state.db"]);
  } finally {
    await emu.stop();
  }
});
