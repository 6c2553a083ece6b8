/**
 * forwarder.yaml: YAML text -> ${VAR} substitution -> valibot -> a resolved Plan.
 * Every problem is reported at once, one line each, as `file:line:col: message (at dot.path)`.
 */
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as v from "valibot";
import {
  Composer,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  visit,
  YAMLParseError,
} from "yaml";
import type { CST, Document, Node } from "yaml";
import type { RegionFacts } from "./aws.ts";
import { ConfigError, describe } from "./errors.ts";
import {
  DIMENSION_NAME_MAX,
  DIMENSION_VALUE_MAX,
  isValidPeriod,
  METRIC_NAME_MAX,
  NAMESPACE_MAX,
  PUT_MAX_DIMENSIONS,
  UNITS,
} from "./limits.ts";
import type { Log } from "./log.ts";

/** A config is a page of settings; anything bigger is a mistake, refused before it is parsed. */
const CONFIG_MAX_BYTES = 1_000_000;
/** Far more levels than the config has, few enough that no stage recurses deeply on a hostile file. */
const CONFIG_MAX_DEPTH = 32;
/** Periods, delays and intervals longer than a day are mistakes, and far beyond that break date arithmetic. */
const MAX_SECONDS = 86_400;
/** A run a minute, the shortest period most metrics have. */
const DEFAULT_INTERVAL = 60;
/** New streams appear within ten minutes; listing more often costs ListMetrics calls for little. */
const DEFAULT_DISCOVERY_INTERVAL = 600;
/** Problems reported at once; past these, the rest are mostly the same mistake again. */
const MAX_PROBLEMS = 50;
/** How much of a value a message quotes. */
const QUOTE_MAX = 60;
/** Keys that would reach an object's prototype: refused wherever they appear. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

// ---- Character rules ----

/** ASCII without control characters (API reference, Dimension). */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** At least one character that is not whitespace (API reference, Dimension). */
const NOT_BLANK = /\S/;
/** Does not start with a colon (API reference, Dimension.Name; the Namespace pattern `[^:].*`). */
const NO_LEADING_COLON = /^(?!:)/;
/** Letters, digits, period, hyphen, underscore, slash, hash, colon and space (User Guide, Namespace). */
const NAMESPACE_CHARACTERS = /^[A-Za-z0-9._\/#: -]*$/;

/** A message that names what was expected and quotes, cut and escaped, what was given. */
const expected = (what: string) => (issue: { input: unknown }) =>
  `Expected ${what} but received ${shown(issue.input)}`;

/** A string of 1 to `max` characters that every rule accepts; the first rule broken is the message. */
const text = (what: string, max: number, rules: [[RegExp, string], ...[RegExp, string][]]) => {
  const length = expected(`${what} of 1 to ${max} characters`);
  return v.pipe(
    v.string(),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const s = dataset.value;
      const broken = rules.find(([rule]) => !rule.test(s));
      if (s.length < 1 || s.length > max) addIssue({ message: length({ input: s }) });
      else if (broken) addIssue({ message: expected(`${what} ${broken[1]}`)({ input: s }) });
    }),
    // The same rules again, for the JSON Schema that editors read.
    v.minLength(1),
    v.maxLength(max),
    v.regex(rules[0][0]),
  );
};

/** Dimension.Name: 1-255 ASCII characters, not all blank, not starting with a colon (API reference). */
const DimensionName = text("a dimension name", DIMENSION_NAME_MAX, [
  [PRINTABLE_ASCII, "of ASCII characters without control characters"],
  [NOT_BLANK, "with a character other than a space"],
  [NO_LEADING_COLON, "that does not start with a colon"],
]);
/** Dimension.Value: 1-1,024 ASCII characters, not all blank (API reference, Dimension). */
const DimensionValue = text("a dimension value", DIMENSION_VALUE_MAX, [
  [PRINTABLE_ASCII, "of ASCII characters without control characters"],
  [NOT_BLANK, "with a character other than a space"],
]);
/** Namespace: 1-255 of the User Guide's characters, not starting with a colon (API reference). */
const namespace = (what: string) =>
  text(what, NAMESPACE_MAX, [
    [NAMESPACE_CHARACTERS, "of letters, digits, spaces and . - _ / # :"],
    [NO_LEADING_COLON, "that does not start with a colon"],
  ]);
const Namespace = namespace("a namespace");
const TargetNamespace = namespace("a target namespace");

const Region = v.pipe(
  v.string(),
  v.regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, expected(`an AWS region such as "eu-west-1"`)),
);
const Regions = v.pipe(v.array(Region), v.minLength(1, "Expected at least one region"));
const Period = v.pipe(
  v.number(),
  v.check(isValidPeriod, expected("a period of 1, 5, 10, 30 or a multiple of 60 seconds")),
  v.maxValue(MAX_SECONDS, expected(`a period of at most ${MAX_SECONDS} seconds (a day)`)),
);
/** Whole seconds from `min` to `max`, with one message for every way to miss. */
const seconds = (what: string, min: number) => {
  const message = expected(`${what} of ${min} to ${MAX_SECONDS} whole seconds`);
  return v.pipe(v.number(), v.integer(message), v.minValue(min, message), v.maxValue(MAX_SECONDS, message));
};
const RoleArn = v.pipe(
  v.string(),
  v.regex(
    /^arn:aws[\w-]*:iam::\d{12}:role\/[\w+=,.@\/-]+$/,
    expected(`a role ARN such as "arn:aws:iam::111111111111:role/reader"`),
  ),
);
/** AssumeRole.ExternalId: 2 to 1,224 characters of [\w+=,.@:\/-] (STS API reference). */
const ExternalId = v.pipe(
  v.string(),
  v.regex(/^[\w+=,.@:\/-]{2,1224}$/, "Expected 2 to 1224 characters of letters, digits and +=,.@:/-"),
);
const Statistic = v.pipe(
  v.string(),
  v.regex(/^p(\d{1,2}(\.\d{1,2})?|100)$/, expected(`a percentile such as "p99" or "p99.9"`)),
);

