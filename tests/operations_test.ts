/**
 * Running it as a service: log lines (text, JSON, the journal's priorities), credentials kept out of them,
 * warnings that name config forwarding nothing, the progress line, and loop mode on an injected clock.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT } from "../forward.ts";
import type { CloudWatchApi, Datum, ListMetricsInput, Role } from "../lib/aws.ts";
import { logger } from "../lib/log.ts";
import { heapKeeper } from "../lib/heap.ts";
import { parseArgs } from "../lib/cli.ts";
import { loadConfig } from "../lib/config.ts";
import { every, progressLine, startRun } from "../lib/run.ts";
import { BUNDLED_ENV, fakeFleet, iso, NOW, run } from "./fakes.ts";

const lines = () => {
  const written: string[] = [];
  return { written, write: (l: string) => void written.push(l) };
};

test("log lines: text with the time, level and account-region, JSON with the account and region as fields, levels below the set one left out", () => {
  const text = lines();
  const log = logger({ format: "text", level: "info", env: {}, now: () => NOW, write: text.write });
  log.info("Forwarded 6 datums", { account: "production", region: "eu-west-1" });
  log.info('Cannot forward account "production" in eu-west-1: denied', {
    account: "production",
    region: "eu-west-1",
  });
  log.debug("left out at the info level");
  log.error("Cannot forward:\nAccessDenied");
  assert.deepEqual(text.written, [
    // A line of an account-region names it, once.
    `${iso(NOW)} INFO Forwarded 6 datums (account "production" in eu-west-1)`,
    `${iso(NOW)} INFO Cannot forward account "production" in eu-west-1: denied`,
    `${iso(NOW)} ERROR Cannot forward: AccessDenied`,
  ]);
  assert.equal(log.enabled("debug"), false);
  assert.equal(log.enabled("warn"), true);

  const json = lines();
  const jlog = logger({ format: "json", level: "debug", env: {}, now: () => NOW, write: json.write });
  jlog.warn("Cannot be sure of a write", { account: "test", region: "us-east-1", role: undefined });
  jlog.debug("Kept the listing");
  assert.deepEqual(json.written.map((l) => JSON.parse(l)), [
    {
      time: iso(NOW),
      level: "warn",
      message: "Cannot be sure of a write",
      account: "test",
      region: "us-east-1",
    },
    { time: iso(NOW), level: "debug", message: "Kept the listing" },
  ]);
});

test("log lines to the journal start with their syslog priority and leave the time to it; elsewhere they keep it", () => {
  const st = fs.fstatSync(2);
  for (
    const [stream, format, expected] of [
      [`${st.dev}:${st.ino}`, "text", ["<3>ERROR failed", "<4>WARN odd", "<6>INFO done"]],
      [`${st.dev}:${st.ino}`, "json", [
        '<3>{"level":"error","message":"failed"}',
        '<4>{"level":"warn","message":"odd"}',
        '<6>{"level":"info","message":"done"}',
      ]],
      // A service whose stderr was sent elsewhere inherits the variable; its lines keep their time.
      ["1:2", "text", [`${iso(NOW)} ERROR failed`, `${iso(NOW)} WARN odd`, `${iso(NOW)} INFO done`]],
    ] as const
  ) {
    const out = lines();
    const log = logger({
      format,
      level: "info",
      env: { JOURNAL_STREAM: stream },
      now: () => NOW,
      write: out.write,
    });
    log.error("failed");
    log.warn("odd");
    log.info("done");
    assert.deepEqual(out.written, expected, `${stream} ${format}`);
  }
});

test("no log line carries a credential: the environment's secrets, those an AssumeRole handed out, and access key ids", () => {
  const out = lines();
  const env = {
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_SESSION_TOKEN: "FwoGZXIvYXdzEBYaDEXAMPLETOKEN",
    AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
  };
  const log = logger({ format: "text", level: "debug", env, now: () => NOW, write: out.write });
  log.secret("issued/secret+key=value");
  log.secret("short"); // too short to mask without masking ordinary words
  log.error(
    `signed with ${env.AWS_ACCESS_KEY_ID}:${env.AWS_SECRET_ACCESS_KEY} token ${env.AWS_SESSION_TOKEN}`,
  );
  log.warn("assumed ASIA1234567890ABCDEF with issued/secret+key=value, a short word stays");
  assert.deepEqual(out.written, [
    `${iso(NOW)} ERROR signed with AKIA****:**** token ****`,
    `${iso(NOW)} WARN assumed ASIA**** with ****, a short word stays`,
  ]);
  assert.equal(log.clean(`key ${env.AWS_SECRET_ACCESS_KEY}`), "key ****");
});

test("main() --log-format json: every stderr line is a JSON object, a failing account-region's with its account and region", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-ops-"));
  const fleet = fakeFleet(BUNDLED_ENV.ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN);
  const r = await run(["--log-format", "json"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir }, fleet.cloudWatch);
  assert.equal(r.code, EXIT.failed);
  const parsed = r.err.map((l) => JSON.parse(l));
  assert.deepEqual(parsed.map((l) => [l.level, l.account, l.region]), [
    ["error", "acceptance", "eu-west-1"],
    ["info", undefined, undefined],
  ]);
  assert.match(parsed[0].message, /^Cannot forward account "acceptance" in eu-west-1: AccessDenied/);
  assert.equal(parsed[1].message, r.out[0]);
});

/** A config with one account and the metrics entries given, in a folder of its own. */
function configWith(metrics: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-ops-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(
    file,
    `destination: { region: eu-west-1 }\naccounts: [{ name: production, regions: [eu-west-1] }]\nself_metrics: false\nmetrics:\n${metrics}`,
  );
  return file;
}

