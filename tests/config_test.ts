import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import bundled from "../forwarder.yaml" with { type: "text" };
import { EXIT } from "../forward.ts";
import { regionFacts } from "../lib/aws.ts";
import { loadConfig, type RegionChecks } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { logged, run } from "./fakes.ts";
import { jsonSchema, SCHEMA_FILE } from "./schema.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const ENV = { ROLE: "arn:aws:iam::111111111111:role/r" };
const BUNDLED_ENV = {
  PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::111111111111:role/transfer",
  ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::222222222222:role/transfer",
  TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::333333333333:role/transfer",
};

/** Regions checked against the AWS SDK's as a run checks them; what they log kept as "LEVEL line". */
function regionChecks(notes: string[] = []): RegionChecks {
  return {
    facts: regionFacts,
    log: { warn: (l) => notes.push(`WARN ${l}`), info: (l) => notes.push(`INFO ${l}`) },
  };
}

function problems(text: string, file: string, env: Record<string, string> = ENV, notes?: string[]): string[] {
  try {
    loadConfig(text, file, env, regionChecks(notes));
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

test("loadConfig() resolves the bundled config: three accounts, production in two regions, the blog's metrics", () => {
  const plan = loadConfig(bundled, "forwarder.yaml", BUNDLED_ENV);
  assert.deepEqual(plan.sources.map((s) => `${s.account}/${s.region}/${s.roleArn}`), [
    "production/eu-west-1/arn:aws:iam::111111111111:role/transfer",
    "production/us-east-1/arn:aws:iam::111111111111:role/transfer",
    "acceptance/eu-west-1/arn:aws:iam::222222222222:role/transfer",
    "test/eu-west-1/arn:aws:iam::333333333333:role/transfer",
  ]);
  assert.deepEqual(plan.destination, {
    region: "eu-west-1",
    namespace: "Forwarded/{namespace}",
    accountDimension: "SourceAccount",
    regionDimension: "SourceRegion",
    roleArn: undefined,
    externalId: undefined,
  });
  assert.deepEqual(plan.sources[0]!.metrics, [{
    namespace: "AWS/ECS",
    names: ["CPUUtilization", "MemoryUtilization"],
    dimensions: ["ClusterName", "ServiceName"],
    match: {},
    streams: undefined,
    unit: "Percent",
    stats: [],
    period: 60,
    delay: 120,
    recheckAfter: 600,
  }]);
});

test("loadConfig() applies settings from the metrics entry, then the account, then defaults", () => {
  const text = `
destination: { account_dimension: null }
defaults: { period: 300, delay: 60, regions: [eu-central-1], recheck_after: 900 }
accounts:
  - { name: a, period: 120, recheck_after: 0 }
  - { name: b, regions: [us-west-2] }
metrics:
  - { namespace: X, names: [m], dimensions: [d], delay: 600 }
  - { namespace: Y, names: [n], streams: [{ d: v }], period: 60, regions: [eu-west-1], recheck_after: 300 }
`;
  const plan = loadConfig(text, "f.yaml", { AWS_REGION: "eu-north-1" });
  assert.equal(plan.destination.region, "eu-north-1");
  assert.equal(plan.destination.accountDimension, null);
  const summary = plan.sources.map((s) =>
    `${s.account}/${s.region}: ${
      s.metrics.map((m) => `${m.namespace} ${m.period}/${m.delay}/${m.recheckAfter}`).join(", ")
    }`
  );
  assert.deepEqual(summary, [
    "a/eu-central-1: X 120/600/0",
    "a/eu-west-1: Y 60/60/300",
    "b/us-west-2: X 300/600/900",
    "b/eu-west-1: Y 60/60/300",
  ]);
  assert.deepEqual(plan.sources[1]!.metrics[0]!.dimensions, ["d"]);
});

test("loadConfig() resolves interval, discovery_interval and self_metrics, each with its default", () => {
  const plan = (top: string) => {
    const { interval, discoveryInterval, selfMetrics } = loadConfig(
      config("", "dimensions: [d]", top),
      "f.yaml",
      ENV,
    );
    return { interval, discoveryInterval, selfMetrics };
  };
  assert.deepEqual(plan(""), { interval: 60, discoveryInterval: 600, selfMetrics: true });
  assert.deepEqual(plan("interval: 300\ndiscovery_interval: 3600\nself_metrics: false\n"), {
    interval: 300,
    discoveryInterval: 3600,
    selfMetrics: false,
  });
  assert.deepEqual(plan("interval: 10\ndiscovery_interval: 86400\n"), {
    interval: 10,
    discoveryInterval: 86400,
    selfMetrics: true,
  });
  assert.equal(
    verdict(config("", "dimensions: [d]", "interval: 86401\ndiscovery_interval: 59\n")),
    [
      "Expected an interval of 10 to 86400 whole seconds but received 86401 (at interval)",
      "Expected a discovery interval of 60 to 86400 whole seconds but received 59 (at discovery_interval)",
    ].join("\n"),
  );
});

test("loadConfig() needs a destination region from the config or the environment", () => {
  const text = "accounts: [{ name: a }]\nmetrics: [{ namespace: X, names: [m], dimensions: [d] }]\n";
  assert.deepEqual(problems(text, "f.yaml", {}), [
    "f.yaml:1:1: Cannot choose the destination region: set destination.region, AWS_REGION or AWS_DEFAULT_REGION (at destination.region)",
  ]);
  assert.equal(
    loadConfig(text, "f.yaml", { AWS_DEFAULT_REGION: "ap-south-1" }).destination.region,
    "ap-south-1",
  );
  assert.equal(
    loadConfig(text, "f.yaml", { AWS_REGION: "", AWS_DEFAULT_REGION: "ap-south-1" }).destination.region,
    "ap-south-1",
  );
  assert.deepEqual(problems(text, "f.yaml", { AWS_REGION: "Ireland\n" }), [
    'f.yaml:1:1: Expected an AWS region such as "eu-west-1" but received "Ireland\\n" in AWS_REGION (at destination.region)',
  ]);
});

for (const name of fs.readdirSync(fixtures).filter((f) => f.endsWith(".bad.yaml")).sort()) {
  test(`loadConfig() reports ${name.replace(".bad.yaml", "")} exactly as expected`, () => {
    const text = fs.readFileSync(new URL(name, fixtures), "utf8");
    const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]);
    assert.ok(expected.length > 0, "the fixture names the messages it expects");
    assert.deepEqual(problems(text, name), expected);
  });
}