/** A description for editors, carried into the JSON Schema. */
const about = <T extends v.GenericSchema>(schema: T, text: string) => v.pipe(schema, v.description(text));

/** valibot reads a list as an object with keys "0", "1", ...; a mapping must be a mapping. */
const mapping = <T extends v.GenericSchema>(schema: T) =>
  v.pipe(
    v.custom<v.InferInput<T>>(
      (x) => typeof x === "object" && x !== null && !Array.isArray(x),
      expected("a mapping"),
    ),
    schema,
  );
const strictMapping = <T extends v.ObjectEntries>(entries: T) =>
  mapping(v.objectWithRest(entries, v.never()));

const timing = {
  regions: v.optional(about(Regions, "Source regions")),
  period: v.optional(
    about(
      Period,
      "Seconds per forwarded datapoint: 1, 5, 10, 30 or a multiple of 60, at most 86400 (default 60)",
    ),
  ),
  delay: v.optional(
    about(
      seconds("a delay", 0),
      "Seconds to wait after a period ends before reading it, at most 86400 (default 120)",
    ),
  ),
  recheck_after: v.optional(
    about(
      seconds("a recheck delay", 0),
      "Seconds after a period was read to read it again for late samples; 0 turns it off (default 600)",
    ),
  ),
};

const destinationEntries = {
  region: v.optional(about(Region, "Region written to; AWS_REGION or AWS_DEFAULT_REGION when omitted")),
  namespace: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1, expected(`a target namespace of 1 to ${NAMESPACE_MAX} characters`)),
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

const AccountName = v.pipe(
  v.string(),
  v.regex(/^[\w.-]{1,64}$/, "Expected a name of 1 to 64 letters, digits, dots, dashes or underscores"),
);

const ACCOUNT_ID = /^\d{12}$/;
const anAccountId = expected(`an account id of 12 digits such as "111111111111"`);
/**
 * An AWS account id, 12 digits as a string. YAML reads digits without quotes as a number, which drops a
 * leading zero: such a number is refused with the quoted id it most likely was.
 */
const AccountId = v.pipe(
  v.string((i) =>
    typeof i.input === "number" && Number.isInteger(i.input) && i.input >= 0 && i.input < 1e12
      ? `Expected an account id as a string but received the number ${i.input}: quote it, as "${
        String(i.input).padStart(12, "0")
      }" (YAML reads digits without quotes as a number, and drops leading zeros)`
      : anAccountId(i)
  ),
  v.regex(ACCOUNT_ID, anAccountId),
);
/** An account id as a mapping key, which YAML gives as text whether quoted or not (leading zeros dropped). */
const AccountIdKey = v.pipe(
  v.string(),
  v.check(
    (k) => !/^\d{1,11}$/.test(k),
    (i) =>
      `Expected an account id of 12 digits but received ${shown(i.input)}: quote it, as "${
        String(i.input).padStart(12, "0")
      }" (YAML drops the leading zeros of digits without quotes)`,
  ),
  v.regex(ACCOUNT_ID, anAccountId),
);
const AccountIds = v.array(AccountId);

const linkedEntries = {
  include: v.optional(about(AccountIds, "Linked accounts to forward; every linked account when omitted")),
  exclude: v.optional(about(AccountIds, "Linked accounts not to forward")),
  names: v.optional(
    about(
      mapping(v.record(AccountIdKey, AccountName)),
      "The SourceAccount value (and the name in --status) per linked account id; the id when omitted",
    ),
  ),
  own_metrics: v.optional(
    about(
      v.boolean(expected("true or false")),
      "Also forward the monitoring account's own metrics, named by this entry's name (default false)",
    ),
  ),
};

const LinkedMapping = v.objectWithRest(linkedEntries, v.never());

