/**
 * --systemd-units DIR: a service and a timer made for the runtime this runs under and the files in use, with
 * absolute paths, a private state folder, the config's variables from a root-only file, and the sandboxing a
 * forwarder that only talks HTTPS needs. Under Deno, the permission flags are scoped to those paths.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

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
}

/** systemd's quoting for one word of a command line: only where it needs it. */
const word = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, "\\$1")}"`);

/** The command the service runs: the runtime, its flags, forward.ts and the config. */
export function execStart(o: UnitOptions, stateDir: string): string[] {
  const code = path.dirname(o.script);
  const config = o.config ? ["--config", o.config] : [];
  if (o.runtime === "bun") return [o.runtimePath, "run", o.script, ...config];
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

/** The two units' text. */
export function units(o: UnitOptions): { service: string; timer: string } {
  const stateDir = `/var/lib/${UNIT}`;
  // ProtectHome=yes hides /home, /root and /run/user: where the code or config lives there, read-only.
  const inHome = [o.runtimePath, o.script, o.config ?? ""].some((p) =>
    /^\/(home|root|run\/user)(\/|$)/.test(p)
  );
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
    "ProtectSystem=strict",
    `ProtectHome=${inHome ? "read-only" : "yes"}`,
    "PrivateTmp=yes",
    "NoNewPrivileges=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet=",
    "SystemCallArchitectures=native",
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
 * Writes both units into the folder of --systemd-units, for the runtime this runs under, and says where, and
 * which variables the environment file must give the config.
 */
export function writeUnits(
  args: {
    systemdUnits?: string | undefined;
    config: string | undefined;
    user: string | undefined;
  },
  facts: { interval: number; variables: string[] },
  scriptUrl: string,
  out: (line: string) => void,
): number {
  const dir = args.systemdUnits!;
  const { service, timer } = units({
    runtime: process.versions["bun"] ? "bun" : "deno",
    runtimePath: process.execPath,
    script: fileURLToPath(scriptUrl),
    config: args.config === undefined ? undefined : path.resolve(args.config),
    interval: facts.interval,
    user: args.user,
  });
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
