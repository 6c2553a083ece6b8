/**
 * The AWS error every operation throws and both wire protocols answer with (its code, HTTP status and, for
 * CloudWatch, the Smithy shape name), and the request id every answer carries.
 */
import { randomBytes } from "node:crypto";

export class AwsError extends Error {
  constructor(readonly code: string, message: string, readonly status = 400, readonly shape?: string) {
    super(message);
  }
}
export const invalid = (message: string) =>
  new AwsError("InvalidParameterValue", message, 400, "InvalidParameterValueException");
export const combination = (message: string) =>
  new AwsError("InvalidParameterCombination", message, 400, "InvalidParameterCombinationException");
export const missing = (name: string) =>
  new AwsError(
    "MissingParameter",
    `The parameter ${name} is required.`,
    400,
    "MissingRequiredParameterException",
  );

/** The answer to a call over a quota or throttled by a fault: HTTP 400, as CloudWatch answers it. */
export const throttling = () => new AwsError("Throttling", "Rate exceeded", 400);

export function requestId() {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
