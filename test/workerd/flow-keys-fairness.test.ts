/**
 * Issue 16, item 4, Done-when: key A holds 5,000 ready jobs; key B submits 10, one at a time
 * between takes; each B job is handed out within 2 takes of its submit. Through the HTTP API
 * (real job objects), on a 1-shard endpoint (the default sharded one: flow-keys-fairness-shards).
 * The figures are printed (takes from a B submit to its hand-out, counting the take that hands it out).
 */
import { describe, expect, it } from "vitest";
import { createEndpoint } from "./helpers";
import { A_JOBS, bTakes, submitMany } from "./flow-keys-kit";

describe("flow keys: fairness between keys, 1 shard", () => {
  it("1 shard: each of B's 10 jobs is handed out within 2 takes of its submit, behind A's 5,000", async () => {
    const ep = await createEndpoint({ shards: 1 });
    await submitMany(ep, A_JOBS, { concurrencyKey: "A" });
    const gaps = await bTakes(ep, "w1", "B");
    console.log(`fairness, 1 shard: takes from B's submit to its hand-out: ${gaps.join(", ")} (max ${Math.max(...gaps)})`);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2);
  }, 300_000);
});