/** A config with one metrics entry; `destination` and `entry` are the flow-mapping entries to add. */
function config(destination: string, entry: string, top = ""): string {
  return `${top}destination: { region: eu-west-1, ${destination} }
accounts: [{ name: production }]
metrics: [{ namespace: AWS/ECS, names: [CPUUtilization], ${entry} }]
`;
}

/** What loadConfig() says about a config: "OK" or its problems without the file and position. */
function verdict(text: string, env: Record<string, string> = ENV): string {
  return problems(text, "f.yaml", env).map((p) => p.replace(/^f\.yaml:\d+:\d+: /, "")).join("\n") || "OK";
}

const q = JSON.stringify;

test("loadConfig() keeps to CloudWatch's namespace rules, in the source and the target", () => {
  const cases: [string, string, string][] = [
    // [destination.namespace, metrics[].namespace, verdict]
    ["Fwd:{namespace}", "AWS/ECS", "OK"],
    ["Forwarded/{namespace}", "My App/v1.2_x-y#z:w", "OK"],
    ["Copy", "AWS/ECS", "OK"],
    [`${"x".repeat(247)}/{namespace}`, "AWS/ECS", "OK"],
    [
      ":Fwd",
      "AWS/ECS",
      'Expected a target namespace that does not start with a colon but received ":Fwd" (at destination.namespace)',
    ],
    [
      "Fwd/ÄÖ",
      "AWS/ECS",
      'Expected a target namespace of letters, digits, spaces and . - _ / # : but received "Fwd/ÄÖ" (at destination.namespace)',
    ],
    [
      "Fwd/{namespace}",
      ":X",
      'Expected a namespace that does not start with a colon but received ":X" (at metrics.0.namespace)',
    ],
    [
      "Fwd/{namespace}",
      "Tab\tbed",
      'Expected a namespace of letters, digits, spaces and . - _ / # : but received "Tab\\tbed" (at metrics.0.namespace)',
    ],
    [
      "Fwd/{name}",
      "AWS/ECS",
      'Expected a target namespace of letters, digits, spaces and . - _ / # : but received "Fwd/{name}" (at destination.namespace)',
    ],
    [
      "{namespace}",
      "AWS/ECS",
      'The target namespace "AWS/ECS" begins with AWS/, which AWS reserves (at destination.namespace)',
    ],
    [
      `${"x".repeat(248)}/{namespace}`,
      "AWS/ECS",
      `Expected a target namespace of 1 to 255 characters but received "${
        "x".repeat(60)
      }…" (256 characters) (at destination.namespace)`,
    ],
  ];
  for (const [target, source, expected] of cases) {
    const text = config(`namespace: ${q(target)}`, `dimensions: [d]`).replace("AWS/ECS", source);
    assert.equal(verdict(text.replace(`namespace: AWS/ECS`, `namespace: ${q(source)}`)), expected, target);
  }
});

