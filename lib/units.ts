/**
 * --systemd-units DIR: a service and a timer made for the runtime this runs under and the files in use, with
 * absolute paths, a private state folder, the config's variables from a root-only file, and the sandboxing a
 * forwarder that only talks HTTPS needs. Under Deno, the permission flags are scoped to those paths. Units the
 * sandbox would keep from their own files are refused, as the service could not start.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { LogLevel } from "./cli.ts";
import { ConfigError } from "./errors.ts";

export const UNIT = "cloudwatch-forwarder";
/** The config's ${VARIABLES} and any AWS credentials, for the service: root's alone (0600). */
export const ENVIRONMENT_FILE = `/etc/${UNIT}/env`;

export interface UnitOptions {
  runtime: "bun" | "deno";
  /** The runtime's executable, absolute. */
  runtimePath: string;
  /** forward.ts, absolute. */
  script: string;
  /** The config, absolute; undefined for the bundled one. */
  config: string | undefined;
  /** Seconds between runs. */
  interval: number;
  /** A named user to run as, instead of a dynamic one. */
  user: string | undefined;
  /** How the service logs: as given when the units were written. */
  logFormat: "text" | "json";
  logLevel: LogLevel;
}

/** Where the code or config may not lie: PrivateTmp=yes gives the service empty /tmp and /var/tmp of its own. */
const PRIVATE_TMP = /^\/(tmp|var\/tmp)(\/|$)/;
/** ProtectHome= hides these, or with read-only (where the code or config lies there) keeps them unwritable. */
const HOME = /^\/(home|root|run\/user)(\/|$)/;

/**
 * The files the service needs, each as a message names it: the config first, the file most often put in a
 * passing folder, then forward.ts and the runtime, which come with the checkout.
 */
const filesOf = (o: Pick<UnitOptions, "runtimePath" | "script" | "config">): [string, string][] => [
  ...(o.config === undefined ? [] : [["the config", o.config] as [string, string]]),
  ["forward.ts", o.script],
  ["the runtime", o.runtimePath],
];

/** systemd's quoting for one word of a command line: only where it needs it. */
const word = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, "\\$1")}"`);

