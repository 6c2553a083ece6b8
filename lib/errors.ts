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

/** One line for an error: its code and message. */
export function describe(e: unknown): string {
  const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
  const code = errorCode(e);
  return message && message !== code ? `${code}: ${message}` : code;
}

/**
 * PutMetricData refused the data itself (a value, a timestamp, a size): sending it again cannot succeed,
 * unlike throttling, server errors or expired credentials.
 */
export function isDataRefused(e: unknown): boolean {
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return ["InvalidParameterValue", "InvalidParameterCombination", "MissingParameter", "RequestEntityTooLarge"]
    .includes(errorCode(e)) || status === 413;
}
