/**
 * What the config names and a listing does not find: an entry an account-region has no stream of, a static
 * stream ListMetrics does not list. Decided where a listing is made (streamsOf), said once per listing, and
 * not for what no account-region has, which one line says.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT } from "../forward.ts";
import type { CloudWatchApi, ListMetricsInput, Metric, Role } from "../lib/aws.ts";
import type { MetricPlan, SourcePlan } from "../lib/config.ts";
import { streamsOf, type Unfound } from "../lib/discover.ts";
import { logger } from "../lib/log.ts";
import { memoryStore } from "../lib/store.ts";
import { metricPlan, NOW, run } from "./fakes.ts";

const T = NOW / 1000;

const plan = metricPlan;

/** A metric of a source: ECS by default, active in the past three hours unless `old`. */
interface Listed {
  name: string;
  dims: Record<string, string>;
  namespace?: string;
  old?: boolean;
}

/** ListMetrics over `listed`, `pageSize` a page, as AWS filters it; every call noted in a line. */
function lister(listed: Listed[], pageSize = 2) {
  const calls: string[] = [];
  const listMetrics = (input: ListMetricsInput) => {
    const filters = input.Dimensions.map((d) => d.Value === undefined ? d.Name : `${d.Name}=${d.Value}`);
    calls.push(
      `${input.MetricName ?? "*"} ${filters.join(",")}${input.RecentlyActive ? " recent" : ""}${
        input.NextToken ? ` from ${input.NextToken}` : ""
      }`,
    );
    const all: Metric[] = listed.filter((m) =>
      (m.namespace ?? "AWS/ECS") === input.Namespace &&
      (input.MetricName === undefined || m.name === input.MetricName) &&
      input.Dimensions.every((d) =>
        d.Name in m.dims && (d.Value === undefined || m.dims[d.Name] === d.Value)
      ) &&
      !(input.RecentlyActive && m.old)
    ).map((m) => ({
      Namespace: m.namespace ?? "AWS/ECS",
      MetricName: m.name,
      Dimensions: Object.entries(m.dims).map(([Name, Value]) => ({ Name, Value })),
    }));
    const from = Number(input.NextToken ?? 0);
    const next = from + pageSize < all.length ? String(from + pageSize) : undefined;
    return Promise.resolve({ metrics: all.slice(from, from + pageSize), nextToken: next });
  };
  return { calls, api: { listMetrics } };
}

const cs = (ServiceName: string, ClusterName = "c") => ({ ClusterName, ServiceName });

/** An Unfound as a line: the entry's place in the config, and the streams and names not listed. */
const shown = (plans: MetricPlan[]) => (u: Unfound) =>
  `entry ${plans.indexOf(u.plan)}${
    (u.streams ?? []).map((s) => ` ${Object.values(s.values).join("/")} ${s.names.join("+")}`).join(";")
  }`;

