/**
 * lib/aws.ts against the emulator: roles assumed once per role, refreshed before they expire; reads sent again,
 * writes only where they cannot have been applied; every request that left counted, and no write sent twice.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { connector, type Datum } from "../lib/aws.ts";
import { describe, errorCode, isDataRefused, StateError, WriteInDoubt } from "../lib/errors.ts";
import { type Emulator, startEmulator } from "../lib/emulator.ts";

/** Runs f with default credentials that act as the destination account, pointed at the emulator. */
async function asDestination(url: string, f: () => Promise<void>) {
  const env = { AWS_ENDPOINT_URL: url, AWS_ACCESS_KEY_ID: "AKIA999999999999", AWS_SECRET_ACCESS_KEY: "x" };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await f();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test("connector() assumes a role once for all its regions and again only shortly before it expires", async () => {
  const clock = { now: Date.now() };
  const emu = await startEmulator({
    now: () => clock.now,
    requireExternalId: { "arn:aws:iam::111111111111:role/r": "ext-1" },
  });
  try {
    await asDestination(emu.url, async () => {
      const cloudWatch = connector({ stsRegion: "eu-west-1", now: () => clock.now });
      const role = { roleArn: "arn:aws:iam::111111111111:role/r", externalId: "ext-1" };
      const list = (region: string) =>
        cloudWatch(region, role).listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] });
      await Promise.all([list("eu-west-1"), list("us-east-1"), list("eu-west-1")]);
      const assumed = () => emu.counts()["999999999999"]?.["eu-west-1"]?.calls["AssumeRole"];
      assert.equal(assumed(), 1);
      clock.now += 54 * 60_000; // the session lasts an hour; six minutes are left
      await list("eu-west-1");
      assert.equal(assumed(), 1);
      clock.now += 2 * 60_000; // four minutes left: inside the refresh margin
      await list("eu-west-1");
      assert.equal(assumed(), 2);
      assert.deepEqual(Object.keys(emu.counts()["111111111111"] ?? {}).sort(), ["eu-west-1", "us-east-1"]);
    });
  } finally {
    await emu.stop();
  }
});

test("connector() does not keep a failed AssumeRole: the next call asks again", async () => {
  const role = "arn:aws:iam::111111111111:role/r";
  const emu = await startEmulator({ denyRoles: [role] });
  try {
    await asDestination(emu.url, async () => {
      const client = connector({ stsRegion: "eu-west-1" })("eu-west-1", {
        roleArn: role,
        externalId: undefined,
      });
      const list = () => client.listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] });
      await assert.rejects(
        list(),
        (e: unknown) =>
          errorCode(e) === "AccessDenied" &&
          describe(e).startsWith(`AssumeRole of "${role}" failed: AccessDenied: User: `),
      );
      emu.faults.denyRoles.clear();
      await list();
    });
  } finally {
    await emu.stop();
  }
});

test("isDataRefused() tells refusals of the data from failures worth retrying", () => {
  const err = (name: string, Code?: string, status = 400) =>
    Object.assign(new Error("x"), { name, Code, $metadata: { httpStatusCode: status } });
  assert.equal(isDataRefused(err("InvalidParameterValueException", "InvalidParameterValue")), true);
  assert.equal(
    isDataRefused(err("InvalidParameterCombinationException", "InvalidParameterCombination")),
    true,
  );
  assert.equal(isDataRefused(err("MissingRequiredParameterException", "MissingParameter")), true);
  assert.equal(isDataRefused(err("CloudWatchServiceException", "RequestEntityTooLarge", 413)), true);
  assert.equal(isDataRefused(err("Throttling", "Throttling")), false);
  assert.equal(isDataRefused(err("InternalFailure", "InternalFailure", 500)), false);
  assert.equal(isDataRefused(err("ExpiredToken", "ExpiredToken", 403)), false);
});

test("connector() gives up on a read that is not answered in time after about two request timeouts", async () => {
  const emu = await startEmulator({ latencyMs: 2_000 });
  try {
    await asDestination(emu.url, async () => {
      const client = connector({ stsRegion: "eu-west-1", requestTimeoutMs: 150 })("eu-west-1", undefined);
      const started = Date.now();
      await assert.rejects(
        client.listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] }),
        (
          e: unknown,
        ) => (assert.match(
          describe(e),
          /^ListMetrics as the default credentials \(2 attempts\) failed: TimeoutError: no answer within 150 ms$/,
        ),
          true),
      );
      // Two attempts of 150 ms and a backoff, where one answer alone would take 2 s and six attempts 1 s.
      const took = Date.now() - started;
      assert.ok(took >= 300 && took < 1_500, `${took} ms`);
    });
  } finally {
    await emu.stop();
  }
});