const accountEntries = {
  name: AccountName,
  role_arn: v.optional(
    about(RoleArn, "Role to assume in the source account; the default credentials when omitted"),
  ),
  external_id: v.optional(about(ExternalId, "ExternalId that the role's trust policy demands")),
  linked_accounts: v.optional(
    about(
      // Chosen by the input, so that a problem inside the mapping is reported as itself (a union would say
      // only that neither fits). The JSON Schema is drawn from the answer for no input: either.
      v.lazy((x) =>
        x === undefined
          ? v.union([v.boolean(), LinkedMapping])
          : typeof x === "object" && x !== null && !Array.isArray(x)
          ? LinkedMapping
          : v.boolean(expected("true, or a mapping of include, exclude, names and own_metrics"))
      ),
      "Read the accounts linked to this monitoring account (CloudWatch cross-account observability) through its role: true for every one, or which and how named",
    ),
  ),
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
  match: v.optional(
    about(
      mapping(v.record(DimensionName, DimensionValue)),
      "Glob filters (* and ?) on dimension values; one without a wildcard is sent to ListMetrics as the value",
    ),
  ),
  streams: v.optional(
    v.pipe(v.array(mapping(v.record(DimensionName, DimensionValue))), v.minLength(1)),
  ),
  unit: v.optional(v.picklist(UNITS, (i) => {
    const hint = closest(String(i.input), [...UNITS]);
    return `${expected(`a CloudWatch unit such as "Percent", "Count" or "Bytes/Second"`)(i)}${
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
  destination: v.optional(strictMapping(destinationEntries), {}),
  defaults: v.optional(strictMapping(defaultsEntries), {}),
  state_file: v.optional(
    about(v.pipe(v.string(), v.minLength(1)), "Checkpoint file, relative to this file's folder"),
  ),
  interval: v.optional(
    about(
      seconds("an interval", 10),
      "Seconds between runs of the timer or loop, 10 to 86400: used for the cost estimate and for when the checkpoints may be trusted (default 60)",
    ),
    DEFAULT_INTERVAL,
  ),
  discovery_interval: v.optional(
    about(
      seconds("a discovery interval", 60),
      "Seconds between ListMetrics listings of each account-region, 60 to 86400; in between, a run reuses the streams the last listing found (default 600)",
    ),
    DEFAULT_DISCOVERY_INTERVAL,
  ),
  self_metrics: v.optional(
    about(
      v.boolean(expected("true or false")),
      "After each run, write metrics about the forwarder itself (datums forwarded, lag, errors) into the destination (default true)",
    ),
    true,
  ),
  accounts: v.pipe(
    v.array(strictMapping(accountEntries)),
    v.minLength(1, "Expected at least one account"),
  ),
  metrics: v.pipe(
    v.array(strictMapping(metricEntries)),
    v.minLength(1, "Expected at least one metrics entry"),
  ),
};

/** Known keys by path pattern, for the did-you-mean hint on an unknown key. */
const KNOWN_KEYS: Record<string, string[]> = {
  "": Object.keys(configEntries),
  "destination": Object.keys(destinationEntries),
  "defaults": Object.keys(defaultsEntries),
  "accounts.*": Object.keys(accountEntries),
  "accounts.*.linked_accounts": Object.keys(linkedEntries),
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
      problem(`Account name ${quote(a.name)} is used twice; names keep accounts apart`, [
        "accounts",
        i,
        "name",
      ]);
    }
    seen.add(a.name);
  });
  const added = [c.destination.account_dimension, c.destination.region_dimension].filter((d): d is string =>
    typeof d === "string"
  );
  if (added.length === 2 && added[0] === added[1]) {
    problem(`The account and region dimensions are both ${quote(added[0]!)}`, [
      "destination",
      "region_dimension",
    ]);
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
    // An extra statistic goes out as the metric <Name>_<stat>, which must fit CloudWatch's limit too.
    m.names.forEach((name, j) => {
      const longest = (m.stats ?? []).reduce((n, stat) => Math.max(n, name.length + 1 + stat.length), 0);
      if (longest > METRIC_NAME_MAX) {
        problem(
          `Expected a metric name of at most ${
            METRIC_NAME_MAX - (longest - name.length)
          } characters: with its statistic's suffix it is ${longest}, and CloudWatch takes ${METRIC_NAME_MAX}`,
          at("names", j),
        );
      }
    });
    m.streams?.forEach((s, j) => {
      const keys = Object.keys(s).sort().join(",");
      if (keys !== [...names].sort().join(",")) {
        problem(`Expected the dimensions ${quoteAll(names)} in every stream`, at("streams", j));
      }
    });
    for (const k of Object.keys(m.match ?? {})) {
      if (!names.includes(k)) {
        problem(`Cannot match on ${quote(k)}: it is not one of the dimensions`, at("match", k));
      }
    }
    for (const d of added) {
      if (names.includes(d)) {
        problem(
          `The dimension ${quote(d)} is added by the forwarder and cannot also come from the source`,
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
  });
  sameStreams(c, problem);
  linkedChecks(c, problem);
  // One line for the target namespace, however many source namespaces share its problem.
  for (const source of new Set(c.metrics.map((m) => m.namespace))) {
    const target = c.destination.namespace.replaceAll("{namespace}", source);
    const issue = v.safeParse(TargetNamespace, target).issues?.[0];
    const message = target.startsWith("AWS/")
      ? `The target namespace ${quote(target)} begins with AWS/, which AWS reserves`
      : issue?.message;
    if (message !== undefined) return problem(message, ["destination", "namespace"]);
  }
}

/** Entries that select the same streams: a stream is forwarded once, so its stats and unit belong in one. */
function sameStreams(c: Input, problem: (message: string, path: (string | number)[]) => void) {
  const selecting = (i: number) => {
    const m = c.metrics[i]!;
    return m.match === undefined && m.streams === undefined && m.dimensions !== undefined
      ? JSON.stringify([
        m.namespace,
        [...m.dimensions].sort(),
        m.period ?? c.defaults.period ?? DEFAULT_PERIOD,
      ])
      : undefined;
  };
  c.metrics.forEach((m, j) => {
    const id = selecting(j);
    if (id === undefined) return;
    const i = c.metrics.findIndex((_, i) => i < j && selecting(i) === id);
    if (i < 0) return;
    m.names.forEach((name, k) => {
      if (!c.metrics[i]!.names.includes(name)) return;
      problem(
        `${
          quote(name)
        } of ${m.namespace} with these dimensions is in metrics.${i} already: a stream is forwarded once, so give its stats and unit in one entry`,
        ["metrics", j, "names", k],
      );
    });
  });
}

type AccountInput = Input["accounts"][number];