test("main() warns about config that forwards nothing: a metric name, a whole entry, a unit the streams are not in", async () => {
  // The account has AWS/ECS CPUUtilization and MemoryUtilization for one service, and nothing else.
  const listed = (input: ListMetricsInput) =>
    input.Namespace !== "AWS/ECS" ? [] : ["CPUUtilization", "MemoryUtilization"]
      .filter((name) => (input.MetricName ?? name) === name)
      .map((MetricName) => ({
        Namespace: "AWS/ECS",
        MetricName,
        Dimensions: [{ Name: "ClusterName", Value: "c" }, { Name: "ServiceName", Value: "s" }],
      }));
  const config = configWith(`
  - { namespace: AWS/ECS, names: [CPUUtilization, CpuUtilisation], dimensions: [ClusterName, ServiceName] }
  - { namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName] }
  - { namespace: AWS/EC2, names: [CPUUtilization], dimensions: [InstanceId] }
  - { namespace: AWS/ECS, names: [MemoryUtilization], dimensions: [ClusterName, ServiceName], unit: Bytes }
`);
  const fleet = fakeFleet("none", { listed, silentUnit: "Bytes" });
  const r = await run(["--config", config], {}, fleet.cloudWatch);
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  const warnings = r.err.filter((l) => l.includes(" WARN ")).map((l) => l.replace(/^\S+ WARN /, ""));
  assert.deepEqual(warnings, [
    "No metric CpuUtilisation of namespace AWS/ECS with the dimensions ClusterName, ServiceName was found in any account-region: check the name",
    "No metric CPUUtilization of namespace AWS/ECS with the dimensions ClusterName was found in any account-region: check the namespace, the names and the dimensions (ListMetrics lists what has had data in the past two weeks)",
    "No metric CPUUtilization of namespace AWS/EC2 with the dimensions InstanceId was found in any account-region: check the namespace, the names and the dimensions (ListMetrics lists what has had data in the past two weeks)",
    "1 stream of AWS/ECS MemoryUtilization in production eu-west-1 answered no datapoint in unit Bytes in the periods owed, nor did any other: either their sources published nothing then, or they publish in another unit (GetMetricData answers nothing in a unit the metric is not published in); if they are publishing, check the unit, or leave unit out",
  ]);
  // The entry that matched forwarded its stream; the one in the wrong unit wrote nothing.
  assert.deepEqual(
    [...new Set(fleet.written.map((w) => `${w.namespace} ${w.datum.MetricName}`))],
    ["Forwarded/AWS/ECS CPUUtilization"],
  );
});