const datum = (t: number): Datum => ({
  MetricName: "m",
  Dimensions: [{ Name: "d", Value: "v" }],
  Timestamp: t,
  Value: 1,
  StorageResolution: 60,
});

/** The destination's PutMetricData attempts, answered or not, and those it applied. */
const puts = (emu: Emulator) => {
  const c = emu.counts()["999999999999"]?.["eu-west-1"];
  return { calls: c?.calls["PutMetricData"] ?? 0, applied: c?.billed["PutMetricData"] ?? 0 };
};

const quick = { stsRegion: "eu-west-1", sleep: () => Promise.resolve() };

test("putMetricData() sends a throttled write again, and it is applied once", async () => {
  const emu = await startEmulator({ throttleRate: 0.5, random: sequence([0.1, 0.1, 0.9]) });
  try {
    await asDestination(emu.url, async () => {
      await connector(quick)("eu-west-1", undefined).putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]);
      assert.deepEqual(puts(emu), { calls: 3, applied: 1 });
    });
  } finally {
    await emu.stop();
  }
});

test("a read throttled five times is sent again, each time after a backoff and at the pace, and is answered", async () => {
  const emu = await startEmulator({ throttleRate: 0.5, random: sequence(Array(5).fill(0.1)) });
  try {
    await asDestination(emu.url, async () => {
      const naps: number[] = [];
      const api = connector({ ...quick, sleep: (ms) => (naps.push(ms), Promise.resolve()) })(
        "eu-west-1",
        undefined,
      );
      const page = await api.listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] });
      assert.deepEqual(page, { metrics: [], nextToken: undefined });
      assert.equal(emu.counts()["999999999999"]?.["eu-west-1"]?.calls["ListMetrics"], 6);
      assert.equal(naps.length, 5);
    });
  } finally {
    await emu.stop();
  }
});

test("a read that keeps being throttled fails after six attempts, named with its call", async () => {
  const emu = await startEmulator({ throttleRate: 1 });
  try {
    await asDestination(emu.url, async () => {
      const api = connector(quick)("eu-west-1", undefined);
      await assert.rejects(
        api.getMetricData({ queries: [], start: 0, end: 60, maxDatapoints: 100_800 }),
        (e: unknown) => (assert.match(
          describe(e),
          /^GetMetricData as the default credentials \(6 attempts\) failed: Throttling: Rate exceeded$/,
        ),
          true),
      );
    });
  } finally {
    await emu.stop();
  }
});

test("putMetricData() does not send again a write whose answer was an error: it may have been applied", async () => {
  const emu = await startEmulator({ putErrorRate: 1 });
  try {
    await asDestination(emu.url, async () => {
      await assert.rejects(
        connector(quick)("eu-west-1", undefined).putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]),
        (
          e: unknown,
        ) => (assert.ok(e instanceof WriteInDoubt),
          assert.match(
            describe(e),
            /^PutMetricData as the default credentials failed: WriteInDoubt: .*InternalFailure/,
          ),
          true),
      );
      assert.equal(puts(emu).calls, 1);
    });
  } finally {
    await emu.stop();
  }
});

test("putMetricData() does not send again a write whose answer came too late", async () => {
  const emu = await startEmulator({ putReplyDelayMs: 1_000 });
  try {
    await asDestination(emu.url, async () => {
      const api = connector({ ...quick, requestTimeoutMs: 200 })("eu-west-1", undefined);
      await assert.rejects(api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]), WriteInDoubt);
      assert.deepEqual(puts(emu), { calls: 1, applied: 1 });
    });
  } finally {
    await emu.stop();
  }
});

test("putMetricData() tries again where no connection was made, and then reports the refusal", async () => {
  await asDestination("http://127.0.0.1:1", async () => {
    const api = connector(quick)("eu-west-1", undefined);
    await assert.rejects(
      api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]),
      (
        e: unknown,
      ) => (assert.ok(!(e instanceof WriteInDoubt)), assert.match(describe(e), /ECONNREFUSED/), true),
    );
  });
});

test("putMetricData() sends nothing once the lease would end before the answer is due", async () => {
  const emu = await startEmulator();
  try {
    await asDestination(emu.url, async () => {
      const api = connector({ ...quick, requestTimeoutMs: 1_000, now: () => 50_000 })("eu-west-1", undefined);
      const write = (leaseEnds: number) =>
        api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)], leaseEnds);
      await assert.rejects(write(50_900), StateError);
      assert.equal(puts(emu).calls, 0);
      await write(51_100);
      assert.deepEqual(puts(emu), { calls: 1, applied: 1 });
    });
  } finally {
    await emu.stop();
  }
});

