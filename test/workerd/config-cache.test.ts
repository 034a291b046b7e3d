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
