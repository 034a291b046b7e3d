/**
 * Issue 16, item 4: the fairness test of flow-keys-fairness on the default sharded endpoint (8
 * shards), with A's backlog at 1,000 (its depth does not change a shard's rotation:
 * flow-keys-cost). A key's jobs share its shard: keys on one shard rotate as on a 1-shard
 * endpoint. Keys on different shards: a take finds B's shard when its edge isolate knows B's job
 * is there (it placed it, or a take answer or the relay told it); measured both ways, printed.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createEndpoint } from "./helpers";
import { bTakes, keyOnShard, submitMany, workerOnShard } from "./flow-keys-kit";

const HOMES = [["at A's shard", 3], ["at B's shard", 5], ["elsewhere", 7]] as const;
const fig = (gaps: number[]) => `${gaps.join(", ")} (max ${Math.max(...gaps)})`;

describe("flow keys: fairness between keys, 8 shards", () => {
  let ep = "";
  const aKey = keyOnShard("tenant-a-", 3, 8);
  const bKey = keyOnShard("tenant-b-", 5, 8);
  beforeAll(async () => {
    ep = await createEndpoint();
    await submitMany(ep, 1_000, { concurrencyKey: aKey });
  }, 120_000);

  it("A and B on one shard: each B job within 2 takes, as on one shard", async () => {
    const same = await bTakes(ep, workerOnShard("w-same-", 3, 8), keyOnShard("tenant-b-", 3, 8, [aKey]));
    console.log(`fairness, 8 shards, A and B on one shard: ${fig(same)}`);
    expect(Math.max(...same)).toBeLessThanOrEqual(2);
  }, 60_000);

  it("A and B on different shards, B placed by the taking isolate: within 2 takes, wherever the worker's home", async () => {
    const figures: string[] = [];
    const worst: number[] = [];
    for (const [where, home] of HOMES) {
      const gaps = await bTakes(ep, workerOnShard(`w-${home}-`, home, 8), bKey);
      worst.push(Math.max(...gaps));
      figures.push(`worker home ${where}: ${fig(gaps)}`);
    }
    console.log(`fairness, 8 shards, A and B on different shards, B placed by the taking isolate: ${figures.join("; ")}`);
    expect(Math.max(...worst)).toBeLessThanOrEqual(2);
  }, 120_000);

  it("A and B on different shards, B placed by another isolate: measured (10: not within 10 takes)", async () => {
    const figures: string[] = [];
    for (const [where, home] of HOMES) {
      const gaps = await bTakes(ep, workerOnShard(`v-${home}-`, home, 8), bKey, { elsewhere: true, jobs: 3, cap: 10 });
      figures.push(`worker home ${where}: ${fig(gaps)}`);
    }
    console.log(`fairness, 8 shards, A and B on different shards, B placed by another isolate: ${figures.join("; ")}`);
  }, 120_000);
});
