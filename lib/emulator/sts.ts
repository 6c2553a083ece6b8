/**
 * AWS STS in its query protocol (form-encoded parameters in, XML out): AssumeRole and GetCallerIdentity, and who
 * signed a request, read from its SigV4 credential scope or from the session AssumeRole issued, and when.
 */
import type { IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";
import { AwsError, requestId } from "./errors.ts";
import type { Instance } from "./instance.ts";
import { ROLE_DEFAULT_SECONDS, ROLE_MAX_SECONDS, ROLE_MIN_SECONDS, SIGNED_TIME_SKEW_MS } from "./limits.ts";

/** Runs one STS action for the calling account; returns its XML answer. */
export function callSts(
  emu: Instance,
  account: string,
  action: string | null,
  params: URLSearchParams,
): string {
  if (action === "AssumeRole") return assumeRole(emu, account, params);
  if (action === "GetCallerIdentity") {
    return `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::${account}:user/emulator</Arn><UserId>AIDA${account}</UserId><Account>${account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
  }
  throw new AwsError("InvalidAction", `Could not find operation ${action} for version 2011-06-15`);
}

function assumeRole(emu: Instance, account: string, params: URLSearchParams) {
  const { faults, requireExternalId, sessions, now } = emu;
  const arn = params.get("RoleArn");
  if (!arn) throw new AwsError("MissingParameter", "The request must contain the parameter RoleArn.");
  const session = params.get("RoleSessionName");
  if (!session) {
    throw new AwsError("MissingParameter", "The request must contain the parameter RoleSessionName.");
  }
  // RoleSessionName: 2-64 characters of [\w+=,.@-].
  if (!/^[\w+=,.@-]{2,64}$/.test(session)) {
    throw new AwsError(
      "ValidationError",
      `1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint`,
    );
  }
  const m = /^arn:aws:iam::(\d{12}):role\/([\w+=,.@\/-]+)$/.exec(arn);
  if (!m) throw new AwsError("ValidationError", `${arn} is invalid`);
  const duration = params.has("DurationSeconds")
    ? Number(params.get("DurationSeconds"))
    : ROLE_DEFAULT_SECONDS;
  if (!Number.isInteger(duration) || duration < ROLE_MIN_SECONDS || duration > ROLE_MAX_SECONDS) {
    throw new AwsError(
      "ValidationError",
      `1 validation error detected: Value '${
        params.get("DurationSeconds")
      }' at 'durationSeconds' failed to satisfy constraint: Member must have value between ${ROLE_MIN_SECONDS} and ${ROLE_MAX_SECONDS}`,
    );
  }
  const externalId = params.get("ExternalId");
  // AssumeRole.ExternalId: 2 to 1,224 characters of [\w+=,.@:\/-] (STS API reference, AssumeRole).
  if (externalId !== null && !/^[\w+=,.@:\/-]{2,1224}$/.test(externalId)) {
    throw new AwsError(
      "ValidationError",
      "1 validation error detected: Value at 'externalId' failed to satisfy constraint",
    );
  }
  const deniedMessage =
    `User: arn:aws:sts::${account}:assumed-role/caller is not authorized to perform: sts:AssumeRole on resource: ${arn}`;
  if (faults.denyRoles.has(arn)) throw new AwsError("AccessDenied", deniedMessage, 403);
  const wanted = requireExternalId.get(arn);
  if (wanted !== undefined && externalId !== wanted) {
    throw new AwsError("AccessDenied", deniedMessage, 403);
  }
  const target = m[1]!;
  const keyId = `ASIA${randomBytes(4).toString("hex").toUpperCase()}${target}`;
  const secret = randomBytes(20).toString("base64");
  const token = randomBytes(24).toString("base64");
  const expires = now() + duration * 1000;
  sessions.set(keyId, { account: target, secret, token, expires });
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${keyId}</AccessKeyId><SecretAccessKey>${secret}</SecretAccessKey><SessionToken>${token}</SessionToken><Expiration>${
    new Date(expires).toISOString()
  }</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA${target}:${session}</AssumedRoleId><Arn>arn:aws:sts::${target}:assumed-role/${
    m[2]
  }/${session}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

/**
 * Works out who signed the request, from the SigV4 Authorization header's credential scope, and the refusal due
 * when it was signed too far from the emulator's clock (`refused`, thrown once the call is counted); `json`: a
 * CloudWatch request (AWS JSON 1.0), else STS (query).
 */
export function caller(emu: Instance, req: IncomingMessage, json: boolean) {
  const { sessions, now } = emu;
  const auth = req.headers["authorization"];
  if (typeof auth !== "string" || !auth.startsWith("AWS4-HMAC-SHA256 ")) {
    throw new AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", 403);
  }
  const m = /Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  if (!m) {
    throw new AwsError(
      "IncompleteSignature",
      "The request signature does not conform to AWS standards.",
      403,
    );
  }
  const [, keyId, , region, service] = m as unknown as [string, string, string, string, string];
  // Said once the call is counted: a request refused for its signing time was received all the same.
  const refused = emu.checkSignedTime ? signedTimeRefusal(req, now(), json) : undefined;
  if (keyId.startsWith("ASIA")) {
    const s = sessions.get(keyId);
    if (!s || req.headers["x-amz-security-token"] !== s.token) {
      throw new AwsError(
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
      );
    }
    if (now() >= s.expires) {
      throw new AwsError("ExpiredToken", "The security token included in the request is expired", 403);
    }
    return { account: s.account, region, service, refused };
  }
  return { account: /(\d{12})$/.exec(keyId)?.[1] ?? "000000000000", region, service, refused };
}

/**
 * The refusal of a request whose signed time is more than 15 minutes from `now` (IAM User Guide, AWS Signature Version
 * 4 for API requests), with AWS's code and message: InvalidSignatureException (HTTP 400) in CloudWatch's JSON
 * protocol, SignatureDoesNotMatch (HTTP 403) in STS's query protocol. The AWS SDK takes both codes for clock
 * skew: it sets its clock by the answer's Date header and signs the next attempt again.
 */
function signedTimeRefusal(req: IncomingMessage, now: number, json: boolean): AwsError | undefined {
  const signed = signedAt(req);
  const [early, late] = [now - SIGNED_TIME_SKEW_MS, now + SIGNED_TIME_SKEW_MS];
  if (signed >= early && signed <= late) return undefined;
  const message = signed < early
    ? `Signature expired: ${amzDate(signed)} is now earlier than ${amzDate(early)} (${
      amzDate(now)
    } - 15 min.)`
    : `Signature not yet current: ${amzDate(signed)} is still later than ${amzDate(late)} (${
      amzDate(now)
    } + 15 min.)`;
  return json
    ? new AwsError("InvalidSignatureException", message, 400)
    : new AwsError("SignatureDoesNotMatch", message, 403);
}

/** When a request was signed: its X-Amz-Date (ISO 8601 basic format), else its Date header (SigV4). */
function signedAt(req: IncomingMessage): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(req.headers["x-amz-date"] ?? ""));
  const t = m
    ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
    : Date.parse(String(req.headers["date"] ?? ""));
  if (Number.isNaN(t)) {
    throw new AwsError(
      "IncompleteSignature",
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      403,
    );
  }
  return t;
}

/** A time as SigV4 writes it: 20261207T103000Z. */
const amzDate = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