/** An entry's linked_accounts with the defaults filled in; undefined where it reads its own account only. */
function linkedOf(a: AccountInput) {
  const l = a.linked_accounts;
  if (l === undefined || l === false) return undefined;
  const o = l === true ? {} : l;
  return {
    include: o.include,
    exclude: o.exclude ?? [],
    names: o.names ?? {},
    ownMetrics: o.own_metrics ?? false,
  };
}

/** The account id in a role ARN (arn:aws:iam::ID:role/NAME), checked by RoleArn. */
const idOfArn = (arn: string | undefined) => arn?.split(":")[4];

/** The accounts an entry reads: some, or all but some; undefined where that is not known (no role_arn). */
type Reach = { only: Set<string> } | { allBut: Set<string> } | undefined;

function reachOf(a: AccountInput): Reach {
  const own = idOfArn(a.role_arn);
  const l = linkedOf(a);
  if (l === undefined) return own === undefined ? undefined : { only: new Set([own]) };
  const mine = l.ownMetrics && own !== undefined ? [own] : [];
  if (l.include) {
    return { only: new Set([...l.include.filter((id) => id !== own && !l.exclude.includes(id)), ...mine]) };
  }
  return { allBut: new Set([...l.exclude, ...(l.ownMetrics || own === undefined ? [] : [own])]) };
}

/** The accounts two entries both read: some, or "every" (two that read all but some). */
function bothRead(a: Reach, b: Reach): string[] | "every" {
  if (a === undefined || b === undefined) return [];
  if ("only" in a) return [...a.only].filter((id) => ("only" in b ? b.only.has(id) : !b.allBut.has(id)));
  if ("only" in b) return bothRead(b, a);
  return "every";
}

/**
 * Entries that read the accounts linked to a monitoring account: its own id is read from role_arn, so without
 * one it cannot leave out or forward its own metrics; a name stands for one account; and no account is read
 * by two entries in a region, which would forward it twice (an entry without role_arn reads an account whose
 * id is not known, and cannot be checked).
 */
function linkedChecks(c: Input, problem: (message: string, path: (string | number)[]) => void) {
  const names = new Map<string, { id: string | undefined; at: string }>();
  c.accounts.forEach((a, i) => names.set(a.name, { id: idOfArn(a.role_arn), at: `accounts.${i}` }));
  c.accounts.forEach((a, i) => {
    const l = linkedOf(a);
    if (l === undefined) return;
    const at = (...p: (string | number)[]) => ["accounts", i, "linked_accounts", ...p];
    if (c.destination.account_dimension === null) {
      problem(
        "Cannot read linked accounts without the destination's account_dimension: their metrics of the same name and dimensions (the same cluster in two accounts) would be one metric in the destination",
        at(),
      );
    }
    const own = idOfArn(a.role_arn);
    if (own === undefined && l.ownMetrics) {
      problem(
        "Cannot tell the monitoring account's own metrics without role_arn: its account id is read from the role's ARN",
        at("own_metrics"),
      );
    }
    if (own === undefined && l.include === undefined) {
      problem(
        "Expected include, or role_arn: without role_arn the monitoring account's id is not known, so its own metrics cannot be told from those of the accounts linked to it",
        at(),
      );
    }
    for (const key of ["include", "exclude"] as const) {
      l[key]?.forEach((id, k) => {
        if (id !== own) return;
        problem(
          `${
            quote(id)
          } is the monitoring account itself (see role_arn): its own metrics are forwarded with own_metrics`,
          at(key, k),
        );
      });
    }
    for (const [id, name] of Object.entries(l.names)) {
      const other = names.get(name);
      if (other !== undefined && other.id !== id) {
        problem(
          `The name ${quote(name)} is given to ${
            other.id === undefined ? "another account" : `account ${quote(other.id)}`
          } in ${other.at} already: a name stands for one account, in checkpoints and in the SourceAccount dimension`,
          at("names", id),
        );
      } else names.set(name, { id, at: `accounts.${i}.linked_accounts.names` });
    }
  });
  twiceRead(c, problem);
}

