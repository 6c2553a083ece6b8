/**
 * A monitoring account as a source (CloudWatch cross-account observability), with hand-written fakes: the
 * config's linked_accounts, the listing's attribution to owning accounts, GetMetricData's AccountId and
 * Forbidden, the keys, --status rows and the forwarder's own metrics per owning account.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { CloudWatchApi, Listed, ListMetricsInput, Metric, Query } from "../lib/aws.ts";
import { loadConfig, type SourcePlan } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import {
  accountOf,
  discover,
  keyOf,
  ownersOf,
  type Stream,
  streamsOf,
  throughLinks,
  whereOf,
} from "../lib/discover.ts";
import { fetchStats } from "../lib/fetch.ts";
import { targetOf } from "../lib/publish.ts";
import { selfMetrics } from "../lib/selfmetrics.ts";
import type { SourceTotals } from "../lib/run.ts";
import { statusLines, statusOf } from "../lib/status.ts";
import { type Listing, memoryStore, openStore, readStore, type StoreContents } from "../lib/store.ts";
import { lagsOf } from "../lib/step.ts";
import { metricPlan } from "./fakes.ts";

const MONITORING = "444444444444";
const T = Date.UTC(2026, 10, 24, 12) / 1000;

const configOf = (accounts: string) =>
  `destination: { region: eu-west-1 }
accounts:
${accounts}
metrics:
  - namespace: AWS/ECS
    names: [CPUUtilization, MemoryUtilization]
    dimensions: [ClusterName, ServiceName]
`;

function problems(accounts: string): string[] {
  try {
    loadConfig(configOf(accounts), "f.yaml", {});
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

const monitoringEntry = (linked: string, extra = "") =>
  `  - name: monitoring
    role_arn: arn:aws:iam::${MONITORING}:role/reader
    regions: [eu-west-1, us-east-1]${extra}
    linked_accounts: ${linked}`;

test("loadConfig() resolves linked_accounts: every linked account, or include, exclude, names and own_metrics", () => {
  const linked = (accounts: string) =>
    loadConfig(configOf(accounts), "f.yaml", {}).sources.map((s) => s.linked);
  const every = { ownId: MONITORING, include: undefined, exclude: [], names: {}, ownMetrics: false };
  assert.deepEqual(linked(monitoringEntry("true")), [every, every]);
  const chosen = linked(monitoringEntry(
    `{ include: ["111111111111", "222222222222"], exclude: ["333333333333"], names: { "111111111111": production }, own_metrics: true }`,
  ));
  assert.deepEqual(chosen[0], {
    ownId: MONITORING,
    include: ["111111111111", "222222222222"],
    exclude: ["333333333333"],
    names: { "111111111111": "production" },
    ownMetrics: true,
  });
  assert.deepEqual(linked(`  - name: production\n    linked_accounts: false`), [undefined]);
});

test("loadConfig() takes entries that cannot read one account twice in a region, and refuses those that can", () => {
  const direct = `  - name: production\n    role_arn: arn:aws:iam::111111111111:role/transfer`;
  const cases: [string, string, string[]][] = [
    ["a direct account excluded", `${direct}\n${monitoringEntry(`{ exclude: ["111111111111"] }`)}`, []],
    ["a direct account not included", `${direct}\n${monitoringEntry(`{ include: ["222222222222"] }`)}`, []],
    [
      "a direct account in other regions",
      `${direct}\n    regions: [ap-south-1]\n${monitoringEntry("true")}`,
      [],
    ],
    ["a direct account without role_arn: its id is not known", `  - name: x\n${monitoringEntry("true")}`, []],
    [
      "two monitoring accounts with include lists apart",
      `${monitoringEntry(`{ include: ["111111111111"] }`)}\n${
        monitoringEntry(`{ include: ["222222222222"] }`).replace("name: monitoring", "name: security")
          .replace(MONITORING, "555555555555")
      }`,
      [],
    ],
    [
      "the monitoring account's own metrics, and the same account listed directly",
      `${
        monitoringEntry("{ own_metrics: true }")
      }\n  - name: central\n    role_arn: arn:aws:iam::${MONITORING}:role/x`,
      [
        `f.yaml:8:15: Account "${MONITORING}" would be read both through "monitoring" (accounts.0) and by "central" (accounts.1) in eu-west-1, and forwarded twice: list it in the exclude of linked_accounts, or leave one entry out (at accounts.1.role_arn)`,
      ],
    ],
    [
      "the monitoring account listed directly, its own metrics left out",
      `${monitoringEntry("true")}\n  - name: central\n    role_arn: arn:aws:iam::${MONITORING}:role/x`,
      [],
    ],
    [
      "every linked account, a direct account not excluded",
      `${direct}\n${monitoringEntry(`{ exclude: ["222222222222"] }`)}`,
      [
        `f.yaml:8:22: Account "111111111111" would be read both by "production" (accounts.0) and through "monitoring" (accounts.1) in eu-west-1, and forwarded twice: list it in the exclude of linked_accounts, or leave one entry out (at accounts.1.linked_accounts)`,
      ],
    ],
    [
      "the same name for the same account through two monitoring accounts in other regions",
      `${monitoringEntry(`{ names: { "111111111111": production } }`)}\n${
        monitoringEntry(`{ names: { "111111111111": production } }`).replace(
          "name: monitoring",
          "name: security",
        )
          .replace(MONITORING, "555555555555").replace("[eu-west-1, us-east-1]", "[ap-south-1]")
      }`,
      [],
    ],
  ];
  for (const [name, accounts, expected] of cases) assert.deepEqual(problems(accounts), expected, name);
});

/** A monitoring account's plan: every linked account but those excluded, named as given. */
function monitoringSource(o: Partial<NonNullable<SourcePlan["linked"]>> = {}): SourcePlan {
  return {
    account: "monitoring",
    roleArn: `arn:aws:iam::${MONITORING}:role/reader`,
    externalId: undefined,
    region: "eu-west-1",
    metrics: [metricPlan()],
    linked: { ownId: MONITORING, include: undefined, exclude: [], names: {}, ownMetrics: false, ...o },
  };
}

