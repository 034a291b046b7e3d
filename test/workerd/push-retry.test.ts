/**
 * A push job whose accepted attempt ends without a result goes out again as a new dispatch
 * (found while building retry backoff: it used to stay IN_QUEUE with its old, accepted dispatch,
 * which no shard dispatches, until its TTL ran out). With a retry backoff it waits first; a paused
 * push job is pushed again once resumed. Through the real local queue.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, freezeJob, interceptFetch, jobStubOf, json, status, submit } from "./helpers";

const WORKER_URL = "https://worker.example.com/retry-jobs";
type Pushed = { id: string; attempt: number; urls: { done: string } };

afterEach(() => vi.restoreAllMocks());

async function record(id: string): Promise<JobRecord> {
  return runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);
}

async function report(url: string, body: unknown): Promise<number> {
  const u = new URL(url);
  return (await call("POST", u.pathname + u.search, { key: null, body })).status;
}

describe("push jobs going back for another attempt", () => {
  it("a handler error with retryOnError pushes the job again, attempt 2, and it completes", async () => {
    const pushed = interceptFetch<Pushed>(WORKER_URL, () => new Response("accepted", { status: 202 }));
    const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL], retryOnError: true, maxAttempts: 3 });
    const id = await submit(ep, { input: 1 });
    await vi.waitUntil(() => pushed.length === 1, { timeout: 10_000, interval: 50 });
    expect(await report(pushed[0]!.json.urls.done, { error: "flaky" })).toBe(200);
    await vi.waitUntil(() => pushed.length === 2, { timeout: 10_000, interval: 50 });
    expect(pushed[1]!.json).toMatchObject({ id, attempt: 2 });
    expect(await report(pushed[1]!.json.urls.done, { output: "second time" })).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", attempt: 2, retries: 1, output: "second time" });
  });

  it("with a retry backoff it waits SCHEDULED first, then is pushed again", async () => {
    const pushed = interceptFetch<Pushed>(WORKER_URL, () => new Response("accepted", { status: 202 }));
    const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL], retryOnError: true, maxAttempts: 3, retryBackoff: { type: "fixed", delay: 60_000 } });
    const id = await submit(ep, { input: 1 });
    await vi.waitUntil(() => pushed.length === 1, { timeout: 10_000, interval: 50 });
    expect(await report(pushed[0]!.json.urls.done, { error: "flaky" })).toBe(200);
    const r = await record(id);
    expect(r).toMatchObject({ state: "SCHEDULED", dispatch: null });
    await new Promise((res) => setTimeout(res, 300));
    expect(pushed).toHaveLength(1);
    await freezeJob(id, r.readyAt!);
    await runDurableObjectAlarm(jobStubOf(id));
    await vi.waitUntil(() => pushed.length === 2, { timeout: 10_000, interval: 50 });
    expect(pushed[1]!.json).toMatchObject({ id, attempt: 2 });
  });

  it("a push job paused while it runs waits PAUSED after a failed attempt and is pushed again once resumed", async () => {
    const pushed = interceptFetch<Pushed>(WORKER_URL, () => new Response("accepted", { status: 202 }));
    const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL], retryOnError: true, maxAttempts: 3 });
    const id = await submit(ep, { input: 1 });
    await vi.waitUntil(() => pushed.length === 1, { timeout: 10_000, interval: 50 });
    expect((await call("POST", `/v2/${ep}/pause/${id}`)).status).toBe(200);
    expect(await report(pushed[0]!.json.urls.done, { error: "flaky" })).toBe(200);
    expect((await record(id)).state).toBe("PAUSED");
    await new Promise((res) => setTimeout(res, 300));
    expect(pushed).toHaveLength(1);
    expect((await call("POST", `/v2/${ep}/resume/${id}`)).status).toBe(200);
    await vi.waitUntil(() => pushed.length === 2, { timeout: 10_000, interval: 50 });
    expect(pushed[1]!.json).toMatchObject({ id, attempt: 2 });
  });
});
