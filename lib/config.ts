/**
 * forwarder.yaml: YAML text -> ${VAR} substitution -> valibot -> a resolved Plan.
 * Every problem is reported at once, one line each, as `file:line:col: message (at dot.path)`.
 */
import * as fs from "node:fs";
import * as v from "valibot";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from "yaml";
import type { Document, Node } from "yaml";
import { ConfigError, describe } from "./errors.ts";
import {
  DIMENSION_NAME_MAX,
  isValidPeriod,
  METRIC_NAME_MAX,
  NAMESPACE_MAX,
  PUT_MAX_DIMENSIONS,
  UNITS,
} from "./limits.ts";

const Region = v.pipe(
  v.string(),
  v.regex(
    /^[a-z]{2}(-[a-z]+)+-\d+$/,
    (i) => `Expected an AWS region such as "eu-west-1" but received ${i.received}`,
  ),
);
const Regions = v.pipe(v.array(Region), v.minLength(1, "Expected at least one region"));
const Period = v.pipe(
  v.number(),
  v.check(
    isValidPeriod,
    (i) => `Expected a period of 1, 5, 10, 30 or a multiple of 60 seconds but received ${i.received}`,
  ),
);
const Delay = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(0, (i) => `Expected a delay of 0 seconds or more but received ${i.received}`),
);
const RoleArn = v.pipe(
  v.string(),
  v.regex(
    /^arn:aws[\w-]*:iam::\d{12}:role\/[\w+=,.@\/-]+$/,
    (i) => `Expected a role ARN such as "arn:aws:iam::111111111111:role/reader" but received ${i.received}`,
  ),
);
/** AssumeRole.ExternalId: 2 to 1,224 characters of [\w+=,.@:\/-] (STS API reference). */
const ExternalId = v.pipe(
  v.string(),
  v.regex(/^[\w+=,.@:\/-]{2,1224}$/, "Expected 2 to 1224 characters of letters, digits and +=,.@:/-"),
);
const DimensionName = v.pipe(v.string(), v.minLength(1), v.maxLength(DIMENSION_NAME_MAX));
const Namespace = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(NAMESPACE_MAX),
  v.check((s) => !s.includes(":"), "Expected a namespace without a colon"),
);
const Statistic = v.pipe(
  v.string(),
  v.regex(
    /^p(\d{1,2}(\.\d{1,2})?|100)$/,
    (i) => `Expected a percentile such as "p99" or "p99.9" but received ${i.received}`,
  ),
);

/** A description for editors, carried into the JSON Schema. */
const about = <T extends v.GenericSchema>(schema: T, text: string) => v.pipe(schema, v.description(text));

const timing = {
  regions: v.optional(about(Regions, "Source regions")),
  period: v.optional(
    about(Period, "Seconds per forwarded datapoint: 1, 5, 10, 30 or a multiple of 60 (default 60)"),
  ),
  delay: v.optional(about(Delay, "Seconds to wait after a period ends before reading it (default 120)")),
};

const destinationEntries = {
  region: v.optional(about(Region, "Region written to; AWS_REGION or AWS_DEFAULT_REGION when omitted")),
  namespace: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1),
      v.check(
        (s) => !s.replaceAll("{namespace}", "X").startsWith("AWS/"),
        "Expected a namespace that does not begin with AWS/, which AWS reserves for its services",
      ),
      v.description("Target namespace; {namespace} is the source namespace"),
    ),
    "Forwarded/{namespace}",
  ),
  account_dimension: v.optional(
    about(v.nullable(DimensionName), "Dimension naming the source account; null leaves it out"),
    "SourceAccount",
  ),
  region_dimension: v.optional(
    about(v.nullable(DimensionName), "Dimension naming the source region; null leaves it out"),
    "SourceRegion",
  ),
  role_arn: v.optional(about(RoleArn, "Role to assume for writing, instead of the default credentials")),
  external_id: v.optional(ExternalId),
};

const accountEntries = {
  name: v.pipe(
    v.string(),
    v.regex(/^[\w.-]{1,64}$/, "Expected a name of 1 to 64 letters, digits, dots, dashes or underscores"),
  ),
  role_arn: v.optional(
    about(RoleArn, "Role to assume in the source account; the default credentials when omitted"),
  ),
  external_id: v.optional(about(ExternalId, "ExternalId that the role's trust policy demands")),
  ...timing,
};