test("the progress line: on a terminal, rewritten in place each second and cleared at the end; nothing otherwise", () => {
  let now = 0;
  for (const tty of [true, false]) {
    const out = lines();
    let tick: (() => void) | undefined;
    let stopped = false;
    const line = progressLine({
      tty,
      write: out.write,
      now: () => now,
      every: (show) => ((tick = show), () => void (stopped = true)),
    });
    assert.equal(tick !== undefined, tty);
    line.owe(1000);
    now += 2000;
    line.wrote(400);
    tick?.();
    line.wrote(100);
    now += 500;
    tick?.();
    line.end();
    assert.equal(stopped, tty);
    assert.deepEqual(
      out.written,
      tty
        ? [
          "\r400 of 1000 datums, 200/s, about 3 s left\u001b[K",
          "\r500 of 1000 datums, 200/s, about 3 s left\u001b[K",
          "\r\u001b[K",
        ]
        : [],
    );
    now = 0;
  }
});

test("loop mode: passes on multiples of the interval, the next one skipped when a pass overruns, a stop heard within a second", async () => {
  let now = Date.UTC(2026, 10, 24, 12, 0, 17, 500);
  const passes: number[] = [];
  const naps: number[] = [];
  const stop = { requested: false };
  const durations = [3_000, 95_000, 1_000, 1_000];
  let lastEnded = 0;
  const code = await every(
    60,
    (nowSeconds) => {
      passes.push(nowSeconds);
      now += durations[passes.length - 1]!;
      lastEnded = now;
      return Promise.resolve(passes.length === 2 ? EXIT.failed : EXIT.ok);
    },
    stop,
    {
      now: () => now,
      sleep: (ms) => {
        naps.push(ms);
        now += ms;
        // Asked to stop 2.5 s into the wait after the fourth pass.
        if (passes.length === 4 && now >= lastEnded + 2_500) stop.requested = true;
        return Promise.resolve();
      },
    },
  );
  assert.equal(code, EXIT.ok, "a failed pass does not end the loop; a stop ends it with 0");
  const at = (h: number, m: number, s: number) => Date.UTC(2026, 10, 24, h, m, s) / 1000;
  // 12:00:17 at once, then 12:01:00; that one ran to 12:02:35, so 12:02:00 is skipped for 12:03:00.
  assert.deepEqual(passes, [at(12, 0, 17), at(12, 1, 0), at(12, 3, 0), at(12, 4, 0)]);
  assert.ok(naps.every((ms) => ms <= 1000), "asleep in naps of a second at most");
  // The loop ended with the nap in which the stop was asked for: 12:04:01 + 3 s.
  assert.equal(now, Date.UTC(2026, 10, 24, 12, 4, 4));
});

test("main() --every: a usage error with options that act once", async () => {
  for (const extra of [["--now", "2026-11-24T10:00:00Z"], ["--dry-run"], ["--status"], ["--plan"]]) {
    const r = await run(["--every", "60s", ...extra], BUNDLED_ENV);
    assert.equal(r.code, EXIT.usage, extra.join(" "));
    assert.deepEqual(r.err, [
      `Cannot parse arguments: --every runs on the clock, pass after pass: it does not go with ${extra[0]}`,
    ]);
  }
});

test("main() --every in-process: each pass forwards the periods completed since the last, then a stop ends the loop with 0", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-ops-"));
  const fleet = fakeFleet("none");
  let now = NOW + 5_000;
  let stop: ((signal: string) => void) | undefined;
  const r = await run(["--every", "60s"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir }, fleet.cloudWatch, {
    now: () => now,
    onStop: (s) => (stop = s),
    sleep: (ms) => {
      now += ms;
      if (now >= NOW + 3 * 60_000 + 500) stop!("SIGTERM");
      return Promise.resolve();
    },
  });
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  // Passes at 12:00:05, 12:01, 12:02 and 12:03; each writes the one period completed since the one before.
  assert.equal(r.out.length, 4);
  const forwarded = fleet.written.filter((w) => w.namespace !== "CloudWatchForwarder");
  const byPeriod = new Map<number, number>();
  for (const w of forwarded) byPeriod.set(w.datum.Timestamp, (byPeriod.get(w.datum.Timestamp) ?? 0) + 1);
  const minute = NOW / 1000 - 180;
  assert.deepEqual([...byPeriod].sort(), [[minute, 8], [minute + 60, 8], [minute + 120, 8], [
    minute + 180,
    8,
  ]]);
  assert.ok(
    r.err.some((l) => l.endsWith("INFO Stopping on SIGTERM: the steps under way finish and are committed")),
  );
});

