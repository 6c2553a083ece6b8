/**
 * The emulator's HTTP server and its two wire protocols: CloudWatch's AWS JSON 1.0 (the operation in
 * X-Amz-Target, errors as JSON with an x-amzn-query-error header) and STS's query protocol (form-encoded
 * parameters, XML answers and errors). Requests under /_emulator/ go to the control endpoints. Every answer is
 * dated by the emulator's clock, from which the AWS SDK corrects its own.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { callCloudWatch } from "./cloudwatch.ts";
import { AwsError, requestId, throttling } from "./errors.ts";
import { ConnectionReset, control, count, injectFaults, loseAnswer } from "./faults.ts";
import type { Instance } from "./instance.ts";
import { PUT_MAX_BYTES } from "./limits.ts";
import { isObject } from "./requests.ts";
import { caller, callSts } from "./sts.ts";

type Caller = ReturnType<typeof caller>;

/** Serves an emulator on 127.0.0.1 (port 0: any free port); resolves with the port and a way to stop it. */
export function listen(emu: Instance, port: number): Promise<{ port: number; stop: () => Promise<void> }> {
  const server = createServer((req, res) => {
    dated(emu, res);
    handle(emu, req, res).catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        stop: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

async function handle(emu: Instance, req: IncomingMessage, res: ServerResponse) {
  const { faults } = emu;
  let raw = await body(req);
  const url = req.url ?? "/";
  if (url.startsWith("/_emulator/")) return control(emu, req.method ?? "GET", url, raw, res);
  // Latency is spent half before the call is processed and half after, as on a network: a client that
  // dies while waiting may find its call applied.
  await sleep(faults.latencyMs / 2);
  const reply = (status: number, headers: Record<string, string>, body: string) =>
    sleep(faults.latencyMs / 2).then(() => {
      dated(emu, res);
      res.writeHead(status, headers);
      res.end(body);
    });
  const target = String(req.headers["x-amz-target"] ?? "");
  const isCloudWatch = target.startsWith("GraniteServiceVersion20100801.");
  try {
    if (req.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
    const who = caller(emu, req, isCloudWatch);
    if (isCloudWatch) {
      const out = await jsonCall(emu, who, target.slice(target.indexOf(".") + 1), raw);
      return reply(
        200,
        { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": requestId() },
        JSON.stringify(out),
      );
    }
    if (who.service !== "sts") {
      throw new AwsError("UnknownOperationException", "The request names no known service or operation.");
    }
    return reply(200, { "content-type": "text/xml" }, queryCall(emu, who, raw));
  } catch (e) {
    // No answer at all, as when a connection drops: the client sees a reset and cannot know the call's fate.
    if (e instanceof ConnectionReset) return sleep(faults.latencyMs / 2).then(() => req.socket.destroy());
    const err = e instanceof AwsError ? e : new AwsError("InternalFailure", String(e), 500);
    return isCloudWatch ? reply(...jsonError(err)) : reply(...xmlError(err));
  }
}

/**
 * Dates an answer by the emulator's clock, in the Date header as HTTP writes it (RFC 7231, IMF-fixdate), in
 * place of the host's that node:http would write: CloudWatch's clock is what a client learns its skew from.
 */
function dated(emu: Instance, res: ServerResponse) {
  res.sendDate = false;
  res.setHeader("date", new Date(emu.now()).toUTCString());
}

/** The body of a request; read with events, which cost less than an async iterator in both runtimes. */
function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * A CloudWatch call in AWS JSON 1.0: counted, held to its quota, exposed to the faults set, then run; returns
 * its answer.
 */
async function jsonCall(emu: Instance, who: Caller, op: string, raw: Buffer) {
  const { faults } = emu;
  if (op === "PutMetricData" && raw.length > PUT_MAX_BYTES) {
    throw new AwsError(
      "RequestEntityTooLarge",
      `Request size ${raw.length} exceeded ${PUT_MAX_BYTES} bytes`,
      413,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8") || "{}");
  } catch {
    throw new AwsError("SerializationException", "The request body is not valid JSON");
  }
  if (!isObject(body)) {
    throw new AwsError("SerializationException", "The request body must be a JSON object");
  }
  count(emu.counts, who.account, who.region, "calls", op);
  if (who.refused) throw who.refused;
  if (emu.quotas?.admit(who.account, who.region, op) === false) {
    count(emu.counts, who.account, who.region, "throttled", op);
    throw throttling();
  }
  injectFaults(faults, emu.random, op);
  const { answer, billed } = callCloudWatch(emu, who.account, who.region, op, body);
  count(emu.counts, who.account, who.region, "billed", op, billed);
  if (op === "PutMetricData") {
    // A write applied whose answer comes late, or never: the client never learns that it succeeded.
    await sleep(faults.putReplyDelayMs);
    loseAnswer(faults, emu.random);
  }
  return answer;
}

/** An STS call in the query protocol: counted as received, run, then billed; returns its XML answer. */
function queryCall(emu: Instance, who: Caller, raw: Buffer) {
  const params = new URLSearchParams(raw.toString("utf8"));
  const action = params.get("Action");
  count(emu.counts, who.account, who.region, "calls", action ?? "");
  if (who.refused) throw who.refused;
  const xml = callSts(emu, who.account, action, params);
  count(emu.counts, who.account, who.region, "billed", action ?? "");
  return xml;
}

type Reply = [status: number, headers: Record<string, string>, body: string];

function jsonError(err: AwsError): Reply {
  const type = err.status >= 500 ? "Receiver" : "Sender";
  const headers = {
    "content-type": "application/x-amz-json-1.0",
    "x-amzn-query-error": `${err.code};${type}`,
    "x-amzn-requestid": requestId(),
  };
  return [
    err.status,
    headers,
    JSON.stringify({
      __type: err.shape ? `com.amazonaws.cloudwatch#${err.shape}` : err.code,
      message: err.message,
    }),
  ];
}

function xmlError(err: AwsError): Reply {
  const type = err.status >= 500 ? "Receiver" : "Sender";
  return [
    err.status,
    { "content-type": "text/xml" },
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${err.code}</Code><Message>${
      escapeXml(err.message)
    }</Message></Error><RequestId>${requestId()}</RequestId></ErrorResponse>`,
  ];
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

function escapeXml(s: string) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
