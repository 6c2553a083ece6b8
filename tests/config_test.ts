import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import bundled from "../forwarder.yaml" with { type: "text" };
import { loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { jsonSchema, SCHEMA_FILE } from "./schema.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const ENV = { ROLE: "arn:aws:iam::111111111111:role/r" };
const BUNDLED_ENV = {
  PRODUCTION_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::111111111111:role/transfer",
  ACCEPTANCE_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::222222222222:role/transfer",
  TEST_CROSSACCOUNT_TRANSFER_ROLE_ARN: "arn:aws:iam::333333333333:role/transfer",
};

function problems(text: string, file: string, env: Record<string, string> = ENV): string[] {
  try {
    loadConfig(text, file, env);
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
  }]);
});

test("loadConfig() applies settings from the metrics entry, then the account, then defaults", () => {
  const text = `
destination: { account_dimension: null }
defaults: { period: 300, delay: 60, regions: [eu-central-1] }
accounts:
  - { name: a, period: 120 }
  - { name: b, regions: [us-west-2] }
metrics:
  - { namespace: X, names: [m], dimensions: [d], delay: 600 }
  - { namespace: Y, names: [n], streams: [{ d: v }], period: 60, regions: [eu-west-1] }
`;
  const plan = loadConfig(text, "f.yaml", { AWS_REGION: "eu-north-1" });
  assert.equal(plan.destination.region, "eu-north-1");
  assert.equal(plan.destination.accountDimension, null);
  const summary = plan.sources.map((s) =>
    `${s.account}/${s.region}: ${s.metrics.map((m) => `${m.namespace} ${m.period}/${m.delay}`).join(", ")}`
  );
  assert.deepEqual(summary, [
    "a/eu-central-1: X 120/600",
    "a/eu-west-1: Y 60/60",
    "b/us-west-2: X 300/600",
    "b/eu-west-1: Y 60/60",
  ]);
  assert.deepEqual(plan.sources[1]!.metrics[0]!.dimensions, ["d"]);
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
});

for (const name of fs.readdirSync(fixtures).filter((f) => f.endsWith(".bad.yaml")).sort()) {
  test(`loadConfig() reports ${name.replace(".bad.yaml", "")} exactly as expected`, () => {
    const text = fs.readFileSync(new URL(name, fixtures), "utf8");
    const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]);
    assert.ok(expected.length > 0, "the fixture names the messages it expects");
    assert.deepEqual(problems(text, name), expected);
  });
}

test("the committed JSON Schema matches the valibot schema (npm run schema regenerates it)", () => {
  assert.equal(fs.readFileSync(SCHEMA_FILE, "utf8"), jsonSchema());
  assert.match(
    bundled.split("\n")[0]!,
    /^# yaml-language-server: \$schema=\.\/lib\/forwarder\.schema\.json$/,
  );
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
    for (const p of found) assert.match(p, /^forwarder\.yaml:\d+:\d+: [^\n]+$/, `seed ${seed}`);
  }
  // Both outcomes occur, so the mutations reach past the parser and into the checks.
  assert.ok(ok > 20 && refused > 500, `${ok} accepted, ${refused} refused`);
});