test("heapKeeper() collects once memory has grown by 24 MB, or by a tenth of what is left after the last collection", () => {
  const MB = 1024 * 1024;
  let used = 100 * MB;
  let alive = 0;
  const collected: number[] = [];
  const tidy = heapKeeper({
    used: () => used,
    collect: () => (collected.push(used / MB), used = alive * MB),
  });
  for (
    const [now, left] of [
      [120, 0], // 20 MB more than at the start: left as it is
      [125, 110], // 25 MB more: collected, and 110 MB are alive
      [134, 0], // a floor of 110 allows up to 134
      [135, 400], // collected, and 400 MB are alive
      [440, 0], // a tenth of 400 is 40: up to 440
      [441, 410],
    ] as const
  ) {
    used = now * MB;
    alive = left;
    tidy();
  }
  assert.deepEqual(collected, [125, 135, 441]);
});

test("log.problem(): a problem with its place in a file starts its line with file:line:col in text, after the journal's priority, and gives them as JSON fields; others are error lines", () => {
  const st = fs.fstatSync(2);
  const problem = 'forwarder.yaml:3:5: Missing key "region" (at destination.region)';
  const usage =
    "Cannot replay 2026-11-24T11:00:00Z to 2026-11-24T13:00:00Z: the window must be in the past two weeks";
  for (
    const [format, stream, message, expected] of [
      ["text", undefined, problem, problem],
      ["text", `${st.dev}:${st.ino}`, problem, `<3>${problem}`],
      ["json", undefined, problem, {
        time: iso(NOW),
        level: "error",
        message: problem,
        file: "forwarder.yaml",
        line: 3,
        col: 5,
      }],
      ["text", undefined, usage, `${iso(NOW)} ERROR ${usage}`],
      ["json", undefined, usage, { time: iso(NOW), level: "error", message: usage }],
    ] as const
  ) {
    const out = lines();
    const env = stream === undefined ? {} : { JOURNAL_STREAM: stream };
    const log = logger({ format, level: "error", env, now: () => NOW, write: out.write });
    log.problem(message);
    assert.deepEqual(format === "json" ? out.written.map((l) => JSON.parse(l)) : out.written, [expected]);
  }
});

test("main(): config problems print as file:line:col: message at the start of each line; with --log-format json, as JSON lines with file, line and col", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-ops-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(file, "destination: { region: eu-west-1 }\nmetrics: []\n");
  const problems = [
    `${file}:1:1: Missing key "accounts" (at accounts)`,
    `${file}:2:10: Expected at least one metrics entry (at metrics)`,
  ];
  for (const argv of [["--config", file], ["--config", file, "--check-config"]]) {
    const r = await run(argv);
    assert.equal(r.code, EXIT.usage);
    assert.deepEqual(r.err, problems, argv.join(" "));
    assert.deepEqual(r.out, []);
  }
  const json = await run(["--config", file, "--log-format", "json"]);
  assert.equal(json.code, EXIT.usage);
  assert.deepEqual(json.err.map((l) => JSON.parse(l)), [
    { time: iso(NOW), level: "error", message: problems[0], file, line: 1, col: 1 },
    { time: iso(NOW), level: "error", message: problems[1], file, line: 2, col: 10 },
  ]);
});

/** A config of two accounts in eu-west-1, production and test, with the metrics entries given. */
function twoAccounts(metrics: string): string {
  const file = configWith(metrics);
  fs.writeFileSync(
    file,
    fs.readFileSync(file, "utf8").replace(
      "accounts: [{ name: production, regions: [eu-west-1] }]",
      'accounts: [{ name: production, regions: [eu-west-1] }, { name: test, role_arn: "arn:aws:iam::333333333333:role/t", regions: [eu-west-1] }]',
    ),
  );
  return file;
}

