/**
 * --systemd-units: the units as text, checked by systemd-analyze verify, and the service's own command line
 * run as systemd would run it (no HOME of the user's, the state folder, the environment file's variables).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { DEMO_ACCOUNTS, startEmulator } from "../lib/emulator.ts";
import { ConfigError } from "../lib/errors.ts";
import { execStart, type UnitOptions, units, unreachable } from "../lib/units.ts";
import { exec, runForwarder, runtime } from "./helpers.ts";

const options = (over: Partial<UnitOptions> = {}): UnitOptions => ({
  runtime: "bun",
  runtimePath: "/opt/fwd/node_modules/bun/bin/bun.exe",
  script: "/opt/fwd/forward.ts",
  config: "/etc/cloudwatch-forwarder/forwarder.yaml",
  interval: 60,
  user: undefined,
  logFormat: "text",
  logLevel: "info",
  ...over,
});
const line = (text: string, key: string) => text.split("\n").filter((l) => l.startsWith(`${key}=`));

test("units() runs the runtime in use on forward.ts and the config, sandboxed, under a dynamic user", () => {
  const { service, timer } = units(options());
  assert.deepEqual(line(service, "ExecStart"), [
    "ExecStart=/opt/fwd/node_modules/bun/bin/bun.exe run /opt/fwd/forward.ts --config /etc/cloudwatch-forwarder/forwarder.yaml",
  ]);
  for (
    const setting of [
      "Type=oneshot",
      "DynamicUser=yes",
      "StateDirectory=cloudwatch-forwarder",
      "StateDirectoryMode=0700",
      "EnvironmentFile=-/etc/cloudwatch-forwarder/env",
      "Environment=HOME=/var/lib/cloudwatch-forwarder",
      "WorkingDirectory=/opt/fwd",
      "TimeoutStartSec=55s",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "PrivateDevices=yes",
      "PrivateMounts=yes",
      "UMask=0077",
      "NoNewPrivileges=yes",
      "CapabilityBoundingSet=",
      "ProtectKernelTunables=yes",
      "ProtectKernelModules=yes",
      "ProtectKernelLogs=yes",
      "ProtectControlGroups=yes",
      "ProtectClock=yes",
      "ProtectHostname=yes",
      "ProtectProc=invisible",
      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
      "RestrictNamespaces=yes",
      "RestrictRealtime=yes",
      "RestrictSUIDSGID=yes",
      "LockPersonality=yes",
      "SystemCallArchitectures=native",
      "SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap",
      "SystemCallErrorNumber=EPERM",
    ]
  ) assert.ok(service.split("\n").includes(setting), setting);
  // Both runtimes compile JavaScript to machine code as they run: this would kill them.
  assert.deepEqual(line(service, "MemoryDenyWriteExecute"), []);
  for (
    const setting of [
      "OnCalendar=*-*-* *:00/1:00",
      "AccuracySec=1s",
      "Persistent=true",
      "WantedBy=timers.target",
    ]
  ) {
    assert.ok(timer.split("\n").includes(setting), setting);
  }
});

test("units() under Deno grants exactly the network, the environment, reading the code, config and state, and writing the state", () => {
  const o = options({ runtime: "deno", runtimePath: "/opt/fwd/node_modules/deno/deno" });
  assert.deepEqual(execStart(o, "/var/lib/cloudwatch-forwarder"), [
    "/opt/fwd/node_modules/deno/deno",
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read=/opt/fwd,/etc/cloudwatch-forwarder/forwarder.yaml,/var/lib/cloudwatch-forwarder",
    "--allow-write=/var/lib/cloudwatch-forwarder",
    "--allow-sys=hostname",
    "/opt/fwd/forward.ts",
    "--config",
    "/etc/cloudwatch-forwarder/forwarder.yaml",
  ]);
  // The bundled config lives with the code: nothing more to read.
  assert.ok(execStart({ ...o, config: undefined }, "/s").includes("--allow-read=/opt/fwd,/s"));
});

test("units() schedules on the calendar where the interval divides a minute, an hour or a day, else since the last start", () => {
  const cases: [number, string[]][] = [
    [10, ["OnCalendar=*-*-* *:*:00/10", "Persistent=true"]],
    [60, ["OnCalendar=*-*-* *:00/1:00", "Persistent=true"]],
    [300, ["OnCalendar=*-*-* *:00/5:00", "Persistent=true"]],
    [7200, ["OnCalendar=*-*-* 00/2:00:00", "Persistent=true"]],
    [90, ["OnBootSec=90s", "OnUnitActiveSec=90s"]],
    [25_200, ["OnBootSec=25200s", "OnUnitActiveSec=25200s"]],
  ];
  for (const [interval, expected] of cases) {
    const timer = units(options({ interval })).timer.split("\n");
    assert.deepEqual(timer.filter((l) => /^(On|Persistent)/.test(l)), expected, String(interval));
    assert.ok(units(options({ interval })).service.includes(`TimeoutStartSec=${Math.max(5, interval - 5)}s`));
  }
});

test("units() keeps home folders readable where the code lives there, takes a named user, and quotes spaces", () => {
  const { service } = units(options({ script: "/home/ops/fwd app/forward.ts", user: "forwarder" }));
  assert.deepEqual(line(service, "ProtectHome"), ["ProtectHome=read-only"]);
  assert.deepEqual(line(service, "User"), ["User=forwarder"]);
  assert.deepEqual(line(service, "DynamicUser"), []);
  assert.match(line(service, "ExecStart")[0]!, / "\/home\/ops\/fwd app\/forward\.ts" /);
  // The config alone in a home folder: the service only reads it, so read-only is enough there too.
  for (
    const config of ["/home/ops/forwarder.yaml", "/root/forwarder.yaml", "/run/user/1000/forwarder.yaml"]
  ) {
    assert.deepEqual(
      line(units(options({ config })).service, "ProtectHome"),
      ["ProtectHome=read-only"],
      config,
    );
  }
});

test("units() refuses the runtime, forward.ts or the config in /tmp or /var/tmp, which PrivateTmp=yes hides from the service", () => {
  const cases: [Partial<UnitOptions>, string][] = [
    [{ script: "/tmp/fwd/forward.ts" }, 'forward.ts "/tmp/fwd/forward.ts" is in /tmp'],
    [{ runtimePath: "/var/tmp/bun/bun" }, 'the runtime "/var/tmp/bun/bun" is in /var/tmp'],
    [{ config: "/tmp/forwarder.yaml" }, 'the config "/tmp/forwarder.yaml" is in /tmp'],
  ];
  for (const [over, what] of cases) {
    assert.throws(() => units(options(over)), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems, [
        `Cannot write units: ${what}, which PrivateTmp=yes hides from the service: move it elsewhere`,
      ]);
      return true;
    });
  }
  // Only the folders themselves: a name that merely begins alike is elsewhere.
  assert.doesNotThrow(() => units(options({ script: "/tmpfs/fwd/forward.ts", config: "/var/tmpl/f.yaml" })));
});

test("units() passes --log-format and --log-level as given to the service, under either runtime", () => {
  for (const runtime of ["bun", "deno"] as const) {
    const o = options({ runtime, logFormat: "json", logLevel: "debug" });
    assert.deepEqual(execStart(o, "/s").slice(-4), ["--log-format", "json", "--log-level", "debug"], runtime);
    // The defaults need no flag.
    assert.equal(
      execStart({ ...o, logFormat: "text", logLevel: "info" }, "/s").at(-1),
      "/etc/cloudwatch-forwarder/forwarder.yaml",
    );
  }
});

test("unreachable() names the folder or file a dynamic user, in none of their groups, cannot get through", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-reach-"));
  const code = path.join(dir, "code");
  fs.mkdirSync(code);
  const script = path.join(code, "forward.ts");
  const runtimePath = path.join(code, "bun");
  fs.writeFileSync(script, "");
  fs.writeFileSync(runtimePath, "");
  const files = { runtimePath, script, config: undefined };
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(code, 0o755);
  fs.chmodSync(script, 0o644);
  fs.chmodSync(runtimePath, 0o755);
  assert.equal(unreachable(files), undefined);
  fs.chmodSync(runtimePath, 0o754);
  assert.equal(unreachable(files), `the runtime "${runtimePath}" (mode 0754)`);
  fs.chmodSync(runtimePath, 0o755);
  fs.chmodSync(script, 0o640);
  assert.equal(unreachable(files), `forward.ts "${script}" (mode 0640)`);
  fs.chmodSync(code, 0o750);
  // The folder holds both forward.ts and the runtime: the first of them is named.
  assert.equal(unreachable(files), `forward.ts "${script}" ("${code}" is mode 0750)`);
  fs.chmodSync(code, 0o755);
  fs.chmodSync(script, 0o644);
  const config = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(config, "", { mode: 0o600 });
  assert.equal(unreachable({ ...files, config }), `the config "${config}" (mode 0600)`);
});

test(`forward.ts --systemd-units under ${runtime().name} refuses, in one line, a config in /tmp, which PrivateTmp=yes hides`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-units-"));
  const config = path.join(dir, "forwarder.yaml");
  fs.copyFileSync(new URL("../forwarder.yaml", import.meta.url), config);
  const r = await runForwarder(["--systemd-units", path.join(dir, "units"), "--config", config], {});
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `Cannot write units: the config "${config}" is in /tmp, which PrivateTmp=yes hides from the service`,
    ),
  );
  assert.equal(fs.existsSync(path.join(dir, "units")), false, "nothing written");
});

/** systemd's own words for a command line (what units() writes): quoted words may hold spaces. */
const words = (commandLine: string) =>
  [...commandLine.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1]?.replace(/\\(.)/g, "$1") ?? m[2]!);

