/**
 * Endpoint config cached in the isolate like authorizations (issue 12, fewer hops): a push
 * worker's token reports do not read the endpoint's config from its object every time.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EndpointObject } from "../../src/endpoints/endpoint-object";
import worker from "../../src/index";
import { call, createEndpoint, interceptFetch, json, status, submit } from "./helpers";

const WORKER_URL = "https://worker.example.com/cached";

afterEach(() => vi.restoreAllMocks());

describe("config cache", () => {
  it("token reports of a push job read the endpoint's config at most once per cache period", async () => {
    const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL] });
    await call("POST", `/admin/endpoints/${ep}/pause`);
    const id = await submit(ep, { input: { n: 1 } });
    const pushed = interceptFetch<{ urls: { done: string; stream: string } }>(WORKER_URL, () => new Response(null, { status: 202 }));
    const batch = createMessageBatch("edge-jobs-dispatch", [{ id: "m1", timestamp: new Date(), attempts: 1, body: { endpointId: ep, jobId: id, token: "t1" } }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    await getQueueResult(batch, ctx);
    expect(pushed).toHaveLength(1);
    const urlOf = (u: string) => new URL(u).pathname + new URL(u).search;
    const reads = vi.spyOn(EndpointObject.prototype, "getConfig");
    for (let i = 0; i < 5; i++) {
      const r = await call("POST", urlOf(pushed[0]!.json.urls.stream), { key: null, body: { output: { chunk: i } } });
      expect(r.status).toBe(200);
    }
    const done = await call("POST", urlOf(pushed[0]!.json.urls.done), { key: null, body: { output: "ok" } });
    expect(done.status).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "ok" });
    // Six token reports: the first may read the config (or find it cached from the submit), the rest do not.
    expect(reads.mock.calls.length).toBeLessThanOrEqual(1);
  });
});

describe("push dispatch config", () => {
  it("dispatch batches of one message read the endpoint's config from the isolate's cache; an admin change is seen at once", async () => {
    const first = "https://worker.example.com/first";
    const second = "https://worker.example.com/second";
    const ep = await createEndpoint({ mode: "push", workerUrls: [first] });
    await call("POST", `/admin/endpoints/${ep}/pause`);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await submit(ep, { input: { n: i } }));
    const pushed = interceptFetch<{ id: string }>("https://worker.example.com/", () => new Response(null, { status: 202 }));
    const deliver = async (id: string, token: string) => {
      const batch = createMessageBatch("edge-jobs-dispatch", [{ id: `m-${token}`, timestamp: new Date(), attempts: 1, body: { endpointId: ep, jobId: id, token } }]);
      const ctx = createExecutionContext();
      await worker.queue(batch, env, ctx);
      const result = await getQueueResult(batch, ctx);
      expect(result.explicitAcks).toEqual([`m-${token}`]);
    };
    const reads = vi.spyOn(EndpointObject.prototype, "getConfig");
    for (let i = 0; i < 3; i++) await deliver(ids[i]!, `t${i}`);
    // Three batches (the way a queue delivers one push job at a time): one read at most, not one each.
    expect(reads.mock.calls.length).toBeLessThanOrEqual(1);
    expect(pushed.map((p) => [p.url, p.json.id])).toEqual(ids.slice(0, 3).map((id) => [first, id]));
    // The config changes through the admin API while it is cached: the next push goes to the new URL.
    const put = await call("PUT", `/admin/endpoints/${ep}`, { body: { mode: "push", workerUrls: [second] } });
    expect(put.status).toBe(200);
    await deliver(ids[3]!, "t3");
    expect(pushed.at(-1)).toMatchObject({ url: second, json: { id: ids[3] } });
  });
});

describe("auth cache expiry", () => {
  it("an expired check is refreshed by one request while the others use it up to 1 s more (no stampede)", async () => {
    const { cachedAuth, rememberAuth, forgetAuth, AUTH_REFRESH_GRACE_MS } = await import("../../src/http/auth-cache");
    const config = { id: "stampede" } as unknown as import("../../src/endpoints/config").EndpointConfig;
    const t0 = 1_000_000;
    rememberAuth("stampede", "d", "client", config, t0);
    expect(cachedAuth("stampede", "d", "client", t0 + 4_999)).toBe(config);
    // Expired: 32 concurrent requests see it; exactly one is sent to the endpoint.
    const misses = Array.from({ length: 32 }, () => cachedAuth("stampede", "d", "client", t0 + 5_000)).filter((c) => c === null);
    expect(misses).toHaveLength(1);
    // The refresh answered: fresh again.
    rememberAuth("stampede", "d", "client", config, t0 + 5_010);
    expect(cachedAuth("stampede", "d", "client", t0 + 5_020)).toBe(config);
    // A refresh that never answers: after the grace one more request tries.
    const t1 = t0 + 5_010 + 5_000;
    expect(cachedAuth("stampede", "d", "client", t1)).toBeNull();
    expect(cachedAuth("stampede", "d", "client", t1 + AUTH_REFRESH_GRACE_MS - 1)).toBe(config);
    expect(cachedAuth("stampede", "d", "client", t1 + AUTH_REFRESH_GRACE_MS)).toBeNull();
    // A refused refresh (revoked key) forgets the entry at once.
    forgetAuth("stampede", "d", "client");
    expect(cachedAuth("stampede", "d", "client", t1 + AUTH_REFRESH_GRACE_MS + 1)).toBeNull();
  });
});