test("loadConfig() keeps to CloudWatch's dimension rules wherever the config names a dimension", () => {
  // Every place whose text becomes a dimension name or value, in the destination or in a request.
  const places: [string, (s: string) => string, string][] = [
    ["name", (s) => config("", `dimensions: [${q(s)}]`), "metrics.0.dimensions.0"],
    ["name", (s) => config("", `dimensions: [${q(s)}], match: { ${q(s)}: x }`), "metrics.0.match"],
    ["name", (s) => config("", `streams: [{ ${q(s)}: x }]`), "metrics.0.streams.0"],
    ["name", (s) => config(`account_dimension: ${q(s)}`, "dimensions: [d]"), "destination.account_dimension"],
    ["name", (s) => config(`region_dimension: ${q(s)}`, "dimensions: [d]"), "destination.region_dimension"],
    ["value", (s) => config("", `dimensions: [d], match: { d: ${q(s)} }`), "metrics.0.match.d"],
    ["value", (s) => config("", `streams: [{ d: ${q(s)} }]`), "metrics.0.streams.0.d"],
  ];
  const valid: Record<string, string[]> = {
    name: ["ClusterName", "aws:cloudformation:stack-name", "a b", "n".repeat(255)],
    value: ["prod", " x ", ":x", "v".repeat(1024)],
  };
  const invalid: Record<string, [string, string][]> = {
    name: [
      ["", 'Expected a dimension name of 1 to 255 characters but received ""'],
      [" ", 'Expected a dimension name with a character other than a space but received " "'],
      [
        "a\tb",
        'Expected a dimension name of ASCII characters without control characters but received "a\\tb"',
      ],
      [":a", 'Expected a dimension name that does not start with a colon but received ":a"'],
      [
        "Größe",
        'Expected a dimension name of ASCII characters without control characters but received "Größe"',
      ],
      [
        "n".repeat(256),
        `Expected a dimension name of 1 to 255 characters but received "${"n".repeat(60)}…" (256 characters)`,
      ],
    ],
    value: [
      ["  ", 'Expected a dimension value with a character other than a space but received "  "'],
      [
        "a\nb",
        'Expected a dimension value of ASCII characters without control characters but received "a\\nb"',
      ],
      ["é", 'Expected a dimension value of ASCII characters without control characters but received "é"'],
      [
        "v".repeat(1025),
        `Expected a dimension value of 1 to 1024 characters but received "${
          "v".repeat(60)
        }…" (1,025 characters)`,
      ],
    ],
  };
  for (const [kind, place, path] of places) {
    for (const s of valid[kind]!) assert.equal(verdict(place(s)), "OK", `${kind} ${q(s)} at ${path}`);
    for (const [s, message] of invalid[kind]!) {
      const found = problems(place(s), "f.yaml");
      assert.ok(
        found.some((p) => p.includes(`: ${message} (at ${path}`)),
        `${kind} ${q(s)} at ${path}: ${found}`,
      );
    }
  }
  // A match value without wildcards goes to ListMetrics as a dimension value; one with them is a pattern.
  assert.equal(verdict(config("", 'dimensions: [d], match: { d: "prod-*" }')), "OK");
});

