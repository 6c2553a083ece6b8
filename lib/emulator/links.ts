/**
 * Cross-account observability (OAM): the source accounts each monitoring account is linked to. A monitoring
 * account reads its sources' metrics in place, ListMetrics with IncludeLinkedAccounts and GetMetricData with
 * MetricDataQuery.AccountId (API reference); nothing is copied. AWS links per Region; the emulator's links hold
 * in every Region alike, which is all a reader of one Region can tell apart.
 */
import { MONITORING_PER_SOURCE } from "./limits.ts";

/** Monitoring account -> its source accounts, in the order they were given. */
export type Links = Map<string, Set<string>>;

const ACCOUNT_ID = /^\d{12}$/;

/** The accounts whose metrics `account` reads: its own first, then those of its sources. */
export function readable(links: Links, account: string): string[] {
  return [account, ...(links.get(account) ?? [])];
}

/** Whether `caller` reads `owner`'s metrics: its own, or a source's it is linked to. */
export function reads(links: Links, caller: string, owner: string): boolean {
  return owner === caller || (links.get(caller)?.has(owner) ?? false);
}

/**
 * The problems of links given as `{ MONITORING: [SOURCE, ...] }`, one a line: account ids that are not 12
 * digits, an account linked to itself, and a source shared with more monitoring accounts than OAM allows.
 */
export function linkProblems(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const monitors = new Map<string, string[]>();
  for (const [monitoring, sources] of Object.entries(raw)) {
    if (!ACCOUNT_ID.test(monitoring)) problems.push(`"${monitoring}" is not a 12-digit account id`);
    if (!Array.isArray(sources)) {
      problems.push(`"${monitoring}" takes a list of source account ids`);
      continue;
    }
    for (const source of new Set(sources)) {
      if (typeof source !== "string" || !ACCOUNT_ID.test(source)) {
        problems.push(`${JSON.stringify(source)} (a source of "${monitoring}") is not a 12-digit account id`);
      } else if (source === monitoring) problems.push(`"${monitoring}" cannot be its own source`);
      else monitors.set(source, [...(monitors.get(source) ?? []), monitoring]);
    }
  }
  for (const [source, of] of monitors) {
    if (of.length > MONITORING_PER_SOURCE) {
      problems.push(
        `"${source}" is a source of ${of.length} monitoring accounts; a source shares with at most ${MONITORING_PER_SOURCE}`,
      );
    }
  }
  return problems;
}

/** Links checked by linkProblems, as the emulator keeps them. */
export function linksOf(raw: Record<string, string[]>): Links {
  return new Map(Object.entries(raw).map(([monitoring, sources]) => [monitoring, new Set(sources)]));
}

/** Links as POST /_emulator/links takes them and GET answers them. */
export function linksJson(links: Links): Record<string, string[]> {
  return Object.fromEntries([...links].map(([monitoring, sources]) => [monitoring, [...sources]]));
}