/** Entries that would read the same account in a region: said at the later entry of the first such pair. */
function twiceRead(c: Input, problem: (message: string, path: (string | number)[]) => void) {
  const regions = c.accounts.map((a) =>
    new Set(
      c.metrics.flatMap((m) =>
        m.regions ?? a.regions ?? c.defaults.regions ?? [c.destination.region ?? "the destination's region"]
      ),
    )
  );
  const reach = c.accounts.map(reachOf);
  const name = (k: number) => `${quote(c.accounts[k]!.name)} (accounts.${k})`;
  const entry = (k: number) => `${linkedOf(c.accounts[k]!) ? "through" : "by"} ${name(k)}`;
  c.accounts.forEach((b, j) => {
    for (let i = 0; i < j; i++) {
      if (linkedOf(c.accounts[i]!) === undefined && linkedOf(b) === undefined) continue;
      const region = [...regions[i]!].find((r) => regions[j]!.has(r));
      const both = region === undefined ? [] : bothRead(reach[i], reach[j]);
      if (both.length === 0) continue;
      const at = ["accounts", j, linkedOf(b) ? "linked_accounts" : "role_arn"];
      if (both === "every") {
        problem(
          `Both ${name(i)} and ${
            name(j)
          } read every account linked to them in ${region}, so an account linked to both would be forwarded twice: give one of them include`,
          at,
        );
      } else {
        problem(
          `${both.length === 1 ? "Account" : "Accounts"} ${quoteAll(both)} would be read both ${
            entry(i)
          } and ${entry(j)} in ${region}, and forwarded twice: list ${
            both.length === 1 ? "it" : "them"
          } in the exclude of linked_accounts, or leave one entry out`,
          at,
        );
      }
      return;
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

// ---- Regions, against the AWS SDK's partition data ----

/** What the AWS SDK says of region names (lib/aws.ts, regionFacts), and where notes about them go. */
export interface RegionChecks {
  facts: (region: string) => RegionFacts;
  log: Pick<Log, "warn" | "info">;
}

/** Edits a misspelt region name is within of the one meant; a name further from every listed one is its own. */
const REGION_TYPO_EDITS = 2;

type RegionVerdict = { problem: string } | { note: string; level: "warn" | "info" } | undefined;

/** Notes on regions, one per region however often the config names it, logged once the config is sound. */
class RegionNotes {
  readonly lines: { level: "warn" | "info"; line: string }[] = [];
  private readonly regions = new Set<string>();
  add(region: string, level: "warn" | "info", line: string) {
    if (!this.regions.has(region)) this.lines.push({ level, line });
    this.regions.add(region);
  }
}

/** A region and the key path that names it. */
type Named = [string, (string | number)[]];

/** Each region the config names, with its key path, in the order of the file's sections. */
function regionsOf(c: Input): Named[] {
  const list = (regions: string[] | undefined, ...path: (string | number)[]) =>
    (regions ?? []).map((r, j): Named => [r, [...path, j]]);
  return [
    ...(c.destination.region === undefined
      ? []
      : [[c.destination.region, ["destination", "region"]] as Named]),
    ...list(c.defaults.regions, "defaults", "regions"),
    ...c.accounts.flatMap((a, i) => list(a.regions, "accounts", i, "regions")),
    ...c.metrics.flatMap((m, i) => list(m.regions, "metrics", i, "regions")),
  ];
}

/**
 * The AWS SDK's word on a region name, `variable` naming where it came from if not the config. A name the SDK
 * does not list is a misspelling when it is close to one it does and a word of it is not one the listed names
 * use (eu-wset-1); a name of a partition's area and words (eu-west-4, us-central-1) may be newer than the SDK,
 * and goes on with a note.
 */
function regionVerdict(region: string, facts: RegionFacts, variable?: string): RegionVerdict {
  const named = `${quote(region)}${variable ? ` in ${variable}` : ""}`;
  if (facts.listed) {
    const note = `Region ${named} is an opt-in Region: each account that uses it must have enabled it`;
    return facts.optIn ? { level: "info", note } : undefined;
  }
  const parts = (r: string) => /^(.+)-([a-z]+)-\d+$/.exec(r)?.slice(1) ?? [];
  const [area, word] = parts(region);
  const listed = facts.regions.map(parts);
  // The distance is at least the difference in length: what cannot be close (and huge names) is not compared.
  const distances = facts.regions.map((r) =>
    Math.abs(r.length - region.length) > REGION_TYPO_EDITS ? Infinity : editDistance(region, r)
  );
  const least = Math.min(...distances);
  const nearest = least > REGION_TYPO_EDITS ? [] : facts.regions.filter((_, i) => distances[i] === least);
  if (listed.some(([a]) => a === area) && (nearest.length === 0 || listed.some(([, w]) => w === word))) {
    const note =
      `Region ${named} is not in this AWS SDK's list of regions: going on, as it may be newer than the SDK`;
    const optIn = facts.optIn ? " (and then an opt-in Region, which each account must enable)" : "";
    return { level: "warn", note: `${note}${optIn}` };
  }
  return {
    problem: nearest.length > 0
      ? `Unknown AWS region ${named}; did you mean ${nearest.map((r) => `"${r}"`).join(" or ")}?`
      : `Unknown AWS region ${named}: no AWS partition has regions beginning "${area}-"`,
  };
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
  /** Seconds after a period was first read to read it again for samples that arrived late; 0: never. */
  recheckAfter: number;
}

/** A monitoring account's linked accounts (CloudWatch cross-account observability), as its entry selects them. */
export interface LinkedPlan {
  /** The monitoring account's own id, from its role_arn; undefined without one (then `include` is given). */
  ownId: string | undefined;
  /** The linked accounts forwarded; every one when undefined. */
  include: string[] | undefined;
  exclude: string[];
  /** Each linked account's name (checkpoints, --status, SourceAccount), by id; the id where none is given. */
  names: Record<string, string>;
  /** Whether the monitoring account's own metrics are forwarded, named by the entry's name. */
  ownMetrics: boolean;
}

export interface SourcePlan {
  /** The entry's name; for a monitoring account, the name its own metrics and its listing go by. */
  account: string;
  roleArn: string | undefined;
  externalId: string | undefined;
  region: string;
  metrics: MetricPlan[];
  /** Set for a monitoring account: its streams belong to the accounts linked to it. */
  linked?: LinkedPlan;
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
  /** Seconds between runs: for the cost estimate and for when the checkpoints may be trusted. */
  interval: number;
  /** Seconds between ListMetrics listings of each account-region; runs in between reuse the last one. */
  discoveryInterval: number;
  /** Whether each run writes metrics about the forwarder itself into the destination. */
  selfMetrics: boolean;
  sources: SourcePlan[];
}

const DEFAULT_PERIOD = 60;
/** One-minute metrics need about two minutes before CloudWatch has all of a period. */
const DEFAULT_DELAY = 120;
/**
 * Samples can land later than any delay (agents buffer: Telegraf waits 5 minutes by default, the OpenTelemetry
 * receiver 10); read a period again ten minutes on, which at a run a minute costs a tenth more GetMetricData.
 */
const DEFAULT_RECHECK_AFTER = 600;

/** Reads a config file, or takes the bundled text when no file is named, and resolves it. */
export function loadConfigFile(
  file: string | undefined,
  bundled: string,
  env: Record<string, string | undefined>,
  regions: RegionChecks,
): { plan: Plan; name: string } {
  const name = file ?? "forwarder.yaml";
  return { plan: loadConfig(readConfigText(file, bundled), name, env, regions), name };
}

/**
 * What writing systemd units needs of a config, where its variables are not set (they go in the service's
 * environment file): its interval, and the variables it names.
 */
export function unitFacts(
  file: string | undefined,
  bundled: string,
): { interval: number; variables: string[] } {
  const doc = parseYaml(readConfigText(file, bundled), new LineCounter());
  const variables = new Set<string>();
  if (typeof doc !== "number") {
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value !== "string") return;
        for (const m of node.value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) variables.add(m[1]!);
      },
    });
  }
  const interval = typeof doc === "number" ? undefined : doc.get("interval");
  const ok = v.safeParse(configEntries.interval, interval);
  if (!ok.success) {
    throw new ConfigError([`${file ?? "forwarder.yaml"}: ${ok.issues[0].message} (at interval)`]);
  }
  return { interval: ok.output, variables: [...variables] };
}