/** ListMetrics of a monitoring account: each account's metrics, with OwningAccounts as `owning` makes it. */
function linkedLister(
  metrics: [account: string, service: string][],
  owning: (accounts: string[]) => string[] | undefined = (a) => a,
) {
  const calls: ListMetricsInput[] = [];
  const api: Pick<CloudWatchApi, "listMetrics"> = {
    listMetrics(input) {
      calls.push(input);
      const all = input.IncludeLinkedAccounts ? metrics : metrics.filter(([a]) => a === MONITORING);
      const page: Metric[] = all.map(([, service]) => ({
        Namespace: input.Namespace,
        MetricName: "CPUUtilization",
        Dimensions: [{ Name: "ServiceName", Value: service }, { Name: "ClusterName", Value: "shared" }],
      }));
      const listed: Listed = { metrics: page, nextToken: undefined };
      const accounts = owning(all.map(([a]) => a));
      return Promise.resolve(accounts === undefined ? listed : { ...listed, owningAccounts: accounts });
    },
  };
  return { api, calls };
}

const FLEET: [string, string][] = [
  [MONITORING, "web"],
  ["111111111111", "web"],
  ["111111111111", "api"],
  ["222222222222", "web"],
  ["333333333333", "web"],
];

test("loadConfig() refuses linked_accounts where the destination has no account dimension: accounts alike would be one metric", () => {
  const text = configOf(monitoringEntry("true")).replace(
    "destination: { region: eu-west-1 }",
    "destination: { region: eu-west-1, account_dimension: null }",
  );
  assert.throws(
    () => loadConfig(text, "f.yaml", {}),
    (e) =>
      e instanceof ConfigError && e.problems.length === 1 &&
      /^f\.yaml:\d+:\d+: Cannot read linked accounts without the destination's account_dimension: .* \(at accounts\.0\.linked_accounts\)$/
        .test(e.problems[0]!),
  );
  assert.doesNotThrow(() => loadConfig(configOf(monitoringEntry("true")), "f.yaml", {}));
});