test("loadConfig() refuses __proto__, constructor and prototype as keys, and never changes a prototype", () => {
  const text = config("__proto__: { polluted: 1 }", "dimensions: [d], constructor: { polluted: 1 }")
    .replace("{ name: production }", "{ name: production, prototype: 1 }");
  assert.deepEqual(verdict(text).split("\n"), [
    'Unknown key "__proto__" (at destination.__proto__)',
    'Unknown key "prototype" (at accounts.0.prototype)',
    'Unknown key "constructor" (at metrics.0.constructor)',
  ]);
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
});

test("loadConfig() reads only the environment's own strings for ${NAME}", () => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    assert.equal(
      verdict(config(`role_arn: "\${${name}}"`, "dimensions: [d]")),
      `Environment variable "${name}" is not set (at destination.role_arn)`,
    );
  }
  const env = Object.assign(Object.create({ INHERITED: "arn:aws:iam::111111111111:role/r" }), ENV);
  assert.equal(
    verdict(config('role_arn: "${INHERITED}"', "dimensions: [d]"), env),
    'Environment variable "INHERITED" is not set (at destination.role_arn)',
  );
  assert.equal(verdict(config('role_arn: "${ROLE}"', "dimensions: [d]")), "OK");
});

test("loadConfig() answers huge values and files with one short line", () => {
  const huge = "x".repeat(10_000_000);
  const cases: [string, string, Record<string, string>][] = [
    ["a 10 MB file", config(`role_arn: ${huge}`, "dimensions: [d]"), ENV],
    ["a 10 MB variable", config('region: "${HUGE}"', "dimensions: [d]").replace("region: eu-west-1, ", ""), {
      HUGE: `${huge}\n`,
    }],
    ["a 900 kB value", config("", "dimensions: [d]").replace("eu-west-1", huge.slice(0, 900_000)), ENV],
    [
      "a 900 kB key",
      config("", "dimensions: [d]").replace("region:", `"${huge.slice(0, 900_000)}\t": 1, region:`),
      ENV,
    ],
    ["a 900 kB variable name", config(`role_arn: "\${${"X".repeat(900_000)}}"`, "dimensions: [d]"), ENV],
  ];
  for (const [name, text, env] of cases) {
    const started = performance.now();
    const found = problems(text, "f.yaml", env);
    const ms = performance.now() - started;
    assert.equal(found.length, 1, name);
    assert.ok(found[0]!.length < 300, `${name}: ${found[0]!.length} characters`);
    assert.ok(!/[\n\r\t]/.test(found[0]!), name);
    assert.ok(ms < 2000, `${name} took ${ms} ms`);
  }
  assert.deepEqual(problems(config(`role_arn: ${huge}`, "dimensions: [d]"), "f.yaml"), [
    "f.yaml:1:1: Cannot read config: 10.1 MB is more than the 1 MB a config may have",
  ]);
});

test("loadConfig() refuses deep nesting at once, however it is written", () => {
  const n = 5000;
  // Block mappings indented one space per level fit 1,400 levels into 1 MB; 5,000 are refused for size.
  let block = "";
  for (let i = 0; i < 1400; i++) block += `${" ".repeat(i)}a:\n`;
  const cases: [string, string, string][] = [
    ["flow sequences", `accounts: ${"[".repeat(n)}${"]".repeat(n)}\n`, "f.yaml:1:42: "],
    ["flow mappings", `accounts: ${"{a: ".repeat(n)}1${"}".repeat(n)}\n`, "f.yaml:1:135: "],
    ["block mappings", block, "f.yaml:33:33: "],
    ["block sequences", `${"- ".repeat(n)}x\n`, "f.yaml:1:65: "],
    ["explicit keys", `${"? ".repeat(n)}x\n`, "f.yaml:1:65: "],
    ["unclosed", `accounts: ${"[".repeat(n)}\n`, "f.yaml:1:42: "],
  ];
  for (const [name, text, at] of cases) {
    const started = performance.now();
    const found = problems(text, "f.yaml");
    const ms = performance.now() - started;
    assert.deepEqual(found, [`${at}Expected at most 32 levels of nesting`], name);
    // Generous: only a guard against the minutes and gigabytes such input took before.
    assert.ok(ms < 2000, `${name} took ${ms} ms`);
  }
  const nested = (levels: number) => `accounts: ${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}\n`;
  assert.ok(!verdict(nested(32)).includes("levels of nesting"));
  assert.ok(verdict(nested(33)).includes("levels of nesting"));
});

