/**
 * The demo fleet `--seed demo` writes: ECS metrics of three accounts, as AWS publishes them into AWS/ECS, so
 * that the demo and the tests have data to forward without any AWS account.
 */
import type { RawPut } from "./store.ts";

/** The demo fleet: three accounts with ECS services, the last three hours at several samples a minute. */
export const DEMO_ACCOUNTS = { production: "111111111111", acceptance: "222222222222", test: "333333333333" };

export function seedDemo(seed: (p: RawPut) => void, nowMs: number) {
  const fleet: [string, string, string[]][] = [
    ["111111111111", "eu-west-1", ["prod-web", "prod-api"]],
    ["111111111111", "us-east-1", ["prod-web"]],
    ["222222222222", "eu-west-1", ["acc-web", "acc-api"]],
    ["333333333333", "eu-west-1", ["test-web"]],
  ];
  const services = ["frontend", "orders", "payments"];
  const end = Math.floor(nowMs / 60_000) * 60_000;
  let x = 7;
  // A small deterministic generator, so every demo shows the same numbers for the same clock.
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [account, region, clusters] of fleet) {
    for (const cluster of clusters) {
      for (const service of services) {
        for (const name of ["CPUUtilization", "MemoryUtilization"]) {
          for (let t = end - 3 * 3_600_000; t < end; t += 60_000) {
            // ECS reports several samples a minute; quarters keep sums exact in binary.
            const values = [0, 20_000, 40_000].map(() => Math.round((10 + next() * 70) * 4) / 4);
            for (const [i, v] of values.entries()) {
              const common = {
                account,
                region,
                namespace: "AWS/ECS",
                name,
                timestamp: t + i * 20_000,
                unit: "Percent",
              };
              seed({ ...common, dimensions: { ClusterName: cluster, ServiceName: service }, values: [v] });
              seed({ ...common, dimensions: { ClusterName: cluster }, values: [v] });
            }
          }
        }
      }
    }
  }
}