test("discover() through a monitoring account attributes each metric to its owning account, as the entry selects", async () => {
  const cases: [string, Partial<NonNullable<SourcePlan["linked"]>>, string[]][] = [
    ["every linked account", {}, [
      "production/web",
      "production/api",
      "222222222222/web",
      "333333333333/web",
    ]],
    ["include", { include: ["222222222222", "333333333333"] }, ["222222222222/web", "333333333333/web"]],
    ["exclude", { exclude: ["111111111111"] }, ["222222222222/web", "333333333333/web"]],
    ["include less exclude", { include: ["111111111111", "222222222222"], exclude: ["222222222222"] }, [
      "production/web",
      "production/api",
    ]],
    ["own metrics too", { ownMetrics: true, include: ["333333333333"] }, [
      "monitoring/web",
      "333333333333/web",
    ]],
  ];
  for (const [name, linked, expected] of cases) {
    const src = monitoringSource({ names: { "111111111111": "production" }, ...linked });
    const { api, calls } = linkedLister(FLEET);
    const { streams } = await discover(throughLinks(api, src), src.metrics, false, {}, ownersOf(src));
    assert.deepEqual(streams.map((s) => `${accountOf(src, s)}/${s.dims[1]!.Value}`), expected, name);
    assert.ok(calls.every((c) => c.IncludeLinkedAccounts === true), name);
  }
});

test("keyOf() and targetOf() name a linked stream's owning account; streams alike in two accounts stay two", async () => {
  const src = monitoringSource({ names: { "111111111111": "production" } });
  const { api } = linkedLister(FLEET);
  const { streams } = await discover(throughLinks(api, src), src.metrics, false, {}, ownersOf(src));
  const web = streams.filter((s) => s.dims[1]!.Value === "web");
  assert.equal(web.length, 3);
  assert.deepEqual(web.map((s) => JSON.parse(keyOf(src, s))[0]), [
    "production",
    "222222222222",
    "333333333333",
  ]);
  const target = targetOf(
    {
      destination: {
        region: "eu-west-1",
        namespace: "Forwarded/{namespace}",
        accountDimension: "SourceAccount",
        regionDimension: "SourceRegion",
        roleArn: undefined,
        externalId: undefined,
      },
    } as Parameters<typeof targetOf>[0],
    src,
  );
  assert.deepEqual(web.map((s) => target(s).dims[0]), [
    { Name: "SourceAccount", Value: "production" },
    { Name: "SourceAccount", Value: "222222222222" },
    { Name: "SourceAccount", Value: "333333333333" },
  ]);
  assert.equal(
    whereOf(src, streams),
    `accounts "production", "222222222222", "333333333333" (through "monitoring") in eu-west-1`,
  );
});

test("discover() through a monitoring account refuses a listing whose OwningAccounts are missing or do not line up", async () => {
  const cases: [string, (a: string[]) => string[] | undefined, string][] = [
    ["missing", () => undefined, "5 metrics with no OwningAccounts"],
    ["one short", (a) => a.slice(0, -1), "5 metrics with 4 owning accounts"],
    ["one more", (a) => [...a, "111111111111"], "5 metrics with 6 owning accounts"],
  ];
  for (const [name, owning, what] of cases) {
    const src = monitoringSource();
    const { api } = linkedLister(FLEET, owning);
    await assert.rejects(
      discover(throughLinks(api, src), src.metrics, false, {}, ownersOf(src)),
      {
        name: "OwningAccountsMismatch",
        call: "ListMetrics",
        message:
          `Cannot tell which accounts the AWS/ECS metrics listed through "monitoring" belong to: it answered ${what}, where the API reference promises one a metric`,
      },
      name,
    );
  }
});

const listingRun = (store = memoryStore()) => ({
  store,
  nowSeconds: T,
  dryRun: false,
  discoveryInterval: 600,
  log: { debug() {}, info() {} } as unknown as Parameters<typeof streamsOf>[2]["log"],
});

