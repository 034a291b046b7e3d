/**
 * Issue 16, item 4: the fairness test of flow-keys-fairness on the default sharded endpoint (8
 * shards), with A's backlog at 1,000 (its depth does not change a shard's rotation:
 * flow-keys-cost). By default every flow key shares one shard (flowShards 1), so turns are exact
 * whichever edge isolate placed a job and wherever the worker's home is. With `flowShards: 8`
 * keys spread: keys on one shard rotate as before; keys on different shards are found when the
 * taking isolate knows B's shard holds a job (it placed it, or a take answer or the relay told
 * it), measured both ways and printed.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, createEndpoint, endpointStubOf, json } from "./helpers";
import { bTakes, keyOnShard, submitMany, workerOnShard } from "./flow-keys-kit";
import { flowShard } from "../../src/endpoints/shards";

const HOMES = [["at A's shard", 3], ["at B's shard", 5], ["elsewhere", 7]] as const;
const fig = (gaps: number[]) => `${gaps.join(", ")} (max ${Math.max(...gaps)})`;

describe("flow keys: fairness between keys, 8 shards, default flowShards (1)", () => {
  let ep = "";
  const aKey = "tenant-a";
  const bKey = "tenant-b";
  beforeAll(async () => {
    ep = await createEndpoint();
    await submitMany(ep, 1_000, { concurrencyKey: aKey });
  }, 120_000);

  it("every key is placed on one shard, whatever its hash", async () => {
    const config = (await endpointStubOf(ep).getConfig())!;
    expect(config.shards).toBe(8);
    expect(config.flowShards).toBe(1);
    const shards = new Set(Array.from({ length: 50 }, (_, i) => flowShard(config, `tenant-${i}`)));
    expect([...shards]).toEqual([1]);
  });

  for (const elsewhere of [false, true]) {
    it(`each B job within 2 takes of its submit, B placed by ${elsewhere ? "another" : "the taking"} isolate, wherever the worker's home`, async () => {
      const figures: string[] = [];
      const worst: number[] = [];
      for (const [where, home] of HOMES) {
        const gaps = await bTakes(ep, workerOnShard(`${elsewhere ? "v" : "w"}-${home}-`, home, 8), bKey, { elsewhere });
        worst.push(Math.max(...gaps));
        figures.push(`worker home ${where}: ${fig(gaps)}`);
      }
      console.log(`fairness, 8 shards, flowShards 1, B placed by ${elsewhere ? "another" : "the taking"} isolate: ${figures.join("; ")}`);
      expect(Math.max(...worst)).toBeLessThanOrEqual(2);
    }, 120_000);
  }
});

describe("flow keys: fairness between keys, 8 shards, flowShards 8 (keys spread)", () => {
  let ep = "";
  const aKey = keyOnShard("tenant-a-", 3, 8);
  const bKey = keyOnShard("tenant-b-", 5, 8);
  beforeAll(async () => {
    ep = await createEndpoint({ flowShards: 8 });
    await submitMany(ep, 1_000, { concurrencyKey: aKey });
  }, 120_000);

  it("A and B on one shard: each B job within 2 takes, as on one shard", async () => {
    const same = await bTakes(ep, workerOnShard("w-same-", 3, 8), keyOnShard("tenant-b-", 3, 8, [aKey]));
    console.log(`fairness, 8 shards, flowShards 8, A and B on one shard: ${fig(same)}`);
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
    console.log(`fairness, 8 shards, flowShards 8, A and B on different shards, B placed by the taking isolate: ${figures.join("; ")}`);
    expect(Math.max(...worst)).toBeLessThanOrEqual(2);
  }, 120_000);

  it("A and B on different shards, B placed by another isolate: measured (10: not within 10 takes); a B job not yet handed out still waits", async () => {
    const figures: string[] = [];
    const ids: string[] = [];
    for (const [where, home] of HOMES) {
      const gaps = await bTakes(ep, workerOnShard(`v-${home}-`, home, 8), bKey, { elsewhere: true, jobs: 3, cap: 10, ids });
      figures.push(`worker home ${where}: ${fig(gaps)}`);
    }
    console.log(`fairness, 8 shards, flowShards 8, A and B on different shards, B placed by another isolate: ${figures.join("; ")}`);
    const states = await Promise.all(ids.map(async (id) => (await json<{ status: string }>(await call("GET", `/v2/${ep}/status/${id}`))).status));
    expect(states.every((s) => s === "IN_QUEUE" || s === "IN_PROGRESS")).toBe(true);
  }, 120_000);
});
