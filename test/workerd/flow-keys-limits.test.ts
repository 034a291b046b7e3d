/**
 * Issue 16, item 4: per-key concurrency caps and rate limits, through the HTTP API. A key never
 * has more than its cap running or handed out; another key is not held up by it; an override set
 * through the admin route beats the endpoint's default; the endpoint-wide cap still holds. A
 * rate-limited key starts its next job when its window closes (the shard's alarm, frozen clock).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createEndpoint, endpointStubOf, freezeEndpoint, json, submit } from "./helpers";
import { drainIds, finish, queueOf, submitMany, takeKeep } from "./flow-keys-kit";

const drain = drainIds;

const holder = (got: string[], id: string, prefix: string) => `${prefix}-${got.indexOf(id)}`;

describe("flow keys: per-key concurrency", () => {
  it("a key never holds more than its cap; another key is not held up; a finished job frees a slot", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 2 });
    const k = await submitMany(ep, 5, { concurrencyKey: "tenant-k" });
    const l = await submitMany(ep, 2, { concurrencyKey: "tenant-l" });
    const got = await drain(ep, "w");
    expect(got.filter((id) => k.includes(id))).toEqual(k.slice(0, 2));
    expect(got.filter((id) => l.includes(id))).toEqual(l);
    expect(got).toHaveLength(4);
    expect(await queueOf(ep, k[2]!)).toMatchObject({ reason: "key_concurrency", position: 1 });
    // One of K's ends: exactly one more of K's starts.
    await finish(ep, holder(got, k[0]!, "w"), k[0]!);
    expect(await drain(ep, "x")).toEqual([k[2]]);
  });

  it("an override through the admin route beats the endpoint's default, and deleting it restores the default", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 1 });
    const k = await submitMany(ep, 5, { rateLimitKey: "vip" });
    expect(await drain(ep, "a")).toEqual([k[0]]);
    const put = await call("PUT", `/admin/endpoints/${ep}/flow-keys/vip`, { body: { concurrency: 3 } });
    expect(put.status).toBe(200);
    expect(await json(put)).toMatchObject({ key: "vip", concurrency: 3, effective: { concurrency: 3, rateLimit: null } });
    expect(await drain(ep, "b")).toEqual([k[1], k[2]]);
    const read = await json<{ flowKeys: Array<{ key: string }> }>(await call("GET", `/admin/endpoints/${ep}/flow-keys`));
    expect(read.flowKeys.map((r) => r.key)).toEqual(["vip"]);
    expect((await call("DELETE", `/admin/endpoints/${ep}/flow-keys/vip`)).status).toBe(200);
    expect((await call("GET", `/admin/endpoints/${ep}/flow-keys/vip`)).status).toBe(404);
    // Back to 1: three running, so none starts until two of them have ended.
    await finish(ep, "a-0", k[0]!);
    expect(await drain(ep, "c")).toEqual([]);
    await finish(ep, "b-0", k[1]!);
    await finish(ep, "b-1", k[2]!);
    expect(await drain(ep, "d")).toEqual([k[3]]);
  });

  it("an override of null lifts the endpoint's default cap for that key only", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 1 });
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/free`, { body: { concurrency: null } })).status).toBe(200);
    const free = await submitMany(ep, 3, { concurrencyKey: "free" });
    const capped = await submitMany(ep, 3, { concurrencyKey: "capped" });
    const got = await drain(ep, "w");
    expect(got.filter((id) => free.includes(id))).toHaveLength(3);
    expect(got.filter((id) => capped.includes(id))).toHaveLength(1);
  });

  it("composes with the endpoint-wide cap: at most `concurrency` in all, at most keyConcurrency per key", async () => {
    const ep = await createEndpoint({ concurrency: 3, keyConcurrency: 2 });
    const k = await submitMany(ep, 4, { concurrencyKey: "k" });
    const l = await submitMany(ep, 4, { concurrencyKey: "l" });
    const got = await drain(ep, "w");
    expect(got).toHaveLength(3);
    expect(got.filter((id) => k.includes(id)).length).toBeLessThanOrEqual(2);
    expect(got.filter((id) => l.includes(id)).length).toBeLessThanOrEqual(2);
    const waiting = [...k, ...l].find((id) => !got.includes(id))!;
    expect(["concurrency_limit", "key_concurrency"]).toContain((await queueOf(ep, waiting))?.reason);
  });

  it("jobs without a key take turns with keyed ones as one more key, and are never capped by keyConcurrency", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 1 });
    const keyed = await submitMany(ep, 3, { concurrencyKey: "k" });
    const plain = await submitMany(ep, 3, {});
    const got = await drain(ep, "w");
    // Neither served yet: the jobs without a key go first (ties), then the key, then they again.
    expect(got).toEqual([plain[0], keyed[0], plain[1], plain[2]]);
  });
});

describe("flow keys: batch takes", () => {
  const batch = async (ep: string, worker: string, n: number) => {
    const res = await call("GET", `/v2/${ep}/job-take-batch/${worker}?batch_size=${n}&job_in_progress=1`);
    return res.status === 204 ? [] : (await json<Array<{ id: string }>>(res)).map((j) => j.id);
  };

  it("hand out at most a key's free slots, even when it is the only key ready", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 2 });
    const k = await submitMany(ep, 5, { concurrencyKey: "solo" }, 1);
    expect(await batch(ep, "wb", 5)).toEqual(k.slice(0, 2));
    expect(await batch(ep, "wc", 5)).toEqual([]);
  });

  it("take turns between keys inside one batch (least recently served first, ties by key)", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const x = await submitMany(ep, 3, { concurrencyKey: "x" }, 1);
    const y = await submitMany(ep, 3, { concurrencyKey: "y" }, 1);
    expect(await batch(ep, "wb", 5)).toEqual([x[0], y[0], x[1], y[1], x[2]]);
    // x was served last: y goes first now.
    const more = await submitMany(ep, 1, { concurrencyKey: "x" });
    expect(await batch(ep, "wc", 2)).toEqual([y[2], more[0]]);
  });
});

describe("flow keys: on a sharded endpoint", () => {
  it("an override and a changed default reach the key's shard at once", async () => {
    const ep = await createEndpoint({ keyConcurrency: 1 });
    const k = await submitMany(ep, 5, { concurrencyKey: "sharded-k" });
    expect(await drain(ep, "a")).toHaveLength(1);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/sharded-k`, { body: { concurrency: 2 } })).status).toBe(200);
    expect(await drain(ep, "b")).toHaveLength(1);
    expect((await call("DELETE", `/admin/endpoints/${ep}/flow-keys/sharded-k`)).status).toBe(200);
    expect((await call("PUT", `/admin/endpoints/${ep}`, { body: { keyConcurrency: 4 } })).status).toBe(200);
    expect(await drain(ep, "c")).toHaveLength(2);
    expect(await queueOf(ep, k[4]!)).toMatchObject({ reason: "key_concurrency" });
  });
});

describe("flow keys: per-key rate limit (frozen clock)", () => {
  it("starts at most `limit` per window; the next starts when the window closes, by the shard's alarm", async () => {
    const ep = await createEndpoint({ shards: 1, keyRateLimit: { limit: 2, periodMs: 60_000 } });
    const t0 = Date.now();
    await freezeEndpoint(ep, t0);
    const r = await submitMany(ep, 3, { rateLimitKey: "api" }, 1);
    const other = await submit(ep, { input: {}, rateLimitKey: "other" });
    const got = await drain(ep, "w");
    expect(got).toEqual([r[0], other, r[1]]);
    const q = await queueOf(ep, r[2]!);
    expect(q).toMatchObject({ reason: "key_rate_limited", position: 1 });
    expect(Math.abs(Date.parse(String(q?.availableAt)) - (Date.now() + 60_000))).toBeLessThan(5_000);
    // Just before the window closes: still limited, even when the alarm runs.
    await freezeEndpoint(ep, t0 + 59_999);
    await runDurableObjectAlarm(endpointStubOf(ep));
    expect(await takeKeep(ep, "early")).toBeNull();
    // A take waits; the window closes and the alarm hands it the job.
    const waiting = takeKeep(ep, "waiter");
    await new Promise((res) => setTimeout(res, 50));
    await freezeEndpoint(ep, t0 + 60_000);
    expect(await runDurableObjectAlarm(endpointStubOf(ep))).toBe(true);
    expect(await waiting).toBe(r[2]);
  });

  it("an override sets a key's own rate; null lifts the default", async () => {
    const ep = await createEndpoint({ shards: 1, keyRateLimit: { limit: 1, periodMs: 3_600_000 } });
    await freezeEndpoint(ep, Date.now());
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/bulk`, { body: { rateLimit: { limit: 3, periodMs: 3_600_000 } } })).status).toBe(200);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/free`, { body: { rateLimit: null } })).status).toBe(200);
    const bulk = await submitMany(ep, 4, { rateLimitKey: "bulk" });
    const free = await submitMany(ep, 4, { rateLimitKey: "free" });
    const plain = await submitMany(ep, 2, { rateLimitKey: "plain" });
    const got = await drain(ep, "w");
    expect(got.filter((id) => bulk.includes(id))).toHaveLength(3);
    expect(got.filter((id) => free.includes(id))).toHaveLength(4);
    expect(got.filter((id) => plain.includes(id))).toHaveLength(1);
  });
});
