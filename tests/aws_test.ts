/** lib/aws.ts against the emulator: roles assumed once per role, refreshed before they expire. */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connector } from "../lib/aws.ts";
import { describe, errorCode, isDataRefused } from "../lib/errors.ts";
import { startEmulator } from "../lib/emulator.ts";

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
        (e: unknown) => errorCode(e) === "AccessDenied" && describe(e).startsWith("AccessDenied: User: "),
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

test("connector() gives up on a call that is not answered in time, retries it, and reports a timeout", async () => {
  const emu = await startEmulator({ latencyMs: 2_000 });
  try {
    await asDestination(emu.url, async () => {
      const client = connector({ stsRegion: "eu-west-1", requestTimeoutMs: 100 })("eu-west-1", undefined);
      const started = Date.now();
      await assert.rejects(
        client.listMetrics({ Namespace: "X", MetricName: "m", Dimensions: [] }),
        (e: unknown) => {
          assert.match(describe(e), /^TimeoutError/);
          assert.equal((e as { $metadata?: { attempts?: number } }).$metadata?.attempts, 6);
          return true;
        },
      );
      // Six attempts of 100 ms with backoff between them, where one answer alone would take 2 s.
      assert.ok(Date.now() - started < 8_000);
    });
  } finally {
    await emu.stop();
  }
});
