/**
 * The errors a run reports, each in one line, and how AWS's answers are told apart. Plain code without the
 * SDK, so that every stage can classify an error and the entry script can answer --help without loading it.
 */

/** A config or command-line problem: every problem at once, one line each. Exit code 2. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/** The checkpoint store is unusable or held by another run. Exit code 3. */
export class StateError extends Error {
  override name = "StateError";
}

/** The error code AWS gave (with the SDK's query-compatible code first), or the error's name. */
export function errorCode(e: unknown): string {
  if (typeof e !== "object" || e === null) return "Error";
  const x = e as { Code?: unknown; name?: unknown };
  return typeof x.Code === "string" ? x.Code : typeof x.name === "string" ? x.name : "Error";
}

/** Text on one line: line breaks and other control characters become spaces. */
// deno-lint-ignore no-control-regex -- control characters are what it takes out
export const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();

/** A count and its noun, singular where the count reads 1: "1 stream", "2 streams", "1,200 streams". */
export const plural = (n: number, noun: string, format: (n: number) => string = String) =>
  `${format(n)} ${format(n) === "1" ? noun : `${noun}s`}`;

/** Deno refused a permission the command did not grant (--allow-read, --allow-env, ...). */
export function isPermissionError(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === "NotCapable" || name === "PermissionDenied";
}

/**
 * Deno's refusal in our words: what it refused and the flag that grants it. The AWS SDK asks for sys access
 * only where HOME is not set (it looks up the user's home folder instead), so that case names both fixes.
 */
function permissionProblem(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const what = /^Requires (.*?), run again/.exec(message)?.[1] ?? message;
  const flag = flagOf(e);
  const home = flag === "--allow-sys"
    ? ", or set HOME (the AWS SDK looks up the home folder without it)"
    : "";
  return oneLine(`Deno refused ${what}: run again with ${flag ?? "the permission it names"}${home}`);
}

/** The flag that grants what Deno refused, as its message names it. */
const flagOf = (e: unknown) =>
  /run again with the (--allow-[a-z-]+) flag/.exec(e instanceof Error ? e.message : String(e))?.[1];

/** One line for an error: the call that failed (see blame), its code and message. */
export function describe(e: unknown): string {
  if (isPermissionError(e)) return permissionProblem(e);
  const call = (e as { call?: unknown })?.call;
  return typeof call === "string" ? `${call} failed: ${reason(e)}` : reason(e);
}

/** What AWS (or the connection) said: the error's code and message, on one line. */
export function reason(e: unknown): string {
  const code = errorCode(e);
  let message = oneLine(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  // The HTTP handler's own words for a request timeout name itself rather than what happened.
  const timeout = /exceeded the configured (\d+) ms requestTimeout/.exec(message);
  if (code === "TimeoutError" && timeout) message = `no answer within ${timeout[1]} ms`;
  return message && message !== code ? `${code}: ${message}` : code;
}

/**
 * An error in a few words, for the run's summary line: the call that failed and AWS's code, such as
 * `AssumeRole: AccessDenied`; the whole line is in the log.
 */
export function briefly(e: unknown): string {
  if (isPermissionError(e)) return `Deno refused ${flagOf(e) ?? "a permission"}`;
  const call = (e as { call?: unknown })?.call;
  const code = e instanceof WriteInDoubt ? `${errorCode(e.cause)}, the answer lost` : errorCode(e);
  return typeof call === "string" ? `${call.split(" ")[0]}: ${code}` : code;
}

/**
 * Marks an error with the AWS call it came from and as whom, such as `GetMetricData as role "..."`, so that
 * its line says which call and which credentials failed. The first mark stays: AssumeRole's, inside a
 * CloudWatch call that needed its credentials, names the cause.
 */
export function blame<E>(e: E, call: string): E {
  if (typeof e === "object" && e !== null && !("call" in e)) {
    Object.defineProperty(e, "call", { value: call, enumerable: false });
  }
  return e;
}

/**
 * PutMetricData refused the data itself (a value, a timestamp, a size): sending it again cannot succeed,
 * unlike throttling, server errors or expired credentials.
 */
export function isDataRefused(e: unknown): boolean {
  return ["InvalidParameterValue", "InvalidParameterCombination", "MissingParameter", "RequestEntityTooLarge"]
    .includes(errorCode(e)) || status(e) === 413;
}

/**
 * A PutMetricData whose outcome is unknown: it was sent, and the answer was lost (a reset connection, a
 * timeout, a server error). CloudWatch may have applied it, so it must not be sent again blindly: the step
 * stays in doubt until the destination is read.
 */
export class WriteInDoubt extends Error {
  override name = "WriteInDoubt";
  /** No answer came in time, as opposed to an answer that was an error or a connection that broke. */
  readonly timedOut: boolean;
  constructor(override readonly cause: unknown) {
    super(`the answer to a PutMetricData was lost (${describe(cause)}); it may have been applied`);
    const c = cause as { name?: unknown; code?: unknown };
    this.timedOut = c?.name === "AbortError" || c?.code === "ETIMEDOUT";
  }
}

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** CloudWatch refused the call for its rate (HTTP 400 Throttling): it did nothing with it. */
export const isThrottled = (e: unknown) => ["Throttling", "ThrottlingException"].includes(errorCode(e));

/** Errors of a connection that was never made: the request cannot have reached CloudWatch. */
const NOT_CONNECTED = [
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
];

/** The request never left: no connection was made, so CloudWatch cannot have applied it. */
export function neverSent(e: unknown): boolean {
  const x = e as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof x?.code === "string" && NOT_CONNECTED.includes(x.code)) return true;
  return x?.name === "TimeoutError" && String(x.message).includes("did not establish a connection");
}

/** No credentials to sign with (none configured, or a profile that cannot be read): asking again cannot help. */
export const isCredentialsError = (e: unknown) =>
  (e as { name?: unknown })?.name === "CredentialsProviderError";

/**
 * A call that failed before its request was made: Deno refused a permission the SDK needed on the way (to read
 * a file, to look up the home folder, to connect), or there were no credentials to sign it with. It never left.
 */
export const failedBeforeSending = (e: unknown) => isPermissionError(e) || isCredentialsError(e);

/** CloudWatch answered with a refusal (HTTP 4xx): it did not apply the call. */
export function isRefused(e: unknown): boolean {
  const s = status(e);
  return s !== undefined && s >= 400 && s < 500;
}

/** A refusal of the request as a whole (its namespace), which no smaller batch would escape. */
export function isRequestRefused(e: unknown): boolean {
  return isDataRefused(e) && /parameter Namespace\b/.test(e instanceof Error ? e.message : "");
}