const metricEntries = {
  namespace: Namespace,
  names: v.pipe(
    v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(METRIC_NAME_MAX))),
    v.minLength(1, "Expected at least one metric name"),
  ),
  dimensions: v.optional(
    about(v.array(DimensionName), "Forward metrics with exactly this set of dimension names"),
  ),
  match: v.optional(about(v.record(DimensionName, v.string()), "Glob filters (* and ?) on dimension values")),
  streams: v.optional(
    v.pipe(v.array(v.record(DimensionName, v.pipe(v.string(), v.minLength(1)))), v.minLength(1)),
  ),
  unit: v.optional(v.picklist(UNITS, (i) => {
    const hint = closest(String(i.input), [...UNITS]);
    return `Expected a CloudWatch unit such as "Percent", "Count" or "Bytes/Second" but received ${i.received}${
      hint ? `; did you mean "${hint}"?` : ""
    }`;
  })),
  stats: v.optional(
    about(v.array(Statistic), "Extra percentiles, each forwarded as the metric <Name>_<stat>"),
  ),
  ...timing,
};

const defaultsEntries = timing;

const configEntries = {
  destination: v.optional(v.objectWithRest(destinationEntries, v.never()), {}),
  defaults: v.optional(v.objectWithRest(defaultsEntries, v.never()), {}),
  state_file: v.optional(
    about(v.pipe(v.string(), v.minLength(1)), "Checkpoint file, relative to this file's folder"),
  ),
  accounts: v.pipe(
    v.array(v.objectWithRest(accountEntries, v.never())),
    v.minLength(1, "Expected at least one account"),
  ),
  metrics: v.pipe(
    v.array(v.objectWithRest(metricEntries, v.never())),
    v.minLength(1, "Expected at least one metrics entry"),
  ),
};

/** Known keys by path pattern, for the did-you-mean hint on an unknown key. */
const KNOWN_KEYS: Record<string, string[]> = {
  "": Object.keys(configEntries),
  "destination": Object.keys(destinationEntries),
  "defaults": Object.keys(defaultsEntries),
  "accounts.*": Object.keys(accountEntries),
  "metrics.*": Object.keys(metricEntries),
};

type Input = v.InferOutput<v.ObjectSchema<typeof configEntries, undefined>>;

export const ConfigSchema = v.pipe(
  v.objectWithRest(configEntries, v.never()),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    crossChecks(
      dataset.value as Input,
      (message, path) => addIssue({ message, path: toPath(dataset.value, path) }),
    );
  }),
);

/** Rules that involve more than one key. Each problem keeps the path of the key to fix. */
function crossChecks(c: Input, problem: (message: string, path: (string | number)[]) => void) {
  const seen = new Set<string>();
  c.accounts.forEach((a, i) => {
    if (seen.has(a.name)) {
      problem(`Account name "${a.name}" is used twice; names keep accounts apart`, ["accounts", i, "name"]);
    }
    seen.add(a.name);
  });
  const added = [c.destination.account_dimension, c.destination.region_dimension].filter((d): d is string =>
    typeof d === "string"
  );
  if (added.length === 2 && added[0] === added[1]) {
    problem(`The account and region dimensions are both "${added[0]}"`, ["destination", "region_dimension"]);
  }
  c.metrics.forEach((m, i) => {
    const at = (...p: (string | number)[]) => ["metrics", i, ...p];
    if (m.dimensions === undefined && m.streams === undefined) {
      problem("Expected either dimensions or streams", at());
    }
    if (m.match !== undefined && m.streams !== undefined) {
      problem("Expected match or streams, not both: streams name every dimension value already", at("match"));
    }
    const names = m.dimensions ?? Object.keys(m.streams?.[0] ?? {});
    if (new Set(names).size !== names.length) problem("A dimension name is listed twice", at("dimensions"));
    m.streams?.forEach((s, j) => {
      const keys = Object.keys(s).sort().join(",");
      if (keys !== [...names].sort().join(",")) {
        problem(
          `Expected the dimensions ${names.map((n) => `"${n}"`).join(", ")} in every stream`,
          at("streams", j),
        );
      }
    });
    for (const k of Object.keys(m.match ?? {})) {
      if (!names.includes(k)) {
        problem(`Cannot match on "${k}": it is not one of the dimensions`, at("match", k));
      }
    }
    for (const d of added) {
      if (names.includes(d)) {
        problem(
          `The dimension "${d}" is added by the forwarder and cannot also come from the source`,
          at("dimensions"),
        );
      }
    }
    if (names.length + added.length > PUT_MAX_DIMENSIONS) {
      problem(
        `Expected at most ${
          PUT_MAX_DIMENSIONS - added.length
        } dimensions: CloudWatch takes ${PUT_MAX_DIMENSIONS} per metric and the forwarder adds ${added.length}`,
        at("dimensions"),
      );
    }
    const target = c.destination.namespace.replaceAll("{namespace}", m.namespace);
    if (target.startsWith("AWS/")) {
      problem(`The target namespace "${target}" begins with AWS/, which AWS reserves`, [
        "destination",
        "namespace",
      ]);
    }
    if (target.length > NAMESPACE_MAX) {
      problem(`The target namespace "${target}" is longer than ${NAMESPACE_MAX} characters`, [
        "destination",
        "namespace",
      ]);
    }
  });
}