test("streamsOf() finds, where it lists, the entries an account-region has no stream of and the static streams not listed; a kept listing finds none", async () => {
  const cases: {
    name: string;
    plans: MetricPlan[];
    listed: Listed[];
    recentOnly: boolean;
    unfound: string[];
    calls: string[];
  }[] = [
    {
      name: "an entry the listing finds a stream of",
      plans: [plan()],
      listed: [{ name: "CPUUtilization", dims: cs("s") }],
      recentOnly: true,
      unfound: [],
      calls: ["CPUUtilization ClusterName,ServiceName recent"],
    },
    {
      name: "an entry a listing of two weeks finds nothing of",
      plans: [plan()],
      listed: [{ name: "CPUUtilization", dims: { ClusterName: "c" } }],
      recentOnly: false,
      unfound: ["entry 0"],
      calls: ["CPUUtilization ClusterName,ServiceName"],
    },
    {
      name: "an entry of a metric published now and then: asked again over two weeks, found",
      plans: [plan()],
      listed: [{ name: "CPUUtilization", dims: cs("s"), old: true }],
      recentOnly: true,
      unfound: [],
      calls: ["CPUUtilization ClusterName,ServiceName recent", "CPUUtilization ClusterName,ServiceName"],
    },
    {
      name: "an entry found neither recently active nor over two weeks",
      plans: [plan({ names: ["CPUUtilization", "MemoryUtilization"], match: { ClusterName: "prod" } })],
      listed: [{ name: "CPUUtilization", dims: cs("s"), old: true }],
      recentOnly: true,
      unfound: ["entry 0"],
      calls: [
        "* ClusterName=prod,ServiceName recent",
        "CPUUtilization ClusterName=prod,ServiceName",
        "MemoryUtilization ClusterName=prod,ServiceName",
      ],
    },
    {
      name: "an entry whose streams an earlier entry forwards has found them",
      plans: [plan({ match: { ServiceName: "s*" } }), plan()],
      listed: [{ name: "CPUUtilization", dims: cs("s") }],
      recentOnly: false,
      unfound: [],
      calls: ["CPUUtilization ClusterName,ServiceName", "CPUUtilization ClusterName,ServiceName"],
    },
    {
      name: "a static stream not listed, of two: over two weeks, narrowed to the value they share",
      plans: [plan({ streams: [cs("s"), cs("typo")] })],
      listed: [{ name: "CPUUtilization", dims: cs("s"), old: true }],
      recentOnly: true,
      unfound: ["entry 0 c/typo CPUUtilization"],
      calls: ["CPUUtilization ClusterName=c,ServiceName"],
    },
    {
      name: "a static stream listed under one of the entry's names",
      plans: [plan({ names: ["CPUUtilization", "MemoryUtilization"], streams: [cs("s")] })],
      listed: [{ name: "CPUUtilization", dims: cs("s") }, { name: "MemoryUtilization", dims: cs("t") }],
      recentOnly: false,
      unfound: ["entry 0 c/s MemoryUtilization"],
      calls: ["CPUUtilization ClusterName=c,ServiceName=s", "MemoryUtilization ClusterName=c,ServiceName=s"],
    },
    {
      name: "a static list none of which is listed: the entry as a whole",
      plans: [plan({ streams: [cs("s", "a"), cs("t", "b")] })],
      listed: [{ name: "CPUUtilization", dims: cs("s") }],
      recentOnly: false,
      unfound: ["entry 0"],
      calls: ["CPUUtilization ClusterName,ServiceName"],
    },
    {
      name: "a static list all listed: the listing stops at the page that lists the last of them",
      plans: [plan({ streams: [cs("s"), cs("t")] })],
      listed: ["s", "t", "u", "v", "w"].map((s) => ({ name: "CPUUtilization", dims: cs(s) })),
      recentOnly: false,
      unfound: [],
      calls: ["CPUUtilization ClusterName=c,ServiceName"],
    },
  ];
  for (const c of cases) {
    const { api, calls } = lister(c.listed);
    const src: SourcePlan = {
      account: "a",
      region: "eu-west-1",
      roleArn: undefined,
      externalId: undefined,
      metrics: c.plans,
    };
    const log = logger({ format: "text", level: "warn", env: {}, now: () => NOW, write: () => {} });
    const ctx = { store: memoryStore(), nowSeconds: T, dryRun: false, discoveryInterval: 600, log };
    const listing = await streamsOf(api, src, ctx, c.recentOnly);
    assert.deepEqual(listing.unfound.map(shown(c.plans)), c.unfound, c.name);
    assert.deepEqual(calls.sort(), c.calls.sort(), `${c.name}: ListMetrics`);
    // A minute later the listing is kept: nothing is listed, and nothing said again.
    calls.length = 0;
    const kept = await streamsOf(api, src, { ...ctx, nowSeconds: T + 60 }, c.recentOnly);
    assert.deepEqual(kept.unfound, [], `${c.name}: kept`);
    assert.deepEqual(calls, [], `${c.name}: kept, ListMetrics`);
  }
});

/** Accounts by role: a and b have ECS service c/s, b no CPUUtilization; no one has Acme/App. */
const ROLES: Record<string, string> = {
  "arn:aws:iam::111111111111:role/r": "a",
  "arn:aws:iam::222222222222:role/r": "b",
  "arn:aws:iam::333333333333:role/r": "c",
};
const HAS: Record<string, Listed[]> = {
  a: [{ name: "CPUUtilization", dims: cs("s") }, { name: "MemoryUtilization", dims: cs("s") }],
  b: [{ name: "MemoryUtilization", dims: cs("s") }],
  c: [{ name: "CPUUtilization", dims: cs("s") }, { name: "MemoryUtilization", dims: cs("s") }],
};

/** Sources that list what HAS says and answer no datapoint; account c is refused if `denied`. */
function sources(denied = false) {
  return (_region: string, role: Role | undefined): CloudWatchApi => {
    const account = ROLES[role?.roleArn ?? ""];
    const { api } = lister(HAS[account ?? ""] ?? [], 500);
    return {
      listMetrics: (input) =>
        denied && account === "c"
          ? Promise.reject(Object.assign(new Error("not authorized"), { name: "AccessDenied" }))
          : api.listMetrics(input),
      getMetricData: (input) =>
        Promise.resolve({
          nextToken: undefined,
          results: input.queries.map((q) => ({ Id: q.Id, Timestamps: [], Values: [] })),
        }),
      putMetricData: () => Promise.resolve(),
    };
  };
}

function config(accounts: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-unfound-"));
  const file = path.join(dir, "forwarder.yaml");
  const ids = Object.fromEntries(Object.entries(ROLES).map(([arn, name]) => [name, arn]));
  fs.writeFileSync(
    file,
    `destination: { region: eu-west-1 }
self_metrics: false
accounts: [${accounts.map((a) => `{ name: ${a}, role_arn: "${ids[a]}" }`).join(", ")}]
metrics:
  - { namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName, ServiceName] }
  - { namespace: Acme/App, names: [Latency], dimensions: [Service] }
  - { namespace: AWS/ECS, names: [MemoryUtilization], streams: [{ ClusterName: c, ServiceName: s }, { ClusterName: c, ServiceName: typo }] }
`,
  );
  return file;
}

