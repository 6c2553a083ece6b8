/**
 * Logs: one line per event on stderr, as text or JSON, with the time, the level, the message, and the account
 * and region where they apply. When stderr is the journal (systemd says so in JOURNAL_STREAM), each line
 * starts with its priority instead of the time, which the journal keeps itself. No line ever carries a
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

/** Whether stderr is the journal: JOURNAL_STREAM names its device and inode (systemd.exec(5)). */
export function toJournal(env: Record<string, string | undefined>): boolean {
  const stream = env["JOURNAL_STREAM"];
  if (!stream) return false;
  try {
    const st = fs.fstatSync(2);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

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
  const emit = (level: LogLevel) => (message: string, fields: Fields = {}) => {
    if (LOG_LEVELS.indexOf(level) > rank) return;
    const text = oneLine(message);
    const extra = Object.entries(fields).filter(([, v]) => v !== undefined);
    const line = o.format === "json"
      ? JSON.stringify({
        ...(journal ? {} : { time: new Date(o.now()).toISOString() }),
        level,
        message: text,
        ...Object.fromEntries(extra),
      })
      : `${journal ? "" : `${new Date(o.now()).toISOString()} `}${level.toUpperCase()} ${text}${
        where(text, fields)
      }`;
    o.write(clean(journal ? `<${PRIORITY[level]}>${line}` : line));
  };
  return {
    error: emit("error"),
    warn: emit("warn"),
    info: emit("info"),
    debug: emit("debug"),
    enabled: (level) => LOG_LEVELS.indexOf(level) <= rank,
    secret: (value) => void (value.length >= 8 && secrets.add(value)),
    clean,
  };
}