/** valibot issue paths carry the input of each step; build one for a rawCheck issue. */
function toPath(root: unknown, keys: (string | number)[]) {
  const path: v.IssuePathItem[] = [];
  let input = root as Record<string | number, unknown>;
  for (const key of keys) {
    const value = input?.[key];
    path.push({ type: "object", origin: "value", input, key: String(key), value } as v.IssuePathItem);
    input = value as Record<string | number, unknown>;
  }
  return path as [v.IssuePathItem, ...v.IssuePathItem[]];
}

// ---- The resolved plan that the pipeline runs ----

export interface MetricPlan {
  namespace: string;
  names: string[];
  dimensions: string[];
  match: Record<string, string>;
  /** Full dimension values: these streams are forwarded without ListMetrics. */
  streams: Record<string, string>[] | undefined;
  unit: string | undefined;
  stats: string[];
  period: number;
  delay: number;
}

export interface SourcePlan {
  account: string;
  roleArn: string | undefined;
  externalId: string | undefined;
  region: string;
  metrics: MetricPlan[];
}

export interface Plan {
  destination: {
    region: string;
    namespace: string;
    accountDimension: string | null;
    regionDimension: string | null;
    roleArn: string | undefined;
    externalId: string | undefined;
  };
  stateFile: string | undefined;
  sources: SourcePlan[];
}

const DEFAULT_PERIOD = 60;
/** One-minute metrics need about two minutes before CloudWatch has all of a period. */
const DEFAULT_DELAY = 120;

/** Reads a config file, or takes the bundled text when no file is named, and resolves it. */
export function loadConfigFile(
  file: string | undefined,
  bundled: string,
  env: Record<string, string | undefined>,
): { plan: Plan; name: string } {
  let text = bundled;
  if (file !== undefined) {
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new ConfigError([`Cannot read config "${file}": ${describe(e)}`]);
    }
  }
  const name = file ?? "forwarder.yaml";
  return { plan: loadConfig(text, name, env), name };
}

/**
 * Parses and checks a config, and resolves it into a Plan.
 * Throws ConfigError with every problem, each positioned in `file`.
 */
