/**
 * The edge's probe choice between shards (flows/shard-picks): a shard where a worker's take found
 * ready jobs but none it may take is passed over by that worker's next probes (found by the
 * endpoint model, seed 1004), not by other workers', and only until more jobs are known there or
 * the memory lapses.
 */
import { describe, expect, it } from "vitest";
import type { EndpointConfig } from "../../src/endpoints/config";
import { noteDepth, noteVain, sampleShard } from "../../src/flows/shard-picks";

let n = 0;
/** A fresh endpoint of 4 placement shards (the picks keep their state per endpoint and generation). */
function config(): EndpointConfig {
  return { id: `picks-${++n}`, generation: "g1", shards: 4, concurrency: null, firstShard: 0 } as unknown as EndpointConfig;
}

/** Probes of `worker` (home 0) until one answers null or `times` ran, as the rotation goes. */
function probes(c: EndpointConfig, worker: string | null, times: number, now: number): Array<number | null> {
  return Array.from({ length: times }, () => sampleShard(c, 0, worker, now));
}

describe("shard picks: probes pass over shards where a worker found nothing it may take", () => {
  it("the worker's probes skip that shard; another worker's do not", () => {
    const c = config();
    const now = 1_000_000;
    noteDepth(c, 2, 5);
    noteDepth(c, 3, 5);
    noteVain(c, "barred", 2, 5, now);
    // Each probe speaks for one job of the shard it picks (the depth goes down by one).
    expect(probes(c, "barred", 3, now)).toEqual([3, 3, 3]);
    expect(probes(c, "other", 2, now)).toEqual([2, 3]);
  });

  it("more jobs known there, or the memory's lapse (60 s), end the pass-over", () => {
    const c = config();
    const now = 1_000_000;
    noteDepth(c, 2, 5);
    noteVain(c, "barred", 2, 5, now);
    expect(sampleShard(c, 0, "barred", now)).toBeNull();
    noteDepth(c, 2, 6); // a placement or another take saw more ready jobs there
    expect(sampleShard(c, 0, "barred", now)).toBe(2);

    noteDepth(c, 2, 5);
    noteVain(c, "barred", 2, 5, now);
    expect(sampleShard(c, 0, "barred", now + 59_000)).toBeNull();
    expect(sampleShard(c, 0, "barred", now + 60_000)).toBe(2);
  });

  it("a take that found no ready job there (depth 0) leaves nothing to pass over", () => {
    const c = config();
    const now = 1_000_000;
    noteVain(c, "w", 2, 0, now);
    noteDepth(c, 2, 1);
    expect(sampleShard(c, 0, "w", now)).toBe(2);
  });
});
