/**
 * Logs: one line per event on stderr, as text or JSON, with the time, the level, the message, and the account
 * and region where they apply. When stderr is the journal (systemd says so in JOURNAL_STREAM), each line
 * starts with its priority instead of the time, which the journal keeps itself. Config problems, which name
 * their place in the file, are printed as compilers print theirs (see problem). No line ever carries a
 * credential: known secrets are masked, and so is anything shaped like an AWS access key id.
 */
import * as fs from "node:fs";
import { LOG_LEVELS, type LogLevel } from "./cli.ts";
import { oneLine } from "./errors.ts";

export interface Fields {
  account?: string;
  region?: string;
  [name: string]: string | number | undefined;
}

export interface Log {
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  /** Whether lines of this level are written: to skip building a costly debug message. */
  enabled(level: LogLevel): boolean;
  /** A value never to print, such as a secret access key an AssumeRole handed out. */
  secret(value: string): void;
  /** Masks secrets in a line that is not a log line (stdout). */
  clean(line: string): string;
  /**
   * A config or usage problem, an error. One that starts with its place in a file (`file:line:col: message`)
   * is printed as compilers and linters print theirs: in text with nothing before it but the journal's
   * priority, where editors' and CI's problem matchers look; in JSON with `file`, `line` and `col` as fields.
   */
  problem(message: string): void;
  /**
   * Whether stdout is the journal stream stderr is, as systemd connects a service's two by default: a line
   * meant for both reaches the journal once if written to one.
   */
  readonly stdoutInJournal: boolean;
}

/** syslog priorities, as journald reads them from a line's "<N>" prefix. */
const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
/** AWS access key ids: long-term (AKIA) and temporary (ASIA). */
const ACCESS_KEY_ID = /\b(AKIA|ASIA)[A-Z0-9]{12,}\b/g;
/** Values of these variables are credentials. */
const SECRET_VARIABLES = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

export interface LogOptions {
  format: "text" | "json";
  level: LogLevel;
  env: Record<string, string | undefined>;
  now: () => number;
  write: (line: string) => void;
}

/**
 * Whether a file descriptor (stderr unless told) is the journal: JOURNAL_STREAM names the device and inode of
 * the service's stderr, or of its stdout where only that is connected (systemd.exec(5)).
 */
export function toJournal(env: Record<string, string | undefined>, fd = 2): boolean {
  const stream = env["JOURNAL_STREAM"];
  if (!stream) return false;
  try {
    const st = fs.fstatSync(fd);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** A problem's position where its line starts with one, as config problems do: `file:line:col: message`. */
const POSITION = /^(.+?):(\d+):(\d+): /;

/**
 * A text line's account-region, where the line belongs to one and its message does not name it already: in
 * text, lines of several account-regions in a row would otherwise read alike.
 */
function where(text: string, { account, region }: Fields): string {
  if (account === undefined || region === undefined) return "";
  if (text.includes(`"${account}"`) && text.includes(region)) return "";
  return ` (account "${account}" in ${region})`;
}

export function logger(o: LogOptions): Log {
  const secrets = new Set(
    SECRET_VARIABLES.map((v) => o.env[v]).filter((v): v is string => !!v && v.length >= 8),
  );
  const journal = toJournal(o.env);
  const rank = LOG_LEVELS.indexOf(o.level);
  const clean = (line: string) => {
    let out = line.replace(ACCESS_KEY_ID, (_, kind: string) => `${kind}****`);
    for (const s of secrets) if (out.includes(s)) out = out.replaceAll(s, "****");
    return out;
  };
  const json = (level: LogLevel, text: string, fields: Fields) =>
    JSON.stringify({
      ...(journal ? {} : { time: new Date(o.now()).toISOString() }),
      level,
      message: text,
      ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    });
  const write = (level: LogLevel, line: string) =>
    o.write(clean(journal ? `<${PRIORITY[level]}>${line}` : line));
  const emit = (level: LogLevel) => (message: string, fields: Fields = {}) => {
    if (LOG_LEVELS.indexOf(level) > rank) return;
    const text = oneLine(message);
    write(
      level,
      o.format === "json"
        ? json(level, text, fields)
        : `${journal ? "" : `${new Date(o.now()).toISOString()} `}${level.toUpperCase()} ${text}${
          where(text, fields)
        }`,
    );
  };
  return {
    error: emit("error"),
    warn: emit("warn"),
    info: emit("info"),
    debug: emit("debug"),
    enabled: (level) => LOG_LEVELS.indexOf(level) <= rank,
    secret: (value) => void (value.length >= 8 && secrets.add(value)),
    clean,
    problem(message) {
      const text = oneLine(message);
      const at = POSITION.exec(text);
      if (at === null) return emit("error")(text);
      const place = { file: at[1], line: Number(at[2]), col: Number(at[3]) };
      write(
        "error",
        o.format === "text" ? text : json("error", text, place),
      );
    },
    stdoutInJournal: journal && toJournal(o.env, 1),
  };
}
