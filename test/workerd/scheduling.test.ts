/**
 * Scheduling: pause and resume, the concurrency limit, why a job waits, requeue.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, json, status, submit, take } from "./helpers";

const admin = (ep: string, action: string) => call("POST", `/admin/endpoints/${ep}/${action}`);

describe("pause and resume", () => {
  it("a paused endpoint accepts submits but hands out nothing; running jobs finish; resume wakes takes", async () => {
    const ep = await createEndpoint();
    const running = await submit(ep);
    await take(ep, "w1");
    expect(await json(await admin(ep, "pause"))).toMatchObject({ id: ep, paused: true });
    const waiting = await submit(ep);
    expect((await take(ep, "w2")).status).toBe(204);
    expect(await json(await status(ep, waiting))).toMatchObject({ status: "IN_QUEUE", queue: { reason: "endpoint_paused", position: 1 } });
    expect((await done(ep, "w1", running, { output: 1 })).status).toBe(200);
    const pending = take(ep, "w2");
    expect(await json(await admin(ep, "resume"))).toMatchObject({ paused: false });
    expect(await json(await pending)).toMatchObject({ id: waiting });
    expect(await json(await call("GET", `/admin/endpoints/${ep}`))).toMatchObject({ paused: false });
  });

  it("pausing an unknown endpoint is a 404", async () => {
    expect((await admin("no-such-endpoint-x", "pause")).status).toBe(404);
  });
});

describe("concurrency limit", () => {
  it("caps jobs in progress; a finished job frees a slot for a waiting take", async () => {
    const ep = await createEndpoint({ concurrency: 2 });
    const ids = [await submit(ep), await submit(ep), await submit(ep)];
    expect(await json(await take(ep, "w1"))).toMatchObject({ id: ids[0] });
    expect(await json(await take(ep, "w2"))).toMatchObject({ id: ids[1] });
    const pending = take(ep, "w3");
    const third = await json(await status(ep, ids[2]!));
    expect(third).toMatchObject({ status: "IN_QUEUE", queue: { reason: "concurrency_limit", position: 1 } });
    const health = await json<{ workers: Record<string, number> }>(await call("GET", `/v2/${ep}/health`));
    expect(health.workers).toMatchObject({ running: 2, throttled: 1 });
    await done(ep, "w1", ids[0]!, { output: 1 });
    expect(await json(await pending)).toMatchObject({ id: ids[2] });
  });

  it("a batch take gets no more than the free slots", async () => {
    const ep = await createEndpoint({ concurrency: 2 });
    for (let i = 0; i < 4; i++) await submit(ep);
    const batch = await json<unknown[]>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=4`));
    expect(batch).toHaveLength(2);
  });

  it("raising the limit frees slots at once", async () => {
    const ep = await createEndpoint({ concurrency: 1 });
    await submit(ep);
    const second = await submit(ep);
    await take(ep, "w1");
    const pending = take(ep, "w2");
    await call("PUT", `/admin/endpoints/${ep}`, { body: { concurrency: 2 } });
    expect(await json(await pending)).toMatchObject({ id: second });
  });
});

describe("why it waits", () => {
  it("no workers, then all workers busy, with the position in the queue", async () => {
    // Positions count within the job's shard (README "Shards"): one shard makes them endpoint-wide.
    const ep = await createEndpoint({ shards: 1 });
    const a = await submit(ep);
    const b = await submit(ep);
    expect(await json(await status(ep, b))).toMatchObject({ queue: { reason: "no_workers", position: 2 } });
    await take(ep, "w1");
    expect(await json(await status(ep, b))).toMatchObject({ queue: { reason: "all_workers_busy", position: 1 } });
    const running = await json(await status(ep, a));
    expect(running.queue).toBeUndefined();
  });

  it("a higher-priority job is ahead", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const normal = await submit(ep);
    await submit(ep, { input: 1, priority: 10 });
    expect(await json(await status(ep, normal))).toMatchObject({ queue: { position: 2 } });
  });
});

describe("requeue", () => {
  it("puts any terminal job back in the queue with a new attempt, keeping id and history", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: "again" });
    await take(ep, "w1");
    await done(ep, "w1", id, { output: "first" });
    expect(await json(await call("POST", `/v2/${ep}/requeue/${id}`))).toEqual({ id, status: "IN_QUEUE" });
    expect(await json(await take(ep, "w2"))).toMatchObject({ id, attempt: 2, input: "again" });
    await done(ep, "w2", id, { output: "second" });
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "second", retries: 1, attempt: 2 });
    const history = await json<{ history: Array<{ command: string }> }>(await call("GET", `/v2/${ep}/history/${id}`));
    expect(history.history.map((e) => e.command)).toEqual(["submit", "claim", "complete", "requeue", "claim", "complete"]);
  });

  it("a job still waiting or running cannot be requeued (409)", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect((await call("POST", `/v2/${ep}/requeue/${id}`)).status).toBe(409);
  });
});

describe("index repair", () => {
  it("a waiting job the index lost is re-indexed by its own alarm", async () => {
    // On shard 0, the endpoint object (test/workerd/shards.test.ts repairs one on another shard).
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep);
    const endpoint = env.ENDPOINT.get(env.ENDPOINT.idFromName(ep));
    await runInDurableObject(endpoint, (_i, s) => s.storage.sql.exec("DELETE FROM job_index WHERE job_id = ?", id));
    expect((await take(ep, "w1")).status).toBe(204);
    const job = env.JOB.get(env.JOB.idFromString(id));
    const stored = await runInDurableObject(job, (_i, s) => loadJob(s.storage.sql)!);
    expect(stored.indexDueAt).toBeGreaterThan(Date.now());
    await runInDurableObject(job, (i: JobObject) => i.clock.freeze(stored.indexDueAt!));
    await runDurableObjectAlarm(job);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id });
  });
});
