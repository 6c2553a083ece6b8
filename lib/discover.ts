/**
 * Discovery: ListMetrics, every page, narrowed to the configured metrics and dimension sets, in as few pages
 * as the last listing suggests. Static streams (full dimension values in the config) are forwarded without a
 * listing; a listing only looks for them, to say which it does not find.
 */
import type { CloudWatchApi, Dimension, Metric } from "./aws.ts";
import type { MetricPlan, SourcePlan } from "./config.ts";
import { LIST_MAX_DIMENSION_FILTERS } from "./limits.ts";
import { blame, describe, plural } from "./errors.ts";
import type { Log } from "./log.ts";
import * as state from "./state.ts";
import type { ListingCounts, PlanCounts, Store } from "./store.ts";
import { iso, MAX_BACKFILL_SECONDS } from "./window.ts";

const fields = (src: SourcePlan) => ({ account: src.account, region: src.region });

/** One source metric to forward: a metric name with one full set of dimension values. */
export interface Stream {
  plan: MetricPlan;
  name: string;
  /** Sorted by name, so that a stream has one identity however ListMetrics orders them. */
  dims: Dimension[];
  /** The account it belongs to, read through a monitoring account; absent: the account-region's own. */
  owner?: Owner;
}

/**
 * An account whose metrics a monitoring account reads: its id, and the name it goes by in checkpoints,
 * --status, self-metrics, warnings and the SourceAccount dimension. One object per account and listing, so
 * that streams compare owners by identity.
 */
export interface Owner {
  id: string;
  name: string;
}

/** The name of the account a stream belongs to: its owner's, or else its account-region's. */
export const accountOf = (src: SourcePlan, s: Stream) => s.owner?.name ?? src.account;

/**
 * The owner of each metric a monitoring account lists, by its id in OwningAccounts: undefined for an account
 * the entry does not forward (not in include, in exclude, or its own without own_metrics).
 */
export function ownersOf(src: SourcePlan): (id: string) => Owner | undefined {
  const l = src.linked!;
  const include = l.include && new Set(l.include);
  const exclude = new Set(l.exclude);
  const made = new Map<string, Owner | null>();
  return (id) => {
    let o = made.get(id);
    if (o === undefined) {
      const wanted = id === l.ownId ? l.ownMetrics : (include?.has(id) ?? true) && !exclude.has(id);
      made.set(id, o = wanted ? { id, name: id === l.ownId ? src.account : l.names[id] ?? id } : null);
    }
    return o ?? undefined;
  };
}

/**
 * ListMetrics through a monitoring account: the metrics of the accounts linked to it too
 * (IncludeLinkedAccounts), each with its account in OwningAccounts, "a 1:1 mapping" with Metrics (API
 * reference, ListMetrics). A page without one that lines up is refused, an error of the account-region: its
 * metrics cannot be told apart, and are never guessed.
 */
export function throughLinks(
  api: Pick<CloudWatchApi, "listMetrics">,
  src: SourcePlan,
): Pick<CloudWatchApi, "listMetrics"> {
  if (!src.linked) return api;
  return {
    async listMetrics(input) {
      const page = await api.listMetrics({ ...input, IncludeLinkedAccounts: true });
      const owning = page.owningAccounts;
      // An empty page without OwningAccounts leaves nothing to attribute.
      if ((owning?.length ?? 0) !== page.metrics.length) {
        const e = new Error(
          `Cannot tell which accounts the ${input.Namespace} metrics listed through "${src.account}" belong to: it answered ${
            plural(page.metrics.length, "metric")
          } with ${
            owning === undefined ? "no OwningAccounts" : plural(owning.length, "owning account")
          }, where the API reference promises one a metric`,
        );
        throw blame(Object.assign(e, { name: "OwningAccountsMismatch" }), "ListMetrics");
      }
      return page;
    },
  };
}