test(`forward.ts --systemd-units writes units for ${runtime().name} that systemd-analyze verify accepts, whose command runs as the service would`, async () => {
  const analyze = spawnSync("systemd-analyze", ["--version"]);
  assert.equal(
    analyze.error,
    undefined,
    "systemd-analyze is needed (Debian package systemd; .ci/run installs it)",
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-units-"));
  const rt = runtime();
  const written = await exec(rt.command, [...rt.args, "forward.ts", "--systemd-units", dir], {
    PATH: process.env["PATH"] ?? "",
    HOME: os.tmpdir(),
  });
  // A checkout the service could not reach (in /tmp or /var/tmp, which PrivateTmp=yes hides, or behind a folder
  // others may not enter, as /root is) is refused, and there is nothing else to check: a runner may clone there.
  const checkout = fs.realpathSync(new URL("..", import.meta.url).pathname);
  const folders = checkout.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/") || "/");
  const closed = folders.some((f) => (fs.statSync(f).mode & 0o001) === 0);
  if (/^\/(var\/)?tmp\//.test(`${checkout}/`) || closed) {
    assert.equal(written.code, 2, written.stderr);
    assert.match(
      written.stderr,
      /Cannot write units: (forward\.ts "[^"]+" is in \/(var\/)?tmp, which PrivateTmp=yes hides|.*cannot reach forward\.ts)/,
    );
    assert.deepEqual(fs.readdirSync(dir), []);
    return;
  }
  assert.equal(written.code, 0, written.stderr);
  assert.match(written.stdout, /^Wrote .*cloudwatch-forwarder\.service and .*cloudwatch-forwarder\.timer\n/);
  // The bundled config's variables: the service takes them from its environment file.
  assert.match(
    written.stdout,
    /The config reads PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN, .*\/etc\/cloudwatch-forwarder\/env/,
  );
  const verify = spawnSync("systemd-analyze", [
    "verify",
    "cloudwatch-forwarder.service",
    "cloudwatch-forwarder.timer",
  ], {
    cwd: dir,
    encoding: "utf8",
  });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), "");
  // systemd's own rating of the sandbox: exposure 2.0 at most (5.2 before UMask= and the Protect* settings).
  const security = spawnSync("systemd-analyze", [
    "security",
    "--offline=true",
    "--threshold=20",
    "--no-pager",
    "cloudwatch-forwarder.service",
  ], { cwd: dir, encoding: "utf8" });
  assert.equal(security.status, 0, security.stdout.trim().split("\n").at(-1) ?? security.stderr);

  // The service's command, as systemd runs it: in its working folder, with the state folder as HOME and as
  // STATE_DIRECTORY, and no variable but those the unit and its environment file give.
  const service = fs.readFileSync(path.join(dir, "cloudwatch-forwarder.service"), "utf8");
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-units-state-"));
  const here = (v: string) => v.replaceAll("/var/lib/cloudwatch-forwarder", state);
  const [command, ...args] = words(here(line(service, "ExecStart")[0]!.slice("ExecStart=".length)));
  const unitEnv = Object.fromEntries(
    line(service, "Environment").map((l) => here(l.slice(12)).split(/=(.*)/s).slice(0, 2)),
  );
  const emu = await startEmulator({ seed: "demo" });
  try {
    const env = {
      ...unitEnv,
      STATE_DIRECTORY: state,
      AWS_ENDPOINT_URL: emu.url,
      AWS_ACCESS_KEY_ID: "AKIA999999999999",
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: "eu-west-1",
      PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.production}:role/transfer`,
      ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.acceptance}:role/transfer`,
      TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: `arn:aws:iam::${DEMO_ACCOUNTS.test}:role/transfer`,
    };
    const r = await exec(
      command!,
      args,
      env,
      line(service, "WorkingDirectory")[0]!.slice("WorkingDirectory=".length),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Forwarded 36 datums of 36 streams from 4 of 4 account-regions/);
    assert.ok(fs.existsSync(path.join(state, "forwarder-state.db")), "checkpoints in the state folder");
  } finally {
    await emu.stop();
  }
});