/** The command the service runs: the runtime, its flags, forward.ts and the config. */
export function execStart(o: UnitOptions, stateDir: string): string[] {
  const code = path.dirname(o.script);
  const config = o.config ? ["--config", o.config] : [];
  const log = [
    ...(o.logFormat === "text" ? [] : ["--log-format", o.logFormat]),
    ...(o.logLevel === "info" ? [] : ["--log-level", o.logLevel]),
  ];
  if (o.runtime === "bun") return [o.runtimePath, "run", o.script, ...config, ...log];
  // Deno reads the code (with its node_modules), the config and the state, and writes only the state.
  const read = [code, ...(o.config && !o.config.startsWith(`${code}/`) ? [o.config] : []), stateDir];
  return [
    o.runtimePath,
    "run",
    "--allow-net",
    "--allow-env",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${stateDir}`,
    // Where a lease's holder was: the host name, which Deno otherwise refuses to tell.
    "--allow-sys=hostname",
    o.script,
    ...config,
    ...log,
  ];
}

/** `.timer` schedules: a calendar event where the interval divides a minute, an hour or a day evenly. */
function schedule(interval: number): string[] {
  const calendar = interval < 60 && 60 % interval === 0
    ? `*-*-* *:*:00/${interval}`
    : interval < 3600 && interval % 60 === 0 && 3600 % interval === 0
    ? `*-*-* *:00/${interval / 60}:00`
    : interval % 3600 === 0 && 86_400 % interval === 0
    ? `*-*-* 00/${interval / 3600}:00:00`
    : undefined;
  // Otherwise the next run comes that long after the last one started.
  return calendar
    ? [`OnCalendar=${calendar}`, "Persistent=true"]
    : [`OnBootSec=${interval}s`, `OnUnitActiveSec=${interval}s`];
}

/**
 * The two units' text. Throws ConfigError where the runtime, forward.ts or the config lies where the service's
 * sandbox hides it, as the service could not even start.
 */
export function units(o: UnitOptions): { service: string; timer: string } {
  const stateDir = `/var/lib/${UNIT}`;
  for (const [what, file] of filesOf(o)) {
    const tmp = PRIVATE_TMP.exec(file)?.[1];
    if (tmp !== undefined) {
      throw new ConfigError([
        `Cannot write units: ${what} "${file}" is in /${tmp}, which PrivateTmp=yes hides from the service: move it elsewhere`,
      ]);
    }
  }
  const inHome = filesOf(o).some(([, file]) => HOME.test(file));
  const service = [
    "[Unit]",
    "Description=Copy CloudWatch metrics into the shared account (cloudwatch-forwarder)",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    ...(o.user ? [`User=${o.user}`] : ["DynamicUser=yes"]),
    `StateDirectory=${UNIT}`,
    "StateDirectoryMode=0700",
    `Environment=HOME=${stateDir}`,
    ...(o.runtime === "deno"
      ? ["Environment=DENO_NO_UPDATE_CHECK=1", `Environment=DENO_DIR=${stateDir}/deno`]
      : []),
    `EnvironmentFile=-${ENVIRONMENT_FILE}`,
    // Deno finds the project's deno.json (and so its node_modules) from the working folder.
    `WorkingDirectory=${path.dirname(o.script)}`,
    `ExecStart=${execStart(o, stateDir).map(word).join(" ")}`,
    // Under the interval, so that a run stuck past it makes room for the next; SIGTERM lets its step finish.
    `TimeoutStartSec=${Math.max(5, o.interval - 5)}s`,
    // The sandbox of a client that reads its code and config, writes its state folder and talks HTTPS.
    "ProtectSystem=strict",
    `ProtectHome=${inHome ? "read-only" : "yes"}`,
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
    // Not ProcSubset=pid as well: Deno reads /proc/meminfo and Bun /proc/sys/vm as they start.
    "ProtectProc=invisible",
    // Without AF_NETLINK: glibc's resolver then assumes both IPv4 and IPv6 rather than asking the kernel.
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "# A list of what to refuse, not SystemCallFilter=@system-service: Deno's V8 calls pkey_alloc, outside it.",
    // Not @privileged: it holds fchown, which the runtimes call; nor @resources, for the threads' scheduling.
    "SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap",
    // A refused call fails with EPERM, as a runtime probing for a feature expects, rather than killing it.
    "SystemCallErrorNumber=EPERM",
    "# Not MemoryDenyWriteExecute=yes: Bun and Deno compile JavaScript to machine code, and would be killed.",
    "",
  ].join("\n");
  const timer = [
    "[Unit]",
    `Description=Run cloudwatch-forwarder every ${o.interval} s`,
    "",
    "[Timer]",
    ...schedule(o.interval),
    "AccuracySec=1s",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
  return { service, timer };
}

/**
 * What a dynamic user cannot reach of the runtime (to run), forward.ts and the config (to read), as it is in
 * none of their groups: the first folder on the way that others may not search, or the file itself. ACLs
 * aside; a file that cannot be examined is left to the service to report.
 */
export function unreachable(o: Pick<UnitOptions, "runtimePath" | "script" | "config">): string | undefined {
  for (const [what, file] of filesOf(o)) {
    const bit = file === o.runtimePath ? 0o001 : 0o004;
    const parts = file.split("/").slice(1);
    for (let i = 1; i <= parts.length; i++) {
      const at = `/${parts.slice(0, i).join("/")}`;
      let mode: number;
      try {
        mode = fs.statSync(at).mode;
      } catch {
        break;
      }
      if ((mode & (i === parts.length ? bit : 0o001)) === 0) {
        const shown = `mode ${(mode & 0o7777).toString(8).padStart(4, "0")}`;
        return `${what} "${file}" (${at === file ? shown : `"${at}" is ${shown}`})`;
      }
    }
  }
  return undefined;
}

/**
 * Writes both units into the folder of --systemd-units, for the runtime this runs under, and says where, and
 * which variables the environment file must give the config.
 */
export function writeUnits(
  args: {
    systemdUnits?: string | undefined;
    config: string | undefined;
    user: string | undefined;
    logFormat: "text" | "json";
    logLevel: LogLevel;
  },
  facts: { interval: number; variables: string[] },
  scriptUrl: string,
  out: (line: string) => void,
): number {
  const dir = args.systemdUnits!;
  const o: UnitOptions = {
    runtime: process.versions["bun"] ? "bun" : "deno",
    runtimePath: process.execPath,
    script: fileURLToPath(scriptUrl),
    config: args.config === undefined ? undefined : path.resolve(args.config),
    interval: facts.interval,
    user: args.user,
    logFormat: args.logFormat,
    logLevel: args.logLevel,
  };
  const { service, timer } = units(o);
  const blocked = o.user === undefined ? unreachable(o) : undefined;
  if (blocked !== undefined) {
    throw new ConfigError([
      `Cannot write units: DynamicUser=yes runs the service as a user of its own, which cannot reach ${blocked}: pass --user with a user that can, or make it readable`,
    ]);
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${UNIT}.service`), service);
  fs.writeFileSync(path.join(dir, `${UNIT}.timer`), timer);
  out(`Wrote ${path.join(dir, `${UNIT}.service`)} and ${path.join(dir, `${UNIT}.timer`)}`);
  if (facts.variables.length > 0) {
    out(
      `The config reads ${
        facts.variables.join(", ")
      }: set them in ${ENVIRONMENT_FILE} (owned by root, mode 0600), with AWS credentials if the host has no instance role`,
    );
  }
  return 0;
}