/** Whether dimensions are those of one of a `streams:` list's items (dimension names checked by selects). */
const namedIn = (plan: MetricPlan, dims: Dimension[]) =>
  plan.streams!.some((values) => dims.every((d) => values[d.Name] === d.Value));

/**
 * Whether a value matches a glob of `*` (any run of characters) and `?` (one character), everything else
 * literal. A walk that goes back only to the last `*`: time grows with the lengths' product at worst, never
 * exponentially, as a regular expression of many `.*` can on a long dimension value.
 */
export function globMatches(glob: string, value: string): boolean {
  let g = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (g < glob.length && (glob[g] === "?" || glob[g] === value[v])) {
      g++;
      v++;
    } else if (g < glob.length && glob[g] === "*") {
      star = g++;
      resume = v;
    } else if (star >= 0) {
      g = star + 1;
      v = ++resume;
    } else return false;
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** Metric and dimension names, one string each however many streams carry them. */
const names = new Map<string, string>();
const interned = (name: string) => names.get(name) ?? (names.set(name, name), name);

/**
 * Sorts dimension sets by name, so that a stream has one identity however ListMetrics orders them, and holds
 * each set once among the streams it is made for: the metrics of one service share theirs, and the streams of
 * a cluster its ClusterName. A stream's dimensions are never changed in place.
 */
function dimensionSets(): (dims: Dimension[]) => Dimension[] {
  const dimensions = new Map<string, Dimension>();
  const sets = new Map<string, Dimension[]>();
  // Lengths first, so that no name or value, whatever its characters, can make two ids alike.
  const idOf = (d: Dimension) => `${d.Name.length}:${d.Name}${d.Value.length}:${d.Value}`;
  const one = (d: Dimension, id: string) => {
    let x = dimensions.get(id);
    if (x === undefined) dimensions.set(id, x = { Name: interned(d.Name), Value: d.Value });
    return x;
  };
  return (dims) => {
    const sorted = dims.slice().sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    const ids = sorted.map(idOf);
    const id = ids.join("");
    let set = sets.get(id);
    if (set === undefined) sets.set(id, set = sorted.map((d, i) => one(d, ids[i]!)));
    return set;
  };
}

const matches = new WeakMap<MetricPlan, [name: string, glob: string][]>();

/** Whether a listed metric has exactly the plan's dimension names and values that match its globs. */
export function selects(plan: MetricPlan, dims: Dimension[]): boolean {
  if (dims.length !== plan.dimensions.length) return false;
  if (!dims.every((d) => plan.dimensions.includes(d.Name))) return false;
  let match = matches.get(plan);
  if (match === undefined) matches.set(plan, match = Object.entries(plan.match));
  return match.every(([name, glob]) => {
    const d = dims.find((x) => x.Name === name);
    return d !== undefined && globMatches(glob, d.Value);
  });
}

/** ListMetrics filters for a plan: its dimension names, with the value where the match has no wildcard. */
export function listFilters(plan: MetricPlan): { Name: string; Value?: string }[] {
  return plan.dimensions.slice(0, LIST_MAX_DIMENSION_FILTERS).map((Name) => {
    const glob = plan.match[Name];
    return glob !== undefined && !/[*?]/.test(glob) ? { Name, Value: glob } : { Name };
  });
}

/** A plan's identity among listings: what its ListMetrics calls ask for. */
export const planId = (plan: MetricPlan) => JSON.stringify([plan.namespace, plan.dimensions, plan.match]);

/**
 * Whether one namespace-wide listing (every name, filtered by the plan's dimensions) takes fewer pages than one
 * listing per name, judged from the last listing; without one, namespace-wide where the plan has several names.
 */
export function listsWide(plan: MetricPlan, last: PlanCounts | undefined): boolean {
  if (plan.names.length === 1) return false;
  if (last?.wide === undefined) return last === undefined;
  return pagesFor(last.wide) <= plan.names.reduce((sum, name) => sum + pagesFor(last.names[name] ?? 0), 0);
}

/** ListMetrics answers at most 500 metrics a page (API reference, ListMetrics). */
const LIST_PAGE_SIZE = 500;
const pagesFor = (metrics: number) => Math.max(1, Math.ceil(metrics / LIST_PAGE_SIZE));

/**
 * The pages the next listing of these plans takes, judged from what the last one returned; a `streams:` list
 * is looked for once a name (see unfound).
 */
export function pagesOf(plans: MetricPlan[], last: ListingCounts): number {
  let pages = 0;
  for (const plan of plans) {
    if (plan.streams) {
      pages += plan.names.length;
      continue;
    }
    const c = last[planId(plan)];
    if (listsWide(plan, c)) pages += pagesFor(c?.wide ?? 0);
    else for (const name of plan.names) pages += pagesFor(c?.names[name] ?? 0);
  }
  return pages;
}

/**
 * Lists the streams of every plan, each plan in the fewest pages the last listing suggests (see listsWide),
 * the listings of a source side by side. `recentOnly` asks ListMetrics for metrics active in the past three
 * hours (RecentlyActive=PT3H), which is enough when nothing older is owed and keeps the listing short. Static
 * streams (full dimension values in the config) need no listing.
 */
export async function discover(
  api: Pick<CloudWatchApi, "listMetrics">,
  plans: MetricPlan[],
  recentOnly: boolean,
  last: ListingCounts = {},
  ownerOf?: (id: string) => Owner | undefined,
): Promise<{ streams: Stream[]; counts: ListingCounts; empty: MetricPlan[] }> {
  const streams: Stream[] = [];
  // Before onceEach: an entry whose streams an earlier entry forwards has found them all the same.
  const selecting = new Set<MetricPlan>();
  // A listing parses every name and value anew: held once each, for a stream lives the whole run.
  const set = dimensionSets();
  const add = (plan: MetricPlan, name: string, dims: Dimension[], owner: Owner | undefined) =>
    void streams.push({ plan, name: interned(name), dims: set(dims), ...(owner && { owner }) });
  const counts: ListingCounts = {};
  const listings: Promise<void>[] = [];
  // Through a monitoring account, which accounts have a `streams:` list's streams only a listing tells.
  if (!ownerOf) streams.push(...staticStreams(plans, set));
  for (const plan of plans) {
    if (plan.streams && !ownerOf) continue;
    const c: PlanCounts = counts[planId(plan)] ??= { names: {} };
    // Counted before selection: a listing of that name alone would return them all the same.
    const keep = (m: Metric, id: string | undefined) => {
      if (!plan.names.includes(m.MetricName)) return;
      c.names[m.MetricName] = (c.names[m.MetricName] ?? 0) + 1;
      const owner = ownerOf?.(id!);
      if (ownerOf && owner === undefined) return;
      if (!selects(plan, m.Dimensions) || (plan.streams && !namedIn(plan, m.Dimensions))) return;
      add(plan, m.MetricName, m.Dimensions, owner);
      selecting.add(plan);
    };
    const list = (name: string | undefined) =>
      listAll(api, plan, name, recentOnly, (m, id) => {
        if (name === undefined) c.wide = (c.wide ?? 0) + 1;
        keep(m, id);
      });
    if (listsWide(plan, last[planId(plan)])) listings.push(list(undefined));
    else for (const name of plan.names) listings.push(list(name));
  }
  await Promise.all(listings);
  const empty = plans.filter((p) => !p.streams && !selecting.has(p));
  return { streams: onceEach(plans, streams), counts, empty };
}

/**
 * What a listing did not find of the config: a metrics entry that selected no stream, or the streams of a
 * `streams:` list that ListMetrics does not list (each with the names it lacks). The run says it once per
 * listing (lib/run.ts, warnUnmatched).
 */
export interface Unfound {
  plan: MetricPlan;
  /** The `streams:` items not listed under some of the entry's names; none where the entry found nothing. */
  streams?: { values: Record<string, string>; names: string[] }[];
}

/**
 * What a listing did not find (see Unfound), judged over the two weeks ListMetrics keeps: an entry that a
 * listing of recently active metrics found nothing of is asked again without RecentlyActive, so a metric
 * published once a day is not taken for a mistake. Static streams are listed here only, never forwarded from
 * it: a stream not listed yet (a new service) is forwarded all the same.
 */
export async function unfound(
  api: Pick<CloudWatchApi, "listMetrics">,
  plans: MetricPlan[],
  empty: MetricPlan[],
  recentOnly: boolean,
): Promise<Unfound[]> {
  const each = await Promise.all(plans.map(async (plan): Promise<Unfound | undefined> => {
    if (plan.streams) return unlisted(api, plan);
    if (!empty.includes(plan)) return undefined;
    return recentOnly && await anyListed(api, plan) ? undefined : { plan };
  }));
  return each.filter((u) => u !== undefined);
}

/** Whether ListMetrics lists any stream an entry selects, over two weeks; it stops at the first. */
async function anyListed(api: Pick<CloudWatchApi, "listMetrics">, plan: MetricPlan): Promise<boolean> {
  for (const name of plan.names) {
    let found = false;
    const check = (m: Metric) => (found ||= m.MetricName === name && selects(plan, m.Dimensions));
    await listAll(api, plan, name, false, check);
    if (found) return true;
  }
  return false;
}

/**
 * The streams of a `streams:` list that ListMetrics does not list over two weeks: one listing per name,
 * narrowed to the values every stream of the entry shares, that stops once it has listed them all.
 */
async function unlisted(
  api: Pick<CloudWatchApi, "listMetrics">,
  plan: MetricPlan,
): Promise<Unfound | undefined> {
  const items = plan.streams ?? [];
  const shared = Object.fromEntries(plan.dimensions.flatMap((d) => {
    const values = new Set(items.map((s) => s[d]));
    return values.size === 1 ? [[d, items[0]![d]!]] : [];
  }));
  const set = dimensionSets();
  const wanted = items.map((values) => set(Object.entries(values).map(([Name, Value]) => ({ Name, Value }))));
  // Equal sets are one array (dimensionSets): a set of them holds each stream once.
  const want = new Set(wanted);
  const listed = new Map<string, Set<Dimension[]>>();
  await Promise.all(plan.names.map((name) => {
    const found = new Set<Dimension[]>();
    listed.set(name, found);
    return listAll(api, { ...plan, match: shared }, name, false, (m) => {
      if (m.MetricName !== name) return false;
      const dims = set(m.Dimensions);
      if (want.has(dims)) found.add(dims);
      return found.size === want.size;
    });
  }));
  const missing = items.map((values, i) => ({
    values,
    names: plan.names.filter((name) => !listed.get(name)!.has(wanted[i]!)),
  })).filter((s) => s.names.length > 0);
  if (missing.length === 0) return undefined;
  const none = missing.length === items.length && missing.every((s) => s.names.length === plan.names.length);
  return none ? { plan } : { plan, streams: missing };
}

/**
 * Each stream once, with the first plan in the config that selects it: one checkpoint per stream. A stream
 * comes up more than once where two entries select it (same namespace, period and a name in common), where a
 * `streams:` list names a listed one, and wherever a listing repeats a metric: nothing in the API reference
 * (ListMetrics) promises that it does not, a listing paged while metrics appear can, and CloudWatch-compatible
 * endpoints do. Keyed as the checkpoint is (owner, namespace, name, dimensions, period; the region is one);
 * the streams' dimension sets must come from one dimensionSets(), which holds equal sets as one array.
 */
export function onceEach(plans: MetricPlan[], streams: Stream[]): Stream[] {
  const order = new Map(plans.map((p, i) => [p, i]));
  // The first stream kept of each dimension set, and from each kept stream the next of the same set: a chain
  // of a few (the metrics of one service) instead of a map and a key string per stream. Per owner: the
  // accounts linked to a monitoring account often share their cluster and service names.
  const firsts = new Map<Owner | undefined, Map<Dimension[], number>>();
  const next: number[] = [];
  const out: Stream[] = [];
  for (const s of streams) {
    let first = firsts.get(s.owner);
    if (first === undefined) firsts.set(s.owner, first = new Map());
    let at = first.get(s.dims) ?? -1;
    let last = -1;
    while (at >= 0) {
      const o = out[at]!;
      if (o.name === s.name && o.plan.period === s.plan.period && o.plan.namespace === s.plan.namespace) {
        break;
      }
      last = at;
      at = next[at]!;
    }
    if (at >= 0) {
      if (order.get(out[at]!.plan)! > order.get(s.plan)!) out[at] = s;
      continue;
    }
    if (last >= 0) next[last] = out.length;
    else first.set(s.dims, out.length);
    next.push(-1);
    out.push(s);
  }
  return out.length === streams.length ? streams : out;
}

/** The streams the config names in full (`streams:`): they need no listing. */
export function staticStreams(plans: MetricPlan[], set = dimensionSets()): Stream[] {
  return plans.flatMap((plan) =>
    (plan.streams ?? []).flatMap((values) =>
      plan.names.map((name) => ({
        plan,
        name,
        dims: set(Object.entries(values).map(([Name, Value]) => ({ Name, Value }))),
      }))
    )
  );
}

/**
 * Every page of one listing, one after another (each page's NextToken asks for the next), or the pages up to
 * the one on which `each` says that the listing has answered what it was asked.
 */
async function listAll(
  api: Pick<CloudWatchApi, "listMetrics">,
  plan: MetricPlan,
  name: string | undefined,
  recentOnly: boolean,
  each: (m: Metric, owner: string | undefined) => boolean | void,
) {
  let nextToken: string | undefined;
  let answered = false;
  do {
    const page = await api.listMetrics({
      Namespace: plan.namespace,
      ...(name === undefined ? {} : { MetricName: name }),
      Dimensions: listFilters(plan),
      ...(recentOnly ? { RecentlyActive: "PT3H" as const } : {}),
      ...(nextToken ? { NextToken: nextToken } : {}),
    });
    // Through a monitoring account, each metric's account (see throughLinks).
    page.metrics.forEach((m, i) => {
      if (each(m, page.owningAccounts?.[i]) === true) answered = true;
    });
    nextToken = page.nextToken;
  } while (nextToken && !answered);
}

/**
 * The streams a listing found, rebuilt from their checkpoint identities (namespace, name, dimensions,
 * period), each with the plan that selects it; those no plan selects any more are left out. Through a
 * monitoring account, each belongs to `owner`, and a `streams:` list selects what was listed of it.
 */
export function rebuild(
  plans: MetricPlan[],
  found: [namespace: string, name: string, dims: [string, string][], period: number][],
  set = dimensionSets(),
  owner?: Owner,
): Stream[] {
  const out: Stream[] = [];
  for (const [namespace, name, pairs, period] of found) {
    const dims = set(pairs.map(([Name, Value]) => ({ Name, Value })));
    const plan = plans.find((p) =>
      (!p.streams || (owner && namedIn(p, dims))) && p.namespace === namespace && p.period === period &&
      p.names.includes(name) && selects(p, dims)
    );
    if (plan) out.push({ plan, name: interned(name), dims, ...(owner && { owner }) });
  }
  return out;
}

/** What keeping a listing between runs needs of a run. */
export interface ListingContext {
  store: Store;
  nowSeconds: number;
  dryRun: boolean;
  /** Seconds a listing is kept: the config's discovery_interval. */
  discoveryInterval: number;
  log: Log;
}

/** Keys made once per stream: a run asks for them at every stage. */
const madeKeys = new WeakMap<Stream, string>();

/**
 * A stream's checkpoint key: account (the one it belongs to: see accountOf), region, namespace, name,
 * dimensions (name and value) and period.
 */
export function keyOf(src: SourcePlan, s: Stream): string {
  let key = madeKeys.get(s);
  if (key === undefined) {
    const dims = s.dims.map((d) => [d.Name, d.Value]);
    key = JSON.stringify([accountOf(src, s), src.region, s.plan.namespace, s.name, dims, s.plan.period]);
    madeKeys.set(s, key);
  }
  return key;
}

/** What a key names, less the account and region: the identity a kept listing is rebuilt from. */
export const identityOf = (key: string) =>
  (JSON.parse(key) as [string, string, string, string, [string, string][], number]).slice(2) as [
    string,
    string,
    [string, string][],
    number,
  ];

/**
 * The accounts whose streams an account-region holds: its own; through a monitoring account, those its
 * listings found (kept with the last one while any stream of theirs is).
 */
export function accountsOf(src: SourcePlan, store: Pick<Store, "listing">): string[] {
  if (!src.linked) return [src.account];
  return Object.keys(store.listing(src.account, src.region)?.owners ?? {});
}

/** The checkpoint keys of an account-region's streams, of every account they belong to. */
export const keysOf = (src: SourcePlan, store: Pick<Store, "listing" | "keys">): string[] =>
  accountsOf(src, store).flatMap((account) => store.keys(account, src.region));

/**
 * Where some streams of an account-region belong, for a message: `account "a" in r`, or through a monitoring
 * account, the accounts they belong to (a few named, then how many more).
 */
export function whereOf(src: SourcePlan, streams: Stream[]): string {
  if (!src.linked) return `account "${src.account}" in ${src.region}`;
  const names = [...new Set(streams.map((s) => accountOf(src, s)))];
  const shown = names.slice(0, 3).map((n) => `"${n}"`).join(", ");
  const more = names.length > 3 ? ` and ${names.length - 3} more` : "";
  return `${
    names.length === 1 ? "account" : "accounts"
  } ${shown}${more} (through "${src.account}") in ${src.region}`;
}

/** ListMetrics may list a new metric up to 15 minutes after its first datum (API reference, PutMetricData). */
const LIST_DELAY_SECONDS = 15 * 60;

/**
 * The streams of an account-region: ListMetrics when the last listing is older than `discovery_interval` or
 * was made for another config, else the streams that listing found (ListMetrics shows a new metric up to 15
 * minutes late anyway). What the config names and a listing did not find comes with a listing only, so that
 * the run says it once per listing rather than once a run.
 */
export async function streamsOf(
  api: Pick<CloudWatchApi, "listMetrics">,
  src: SourcePlan,
  run: ListingContext,
  recentOnly: boolean,
): Promise<{ streams: Stream[]; unfound: Unfound[] }> {
  const last = run.store.listing(src.account, src.region);
  const fingerprint = JSON.stringify(src.linked ? [src.metrics, src.linked] : src.metrics);
  const age = last === undefined ? Infinity : run.nowSeconds - last.listedAt;
  if (last?.fingerprint === fingerprint && age >= 0 && age < run.discoveryInterval) {
    const found = (account: string) =>
      run.store.keys(account, src.region)
        .filter((k) => (run.store.get(k)?.seen ?? -Infinity) >= last.listedAt).map(identityOf);
    const set = dimensionSets();
    const kept = onceEach(
      src.metrics,
      src.linked
        ? Object.entries(last.owners ?? {}).flatMap(([name, id]) =>
          rebuild(src.metrics, found(name), set, { id, name })
        )
        : [...staticStreams(src.metrics, set), ...rebuild(src.metrics, found(src.account), set)],
    );
    run.log.debug(`Kept the listing of ${iso(last.listedAt)}: ${plural(kept.length, "stream")}`, fields(src));
    return { streams: kept, unfound: [] };
  }
  const lister = throughLinks(api, src);
  const ownerOf = src.linked && ownersOf(src);
  const { streams, counts, empty } = await discover(lister, src.metrics, recentOnly, last?.counts, ownerOf);
  // What the config names and the listing lacks is a warning to give, never a reason not to forward: a role
  // without ListMetrics still forwards its static streams.
  const missed = await unfound(lister, src.metrics, empty, recentOnly).catch((e): Unfound[] => {
    run.log.warn(
      `Cannot check which configured metrics and streams exist in account "${src.account}" in ${src.region}: ${
        describe(e)
      }; what was found is forwarded all the same`,
      fields(src),
    );
    return [];
  });
  run.log.debug(
    `Listed ${plural(streams.length, "stream")}${recentOnly ? " active in the past 3 hours" : ""}`,
    fields(src),
  );
  if (!run.dryRun) {
    const owners = await remember(src, streams, run, last?.listedAt);
    const listing = { listedAt: run.nowSeconds, fingerprint, counts, ...(owners && { owners }) };
    run.store.setListing(src.account, src.region, listing);
  }
  return { streams, unfound: missed };
}

/**
 * Records that a listing found these streams, and forgets the source's streams none has found for long. A
 * stream found for the first time owes its periods from where the previous listing ended (less the time
 * ListMetrics may take to show it), so a new service's first minutes are not lost; one of an account that a
 * monitoring account's last listing did not read (one just linked) starts at its newest period, as in a first
 * listing. Through a monitoring account, returns the accounts it holds streams of, by name, with their ids.
 */
async function remember(
  src: SourcePlan,
  streams: Stream[],
  run: ListingContext,
  lastListed: number | undefined,
): Promise<Record<string, string> | undefined> {
  const before = accountsOf(src, run.store);
  const read = new Set(before);
  const found = new Set<string>();
  // By period, as a new stream's first period owed is a multiple of its own; apart, those of a new account.
  const byPeriod = new Map<string, { period: number; fresh: boolean; keys: string[] }>();
  for (const s of streams) {
    const key = keyOf(src, s);
    if (found.has(key)) continue;
    found.add(key);
    const fresh = !read.has(accountOf(src, s));
    const id = `${s.plan.period}|${fresh}`;
    let g = byPeriod.get(id);
    if (g === undefined) byPeriod.set(id, g = { period: s.plan.period, fresh, keys: [] });
    g.keys.push(key);
  }
  const since = lastListed === undefined
    ? undefined
    : Math.max(lastListed - LIST_DELAY_SECONDS, run.nowSeconds - MAX_BACKFILL_SECONDS);
  for (const { period, fresh, keys } of byPeriod.values()) {
    await run.store.update(keys, (st) => {
      const seen = { ...st, seen: run.nowSeconds };
      if (since === undefined || fresh || state.resumeAt(st) !== undefined) return seen;
      return { ...seen, since: Math.ceil(since / period) * period };
    });
  }
  for (const account of before) {
    const known = run.store.keys(account, src.region).map((
      k,
    ): [string, state.StreamState | undefined] => [k, run.store.get(k)]);
    const gone = state.forgotten(known, found, run.nowSeconds);
    if (gone.length === 0) continue;
    run.log.info(
      `Forgetting ${plural(gone.length, "stream")} of account "${account}" in ${src.region}: not found for ${
        state.FORGET_AFTER_SECONDS / 86_400
      } days`,
      { account, region: src.region },
    );
    await run.store.update(gone, () => undefined);
  }
  if (!src.linked) return undefined;
  const owners: Record<string, string> = {};
  const last = run.store.listing(src.account, src.region)?.owners ?? {};
  for (const name of before) if (run.store.count(name, src.region) > 0) owners[name] = last[name]!;
  for (const s of streams) owners[s.owner!.name] = s.owner!.id;
  return owners;
}