test("loadConfig() reports at most 50 problems, then says that there are more", () => {
  const keys = Array.from({ length: 60 }, (_, i) => `k${i}: 1`).join(", ");
  const found = problems(config(keys, "dimensions: [d]"), "f.yaml");
  assert.equal(found.length, 51);
  assert.equal(found[0], 'f.yaml:1:35: Unknown key "k0" (at destination.k0)');
  assert.equal(
    found[50],
    "f.yaml:1:425: Cannot report more than 50 problems at once: fix these and check again",
  );
});

test("the committed JSON Schema matches the valibot schema (npm run schema regenerates it)", () => {
  assert.equal(fs.readFileSync(SCHEMA_FILE, "utf8"), jsonSchema());
  assert.match(
    bundled.split("\n")[0]!,
    /^# yaml-language-server: \$schema=\.\/lib\/forwarder\.schema\.json$/,
  );
});

/** The Regions every account can use without enabling them (launched before March 20, 2019). */
const ENABLED_BY_DEFAULT = [
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "ca-central-1",
  "sa-east-1",
  "eu-central-1",
  "eu-north-1",
  "eu-west-1",
  "eu-west-2",
  "eu-west-3",
  "ap-northeast-1",
  "ap-northeast-2",
  "ap-northeast-3",
  "ap-south-1",
  "ap-southeast-1",
  "ap-southeast-2",
];

test("regionFacts() answers from the AWS SDK's partition data: listed or not, opt-in, and the listed names near", () => {
  for (const r of ENABLED_BY_DEFAULT) assert.deepEqual(regionFacts(r), { listed: true, optIn: false }, r);
  for (const r of ["af-south-1", "ap-east-1", "me-south-1", "eu-south-1", "il-central-1", "mx-central-1"]) {
    assert.deepEqual(regionFacts(r), { listed: true, optIn: true }, r);
  }
  // Opt-in Regions are the aws partition's; China's and GovCloud's are their accounts' own.
  for (const r of ["cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-iso-east-1"]) {
    assert.deepEqual(regionFacts(r), { listed: true, optIn: false }, r);
  }
  const typo = regionFacts("eu-wset-1");
  assert.ok(!typo.listed && typo.optIn);
  for (const r of [...ENABLED_BY_DEFAULT, "af-south-1", "ap-southeast-5", "cn-north-1"]) {
    assert.ok(typo.regions.includes(r), r);
  }
  assert.ok(!typo.regions.includes("us-gov-west-1"));
  // A name's own area is asked too, where it is more than two letters.
  const gov = regionFacts("us-gov-wset-1");
  assert.ok(!gov.listed && !gov.optIn);
  assert.ok(gov.regions.includes("us-gov-west-1") && gov.regions.includes("us-gov-east-1"));
});

const NEWER = "is not in this AWS SDK's list of regions: going on, as it may be newer than the SDK";
const OPT_IN = "(and then an opt-in Region, which each account must enable)";