export function loadConfig(text: string, file: string, env: Record<string, string | undefined>): Plan {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split("\n")[0]}`));
  }
  const problems: string[] = [];
  const unset = new Set<number>();
  substituteEnv(doc, env, (message, offset, path) => {
    problems.push(`${at(offset)}: ${message} (at ${path})`);
    unset.add(offset);
  });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    // An alias without its anchor, or aliases that expand without bound.
    let offset = 0;
    visit(doc, {
      Alias(_key, node) {
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    throw new ConfigError([`${at(offset)}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`]);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError([
      `${at(0)}: Expected a mapping with the keys destination, defaults, accounts and metrics (at top level)`,
    ]);
  }
  const result = v.safeParse(ConfigSchema, data);
  if (!result.success) {
    for (const issue of result.issues) {
      const path = issue.path?.map((p) => p.key as string | number) ?? [];
      const offset = offsetOf(doc, path, issue);
      // A value left as ${NAME} was already reported as an unset variable.
      if (unset.has(offset)) continue;
      problems.push(
        `${at(offset)}: ${messageOf(issue, path)} (at ${path.join(".") || "top level"})`,
      );
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  const c = result.output;
  const region = c.destination.region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"];
  if (region === undefined) {
    throw new ConfigError([
      `${
        at(0)
      }: Cannot choose the destination region: set destination.region, AWS_REGION or AWS_DEFAULT_REGION (at destination.region)`,
    ]);
  }
  const sources: SourcePlan[] = [];
  for (const a of c.accounts) {
    const metrics = c.metrics.map((m) => ({
      namespace: m.namespace,
      names: m.names,
      dimensions: m.dimensions ?? Object.keys(m.streams?.[0] ?? {}),
      match: m.match ?? {},
      streams: m.streams,
      unit: m.unit,
      stats: m.stats ?? [],
      period: m.period ?? a.period ?? c.defaults.period ?? DEFAULT_PERIOD,
      delay: m.delay ?? a.delay ?? c.defaults.delay ?? DEFAULT_DELAY,
      regions: m.regions ?? a.regions ?? c.defaults.regions ?? [region],
    }));
    const regions = [...new Set(metrics.flatMap((m) => m.regions))];
    for (const r of regions) {
      sources.push({
        account: a.name,
        roleArn: a.role_arn,
        externalId: a.external_id,
        region: r,
        metrics: metrics.filter((m) => m.regions.includes(r)).map(({ regions: _, ...m }) => m),
      });
    }
  }
  return {
    destination: {
      region,
      namespace: c.destination.namespace,
      accountDimension: c.destination.account_dimension,
      regionDimension: c.destination.region_dimension,
      roleArn: c.destination.role_arn,
      externalId: c.destination.external_id,
    },
    stateFile: c.state_file,
    sources,
  };
}

/** Replaces ${NAME} in every string scalar with the environment variable; an unset one is a problem. */
function substituteEnv(
  doc: Document,
  env: Record<string, string | undefined>,
  problem: (m: string, offset: number, path: string) => void,
) {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (typeof node.value !== "string" || !node.value.includes("${")) return;
      node.value = node.value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
        const value = env[name];
        if (value === undefined || value === "") {
          problem(`Environment variable "${name}" is not set`, node.range?.[0] ?? 0, dotPath(ancestors, key));
          return whole;
        }
        return value;
      });
    },
  });
}

/** The dot path of a node from the ancestors `visit` passes: map keys by name, sequence items by index. */
function dotPath(ancestors: readonly unknown[], key: number | "key" | "value" | null): string {
  const parts: (string | number)[] = [];
  ancestors.forEach((a, i) => {
    const child = ancestors[i + 1];
    if (isPair(a) && isScalar(a.key)) parts.push(String(a.key.value));
    if (isSeq(a)) parts.push(child === undefined ? Number(key) : a.items.indexOf(child as never));
  });
  return parts.join(".");
}

function messageOf(issue: v.BaseIssue<unknown>, path: (string | number)[]): string {
  const key = path[path.length - 1];
  if (issue.type === "never" && typeof key === "string") {
    const pattern = path.slice(0, -1).map((p) => (typeof p === "number" ? "*" : p)).join(".");
    const hint = closest(key, KNOWN_KEYS[pattern] ?? []);
    return `Unknown key "${key}"${hint ? `; did you mean "${hint}"?` : ""}`;
  }
  if (issue.input === undefined && typeof key === "string") return `Missing key "${key}"`;
  return issue.message;
}

/** The source offset of the key or value a problem is about: a missing key points at its parent. */
function offsetOf(doc: Document, path: (string | number)[], issue: v.BaseIssue<unknown>): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
    if (n === path.length && issue.type === "never") {
      const parent = doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[n - 1]);
        if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
      }
    }
    if (node?.range) return node.range[0];
    if (n === 0) return (doc.contents as Node | null)?.range?.[0] ?? 0;
  }
  return 0;
}

/** A misspelt key's nearest known key, when it is close enough to be what was meant. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
