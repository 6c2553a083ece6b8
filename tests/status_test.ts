/** lib/status.ts: --status for every configured account-region, from the store's contents. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { SourcePlan } from "../lib/config.ts";
import { readableLag } from "../lib/summary.ts";
import { statusLines, statusOf } from "../lib/status.ts";
import type { StoreContents } from "../lib/store.ts";

const T = Date.UTC(2026, 10, 24, 12) / 1000;
const key = (account: string, region: string, name: string) =>
  JSON.stringify([account, region, "AWS/ECS", name, [["ServiceName", name]], 60]);
const source = (account: string, region: string): SourcePlan => ({
  account,
  region,
  roleArn: undefined,
  externalId: undefined,
  metrics: [],
});
const contents = (o: Partial<StoreContents>): StoreContents => ({
  streams: {},
  listings: new Map(),
  sources: new Map(),
  continuous: true,
  ...o,
});

test("statusOf() gives every configured account-region: its oldest checkpoint, lag, streams, doubt, and errors", () => {
  const sources = [
    source("prod", "eu-west-1"),
    source("prod", "us-east-1"),
    source("acc", "eu-west-1"),
    source("old", "eu-west-1"),
  ];
  const statuses = statusOf(
    sources,
    contents({
      streams: {
        [key("prod", "eu-west-1", "a")]: { next: T - 180, seen: T },
        [key("prod", "eu-west-1", "b")]: { next: T - 600, doubt: [[T - 600, T - 540, T]], seen: T },
        [key("prod", "eu-west-1", "gone")]: { next: T - 86_400, seen: T - 86_400 },
        [key("prod", "us-east-1", "a")]: { next: T - 5 * 3600, seen: T },
        // A replay's periods apart from the span are known written: not in doubt.
        [key("prod", "us-east-1", "b")]: {
          next: T - 5 * 3600,
          written: [[T - 9 * 3600, T - 8 * 3600, T]],
          seen: T,
        },
        // Data 6 hours old written in doubt: CloudWatch shows it within 2 hours (PutMetricData).
        [key("old", "eu-west-1", "a")]: {
          next: T - 6 * 3600,
          doubt: [[T - 6 * 3600, T - 5 * 3600, T]],
          seen: T,
        },
      },
      sources: new Map([
        [JSON.stringify(["prod", "us-east-1"]), {
          lastOk: T - 5 * 3600,
          lastError: "AccessDenied: no",
          errorAt: T,
        }],
        [JSON.stringify(["acc", "eu-west-1"]), {
          lastError: "AssumeRole failed: AccessDenied",
          errorAt: T - 60,
        }],
        [JSON.stringify(["prod", "eu-west-1"]), { lastOk: T }],
      ]),
    }),
    T,
  );
  assert.deepEqual(statusLines(statuses, T), [
    "prod eu-west-1: forwarded up to 2026-11-24T11:50:00Z (10 min behind), 2 streams, 1 in doubt (a write that may or may not have arrived: the next run reads the destination before writing them); 1 no longer found",
    "prod us-east-1: forwarded up to 2026-11-24T07:00:00Z (5 h 0 min behind), 2 streams; its last run failed at 2026-11-24T12:00:00Z: AccessDenied: no",
    "acc eu-west-1: never forwarded; its last run failed at 2026-11-24T11:59:00Z: AssumeRole failed: AccessDenied",
    "old eu-west-1: forwarded up to 2026-11-24T06:00:00Z (6 h 0 min behind), 1 stream, 1 in doubt (a write that may or may not have arrived: CloudWatch shows what was written at 2026-11-24T14:00:00Z, and a run reads the destination then)",
  ]);
  assert.deepEqual(statuses.map((s) => s.state), ["ok", "failing", "failing", "ok"]);
  assert.deepEqual(statuses[2], {
    account: "acc",
    region: "eu-west-1",
    forwardedUpTo: null,
    lagSeconds: null,
    streams: 0,
    inDoubt: 0,
    doubtReadableAt: null,
    noLongerFound: 0,
    ahead: 0,
    lastError: "AssumeRole failed: AccessDenied",
    errorAt: "2026-11-24T11:59:00Z",
    state: "failing",
  });
});

test("statusOf() says never forwarded where a configured account-region has no checkpoint and no error", () => {
  assert.deepEqual(statusLines(statusOf([source("new", "eu-west-1")], contents({}), T), T), [
    "new eu-west-1: never forwarded",
  ]);
});

test("readableLag() says minutes, then hours and minutes, then days and hours", () => {
  const cases: [number, string][] = [
    [0, "0 min"],
    [150, "3 min"],
    [119 * 60, "119 min"],
    [2 * 3600 + 5 * 60, "2 h 5 min"],
    [47 * 3600, "47 h 0 min"],
    [3 * 86_400 + 4 * 3600, "3 days 4 h"],
  ];
  for (const [seconds, text] of cases) assert.equal(readableLag(seconds), text, String(seconds));
});