test("loadConfig() checks regions against the AWS SDK's: a misspelt one is an error naming the nearest, a newer one a warning", () => {
  const cases: [string, string][] = [
    // [a source region, what loadConfig says: its problem, or the notes it logs]
    ["eu-west-1", "OK"],
    ["ap-northeast-3", "OK"],
    ["cn-northwest-1", "OK"],
    ["us-gov-west-1", "OK"],
    [
      "af-south-1",
      'INFO Region "af-south-1" is an opt-in Region: each account that uses it must have enabled it',
    ],
    ["eu-wset-1", 'Unknown AWS region "eu-wset-1"; did you mean "eu-west-1"?'],
    ["eu-westt-1", 'Unknown AWS region "eu-westt-1"; did you mean "eu-west-1"?'],
    ["ap-sotheast-2", 'Unknown AWS region "ap-sotheast-2"; did you mean "ap-southeast-2"?'],
    ["us-gov-wset-1", 'Unknown AWS region "us-gov-wset-1"; did you mean "us-gov-west-1"?'],
    ["zz-north-1", 'Unknown AWS region "zz-north-1"; did you mean "cn-north-1" or "eu-north-1"?'],
    ["qq-fooo-1", 'Unknown AWS region "qq-fooo-1": no AWS partition has regions beginning "qq-"'],
    // Named as a partition names its regions, or with a new word far from every listed name: newer than the SDK.
    ["eu-west-9", `WARN Region "eu-west-9" ${NEWER} ${OPT_IN}`],
    ["us-central-9", `WARN Region "us-central-9" ${NEWER} ${OPT_IN}`],
    ["us-midwest-9", `WARN Region "us-midwest-9" ${NEWER} ${OPT_IN}`],
    ["cn-south-9", `WARN Region "cn-south-9" ${NEWER}`],
    ["us-gov-north-9", `WARN Region "us-gov-north-9" ${NEWER}`],
  ];
  for (const [region, expected] of cases) {
    const notes: string[] = [];
    const text = config("", "dimensions: [d]").replace(
      "{ name: production }",
      `{ name: p, regions: [${region}] }`,
    );
    const found = [...problems(text, "f.yaml", ENV, notes), ...notes]
      .map((l) => l.replace("f.yaml:2:33: ", "").replace(" (at accounts.0.regions.0)", ""));
    assert.equal(found.join("\n") || "OK", expected, region);
  }
});

test("loadConfig() checks every region the config names, and AWS_REGION, each problem where it is and with the others", () => {
  const text = `destination: { region: eu-wset-2 }
defaults: { regions: [eu-wset-1], period: 7 }
accounts: [{ name: a, regions: [us-wset-2] }]
metrics: [{ namespace: X, names: [m], dimensions: [d], regions: [eu-west-1, us-wset-1] }]
`;
  assert.deepEqual(problems(text, "f.yaml"), [
    "f.yaml:2:43: Expected a period of 1, 5, 10, 30 or a multiple of 60 seconds but received 7 (at defaults.period)",
    'f.yaml:1:24: Unknown AWS region "eu-wset-2"; did you mean "eu-west-2"? (at destination.region)',
    'f.yaml:2:23: Unknown AWS region "eu-wset-1"; did you mean "eu-west-1"? (at defaults.regions.0)',
    'f.yaml:3:33: Unknown AWS region "us-wset-2"; did you mean "us-west-2"? (at accounts.0.regions.0)',
    'f.yaml:4:77: Unknown AWS region "us-wset-1"; did you mean "us-west-1"? (at metrics.0.regions.1)',
  ]);
  const unset = "accounts: [{ name: a }]\nmetrics: [{ namespace: X, names: [m], dimensions: [d] }]\n";
  assert.deepEqual(problems(unset, "f.yaml", { AWS_REGION: "eu-wset-1" }), [
    'f.yaml:1:1: Unknown AWS region "eu-wset-1" in AWS_REGION; did you mean "eu-west-1"? (at destination.region)',
  ]);
  const notes: string[] = [];
  assert.deepEqual(problems(unset, "f.yaml", { AWS_DEFAULT_REGION: "eu-west-9" }, notes), []);
  assert.deepEqual(notes, [
    `WARN f.yaml:1:1: Region "eu-west-9" in AWS_DEFAULT_REGION ${NEWER} ${OPT_IN} (at destination.region)`,
  ]);
  // A note once per region, however many places name it.
  const twice = text.replace(/[a-z]{2}-wset-\d/g, "af-south-1").replace("period: 7", "period: 60");
  notes.length = 0;
  assert.deepEqual(problems(twice, "f.yaml", ENV, notes), []);
  assert.deepEqual(notes, [
    'INFO f.yaml:1:24: Region "af-south-1" is an opt-in Region: each account that uses it must have enabled it (at destination.region)',
  ]);
});

test("main() refuses a misspelt region before any call, with --check-config and without", async () => {
  const file = fileURLToPath(new URL("region-typo.bad.yaml", fixtures));
  const line =
    `${file}:5:15: Unknown AWS region "eu-wset-1"; did you mean "eu-west-1"? (at accounts.0.regions.0)`;
  const env = { STATE_DIRECTORY: fs.mkdtempSync(path.join(os.tmpdir(), "fwd-regions-")) };
  assert.deepEqual(await run(["--config", file, "--check-config"], env), {
    code: EXIT.usage,
    out: [],
    err: [line],
  });
  let calls = 0;
  const refused = await run(["--config", file], env, () => {
    calls++;
    throw new Error("no client was expected");
  });
  assert.deepEqual(refused, { code: EXIT.usage, out: [], err: [line] });
  assert.equal(calls, 0);
});

