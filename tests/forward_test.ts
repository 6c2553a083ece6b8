/** forward.ts's main() in-process, with fake CloudWatch clients and an injected clock. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT, main } from "../forward.ts";
import type { CloudWatchApi, ListMetricsInput, Metric } from "../lib/aws.ts";
import { readStore } from "../lib/store.ts";
import { BUNDLED_ENV, fakeFleet, iso, logged, NOW, run } from "./fakes.ts";

test("main() prints the usage for --help and refuses unknown options with exit code 2", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, EXIT.ok);
  assert.match(help.out[0]!, /^Usage: forward\.ts \[options\]/);
  assert.deepEqual(await run(["--verbose"]), {
    code: EXIT.usage,
    out: [],
    err: ['Cannot parse arguments: unknown option "--verbose" (see --help)'],
  });
  assert.deepEqual(await run(["--config"]), {
    code: EXIT.usage,
    out: [],
    err: ["Cannot parse arguments: --config needs a value"],
  });
});

test("main() checks --from, --to and --now", async () => {
  const e = { ...BUNDLED_ENV };
  assert.deepEqual((await run(["--from", "2026-11-24T10:00:00Z"], e)).err, [
    "Cannot replay: --from and --to go together",
  ]);
  assert.deepEqual((await run(["--now", "noon"], e)).err, [
    'Cannot parse --now "noon": expected an ISO 8601 time such as 2026-11-24T10:00:00Z',
  ]);
  const future = await run(["--from", "2026-11-24T11:00:00Z", "--to", "2026-11-24T13:00:00Z"], e);
  assert.equal(future.code, EXIT.usage);
  // Past the command line, problems are log lines, with the time and the level.
  assert.match(
    future.err[0]!,
    /^2026-11-24T12:00:00\.000Z ERROR Cannot replay 2026-11-24T11:00:00Z to 2026-11-24T13:00:00Z: the window must be in the past two weeks/,
  );
});

test("main() checks the bundled config, and names every unset variable", async () => {
  assert.deepEqual(await run(["--check-config"], BUNDLED_ENV), {
    code: EXIT.ok,
    out: ["forwarder.yaml: OK, 4 account-regions"],
    err: [],
  });
  const unset = await run(["--check-config"]);
  assert.equal(unset.code, EXIT.usage);
  // Problems of the config file as compilers print theirs: its place first, nothing before it.
  assert.deepEqual(unset.err, [
    'forwarder.yaml:22:15: Environment variable "PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN" is not set (at accounts.0.role_arn)',
    'forwarder.yaml:25:15: Environment variable "ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN" is not set (at accounts.1.role_arn)',
    'forwarder.yaml:27:15: Environment variable "TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN" is not set (at accounts.2.role_arn)',
  ]);
});

test("main() --check-config counts one account-region in the singular", async () => {
  const config = new URL("./fixtures/base.yaml", import.meta.url).pathname;
  assert.deepEqual(
    await run(["--check-config", "--config", config], { ROLE: "arn:aws:iam::111111111111:role/reader" }),
    {
      code: EXIT.ok,
      out: [`${config}: OK, 1 account-region`],
      err: [],
    },
  );
});

test("main() forwards every source but a denied one, reports it by name and exits 1", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-"));
  const fleet = fakeFleet(BUNDLED_ENV.ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN);
  const r = await run([], { ...BUNDLED_ENV, STATE_DIRECTORY: dir }, fleet.cloudWatch);
  assert.equal(r.code, EXIT.failed);
  // The summary, on stdout and as a log line: a new store's run reads the destination first (3 calls), then
  // forwards (3), in one write, with one more for the run's own metrics.
  const summary =
    "Forwarded 6 datums of 6 streams from 3 of 4 account-regions in 0.0 s; failed: acceptance eu-west-1 (AccessDenied); calls: GetMetricData 6, ListMetrics 4, PutMetricData 2; largest lag 2 min";
  assert.deepEqual(r.err, [
    logged(
      "ERROR",
      'Cannot forward account "acceptance" in eu-west-1: AccessDenied: not authorized for arn:aws:iam::222222222222:role/transfer',
    ),
    logged("INFO", summary),
  ]);
  assert.deepEqual(r.out, [summary]);
  // The newest complete period (11:57, with the 120 s delay), as a statistic set, apart per account and region.
  assert.deepEqual(
    fleet.written.filter((w) => w.namespace !== "CloudWatchForwarder").map((w) =>
      `${w.region} ${w.namespace} ${w.datum.MetricName} ${
        w.datum.Dimensions.map((d) => d.Value).join(",")
      } ${w.datum.Timestamp} ${JSON.stringify(w.datum.StatisticValues)}`
    ).sort(),
    [
      'eu-west-1 Forwarded/AWS/ECS CPUUtilization c,s,production,eu-west-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
      'eu-west-1 Forwarded/AWS/ECS CPUUtilization c,s,production,us-east-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
      'eu-west-1 Forwarded/AWS/ECS CPUUtilization c,s,test,eu-west-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
      'eu-west-1 Forwarded/AWS/ECS MemoryUtilization c,s,production,eu-west-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
      'eu-west-1 Forwarded/AWS/ECS MemoryUtilization c,s,production,us-east-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
      'eu-west-1 Forwarded/AWS/ECS MemoryUtilization c,s,test,eu-west-1 1795521420 {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
    ],
  );
  // The run's own metrics: what each account-region forwarded, its lag (the checkpoint, 11:58, two minutes
  // before now), and that one failed; at the run's time, in its own namespace.
  const own = fleet.written.filter((w) => w.namespace === "CloudWatchForwarder").map((w) =>
    `${w.datum.MetricName} ${
      w.datum.Dimensions.map((d) => d.Value).join(",")
    } ${w.datum.Value} ${w.datum.Unit} ${w.datum.Timestamp}`
  );
  assert.deepEqual(own.sort(), [
    "Datums acceptance,eu-west-1 0 Count 1795521600",
    "Datums production,eu-west-1 2 Count 1795521600",
    "Datums production,us-east-1 2 Count 1795521600",
    "Datums test,eu-west-1 2 Count 1795521600",
    "Errors acceptance,eu-west-1 1 Count 1795521600",
    "Errors production,eu-west-1 0 Count 1795521600",
    "Errors production,us-east-1 0 Count 1795521600",
    "Errors test,eu-west-1 0 Count 1795521600",
    "FailedAccountRegions  1 Count 1795521600",
    "LagSeconds production,eu-west-1 120 Seconds 1795521600",
    "LagSeconds production,us-east-1 120 Seconds 1795521600",
    "LagSeconds test,eu-west-1 120 Seconds 1795521600",
    "RunSeconds  0 Seconds 1795521600",
    "Streams acceptance,eu-west-1 0 Count 1795521600",
    "Streams production,eu-west-1 2 Count 1795521600",
    "Streams production,us-east-1 2 Count 1795521600",
    "Streams test,eu-west-1 2 Count 1795521600",
  ]);
  // Every configured account-region, the one whose role is denied too, with its error.
  const status = await run(["--status"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir });
  assert.equal(status.code, 1, "--status exits 1 while an account-region fails");
  assert.deepEqual(status.out, [
    "production eu-west-1: forwarded up to 2026-11-24T11:58:00Z (2 min behind), 2 streams",
    "production us-east-1: forwarded up to 2026-11-24T11:58:00Z (2 min behind), 2 streams",
    "acceptance eu-west-1: never forwarded; its last run failed at 2026-11-24T12:00:00Z: AccessDenied: not authorized for arn:aws:iam::222222222222:role/transfer",
    "test eu-west-1: forwarded up to 2026-11-24T11:58:00Z (2 min behind), 2 streams",
  ]);
  const json = JSON.parse(
    (await run(["--status", "--json"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir })).out[0]!,
  );
  assert.deepEqual(json.map((s: { state: string; lagSeconds: number | null }) => [s.state, s.lagSeconds]), [
    ["ok", 120],
    ["ok", 120],
    ["failing", null],
    ["ok", 120],
  ]);
});

test("main() --dry-run prints what it would write and writes nothing", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-"));
  const fleet = fakeFleet("none");
  const r = await run(["--dry-run"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir }, fleet.cloudWatch);
  assert.equal(r.code, EXIT.ok);
  assert.equal(fleet.written.length, 0);
  assert.equal(r.out.length, 9);
  assert.equal(
    r.out[0],
    'Forwarded/AWS/ECS CPUUtilization ClusterName=c,ServiceName=s,SourceAccount=production,SourceRegion=eu-west-1 at 2026-11-24T11:57:00Z {"SampleCount":3,"Sum":6,"Minimum":1,"Maximum":3}',
  );
  assert.match(
    r.out[8]!,
    /^Would forward 8 datums of 8 streams from 4 of 4 account-regions in [\d.]+ s; calls: .*\(dry run: nothing written\)$/,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
});

/** A config of `streams` static ECS streams in each of `accounts` accounts, in a folder of its own. */
function staticFleet(accounts: number, streams: number): string {
  const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-")), "forwarder.yaml");
  const list = Array.from({ length: streams }, (_, i) => `{ ClusterName: c, ServiceName: s${i} }`).join(", ");
  const names = Array.from({ length: accounts }, (_, i) => `{ name: a${i} }`).join(", ");
  fs.writeFileSync(
    config,
    // Periods are not read again for late samples here: these fakes answer one datapoint per query, whatever
    // the window, so a call that also read one period again would answer for that period alone.
    `destination: { region: eu-west-1 }\ndefaults: { recheck_after: 0 }\naccounts: [${names}]\nmetrics: [{ namespace: AWS/ECS, names: [CPUUtilization], streams: [${list}] }]\n`,
  );
  return config;
}

