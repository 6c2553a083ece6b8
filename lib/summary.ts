/**
 * The end of a run, as its operator reads it: the summary (on stdout, and as a log line), the warnings about
 * config that matched nothing or streams that answered nothing, what a dry run would write, and the exit code.
 */
import type { Datum } from "./aws.ts";
import { EXIT } from "./cli.ts";
import type { MetricPlan } from "./config.ts";
import { accountOf, type Stream, type Unfound } from "./discover.ts";
import { plural } from "./errors.ts";
import { describeDatum } from "./publish.ts";
import type { Run, SourceTotals } from "./run.ts";

/** A dry run prints each datum it would write, one line each. */
export function printDatums(byNamespace: Map<string, Datum[]>, out: (line: string) => void) {
  for (const [ns, list] of byNamespace) {
    for (const x of list) {
      out(`${ns} ${describeDatum(x)} ${JSON.stringify(x.StatisticValues ?? { Value: x.Value })}`);
    }
  }
}

/** A lag in the units a person reads it in: minutes, hours and minutes, or days and hours. */
export function readableLag(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

/**
 * The summary (on stdout, and as a log line), the warnings about config that matched nothing, and the exit
 * code: 3 when the lease was lost, 1 when any account-region failed.
 */
export function report(
  run: Run,
  results: (SourceTotals | undefined)[],
  o: { seconds: number; lag: number | undefined },
): number {
  if (run.leaseLost) run.log.error(run.leaseLost.message);
  const ok = results.filter((r) => r !== undefined);
  const failed = run.plan.sources.flatMap((src, i) => {
    const f = results[i] === undefined ? run.failures?.get(src) : undefined;
    return f ? [{ src, ...f }] : [];
  });
  const sum = (k: "streams" | "datums" | "already" | "over") => ok.reduce((a, r) => a + r[k], 0);
  // A refusal is said wherever it came: an account-region that failed afterwards had datums refused too.
  const refused = [...ok, ...failed.map((f) => f.totals)].reduce((a, r) => a + r.refused, 0);
  const skipped = ok.filter((r) => r.skipped).length;
  const calls = Object.entries(run.calls).sort().map(([op, n]) =>
    `${op} ${n}${run.throttled[op] ? ` (${run.throttled[op]} throttled)` : ""}`
  ).join(", ");
  // What a failed account-region forwarded before it failed is in the destination all the same.
  const failures = [
    ...failed.map(({ src, why, totals: { datums } }) =>
      `${src.account} ${src.region} (${why}${datums ? `, ${plural(datums, "datum")} forwarded first` : ""})`
    ),
    ...refusedAccounts(run, results),
  ];
  const named = failures.slice(0, NAMED);
  if (failures.length > NAMED) named.push(`${failures.length - NAMED} more (see the log)`);
  const stopped = run.stop.requested ? `Stopped by ${run.stop.signal ?? "a signal"}: forwarded` : undefined;
  const line = `${stopped ?? (run.dryRun ? "Would forward" : "Forwarded")} ${
    plural(sum("datums"), "datum")
  } of ${plural(sum("streams"), "stream")} from ${ok.length - skipped} of ${
    plural(results.length, "account-region")
  } in ${o.seconds.toFixed(1)} s${skipped ? ` (${skipped} not begun)` : ""}${
    sum("already") ? `; ${sum("already")} already in the destination` : ""
  }${refused ? `; ${refused} refused by CloudWatch and skipped` : ""}${
    sum("over") ? `; ${plural(sum("over"), "period")} over-counted in the destination (see the warnings)` : ""
  }${named.length ? `; failed: ${named.join(", ")}` : ""}${calls ? `; calls: ${calls}` : ""}${
    o.lag === undefined ? "" : `; largest lag ${readableLag(o.lag)}`
  }${stopped ? "; the next run goes on from where this one stopped" : ""}${
    run.dryRun ? " (dry run: nothing written)" : ""
  }`;
  // Under systemd stdout and stderr are one stream into the journal: the line goes there once, as a log line.
  if (!run.log.stdoutInJournal || !run.log.enabled("info")) run.out(line);
  run.log.info(line);
  warnUnmatched(run, results);
  warnSilent(run, results);
  if (run.leaseLost) return EXIT.state;
  return failures.length === 0 ? EXIT.ok : EXIT.failed;
}

/** Account-regions a summary or a warning names one by one; past them, it counts the rest. */
const NAMED = 5;

/** The accounts read through a monitoring account that failed alone (GetMetricData Forbidden), as named. */
function refusedAccounts(run: Run, results: (SourceTotals | undefined)[]): string[] {
  return results.flatMap((r, i) => {
    const src = run.plan.sources[i]!;
    return [...r?.owners ?? []].flatMap(([name, o]) =>
      o.failed === undefined ? [] : [`${name} ${src.region} (${o.failed} through "${src.account}")`]
    );
  });
}

/**
 * Config that forwards nothing, named precisely: a metric name or a whole metrics entry that no account-region
 * has (said every run, once every account-region answered); an entry or a static stream that an account-region's
 * listing did not find (said once per listing, and not for an entry that no account-region has: one line says
 * that).
 */
function warnUnmatched(run: Run, results: (SourceTotals | undefined)[]) {
  const ok = results.filter((r) => r !== undefined);
  const everyOne = ok.length === results.length;
  const found = (key: string) => ok.reduce((n, r) => n + (r.found.get(key) ?? 0), 0);
  const keyOf = (m: MetricPlan, name: string) => `${m.namespace}|${name}|${m.dimensions.join(",")}`;
  const nowhere = (m: MetricPlan) => everyOne && m.names.every((name) => found(keyOf(m, name)) === 0);
  // Each entry once, as its line says it: an entry's regions may leave out the first account-region's.
  const entryId = (m: MetricPlan) => JSON.stringify([m.namespace, m.names, m.dimensions]);
  const entries = new Map(run.plan.sources.flatMap((s) => s.metrics).map((m) => [entryId(m), m]));
  for (const m of everyOne ? entries.values() : []) {
    const dims = m.dimensions.join(", ") || "no dimensions";
    const missing = m.names.filter((name) => found(keyOf(m, name)) === 0);
    if (nowhere(m)) {
      run.log.warn(
        `No metric ${
          m.names.join(", ")
        } of namespace ${m.namespace} with the dimensions ${dims} was found in any account-region: check the namespace, the names and the dimensions (ListMetrics lists what has had data in the past two weeks)`,
      );
    } else {
      for (const name of missing) {
        run.log.warn(
          `No metric ${name} of namespace ${m.namespace} with the dimensions ${dims} was found in any account-region: check the name`,
        );
      }
    }
  }
  results.forEach((r, i) => {
    const { account, region, linked } = run.plan.sources[i]!;
    const where = linked ? `any account read through "${account}"` : `account "${account}"`;
    for (const u of r?.unfound ?? []) {
      if (!u.plan.streams && nowhere(u.plan)) continue;
      for (const [names, what, hint] of unfoundLines(u)) {
        run.log.warn(
          `No metric ${
            names.join(", ")
          } of namespace ${u.plan.namespace} with ${what} was found in ${where} in ${region}: ${hint} (ListMetrics lists what has had data in the past two weeks)`,
          { account, region },
        );
      }
    }
  });
}

/**
 * Streams of an entry that names a unit that answered no datapoint in the periods owed, said by a run that
 * listed their account-region (once per listing: a unit set or changed makes a new one), one line per metric.
 * GetMetricData answers nothing for a source that published nothing, and nothing in a unit the metric is not
 * published in: where other streams of the metric answered in that unit, the unit is right and their sources
 * are quiet (info); where none did, either may be so (a warning).
 */
function warnSilent(run: Run, results: (SourceTotals | undefined)[]) {
  // Per metric and unit: the streams that answered, over every account-region, and those that did not, per
  // account-region that listed (through a monitoring account, per account read through it).
  const metrics = new Map<string, { stream: Stream; answered: number; quiet: Map<string, number> }>();
  results.forEach((r, i) => {
    const src = run.plan.sources[i]!;
    const listed = run.dryRun || run.store.listing(src.account, src.region)?.listedAt === run.nowSeconds;
    for (const { stream, answered } of r?.inUnit.values() ?? []) {
      const id = `${stream.plan.namespace}|${stream.name}|${stream.plan.unit}`;
      let m = metrics.get(id);
      if (m === undefined) metrics.set(id, m = { stream, answered: 0, quiet: new Map() });
      const where = `${accountOf(src, stream)} ${src.region}`;
      if (answered) m.answered++;
      else if (listed) m.quiet.set(where, (m.quiet.get(where) ?? 0) + 1);
    }
  });
  for (const { stream: { plan, name }, answered, quiet } of metrics.values()) {
    if (quiet.size === 0) continue;
    const n = [...quiet.values()].reduce((a, b) => a + b, 0);
    const where = [...quiet.keys()].slice(0, NAMED);
    if (quiet.size > NAMED) where.push(`${plural(quiet.size - NAMED, "account-region")} more`);
    const what = `${plural(n, "stream")} of ${plan.namespace} ${name} in ${where.join(", ")}`;
    if (answered > 0) {
      run.log.info(
        `${what} answered no datapoint in the periods owed, where ${
          plural(answered, "other")
        } answered in unit ${plan.unit}: their sources published nothing then`,
      );
    } else {
      run.log.warn(
        `${what} answered no datapoint in unit ${plan.unit} in the periods owed, nor did any other: either their sources published nothing then, or they publish in another unit (GetMetricData answers nothing in a unit the metric is not published in); if they are publishing, check the unit, or leave unit out`,
      );
    }
  }
}

/** What a listing did not find, as its warnings name it: the metric names, the dimensions or values, a hint. */
function unfoundLines({ plan: m, streams }: Unfound): [names: string[], what: string, hint: string][] {
  const values = (v: Record<string, string>) => Object.entries(v).map(([d, x]) => `${d}=${x}`).join(",");
  if (m.streams === undefined) {
    const match = Object.entries(m.match).map(([d, glob]) => `${d} "${glob}"`).join(", ");
    const dims = `the dimensions ${m.dimensions.join(", ") || "no dimensions"}${
      match && ` matching ${match}`
    }`;
    return [[m.names, dims, "the entry forwards nothing from there"]];
  }
  // A whole list not found is one line: a new account, or a mistake that all its streams share.
  if (streams === undefined) {
    const others = m.streams.length - 1;
    const any = others > 0 ? ` or any other of the entry's ${plural(others, "stream")}` : "";
    return [[m.names, `${values(m.streams[0]!)}${any}`, "check the values in streams"]];
  }
  return streams.map((s) => [s.names, values(s.values), "check the values in streams"]);
}