/** A random source that gives these numbers in turn, then 0.99. */
const sequence = (xs: number[]) => () => xs.shift() ?? 0.99;

test("putMetricData() sends a write once when its connection drops after the write was applied, after reads kept one alive", async () => {
  const emu = await startEmulator({ putAppliedResetRate: 1 });
  try {
    await asDestination(emu.url, async () => {
      const api = connector(quick)("eu-west-1", undefined);
      // A read leaves a connection kept alive: a runtime that sent the write on it could send it again unseen.
      await api.listMetrics({ Namespace: "Fwd", MetricName: "m", Dimensions: [] });
      await assert.rejects(api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]), WriteInDoubt);
      assert.deepEqual(puts(emu), { calls: 1, applied: 1 });
    });
  } finally {
    await emu.stop();
  }
});

test("connector() keeps reads on one kept-alive connection and sends every write on a connection of its own", async () => {
  // A stand-in for CloudWatch that answers every call with an empty JSON object and notes its connection.
  const seen: { op: string; connection: number; header: string | undefined }[] = [];
  let connections = 0;
  const ids = new WeakMap<object, number>();
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const op = String(req.headers["x-amz-target"]).split(".")[1] ?? "";
      seen.push({ op, connection: ids.get(req.socket)!, header: req.headers["connection"] });
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
      res.end("{}");
    });
  });
  server.on("connection", (socket) => ids.set(socket, ++connections));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await asDestination(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, async () => {
      const api = connector(quick)("eu-west-1", undefined);
      const list = () => api.listMetrics({ Namespace: "Fwd", MetricName: "m", Dimensions: [] });
      const put = () => api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]);
      for (const call of [list, list, put, list, put, put, list]) await call();
    });
  } finally {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  const reads = seen.filter((r) => r.op === "ListMetrics");
  const writes = seen.filter((r) => r.op === "PutMetricData");
  assert.equal(reads.length, 4);
  assert.deepEqual(new Set(reads.map((r) => r.connection)).size, 1, "the reads share one connection");
  assert.equal(writes.length, 3);
  for (const w of writes) {
    assert.equal(
      seen.filter((r) => r.connection === w.connection).length,
      1,
      "a write has its connection alone",
    );
    assert.equal(w.header, "close");
  }
});

test("connector() tells onSent of every request that left, throttled ones named, and of none that never left", async () => {
  // The emulator throttles at a draw below the rate, one draw per CloudWatch call (STS is not throttled): the
  // listing below is throttled twice and answered, then the write throttled twice and applied.
  const emu = await startEmulator({ throttleRate: 0.5, random: sequence([0.1, 0.1, 0.9, 0.1, 0.1, 0.9]) });
  const sent: string[] = [];
  const onSent = (op: string, throttled: boolean) => void sent.push(throttled ? `${op} throttled` : op);
  try {
    await asDestination(emu.url, async () => {
      const cloudWatch = connector({ ...quick, onSent });
      const role = { roleArn: "arn:aws:iam::111111111111:role/r", externalId: undefined };
      await cloudWatch("eu-west-1", role).listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] });
      await cloudWatch("eu-west-1", undefined).putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]);
      assert.deepEqual(sent, [
        "AssumeRole",
        "ListMetrics throttled",
        "ListMetrics throttled",
        "ListMetrics",
        "PutMetricData throttled",
        "PutMetricData throttled",
        "PutMetricData",
      ]);
      const calls = (account: string) => emu.counts()[account]?.["eu-west-1"]?.calls;
      assert.deepEqual(calls("111111111111"), { ListMetrics: 3 });
      assert.deepEqual(calls("999999999999"), { AssumeRole: 1, PutMetricData: 3 });
      // Held back by the lease's fence: nothing left.
      const fenced = connector({ ...quick, onSent, now: () => 50_000 })("eu-west-1", undefined);
      await assert.rejects(fenced.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)], 50_000), StateError);
    });
    // No connection made: nothing left either, though each attempt reached the HTTP client.
    await asDestination("http://127.0.0.1:1", async () => {
      const api = connector({ ...quick, onSent })("eu-west-1", undefined);
      const refused = (e: unknown) => /ECONNREFUSED/.test(describe(e));
      await assert.rejects(api.putMetricData("Fwd", [datum(Date.now() / 1000 - 60)]), refused);
      await assert.rejects(api.listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] }), refused);
    });
    assert.equal(sent.length, 7, sent.join(", "));
  } finally {
    await emu.stop();
  }
});