function readConfigText(file: string | undefined, bundled: string): string {
  let text = bundled;
  if (file !== undefined) {
    try {
      const size = fs.statSync(file).size;
      if (size > CONFIG_MAX_BYTES) throw new ConfigError([`${file}:1:1: ${tooBig(size)}`]);
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw escapedLines(
        e instanceof ConfigError ? e : new ConfigError([`Cannot read config "${file}": ${describe(e)}`]),
      );
    }
  }
  return text;
}

/**
 * Parses and checks a config, and resolves it into a Plan; with `regions`, its regions are checked against the
 * AWS SDK's too, and notes about them logged once it is sound.
 * Throws ConfigError with every problem, each positioned in `file`, each one line.
 */
export function loadConfig(
  text: string,
  file: string,
  env: Record<string, string | undefined>,
  regions?: RegionChecks,
): Plan {
  try {
    const notes = new RegionNotes();
    const plan = resolve(check(text, file, env, regions?.facts, notes), env, file, regions?.facts, notes);
    for (const { level, line } of notes.lines) regions?.log[level](line);
    return plan;
  } catch (e) {
    if (e instanceof ConfigError) throw escapedLines(e);
    throw e;
  }
}

/** YAML text to a checked config, or a ConfigError with every problem. */
function check(
  text: string,
  file: string,
  env: Record<string, string | undefined>,
  facts: RegionChecks["facts"] | undefined,
  notes: RegionNotes,
): Input {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > CONFIG_MAX_BYTES) throw new ConfigError([`${file}:1:1: ${tooBig(bytes)}`]);
  const lineCounter = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const report = new Report(at);
  const doc = parseYaml(text, lineCounter);
  if (typeof doc === "number") {
    throw new ConfigError([`${at(doc)}: Expected at most ${CONFIG_MAX_DEPTH} levels of nesting`]);
  }
  for (const e of doc.errors) report.add(e.pos[0], cut(e.message.split("\n")[0]!));
  if (report.lines.length > 0) throw new ConfigError(report.lines);
  const reported = new Set<number>();
  prepare(doc, env, (message, offset, path) => {
    report.add(offset, message, path);
    reported.add(offset);
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
    throw new ConfigError([
      `${at(offset)}: ${cut(e instanceof Error ? e.message.split("\n")[0]! : String(e))}`,
    ]);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError([
      `${at(0)}: Expected a mapping with the keys destination, defaults, accounts and metrics (at top level)`,
    ]);
  }
  const result = v.safeParse(ConfigSchema, data, { abortPipeEarly: true });
  for (const issue of result.issues ?? []) {
    if (report.full) break;
    const path = issue.path?.map((p) => p.key as string | number) ?? [];
    const last = issue.path?.[issue.path.length - 1];
    const offset = offsetOf(doc, path, issue.type === "never" || last?.origin === "key");
    // Already reported: a value left as ${NAME}, or a key refused before valibot saw the data.
    if (!reported.has(offset)) report.add(offset, messageOf(issue, path), path);
  }
  // Regions whose shape is right, asked of the AWS SDK, even where other keys have problems.
  if (result.typed && facts) {
    for (const [region, path] of regionsOf(result.output)) {
      if (!v.is(Region, region)) continue;
      const verdict = regionVerdict(region, facts(region));
      if (verdict === undefined) continue;
      const offset = offsetOf(doc, path, false);
      if ("problem" in verdict) report.add(offset, verdict.problem, path);
      else notes.add(region, verdict.level, `${at(offset)}: ${verdict.note} (at ${pathText(path)})`);
    }
  }
  if (report.lines.length > 0 || !result.success) throw new ConfigError(report.lines);
  return result.output;
}

