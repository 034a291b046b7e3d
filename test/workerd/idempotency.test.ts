/**
 * Idempotent submit: a repeat returns the first job for 24 h; a different body is a 422;
 * concurrent repeats create one job; keys are scoped per endpoint.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { IDEMPOTENCY_MS } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, json, status, take } from "./helpers";

const run = (ep: string, body: unknown, headers: Record<string, string> = {}) => call("POST", `/v2/${ep}/run`, { body, headers });
const inQueue = async (ep: string) => (await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`))).jobs.inQueue;

describe("idempotent submit", () => {
  it("a repeat with the same body returns the first job, by field or header", async () => {
    const ep = await createEndpoint();
    const first = await json(await run(ep, { input: { a: 1 }, idempotencyKey: "order-1" }));
    const again = await run(ep, { input: { a: 1 }, idempotencyKey: "order-1" });
    expect(again.status).toBe(200);
    expect(await json(again)).toEqual({ id: first.id, status: "IN_QUEUE" });
    expect(await json(await run(ep, { input: { a: 1 } }, { "idempotency-key": "order-1" }))).toEqual({ id: first.id, status: "IN_QUEUE" });
    expect(await inQueue(ep)).toBe(1);
  });

  it("a repeat reports the job's current state", async () => {
    const ep = await createEndpoint();
    const first = await json<{ id: string }>(await run(ep, { input: 1, idempotencyKey: "k" }));
    await take(ep, "w1");
    await done(ep, "w1", first.id, { output: 2 });
    expect(await json(await run(ep, { input: 1, idempotencyKey: "k" }))).toEqual({ id: first.id, status: "COMPLETED" });
  });

  it("the same key with a different body is a 422 and changes nothing", async () => {
    const ep = await createEndpoint();
    const first = await json<{ id: string }>(await run(ep, { input: { a: 1 }, idempotencyKey: "k" }));
    const res = await run(ep, { input: { a: 2 }, idempotencyKey: "k" });
    expect(res.status).toBe(422);
    expect((await json(res)).error).toMatch(/different request body/);
    expect(await json(await status(ep, first.id))).toMatchObject({ status: "IN_QUEUE" });
    expect(await inQueue(ep)).toBe(1);
  });

  it("concurrent repeats create one job", async () => {
    const ep = await createEndpoint();
    const replies = await Promise.all(Array.from({ length: 12 }, () => run(ep, { input: "x", idempotencyKey: "burst" })));
    const ids = new Set(await Promise.all(replies.map(async (r) => (await json<{ id: string }>(r)).id)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(ids.size).toBe(1);
    expect(await inQueue(ep)).toBe(1);
  });

  it("keys are scoped per endpoint", async () => {
    const a = await createEndpoint();
    const b = await createEndpoint();
    const ja = await json(await run(a, { input: 1, idempotencyKey: "same" }));
    const jb = await json(await run(b, { input: 1, idempotencyKey: "same" }));
    expect(ja.id).not.toBe(jb.id);
  });

  it("a header and a field that differ are a 400", async () => {
    const ep = await createEndpoint();
    const res = await run(ep, { input: 1, idempotencyKey: "a" }, { "idempotency-key": "b" });
    expect(res.status).toBe(400);
    expect(await inQueue(ep)).toBe(0);
  });

  it("after retention the job reads 404 but the key still answers with it until 24 h have passed", async () => {
    const ep = await createEndpoint({ retentionMs: 60_000 });
    const first = await json<{ id: string }>(await run(ep, { input: 1, idempotencyKey: "day" }));
    await take(ep, "w1");
    await done(ep, "w1", first.id, { output: "result" });
    const stub = env.JOB.get(env.JOB.idFromString(first.id)) as DurableObjectStub<JobObject>;
    const job = await runInDurableObject(stub, (_i: JobObject, state) => loadJob(state.storage.sql)!.job);
    await runInDurableObject(stub, (i: JobObject) => i.clock.freeze(job.purgeAt!));
    await runDurableObjectAlarm(stub);
    expect((await status(ep, first.id)).status).toBe(404);
    expect(await json(await run(ep, { input: 1, idempotencyKey: "day" }))).toEqual({ id: first.id, status: "COMPLETED" });
    const alarm = await runInDurableObject(stub, async (_i: JobObject, state) => state.storage.getAlarm());
    expect(Math.abs(alarm! - Date.now() - (job.createdAt + IDEMPOTENCY_MS - job.purgeAt!))).toBeLessThan(2_000);
    // A day after submission the key is free again: the record is deleted.
    await runInDurableObject(stub, (i: JobObject) => i.clock.freeze(job.createdAt + IDEMPOTENCY_MS));
    await runDurableObjectAlarm(stub);
    expect(await runInDurableObject(stub, (_i: JobObject, state) => loadJob(state.storage.sql))).toBeNull();
  });
});