test("discover() through a monitoring account looks a streams: list up in the listing, in each account", async () => {
  const src = monitoringSource();
  const values = [{ ClusterName: "shared", ServiceName: "api" }, {
    ClusterName: "shared",
    ServiceName: "db",
  }];
  src.metrics[0] = { ...src.metrics[0]!, streams: values };
  const { api } = linkedLister(FLEET);
  const { streams } = await discover(throughLinks(api, src), src.metrics, false, {}, ownersOf(src));
  // Only 111111111111 lists "api"; nobody lists "db", which is not forwarded unlisted.
  assert.deepEqual(streams.map((s) => `${accountOf(src, s)}/${s.dims[1]!.Value}`), ["111111111111/api"]);
});

test("discover() through a monitoring account takes an empty page without OwningAccounts", async () => {
  const src = monitoringSource();
  const { api } = linkedLister([], () => undefined);
  const { streams } = await discover(throughLinks(api, src), src.metrics, false, {}, ownersOf(src));
  assert.deepEqual(streams, []);
});

test("streamsOf() keeps a monitoring account's listing with the accounts it found, and rebuilds their streams", async () => {
  const src = monitoringSource({ names: { "111111111111": "production" } });
  const { api, calls } = linkedLister(FLEET);
  const run = listingRun();
  const first = await streamsOf(api, src, run, false);
  assert.equal(calls.length, 1);
  assert.deepEqual(run.store.listing("monitoring", "eu-west-1")?.owners, {
    production: "111111111111",
    "222222222222": "222222222222",
    "333333333333": "333333333333",
  });
  const kept = await streamsOf(api, src, { ...run, nowSeconds: T + 60 }, false);
  assert.equal(calls.length, 1, "the listing is kept");
  const described = (list: Stream[]) =>
    list.map((s) => `${s.owner?.id}/${accountOf(src, s)}/${s.dims[1]!.Value}`).sort();
  assert.deepEqual(described(kept.streams), described(first.streams));
});

test("streamsOf() starts a newly linked account's streams at their newest period, and keeps the unlinked one's", async () => {
  const src = monitoringSource();
  const store = memoryStore();
  const web = (account: string): [string, string] => [account, "web"];
  await streamsOf(
    linkedLister([web("111111111111"), web("333333333333")]).api,
    src,
    listingRun(store),
    false,
  );
  const later = { ...listingRun(store), nowSeconds: T + 3600 };
  const relisted = [web("111111111111"), ["111111111111", "api"], web("222222222222")] as [string, string][];
  await streamsOf(linkedLister(relisted).api, src, later, false);
  const state = (account: string, service: string) =>
    store.get(JSON.stringify([
      account,
      "eu-west-1",
      "AWS/ECS",
      "CPUUtilization",
      [["ClusterName", "shared"], ["ServiceName", service]],
      60,
    ]));
  // A new service of an account read before owes from the last listing, less ListMetrics' 15 minutes.
  assert.deepEqual(state("111111111111", "api"), { seen: T + 3600, since: T - 900 });
  // A newly linked account's stream starts as in a first listing: at its newest period.
  assert.deepEqual(state("222222222222", "web"), { seen: T + 3600 });
  // The unlinked account's stays, no longer found, until it is forgotten.
  assert.deepEqual(state("333333333333", "web"), { seen: T });
  assert.deepEqual(Object.keys(store.listing("monitoring", "eu-west-1")!.owners!).sort(), [
    "111111111111",
    "222222222222",
    "333333333333",
  ]);
});

/** GetMetricData of a monitoring account: Forbidden for the accounts in `forbidden`, one datapoint else. */
function linkedReader(forbidden: Set<string>) {
  const queries: Query[] = [];
  const api: Pick<CloudWatchApi, "getMetricData"> = {
    getMetricData(input) {
      queries.push(...input.queries);
      return Promise.resolve({
        nextToken: undefined,
        results: input.queries.map((q) =>
          forbidden.has(q.AccountId ?? MONITORING)
            ? { Id: q.Id, Timestamps: [], Values: [], StatusCode: "Forbidden" }
            : { Id: q.Id, Timestamps: [T], Values: [1], StatusCode: "Complete" }
        ),
      });
    },
  };
  return { api, queries };
}