/** The services of cluster c that ListMetrics lists: as many as the largest static fleet here has. */
const clusterC = (input: ListMetricsInput): Metric[] =>
  Array.from({ length: 250 }, (_, i) => ({
    Namespace: input.Namespace,
    MetricName: input.MetricName!,
    Dimensions: [{ Name: "ClusterName", Value: "c" }, { Name: "ServiceName", Value: `s${i}` }],
  }));

/**
 * Sources whose every query answers one datapoint after 5 ms, and an empty destination: the source's
 * GetMetricData calls, the most of them in flight at once, and the PutMetricData calls.
 */
function slowSources() {
  const seen = { calls: [] as { queries: number; periods: number }[], mostInFlight: 0, puts: 0 };
  let inFlight = 0;
  const api: CloudWatchApi = {
    // Static streams are forwarded without a listing; a listing only looks for them, to name those not found.
    listMetrics: (input) => Promise.resolve({ metrics: clusterC(input), nextToken: undefined }),
    getMetricData: async (input) => {
      // Streams without checkpoints, or a day behind, are read in the destination first.
      if (input.queries[0]!.Metric.Namespace.startsWith("Forwarded/")) {
        return { nextToken: undefined, results: [] };
      }
      seen.calls.push({ queries: input.queries.length, periods: (input.end - input.start) / 60 });
      seen.mostInFlight = Math.max(seen.mostInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return {
        nextToken: undefined,
        results: input.queries.map((q) => ({ Id: q.Id, Timestamps: [input.start], Values: [1] })),
      };
    },
    putMetricData: () => Promise.resolve(void seen.puts++),
  };
  return { api, seen };
}

test("main() backfills a large fleet in whole GetMetricData calls, a few at a time, so the datapoints held stay bounded", async () => {
  const config = staticFleet(1, 200);
  const { api, seen } = slowSources();
  // A day behind: the streams' checkpoints were written a day ago.
  const first = await main(["--config", config, "--now", new Date(NOW - 86_400_000).toISOString()], {
    env: {},
    now: () => NOW,
    out: () => {},
    err: () => {},
    cloudWatch: () => api,
  });
  assert.equal(first, EXIT.ok);
  seen.calls.length = 0;
  const r = await run(["--config", config], {}, () => api);
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  const calls = seen.calls;
  // 1,440 periods a call: 68 queries each (17 streams, every statistic of a stream in the same call, within
  // 100,800 datapoints); 800 queries in 12 calls, at most 4 in flight, so no more than 4 full answers
  // (403,200 datapoints) are held at once.
  assert.deepEqual(calls.map((c) => c.periods), Array(12).fill(1440));
  assert.equal(calls.reduce((a, c) => a + c.queries, 0), 800);
  assert.ok(calls.every((c) => c.queries <= 70));
  assert.equal(calls.length, Math.ceil(200 / 17));
  assert.equal(seen.mostInFlight, 4);
  assert.match(r.out[0]!, /^Forwarded 200 datums of 200 streams/);
  // The first run wrote one datum a stream in one call; the backfill, a day in one step, one more call. Each
  // run also wrote its own metrics, in a call of their own.
  assert.equal(seen.puts, 2 + 2);
});

test("main() holds at most 16 GetMetricData calls at once over all account-regions, however few datapoints each asks for", async () => {
  const { api, seen } = slowSources();
  const r = await run(["--config", staticFleet(10, 250)], {}, () => api);
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  // 250 streams of four statistics an account-region: two calls of 500 queries, one period each. Ten
  // account-regions would have 20 calls in flight; 16 is the most the run holds.
  assert.deepEqual(seen.calls, Array(20).fill({ queries: 500, periods: 1 }));
  assert.equal(seen.mostInFlight, 16);
});

test("main() forgets a stream that discovery has not found for 15 days, and says so", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-"));
  const gone = JSON.stringify(["production", "eu-west-1", "AWS/ECS", "CPUUtilization", [
    "ClusterName=old",
    "ServiceName=s",
  ], 60]);
  const stopped = JSON.stringify(["production", "eu-west-1", "AWS/ECS", "CPUUtilization", [
    "ClusterName=idle",
    "ServiceName=s",
  ], 60]);
  const day = 86_400;
  const streams = {
    [gone]: { first: 0, next: NOW / 1000 - 16 * day, seen: NOW / 1000 - 16 * day },
    [stopped]: { first: 0, next: NOW / 1000 - day, seen: NOW / 1000 - day },
  };
  fs.writeFileSync(path.join(dir, "forwarder-state.json"), JSON.stringify({ version: 1, streams }));
  const r = await run([], { ...BUNDLED_ENV, STATE_DIRECTORY: dir }, fakeFleet("none").cloudWatch);
  assert.equal(r.code, EXIT.ok);
  const legacy = path.join(dir, "forwarder-state.json");
  assert.deepEqual(r.err.slice(0, 2), [
    logged("INFO", `Imported 2 checkpoints from "${legacy}", kept as "${legacy}.imported"`),
    logged("INFO", 'Forgetting 1 stream of account "production" in eu-west-1: not found for 15 days'),
  ]);
  assert.match(r.err[2]!, /^\S+ INFO Forwarded 8 datums/);
  assert.equal(r.err.length, 3);
  // The earlier version wrote dimensions as "Name=Value"; the store keeps them as [Name, Value].
  const imported = (key: string) => key.replace(/"(\w+)=(\w+)"/g, '["$1","$2"]');
  const kept = readStore(path.join(dir, "forwarder-state.db")).streams;
  assert.deepEqual(Object.keys(kept).filter((k) => k.includes("old")), []);
  assert.deepEqual(kept[imported(stopped)], streams[stopped]);
  const status = await run(["--status"], { ...BUNDLED_ENV, STATE_DIRECTORY: dir });
  assert.equal(
    status.out[0],
    "production eu-west-1: forwarded up to 2026-11-24T11:58:00Z (2 min behind), 2 streams; 1 no longer found",
  );
});