/** The checked config resolved into sources: one per account and region, settings inherited. */
function resolve(
  c: Input,
  env: Record<string, string | undefined>,
  file: string,
  facts: RegionChecks["facts"] | undefined,
  notes: RegionNotes,
): Plan {
  const variable = ["AWS_REGION", "AWS_DEFAULT_REGION"].find((name) => env[name]);
  const region = c.destination.region ?? (variable ? env[variable] : undefined);
  if (region === undefined) {
    throw new ConfigError([
      `${file}:1:1: Cannot choose the destination region: set destination.region, AWS_REGION or AWS_DEFAULT_REGION (at destination.region)`,
    ]);
  }
  const wrong = v.safeParse(Region, region).issues?.[0];
  if (wrong) throw new ConfigError([`${file}:1:1: ${wrong.message} in ${variable} (at destination.region)`]);
  const verdict = c.destination.region === undefined && facts
    ? regionVerdict(region, facts(region), variable)
    : undefined;
  if (verdict && "problem" in verdict) {
    throw new ConfigError([`${file}:1:1: ${verdict.problem} (at destination.region)`]);
  }
  if (verdict) notes.add(region, verdict.level, `${file}:1:1: ${verdict.note} (at destination.region)`);
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
      recheckAfter: m.recheck_after ?? a.recheck_after ?? c.defaults.recheck_after ?? DEFAULT_RECHECK_AFTER,
      regions: m.regions ?? a.regions ?? c.defaults.regions ?? [region],
    }));
    const regions = [...new Set(metrics.flatMap((m) => m.regions))];
    const l = linkedOf(a);
    const linked = l && { ...l, ownId: idOfArn(a.role_arn) };
    for (const r of regions) {
      sources.push({
        account: a.name,
        roleArn: a.role_arn,
        externalId: a.external_id,
        region: r,
        metrics: metrics.filter((m) => m.regions.includes(r)).map(({ regions: _, ...m }) => m),
        ...(linked && { linked }),
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
    interval: c.interval,
    discoveryInterval: c.discovery_interval,
    selfMetrics: c.self_metrics,
    sources,
  };
}

/** The problems found, one line each; past MAX_PROBLEMS, a last line says that there are more. */
class Report {
  readonly lines: string[] = [];
  constructor(private readonly at: (offset: number) => string) {}
  get full(): boolean {
    return this.lines.length > MAX_PROBLEMS;
  }
  add(offset: number, message: string, path?: (string | number)[]) {
    if (this.full) return;
    this.lines.push(
      this.lines.length < MAX_PROBLEMS
        ? `${this.at(offset)}: ${message}${path ? ` (at ${pathText(path)})` : ""}`
        : `${
          this.at(offset)
        }: Cannot report more than ${MAX_PROBLEMS} problems at once: fix these and check again`,
    );
  }
}

// ---- YAML, guarded ----

/**
 * Parses YAML as `parseDocument` does, but watches the parser's stack and gives up, returning the offset,
 * once collections nest deeper than CONFIG_MAX_DEPTH: building and walking a deeply nested document costs
 * time and memory that grow faster than the text.
 */
function parseYaml(text: string, lineCounter: LineCounter): Document.Parsed | number {
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0);
  const tokens: CST.Token[] = [];
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) tokens.push(token);
    if (parser.stack.length > CONFIG_MAX_DEPTH) {
      const collections = parser.stack.filter((t) => COLLECTIONS.has(t.type));
      if (collections.length > CONFIG_MAX_DEPTH) return collections[CONFIG_MAX_DEPTH]!.offset;
    }
  }
  for (const token of parser.end()) tokens.push(token);
  // "error" keeps yaml from printing warnings of its own, such as one about a list used as a key.
  // uniqueKeys: yaml compares each key with every other (quadratic); prepare() checks them with a Set.
  const docs = new Composer({ logLevel: "error", uniqueKeys: false }).compose(tokens, true, text.length);
  const first = docs.next();
  if (first.done) throw new Error("a YAML composer always ends with a document");
  const second = docs.next();
  if (!second.done) {
    const start = second.value.range[0];
    const message = "Expected one YAML document, not several separated by ---";
    first.value.errors.push(new YAMLParseError([start, start + 1], "MULTIPLE_DOCS", message));
  }
  return first.value;
}

/** CST tokens that nest. */
const COLLECTIONS = new Set(["block-map", "block-seq", "flow-collection"]);

/**
 * Walks the document once before it becomes data: replaces ${NAME} in every string with the environment
 * variable (an unset one is a problem) and refuses keys given twice, keys that could reach a prototype, and
 * keys that are lists or mappings. The nesting is bounded by then, so recursion is safe.
 */
function prepare(
  doc: Document,
  env: Record<string, string | undefined>,
  problem: (m: string, offset: number, path: (string | number)[]) => void,
) {
  const substitute = (node: unknown, path: (string | number)[]) => {
    if (!isScalar(node) || typeof node.value !== "string" || !node.value.includes("${")) return;
    const offset = node.range?.[0] ?? 0;
    node.value = node.value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
      const value = Object.hasOwn(env, name) ? env[name] : undefined;
      if (typeof value === "string" && value !== "") return value;
      problem(`Environment variable ${quote(name)} is not set`, offset, path);
      return whole;
    });
  };
  const walk = (node: unknown, path: (string | number)[]) => {
    if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
    if (!isMap(node)) return substitute(node, path);
    const seen = new Set<string>();
    const refused = new Set<unknown>();
    for (const pair of node.items) {
      const offset = (pair.key as Node | null)?.range?.[0] ?? node.range?.[0] ?? 0;
      if (isCollection(pair.key)) {
        problem(
          `Expected a plain key but received ${isSeq(pair.key) ? "a list" : "a mapping"}`,
          offset,
          path,
        );
        refused.add(pair);
        continue;
      }
      substitute(pair.key, path);
      const name = keyText(pair.key);
      const at = [...path, name];
      if (seen.has(name)) problem(`Expected each key once, but ${quote(name)} is given again`, offset, at);
      else if (FORBIDDEN_KEYS.has(name)) problem(unknownKey(name, path), offset, at);
      else walk(pair.value, at);
      if (seen.has(name) || FORBIDDEN_KEYS.has(name)) refused.add(pair);
      seen.add(name);
    }
    // What was refused never becomes data: a key given twice, or one that could reach a prototype.
    if (refused.size > 0) node.items = node.items.filter((pair) => !refused.has(pair));
  };
  walk(doc.contents, []);
}