test("main() --check-config goes on with a region newer than the AWS SDK, and notes it and an opt-in region", async () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "fwd-regions-"));
  const file = path.join(folder, "forwarder.yaml");
  fs.writeFileSync(file, config("", "dimensions: [d]").replace("region: eu-west-1", "region: af-south-1"));
  fs.appendFileSync(file, "defaults: { regions: [eu-west-1, eu-west-9] }\n");
  assert.deepEqual(await run(["--config", file, "--check-config"]), {
    code: EXIT.ok,
    out: [`${file}: OK, 2 account-regions`],
    err: [
      logged(
        "INFO",
        `${file}:1:24: Region "af-south-1" is an opt-in Region: each account that uses it must have enabled it (at destination.region)`,
      ),
      logged("WARN", `${file}:4:34: Region "eu-west-9" ${NEWER} ${OPT_IN} (at defaults.regions.1)`),
    ],
  });
});

/** A small deterministic generator, so a failing mutation can be replayed from its seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x = (x ^= x << 13, x ^= x >>> 17, x ^= x << 5) >>> 0) / 4294967296);
}

const TOKENS = [
  ":",
  "- ",
  "[",
  "]",
  "{",
  "}",
  '"',
  "'",
  "#",
  "${UNSET}",
  "${ROLE}",
  "AWS/",
  "&a",
  "*a",
  "!!binary",
  "\t",
  "  ",
  "\n",
  "null",
  "-1",
  "1e400",
  "0x1F",
  "true",
  "~",
  "?",
  "|",
  ">",
  "%",
  "__proto__",
  "constructor: 1",
  "${constructor}",
  "[".repeat(40),
  "{a: ".repeat(40),
  '"\\t\\n\\u0007"',
  "Fwd:ÄÖ",
  "6e21",
  "x".repeat(300),
];

test("loadConfig() ends 1,000 mutated configs in a plan or in one-line positioned errors, never a crash", () => {
  const bases = [bundled, fs.readFileSync(new URL("base.yaml", fixtures), "utf8")];
  const env = { ...ENV, ...BUNDLED_ENV };
  let ok = 0;
  let refused = 0;
  for (let seed = 1; seed <= 1000; seed++) {
    const r = rng(seed);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
    let lines = pick(bases).split("\n");
    for (let m = 0, n = 1 + Math.floor(r() * 3); m < n; m++) {
      const i = Math.floor(r() * lines.length);
      const line = lines[i] ?? "";
      const at = Math.floor(r() * (line.length + 1));
      switch (Math.floor(r() * 6)) {
        case 0:
          lines.splice(i, 1);
          break;
        case 1:
          lines.splice(i, 0, line);
          break;
        case 2:
          lines[i] = line.slice(0, at) + pick(TOKENS) + line.slice(at);
          break;
        case 3:
          lines[i] = line.slice(0, at) + line.slice(at + 1 + Math.floor(r() * 5));
          break;
        case 4:
          lines[i] = (r() < 0.5 ? " " : "") + line.replace(/^ /, "");
          break;
        default:
          lines = lines.map((
            l,
          ) => (l.includes(":") && r() < 0.2 ? l.replace(/: .*$/, `: ${pick(TOKENS)}`) : l));
      }
    }
    let found: string[];
    try {
      found = problems(lines.join("\n"), "forwarder.yaml", env);
    } catch (e) {
      assert.fail(`seed ${seed} crashed: ${e instanceof Error ? e.stack : String(e)}`);
    }
    if (found.length === 0) ok++;
    else refused++;
    for (const p of found) assert.match(p, /^forwarder\.yaml:\d+:\d+: [^\n\r\u2028\u2029]+$/, `seed ${seed}`);
  }
  // Both outcomes occur, so the mutations reach past the parser and into the checks.
  assert.ok(ok > 20 && refused > 500, `${ok} accepted, ${refused} refused`);
});