test("main() keeps a listing for discovery_interval, and forwards a stream a new listing finds from where the last one ended", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-main-"));
  const config = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(
    config,
    "discovery_interval: 600\ndestination: { region: eu-west-1 }\naccounts: [{ name: a }]\n" +
      "metrics: [{ namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ServiceName] }]\n",
  );
  const services = ["web"];
  let listed = 0;
  const written: string[] = [];
  const api: CloudWatchApi = {
    listMetrics: (input) => {
      listed++;
      return Promise.resolve({
        nextToken: undefined,
        metrics: services.map((s) => ({
          Namespace: input.Namespace,
          MetricName: "CPUUtilization",
          Dimensions: [{ Name: "ServiceName", Value: s }],
        })),
      });
    },
    getMetricData: (input) => {
      const ts: number[] = [];
      for (let t = input.start; t < input.end; t += 60) ts.push(t);
      const source = !input.queries[0]!.Metric.Namespace.startsWith("Forwarded/");
      return Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) => ({
          Id: q.Id,
          Timestamps: source ? ts : [],
          Values: ts.map(() => 1),
        })),
      });
    },
    putMetricData: (_ns, datums) => {
      for (const d of datums) written.push(`${d.Dimensions[0]!.Value} ${iso(d.Timestamp * 1000)}`);
      return Promise.resolve();
    },
  };
  const at = (minutes: number) =>
    main(["--config", config, "--now", iso(NOW + minutes * 60_000)], {
      env: {},
      now: () => NOW + minutes * 60_000,
      out: () => {},
      err: () => {},
      cloudWatch: () => api,
    });
  for (let m = 0; m < 10; m++) assert.equal(await at(m), EXIT.ok);
  assert.equal(listed, 1, "the listing of the first run served the next nine");
  services.push("new");
  assert.equal(await at(10), EXIT.ok);
  assert.equal(listed, 2);
  // The new service is forwarded from where the first listing ended (noon), less the 15 minutes ListMetrics
  // may take to show a new metric: 11:45 up to the newest complete period, 12:07, all at once.
  const fresh = written.filter((w) => w.startsWith("new "));
  assert.equal(fresh.length, 23);
  assert.equal(fresh[0], "new 2026-11-24T11:45:00.000Z");
  assert.equal(fresh[22], "new 2026-11-24T12:07:00.000Z");
  assert.deepEqual(written.filter((w) => w.startsWith("web ")).length, 11);
});
