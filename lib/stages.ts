/**
 * Every stage forward.ts runs, gathered so that it loads them all in one step once the command line asks for
 * more than --help, which then answers without loading the file system, SQLite, YAML or valibot.
 */
export { audit, printAudit } from "./audit.ts";
export { mapLimit } from "./batch.ts";
export { hostTime, readClock, repairAhead, runTime } from "./clock.ts";
export { loadConfigFile, unitFacts } from "./config.ts";
export { streamsOf } from "./discover.ts";
export { fetchStats } from "./fetch.ts";
export { logger } from "./log.ts";
export { monitor } from "./monitoring.ts";
export { planRun, printPlan } from "./plan.ts";
export { alreadyWritten, datumsOf, targetOf } from "./publish.ts";
export {
  checkHome,
  checkReplay,
  clientsFor,
  every,
  failedRun,
  noteFound,
  roleOf,
  runSource,
  SOURCE_CONCURRENCY,
  startRun,
  stepTally,
  stopOnSignals,
} from "./run.ts";
export { forwarded, landedIn, lateDatums, readWindow } from "./recheck.ts";
export { writeSelfMetrics } from "./selfmetrics.ts";
export { printDatums, report } from "./summary.ts";
export { configFolder, intend, statePath } from "./state.ts";
export { printStatus } from "./status.ts";
export { forEachCall, lagOf, recentOnly, steps } from "./step.ts";
export { writeUnits } from "./units.ts";