const warnings = (r: { err: string[] }) =>
  r.err.filter((l) => / WARN /.test(l)).map((l) => l.replace(/^\S+ WARN /, ""));
const TWO_WEEKS = "(ListMetrics lists what has had data in the past two weeks)";
const NOWHERE =
  `No metric Latency of namespace Acme/App with the dimensions Service was found in any account-region: check the namespace, the names and the dimensions ${TWO_WEEKS}`;
const entryIn = (account: string, name: string, namespace: string, dims: string) =>
  `No metric ${name} of namespace ${namespace} with the dimensions ${dims} was found in account "${account}" in eu-west-1: the entry forwards nothing from there ${TWO_WEEKS}`;
const typoIn = (account: string) =>
  `No metric MemoryUtilization of namespace AWS/ECS with ClusterName=c,ServiceName=typo was found in account "${account}" in eu-west-1: check the values in streams ${TWO_WEEKS}`;

test("main() names each account-region and entry a listing found nothing of, and each static stream not listed, once per listing; what no account-region has, in one line", async () => {
  const file = config(["a", "b"]);
  const first = await run(["--config", file], {}, sources());
  assert.equal(first.code, EXIT.ok, first.err.join("\n"));
  assert.deepEqual(warnings(first), [
    NOWHERE,
    typoIn("a"),
    entryIn("b", "CPUUtilization", "AWS/ECS", "ClusterName, ServiceName"),
    typoIn("b"),
  ]);
  // A minute later the listings are kept: what no account-region has is said again, as every run says it; what
  // a listing did not find, not until the next listing, ten minutes after the first (discovery_interval).
  const next = await run(["--config", file], {}, sources(), { now: () => NOW + 60_000 });
  assert.equal(next.code, EXIT.ok, next.err.join("\n"));
  assert.deepEqual(warnings(next), [NOWHERE]);
  const listing = await run(["--config", file], {}, sources(), { now: () => NOW + 600_000 });
  assert.deepEqual(warnings(listing), warnings(first));
});

test("main() with an account-region failed: no line for what no account-region has, each listing's own instead", async () => {
  const r = await run(["--config", config(["a", "b", "c"])], {}, sources(true));
  assert.equal(r.code, EXIT.failed);
  assert.deepEqual(warnings(r), [
    entryIn("a", "Latency", "Acme/App", "Service"),
    typoIn("a"),
    entryIn("b", "CPUUtilization", "AWS/ECS", "ClusterName, ServiceName"),
    entryIn("b", "Latency", "Acme/App", "Service"),
    typoIn("b"),
  ]);
});

test("main() says in one line what no account-region has, also of an entry whose regions leave out the first account-region's", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-unfound-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(
    file,
    `destination: { region: eu-west-1 }
self_metrics: false
accounts: [{ name: a, role_arn: "arn:aws:iam::111111111111:role/r" }]
metrics:
  - { namespace: AWS/ECS, names: [CPUUtilization], dimensions: [ClusterName, ServiceName] }
  - { namespace: Acme/App, names: [Latency], dimensions: [Service], regions: [us-east-1] }
`,
  );
  const r = await run(["--config", file], {}, sources());
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  assert.deepEqual(warnings(r), [NOWHERE]);
});

test("main() with a role that may not ListMetrics: static streams are forwarded all the same, with one warning that they could not be looked up", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-unfound-"));
  const file = path.join(dir, "forwarder.yaml");
  fs.writeFileSync(
    file,
    `destination: { region: eu-west-1 }\nself_metrics: false\naccounts: [{ name: a }]\nmetrics: [{ namespace: AWS/ECS, names: [CPUUtilization], streams: [{ ClusterName: c, ServiceName: s }] }]\n`,
  );
  const written: string[] = [];
  const api: CloudWatchApi = {
    listMetrics: () =>
      Promise.reject(Object.assign(new Error("not authorized to perform: cloudwatch:ListMetrics"), {
        name: "AccessDenied",
      })),
    getMetricData: (input) =>
      Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) =>
          q.Metric.Namespace.startsWith("Forwarded/")
            ? { Id: q.Id, Timestamps: [], Values: [] }
            : { Id: q.Id, Timestamps: [input.start], Values: [1] }
        ),
      }),
    putMetricData: (_ns, datums) => (written.push(...datums.map((d) => d.MetricName)), Promise.resolve()),
  };
  const r = await run(["--config", file], {}, () => api);
  assert.equal(r.code, EXIT.ok, r.err.join("\n"));
  assert.deepEqual(written, ["CPUUtilization"]);
  assert.deepEqual(warnings(r), [
    `Cannot check which configured metrics and streams exist in account "a" in eu-west-1: AccessDenied: not authorized to perform: cloudwatch:ListMetrics; what was found is forwarded all the same`,
  ]);
});