test("fetchStats() asks each linked stream of its account (AccountId), and a Forbidden account fails alone", async () => {
  const src = monitoringSource({ ownMetrics: true });
  const { api: lister } = linkedLister(FLEET);
  const { streams } = await discover(throughLinks(lister, src), src.metrics, false, {}, ownersOf(src));
  const { api, queries } = linkedReader(new Set(["222222222222"]));
  const refused: Stream[] = [];
  const stats = await fetchStats(api, streams, { start: T, end: T + 60 }, 60, (s) => refused.push(s));
  assert.deepEqual(
    [...new Set(queries.map((q) => q.AccountId))],
    [MONITORING, "111111111111", "222222222222", "333333333333"],
  );
  assert.deepEqual(refused.map((s) => s.owner?.id), ["222222222222"]);
  assert.deepEqual(stats.map((periods) => periods.length), [1, 1, 1, 0, 1]);
  // A Forbidden answer for the caller's own metrics is no linked account's failure: the fetch fails.
  const { api: own } = linkedReader(new Set([MONITORING]));
  const direct: Stream = { plan: src.metrics[0]!, name: "CPUUtilization", dims: [] };
  await assert.rejects(
    fetchStats(own, [direct], { start: T, end: T + 60 }, 60, () => assert.fail("not linked")),
    /GetMetricData answered Forbidden/,
  );
});

const key = (account: string, service: string) =>
  JSON.stringify([account, "eu-west-1", "AWS/ECS", "CPUUtilization", [["ServiceName", service]], 60]);

const contents = (o: Partial<StoreContents>): StoreContents => ({
  streams: {},
  listings: new Map(),
  sources: new Map(),
  continuous: true,
  ...o,
});

test("statusOf() gives a monitoring account-region a row per account read through it, unlinked ones no longer found", () => {
  const src = monitoringSource();
  const listing = {
    listedAt: T,
    fingerprint: "",
    counts: {},
    owners: { production: "111111111111", "222222222222": "222222222222", gone: "333333333333" },
  };
  const statuses = statusOf(
    [src],
    contents({
      streams: {
        [key("production", "a")]: { next: T - 180, seen: T },
        [key("production", "b")]: { next: T - 240, seen: T },
        [key("222222222222", "a")]: { next: T - 180, seen: T },
        [key("gone", "a")]: { next: T - 3600, seen: T - 3600 },
      },
      listings: new Map([[JSON.stringify(["monitoring", "eu-west-1"]), listing]]),
      sources: new Map([
        [JSON.stringify(["222222222222", "eu-west-1"]), { lastError: "GetMetricData Forbidden", errorAt: T }],
      ]),
    }),
    T,
  );
  assert.deepEqual(statusLines(statuses, T), [
    "222222222222 eu-west-1 (through monitoring): forwarded up to 2026-11-24T11:57:00Z (3 min behind), 1 stream; its last run failed at 2026-11-24T12:00:00Z: GetMetricData Forbidden",
    "gone eu-west-1 (through monitoring): none of its streams found by the last listing (its link is gone, or no longer shares them); 1 no longer found",
    "production eu-west-1 (through monitoring): forwarded up to 2026-11-24T11:56:00Z (4 min behind), 2 streams",
  ]);
  assert.deepEqual(statuses.map((s) => [s.account, s.through, s.state]), [
    ["222222222222", "monitoring", "failing"],
    ["gone", "monitoring", "no longer found"],
    ["production", "monitoring", "ok"],
  ]);
  // Failed as a whole (AssumeRole, say), every account read through it shows the failure.
  const failed = statusOf(
    [src],
    contents({
      streams: { [key("production", "a")]: { next: T - 180, seen: T } },
      listings: new Map([[JSON.stringify(["monitoring", "eu-west-1"]), {
        ...listing,
        owners: { production: "1" },
      }]]),
      sources: new Map([[JSON.stringify(["monitoring", "eu-west-1"]), {
        lastError: "AccessDenied",
        errorAt: T,
      }]]),
    }),
    T,
  );
  assert.deepEqual(failed.map((s) => [s.account, s.state, s.lastError]), [[
    "production",
    "failing",
    "AccessDenied",
  ]]);
});

