/**
 * The metrics API: counts and percentiles of jobs just run, bucketing, parameter checks, and
 * storage bounded by time rather than by job count.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { IndexEntry } from "../../src/jobs/index-entry";
import { BUCKET_MS } from "../../src/metrics/buckets";
import { call, createEndpoint, createKey, done, json, submit, take } from "./helpers";

interface Metrics {
  total: Record<string, Record<string, number | null> | number | null>;
  buckets: Array<{ start: string } & Record<string, unknown>>;
  percentileRelativeError: number;
}

describe("metrics API", () => {
  it("counts requests by outcome, cold starts, and reports percentiles", async () => {
    // One shard: takes follow submit order (test/workerd/shards.test.ts merges metrics over shards).
    const ep = await createEndpoint({ shards: 1 });
    const ok = [await submit(ep), await submit(ep), await submit(ep)];
    const bad = await submit(ep);
    const cancelled = await submit(ep);
    await call("POST", `/v2/${ep}/cancel/${cancelled}`);
    for (const id of ok) {
      expect(await json(await take(ep, "w1"))).toMatchObject({ id });
      await done(ep, "w1", id, { output: 1 });
    }
    await take(ep, "w2");
    await done(ep, "w2", bad, { error: "x" });
    const client = await createKey(ep, "client");
    const res = await call("GET", `/v2/${ep}/metrics?window=1h`, { key: client });
    expect(res.status).toBe(200);
    const m = await json<Metrics>(res);
    expect(m.total.requests).toEqual({ total: 5, completed: 3, errored: 0, failed: 1, retried: 0, cancelled: 1, timedOut: 0 });
    expect(m.total.executionTime).toMatchObject({ count: 4, p70: expect.any(Number), p90: expect.any(Number), p98: expect.any(Number) });
    expect(m.total.delayTime).toMatchObject({ count: 4 });
    expect(m.total.coldStarts).toBe(2);
    expect(m.total.coldStartTime).toMatchObject({ count: 2 });
    expect(m.total.workers).toMatchObject({ idle: 2 });
    expect(m.buckets.length).toBeGreaterThanOrEqual(60); // 61 when the window does not start on a minute
    expect(m.buckets.length).toBeLessThanOrEqual(61);
    expect(m.percentileRelativeError).toBe(0.02);
    const busy = m.buckets.filter((b) => (b.requests as { total: number }).total > 0);
    expect(busy.length).toBeGreaterThanOrEqual(1);
  });

  it("checks window and bucket", async () => {
    const ep = await createEndpoint();
    expect((await call("GET", `/v2/${ep}/metrics?window=2d`)).status).toBe(400);
    expect((await call("GET", `/v2/${ep}/metrics?window=1h&bucket=7s`)).status).toBe(400);
    expect((await call("GET", `/v2/${ep}/metrics?window=7d&bucket=1m`)).status).toBe(400);
    const day = await json<Metrics>(await call("GET", `/v2/${ep}/metrics?window=24h`));
    expect(day.buckets.length).toBeGreaterThanOrEqual(96);
    expect(day.buckets.length).toBeLessThanOrEqual(97);
    const week = await json<Metrics>(await call("GET", `/v2/${ep}/metrics?window=7d&bucket=1d`));
    expect(week.buckets.length).toBeGreaterThanOrEqual(7);
  });

  it("defect 11: window or bucket named like an Object.prototype key is a 400 listing the allowed values, not a 500", async () => {
    const ep = await createEndpoint();
    const client = await createKey(ep, "client");
    const names = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf"];
    for (const name of names) {
      for (const query of [`window=${name}`, `window=1h&bucket=${name}`]) {
        const res = await call("GET", `/v2/${ep}/metrics?${query}`, { key: client });
        expect(res.status, query).toBe(400);
        const body = await json<{ error: string }>(res);
        expect(body.error, query).toMatch(!query.includes("bucket") ? /window must be one of 1h, 6h, 24h, 7d/ : /bucket must be one of 1m, 5m, 15m, 1h, 2h, 6h, 1d/);
      }
    }
  });

  it("storage grows with time, not with jobs", async () => {
    const ep = await createEndpoint();
    const stub = env.ENDPOINT.get(env.ENDPOINT.idFromName(ep)) as DurableObjectStub<EndpointObject>;
    const jobs = 2_000;
    const start = Date.now() - 10 * BUCKET_MS;
    const sizes = await runInDurableObject(stub, async (instance: EndpointObject, state) => {
      const entry = (i: number, version: number, s: IndexEntry["state"]): IndexEntry => ({
        jobId: `synthetic-${i}`, generation: null, version, state: s, priority: 0, lowPriority: false, createdAt: start, workerId: "w",
        attempt: 1, avoidWorkers: [], stopFor: null, reason: null, sequenceKey: null, dispatchPending: false, dispatchError: null, inputBytes: 0,
        delayMs: s === "COMPLETED" ? 10 + (i % 500) : null, executionMs: s === "COMPLETED" ? 100 + (i % 5000) : null,
      });
      const bucketRows = () => state.storage.sql.exec<{ n: number }>("SELECT COUNT(DISTINCT start) AS n FROM metric_count").one().n;
      for (let i = 0; i < jobs; i++) {
        instance.clock.freeze(start + Math.floor((i / jobs) * 10) * BUCKET_MS);
        await instance.sync(entry(i, 1, "IN_QUEUE"));
        await instance.sync(entry(i, 2, "COMPLETED"));
      }
      instance.clock.thaw();
      // Rows, not bytes: a counter or a non-empty sketch bin is one small row.
      const metricBytes = state.storage.sql
        .exec<{ n: number }>("SELECT (SELECT COUNT(*) FROM metric_count) * 24 + (SELECT COUNT(*) FROM metric_bin) * 32 AS n")
        .one().n;
      return { rows: bucketRows(), metricBytes };
    });
    expect(sizes.rows).toBeLessThanOrEqual(11); // ten minutes of jobs: at most eleven one-minute buckets
    expect(sizes.metricBytes / sizes.rows).toBeLessThan(20_000);
    const m = await json<Metrics>(await call("GET", `/v2/${ep}/metrics?window=1h`));
    expect(m.total.requests).toMatchObject({ total: jobs, completed: jobs });
    expect((m.total.executionTime as { count: number }).count).toBe(jobs);
    console.log(`metrics storage: ${jobs} jobs over 10 min → ${sizes.rows} buckets, ${Math.round(sizes.metricBytes / sizes.rows)} bytes each`);
  });
});
