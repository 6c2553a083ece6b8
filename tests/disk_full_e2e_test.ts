/**
 * A full disk under the state file, for real: a small tmpfs in a user and mount namespace of its own (where the
 * machine allows unprivileged ones; the test is skipped elsewhere). The run that finds the disk full says so in
 * one line, exits 3 and changes nothing; once space is freed, the next run forwards everything owed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { assertForwarded, firstPeriod, forwarderEnv, MIN, withFleet } from "./fleet.ts";
import { exec, runtime, said } from "./helpers.ts";

/** Whether this machine lets an unprivileged process mount a tmpfs in namespaces of its own. */
function canMount(): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-full-"));
  const r = spawnSync("unshare", [
    "--user",
    "--map-root-user",
    "--mount",
    "sh",
    "-c",
    `mount -t tmpfs -o size=64k tmpfs ${dir}`,
  ]);
  return r.status === 0;
}

/** A word for sh, quoted. */
const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

test(
  "a full disk under the state file: one line, exit 3, the file unchanged; once space is freed the next run forwards everything owed",
  {
    skip: canMount() ? false : "no unprivileged mount namespaces here",
  },
  async () => {
    await withFleet({ minutes: 30, services: 5 }, async ({ emu, config, now }) => {
      const disk = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-full-disk-"));
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-full-out-"));
      const rt = runtime();
      const script = new URL("../forward.ts", import.meta.url).pathname;
      const forward = (n: number, minutesAgo: number) =>
        [
          rt.command,
          ...rt.args,
          script,
          "--config",
          config,
          "--now",
          new Date(now - minutesAgo * MIN).toISOString(),
        ]
          .map(q).join(" ") +
        ` >${q(`${out}/${n}.out`)} 2>${q(`${out}/${n}.err`)}; echo $? >${q(`${out}/${n}.code`)}`;
      const state = path.join(disk, "forwarder-state.db");
      const steps = [
        `mount -t tmpfs -o size=1m tmpfs ${q(disk)}`,
        forward(1, 20),
        // Every block left taken: the state file's next write has no room.
        `dd if=/dev/zero of=${q(`${disk}/filler`)} bs=4096 2>/dev/null; cp ${q(state)} ${
          q(`${out}/before.db`)
        }`,
        forward(2, 10),
        `cp ${q(state)} ${q(`${out}/after.db`)} && rm ${q(`${disk}/filler`)}`,
        forward(3, 0),
      ];
      const env = {
        ...forwarderEnv(emu),
        PATH: process.env["PATH"] ?? "",
        HOME: os.tmpdir(),
        NO_COLOR: "1",
        STATE_DIRECTORY: disk,
      };
      const r = await exec("unshare", [
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        steps.join(" && "),
      ], env);
      assert.equal(r.code, 0, r.stderr);
      const result = (n: number) => ({
        code: Number(fs.readFileSync(`${out}/${n}.code`, "utf8")),
        stdout: fs.readFileSync(`${out}/${n}.out`, "utf8"),
        stderr: fs.readFileSync(`${out}/${n}.err`, "utf8"),
      });
      const [first, full, freed] = [result(1), result(2), result(3)];
      assert.equal(first.code, 0, first.stderr);
      assert.equal(full.code, 3, full.stderr);
      assert.equal(full.stdout, "");
      // SQLite names it an I/O error (its shared-memory file cannot grow); the free space tells, where the
      // runtime lets it be asked: Deno wants --allow-sys for statfs.
      assert.equal(
        said(full),
        `Cannot use state file "${state}": ${
          rt.name === "bun"
            ? "the disk is full (disk I/O error); nothing was changed, and the next run goes on from its checkpoints once space is freed on the device that holds it"
            : "the device that holds it could not read or write it (disk I/O error): a full disk, or a failing one; nothing was changed, and the next run goes on from its checkpoints once space is freed or the device is repaired"
        }\n`,
      );
      assert.deepEqual(fs.readFileSync(`${out}/after.db`), fs.readFileSync(`${out}/before.db`));
      assert.equal(freed.code, 0, freed.stderr);
      await assertForwarded(emu, firstPeriod(now, 20), now - 2 * MIN);
    });
  },
);