test("selfMetrics() writes a monitoring account-region as a whole under its name, and each account read through it", async () => {
  const src = monitoringSource({ names: { "111111111111": "production" } });
  const store = memoryStore();
  await streamsOf(linkedLister(FLEET).api, src, listingRun(store), false);
  const keys = ["production", "222222222222", "333333333333"].flatMap((a) => store.keys(a, "eu-west-1"));
  await store.update(keys, (s) => ({ ...s, next: T - 180 }));
  const run = { plan: { sources: [src] }, nowSeconds: T, store } as unknown as Parameters<
    typeof selfMetrics
  >[0];
  assert.deepEqual(Object.fromEntries(lagsOf(run, src)), {
    production: 180,
    "222222222222": 180,
    "333333333333": 180,
  });
  const totals = {
    datums: 7,
    streams: 4,
    owners: new Map([
      ["production", { streams: 2, datums: 4 }],
      ["222222222222", { streams: 1, datums: 3 }],
      ["333333333333", { streams: 1, datums: 0, failed: "GetMetricData Forbidden" }],
    ]),
  } as unknown as SourceTotals;
  const written = selfMetrics(run, [totals], [180], 2).filter((d) => d.MetricName !== "RunSeconds").map((d) =>
    `${d.MetricName} ${d.Dimensions.map((x) => x.Value).join(",")} ${d.Value}`
  );
  assert.deepEqual(written, [
    "FailedAccountRegions  0",
    "Datums monitoring,eu-west-1 7",
    "Streams monitoring,eu-west-1 4",
    "Errors monitoring,eu-west-1 1",
    "LagSeconds monitoring,eu-west-1 180",
    "Datums production,eu-west-1 4",
    "Streams production,eu-west-1 2",
    "Errors production,eu-west-1 0",
    "LagSeconds production,eu-west-1 180",
    "Datums 222222222222,eu-west-1 3",
    "Streams 222222222222,eu-west-1 1",
    "Errors 222222222222,eu-west-1 0",
    "LagSeconds 222222222222,eu-west-1 180",
    "Datums 333333333333,eu-west-1 0",
    "Streams 333333333333,eu-west-1 1",
    "Errors 333333333333,eu-west-1 1",
    "LagSeconds 333333333333,eu-west-1 180",
  ]);
});

test("openStore() keeps a listing's owning accounts, and upgrades a database of schema 2 to hold them", () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fwd-linked-")), "state.db");
  const open = () =>
    openStore(file, {
      clock: () => T * 1000,
      nowSeconds: T,
      interval: 60,
      legacyFile: undefined,
      info: () => {},
    });
  const listing: Listing = { listedAt: T, fingerprint: "f", counts: {} };
  let store = open();
  store.setListing("direct", "eu-west-1", listing);
  store.close();
  // What the version before made: schema 2, no owners column.
  const db = new DatabaseSync(file);
  db.exec("ALTER TABLE listings DROP COLUMN owners; PRAGMA user_version = 2");
  db.close();
  assert.deepEqual(readStore(file).listings.get(JSON.stringify(["direct", "eu-west-1"])), listing);
  store = open();
  store.setListing("monitoring", "eu-west-1", { ...listing, owners: { production: "111111111111" } });
  store.close();
  assert.deepEqual(
    readStore(file).listings,
    new Map([
      [JSON.stringify(["direct", "eu-west-1"]), listing],
      [JSON.stringify(["monitoring", "eu-west-1"]), { ...listing, owners: { production: "111111111111" } }],
    ]),
  );
});