test("main() summary: names each failed account-region with the call's code, and counts the datums it had written and had refused before it failed", async () => {
  // Two services in each account. Account test's CPUUtilization (60 s) is written, service b's refused; then its
  // MemoryUtilization (300 s) cannot be read.
  const config = twoAccounts(`
  - { namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName, ServiceName] }
  - { namespace: AWS/ECS, names: [MemoryUtilization], dimensions: [ClusterName, ServiceName], period: 300 }
`);
  const listed = (input: ListMetricsInput) =>
    ["a", "b"].map((service) => ({
      Namespace: input.Namespace,
      MetricName: input.MetricName!,
      Dimensions: [{ Name: "ClusterName", Value: "c" }, { Name: "ServiceName", Value: service }],
    }));
  const fleet = fakeFleet("none", { listed });
  const fromTestB = (d: Datum) =>
    d.Dimensions.some((x) => x.Name === "SourceAccount" && x.Value === "test") &&
    d.Dimensions.some((x) => x.Name === "ServiceName" && x.Value === "b");
  const cloudWatch = (region: string, role: Role | undefined): CloudWatchApi => {
    const api = fleet.cloudWatch(region, role);
    if (role === undefined) {
      return {
        ...api,
        putMetricData: (ns, datums, lease) =>
          datums.some(fromTestB)
            ? Promise.reject(
              Object.assign(new Error("The value is out of range"), { name: "InvalidParameterValue" }),
            )
            : api.putMetricData(ns, datums, lease),
      };
    }
    return {
      ...api,
      getMetricData: (input) =>
        input.queries.some((q) => q.Period === 300)
          ? Promise.reject(Object.assign(new Error("We had a problem"), { name: "InternalFailure" }))
          : api.getMetricData(input),
    };
  };
  const r = await run(["--config", config], {}, cloudWatch);
  assert.equal(r.code, EXIT.failed, r.err.join("\n"));
  assert.equal(r.out.length, 1);
  // production: 2 CPUUtilization datums, and 5 each of the two MemoryUtilization streams (the fake answers every
  // minute); test: a's CPUUtilization written, b's refused.
  assert.match(
    r.out[0]!,
    /^Forwarded 12 datums of 4 streams from 1 of 2 account-regions in 0\.0 s; 1 refused by CloudWatch and skipped; failed: test eu-west-1 \(InternalFailure, 1 datum forwarded first\); calls: [^;]+; largest lag 5 min$/,
  );
  assert.equal(fleet.written.filter((w) => w.namespace !== "CloudWatchForwarder").length, 13);
});

test("main() summary: a run asked to stop before its account-regions began says it was stopped, and that none began", async () => {
  const fleet = fakeFleet("none");
  const r = await run([], BUNDLED_ENV, fleet.cloudWatch, { onStop: (stop) => stop("SIGTERM") });
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  assert.match(
    r.out[0]!,
    /^Stopped by SIGTERM: forwarded 0 datums of 0 streams from 0 of 4 account-regions in 0\.0 s \(4 not begun\); calls: [^;]+; the next run goes on from where this one stopped$/,
  );
  assert.deepEqual(fleet.written.filter((w) => w.namespace !== "CloudWatchForwarder"), []);
});

test("main() summary: a run stopped while it forwards says it was stopped, and what it had done", async () => {
  const fleet = fakeFleet("none");
  let stop: ((signal: string) => void) | undefined;
  // Asked to stop during the first GetMetricData of a source: the steps under way finish and are committed.
  const cloudWatch = (region: string, role: Role | undefined): CloudWatchApi => {
    const api = fleet.cloudWatch(region, role);
    return role === undefined ? api : {
      ...api,
      getMetricData: (input) => (stop!("SIGINT"), api.getMetricData(input)),
    };
  };
  const r = await run([], BUNDLED_ENV, cloudWatch, { onStop: (s) => (stop = s) });
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  assert.match(
    r.out[0]!,
    /^Stopped by SIGINT: forwarded [1-9]\d* datums? of 8 streams from 4 of 4 account-regions in 0\.0 s; calls: [^;]+; largest lag 2 min; the next run goes on from where this one stopped$/,
  );
});