/** The key or value node at a path; keys compare as text, as they do once the document is data. */
function nodeAt(doc: Document, path: (string | number)[]): { key?: Node; value?: Node } {
  let node: unknown = doc.contents;
  let key: Node | undefined;
  for (const step of path) {
    if (isSeq(node)) [key, node] = [undefined, node.items[Number(step)]];
    else if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(step));
      if (pair === undefined) return {};
      [key, node] = [pair.key as Node, pair.value];
    } else return {};
  }
  return { ...(key && { key }), ...(node !== undefined && node !== null && { value: node as Node }) };
}

/** A key as it becomes a property name once the document is data. */
function keyText(key: unknown): string {
  return isScalar(key) && key.value !== null && key.value !== undefined ? String(key.value) : "";
}

/** The source offset of the key or value a problem is about: a missing key points at its parent. */
function offsetOf(doc: Document, path: (string | number)[], atKey: boolean): number {
  for (let n = path.length; n >= 0; n--) {
    const { key, value } = nodeAt(doc, path.slice(0, n));
    const node = n === path.length && atKey ? key ?? value : value;
    if (node?.range) return node.range[0];
  }
  return 0;
}

// ---- Messages ----

function messageOf(issue: v.BaseIssue<unknown>, path: (string | number)[]): string {
  const key = path[path.length - 1];
  if (issue.type === "never" && typeof key === "string") return unknownKey(key, path.slice(0, -1));
  if (issue.input === undefined && typeof key === "string") return `Missing key ${quote(key)}`;
  // valibot's own messages quote a string whole; quote it cut and escaped instead.
  if (typeof issue.input === "string" && issue.message.includes(issue.received)) {
    return issue.message.replace(issue.received, () => quote(issue.input as string));
  }
  return issue.message;
}

function unknownKey(key: string, parent: (string | number)[]): string {
  const pattern = parent.map((p) => (typeof p === "number" ? "*" : p)).join(".");
  const hint = closest(key, KNOWN_KEYS[pattern] ?? []);
  return `Unknown key ${quote(key)}${hint ? `; did you mean "${hint}"?` : ""}`;
}

/** Control characters (C0, DEL, C1) and the two Unicode line breaks: everything but these ranges. */
const CONTROL = /[^ -~\u00a0-\u2027\u202a-\uffff]/g;
const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
/** Control characters as JSON string escapes, so that text stays on one line. */
const escapeControls = (s: string) =>
  s.replace(CONTROL, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** The first `max` characters, without half of a surrogate pair. */
function head(s: string, max: number): string {
  const h = s.slice(0, max);
  return /[\ud800-\udbff]$/.test(h) ? h.slice(0, -1) : h;
}

/** A string as a message quotes it: in JSON quotes, escaped to one line, cut after QUOTE_MAX characters. */
function quote(s: string, length = true): string {
  if (s.length <= QUOTE_MAX) return escapeControls(JSON.stringify(s));
  const shown = `${escapeControls(JSON.stringify(head(s, QUOTE_MAX))).slice(0, -1)}…"`;
  return length ? `${shown} (${s.length.toLocaleString("en-US")} characters)` : shown;
}

/** Up to five quoted names, then how many more. */
function quoteAll(names: string[]): string {
  const listed = names.slice(0, 5).map((n) => quote(n)).join(", ");
  return names.length > 5 ? `${listed} and ${names.length - 5} more` : listed;
}

/** Any value as a message shows what was received. */
function shown(x: unknown): string {
  if (typeof x === "string") return quote(x);
  if (Array.isArray(x)) return "a list";
  if (typeof x === "object" && x !== null) return "a mapping";
  return String(x);
}

/** A dot path; a key that is empty, long, or holds spaces or control characters is quoted. */
function pathText(path: (string | number)[]): string {
  const keys = path.map((p) =>
    typeof p === "number" ? String(p) : /^[!-~]+$/.test(p) && p.length <= QUOTE_MAX ? p : quote(p, false)
  );
  return keys.join(".") || "top level";
}

/** Text from elsewhere (a parser's message) escaped to one line and cut. */
function cut(s: string, max = 100): string {
  return s.length > max ? `${escapeControls(head(s, max))}…` : escapeControls(s);
}

/** A ConfigError whose every line is one line, whatever its parts held. */
function escapedLines(e: ConfigError): ConfigError {
  return new ConfigError(e.problems.map((p) => cut(p, 1000)));
}

function tooBig(bytes: number): string {
  const mb = Math.ceil(bytes / 100_000) / 10;
  return `Cannot read config: ${mb} MB is more than the ${CONFIG_MAX_BYTES / 1_000_000} MB a config may have`;
}

/** A misspelt key's nearest known key, when it is close enough to be what was meant. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    // The distance is at least the difference in length: skip what cannot be close (and huge words).
    if (Math.abs(word.length - c.length) >= bestDistance) continue;
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