test("main() about streams in a unit that answered nothing: quiet where others answered in that unit (info), maybe the unit where none did (warning); said once per listing", async () => {
  const config = twoAccounts(`
  - { namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName, ServiceName], unit: Percent }
`);
  for (const quiet of [["test"], ["production", "test"]]) {
    const state = path.join(path.dirname(config), "forwarder-state.db");
    fs.rmSync(state, { force: true });
    const fleet = fakeFleet("none");
    const roles: Record<string, string> = { test: "arn:aws:iam::333333333333:role/t" };
    const silent = quiet.map((a) => roles[a]);
    const cloudWatch = (region: string, role: Role | undefined): CloudWatchApi => {
      const api = fleet.cloudWatch(region, role);
      const isQuiet = role === undefined ? false : silent.includes(role.roleArn);
      const sourceQuiet = quiet.includes("production") && role === undefined;
      return !isQuiet && !sourceQuiet ? api : {
        ...api,
        getMetricData: async (input) => {
          const r = await api.getMetricData(input);
          // The source's answers are empty; the destination's (Forwarded/...) are kept.
          return {
            ...r,
            results: r.results.map((x, i) =>
              input.queries[i]!.Metric.Namespace.startsWith("Forwarded/")
                ? x
                : { ...x, Timestamps: [], Values: [] }
            ),
          };
        },
      };
    };
    const said = async (at: number) => {
      const r = await run(["--config", config], {}, cloudWatch, { now: () => at });
      assert.equal(r.code, EXIT.ok, r.err.join("\n"));
      return r.err.filter((l) => / (WARN|INFO) \d+ streams? of /.test(l)).map((l) =>
        l.slice(iso(at).length + 1)
      );
    };
    // The first run lists; the next, a minute later, keeps the listing (discovery_interval 600 s).
    assert.deepEqual(
      await said(NOW),
      quiet.length === 1
        ? [
          "INFO 1 stream of AWS/ECS CPUUtilization in test eu-west-1 answered no datapoint in the periods owed, where 1 other answered in unit Percent: their sources published nothing then",
        ]
        : [
          "WARN 2 streams of AWS/ECS CPUUtilization in production eu-west-1, test eu-west-1 answered no datapoint in unit Percent in the periods owed, nor did any other: either their sources published nothing then, or they publish in another unit (GetMetricData answers nothing in a unit the metric is not published in); if they are publishing, check the unit, or leave unit out",
        ],
      quiet.join(", "),
    );
    assert.deepEqual(await said(NOW + 60_000), [], quiet.join(", "));
  }
});

test("a run's end leaves no hook to its closed store: an answer after it (the next pass's clock read) renews nothing and does not fail", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-end-"));
  const plan = loadConfig(
    "destination: { region: eu-west-1 }\naccounts: [{ name: a }]\nmetrics: [{ namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName] }]\n",
    "forwarder.yaml",
    {},
  );
  let now = NOW;
  const clients = {
    // Clients are made, and not called.
    cloudWatch: () => ({} as CloudWatchApi),
    calls: {},
    throttled: {},
    progress: { answered: () => {} },
    clock: () => assert.fail("no call"),
  };
  const file = path.join(dir, "forwarder-state.db");
  const r = startRun({
    args: parseArgs([]),
    plan,
    paths: { file, legacy: path.join(dir, "forwarder-state.json") },
    deps: { now: () => now, out: () => {}, err: () => {} },
    log: logger({ format: "text", level: "error", env: {}, now: () => now, write: () => {} }),
    nowSeconds: NOW / 1000,
    cloudWatchSeconds: NOW / 1000,
    clients,
    stop: { requested: false },
  });
  clients.progress.answered();
  r.end();
  // Long enough after the last renewal that an answer would renew the lease, in a store that is closed.
  now += 60_000;
  assert.doesNotThrow(() => clients.progress.answered());
});
