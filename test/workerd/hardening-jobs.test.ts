/**
 * Regression tests for the job-semantics defects an outside audit found (issue 11): each test is
 * named after its defect and failed before its fix. They span jobs, attempts and workers, which
 * the single-job suites never reached.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, createKey, done, freezeJob, jobStubOf, json, status, submit, endpointStubOf, freezeEndpoint, takeId } from "./helpers";

const endpointStub = endpointStubOf;

async function record(id: string): Promise<JobRecord | null> {
  return runInDurableObject(jobStubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)?.job ?? null);
}


async function stateOf(ep: string, id: string, key?: string): Promise<Record<string, unknown>> {
  const res = await call("GET", `/v2/${ep}/status/${id}`, key === undefined ? {} : { key });
  expect(res.status).toBe(200);
  return json(res);
}

async function health(ep: string): Promise<{ jobs: { inQueue: number; inProgress: number } }> {
  return json(await call("GET", `/v2/${ep}/health`));
}

const jobStop = (ep: string, w: string) => call("GET", `/v2/${ep}/job-stop/${w}`);
const ping = (ep: string, w: string, query: string) => call("GET", `/v2/${ep}/ping/${w}?${query}`);


describe("issue 11 defects across attempts, jobs and workers", () => {
  it("defect 1: a retried job's next handler error takes effect (the repeat check is per attempt)", async () => {
    const ep = await createEndpoint({ retryOnError: true, maxAttempts: 2 });
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await done(ep, "w1", id, { error: "boom 1" })).status).toBe(200);
    expect(await stateOf(ep, id)).toMatchObject({ status: "IN_QUEUE", retries: 1 });
    // The only worker is the one that failed it: after the avoidance grace it gets it again.
    await freezeEndpoint(ep, Date.now() + 31_000);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await record(id))!.attempt).toBe(2);
    expect((await done(ep, "w1", id, { error: "boom 2" })).status).toBe(200);
    expect(await stateOf(ep, id)).toMatchObject({ status: "FAILED", error: "boom 2", attempt: 2 });
    // An exact repeat of that report still answers 200 and changes nothing.
    expect((await done(ep, "w1", id, { error: "boom 2" })).status).toBe(200);
    expect(await stateOf(ep, id)).toMatchObject({ status: "FAILED", error: "boom 2" });
  });

  it("defect 3: a retried or requeued job re-enters its sequence at the back; never two of a key run", async () => {
    const ep = await createEndpoint();
    const a = await submit(ep, { input: { n: "a" }, sequenceKey: "k" });
    const b = await submit(ep, { input: { n: "b" }, sequenceKey: "k" });
    expect(await takeId(ep, "w1")).toBe(a);
    expect((await done(ep, "w1", a, { error: "broken" })).status).toBe(200);
    expect((await stateOf(ep, b)).status).toBe("IN_QUEUE");
    expect(await json(await call("POST", `/v2/${ep}/retry/${a}`))).toMatchObject({ status: "SEQUENCED" });
    expect(await stateOf(ep, a)).toMatchObject({ status: "SEQUENCED", queue: { reason: "sequenced_behind", ahead: b } });
    const batch = await call("GET", `/v2/${ep}/job-take-batch/w2?batch_size=10`);
    expect((await json<Array<{ id: string }>>(batch)).map((j) => j.id)).toEqual([b]);
    expect(await takeId(ep, "w3")).toBeNull();
    expect((await done(ep, "w2", b, { output: 1 })).status).toBe(200);
    // b ended: a's turn.
    expect(await takeId(ep, "w3")).toBe(a);
    expect((await done(ep, "w3", a, { output: 2 })).status).toBe(200);
    // A requeue with nothing else of the key unfinished goes straight back to the queue.
    expect(await json(await call("POST", `/v2/${ep}/requeue/${a}`))).toMatchObject({ status: "IN_QUEUE" });
    expect(await takeId(ep, "w1")).toBe(a);
  });

  it("defect 4: an idempotency key reused after its 24 h window makes a new job that workers get", async () => {
    const ep = await createEndpoint({ retentionMs: 60_000 });
    const body = { input: { n: 4 }, idempotencyKey: "daily-report" };
    const id = await submit(ep, body);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await done(ep, "w1", id, { output: "first" })).status).toBe(200);
    // 25 h later the job is deleted, idempotency window and all.
    await freezeJob(id, Date.now() + 25 * 3600_000);
    await runDurableObjectAlarm(jobStubOf(id));
    await runDurableObjectAlarm(jobStubOf(id));
    expect(await record(id)).toBeNull();
    expect(await submit(ep, body)).toBe(id);
    expect((await record(id))!.version).toBe(1);
    expect((await health(ep)).jobs.inQueue).toBe(1);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await done(ep, "w1", id, { output: "second" })).status).toBe(200);
    expect(await stateOf(ep, id)).toMatchObject({ status: "COMPLETED", output: "second" });
  });

  it("defect 5: every stop is delivered, also a second stop of the same job on the same worker", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    for (const attempt of [1, 2]) {
      expect(await takeId(ep, "w1")).toBe(id);
      expect((await record(id))!.attempt).toBe(attempt);
      expect(await json(await call("POST", `/v2/${ep}/cancel/${id}`))).toMatchObject({ status: "CANCELLING" });
      const stop = await jobStop(ep, "w1");
      expect(stop.status).toBe(200);
      expect(await json(stop)).toEqual({ jobsToStop: [id] });
      // The worker stopped: its ping no longer lists the job, which ends CANCELLED.
      expect((await ping(ep, "w1", "runpod_version=1.12.0")).status).toBe(200);
      expect((await stateOf(ep, id)).status).toBe("CANCELLED");
      if (attempt === 1) expect(await json(await call("POST", `/v2/${ep}/requeue/${id}`))).toMatchObject({ status: "IN_QUEUE" });
    }
    // Each stop once: nothing more to deliver.
    expect((await jobStop(ep, "w1")).status).toBe(204);
  });

  it("defect 6: a job its worker never received is released when the worker's pings do not list it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id); // the answer is "lost": w1 never runs it
    const later = Date.now() + 31_000;
    await freezeEndpoint(ep, later);
    await freezeJob(id, later);
    // A ping that says nothing about jobs (no job_id, no SDK version) keeps the lease.
    expect((await ping(ep, "w1", "gpu=none")).status).toBe(200);
    expect((await stateOf(ep, id)).status).toBe("IN_PROGRESS");
    // A ping listing it keeps it too.
    expect((await ping(ep, "w1", `job_id=${id}&runpod_version=1.12.0`)).status).toBe(200);
    expect((await stateOf(ep, id)).status).toBe("IN_PROGRESS");
    // A ping listing other jobs (or, from RunPod's SDK, none) releases it for another attempt.
    expect((await ping(ep, "w1", "job_id=other-job&runpod_version=1.12.0")).status).toBe(200);
    expect(await stateOf(ep, id)).toMatchObject({ status: "IN_QUEUE", retries: 1 });
    expect(await takeId(ep, "w2")).toBe(id);
  });

  it("defect 6: a job taken moments ago is not released by a ping that could not list it yet", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await ping(ep, "w1", "runpod_version=1.12.0")).status).toBe(200);
    expect((await stateOf(ep, id)).status).toBe("IN_PROGRESS");
  });

  it("defect 9: a job deleted at the end of its retention first tells its endpoint its final state", async () => {
    const ep = await createEndpoint({ retentionMs: 0, concurrency: 1 });
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    // The result commits, but the note to the endpoint is lost (the call after the commit fails).
    await runInDurableObject(jobStubOf(id), (i: JobObject) => i.faults.arm("job:after-commit"));
    await done(ep, "w1", id, { output: 1 }).catch(() => undefined);
    expect((await record(id))!.state).toBe("COMPLETED");
    expect((await health(ep)).jobs.inProgress).toBe(1);
    await runDurableObjectAlarm(jobStubOf(id)); // retention 0: deletion is due at once
    await runDurableObjectAlarm(jobStubOf(id));
    expect(await record(id)).toBeNull();
    expect((await health(ep)).jobs.inProgress).toBe(0);
    // The concurrency slot is free again.
    const next = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(next);
  });

  it("defect 10: a deleted and re-created endpoint sees none of the old one's jobs", async () => {
    const ep = await createEndpoint({ shards: 1 }); // takes in submit order; the re-created one has 8 shards
    const waiting = await submit(ep, { input: { n: "old" } });
    const idem = await submit(ep, { input: { n: "idem" }, idempotencyKey: "k1" });
    const runningId = await submit(ep, { input: { n: "running" } });
    expect(await takeId(ep, "w1")).toBe(waiting);
    // `waiting` is now running; `idem` and `runningId` wait.
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    await createEndpoint({}, ep);
    const client = await createKey(ep, "client");
    const worker = await createKey(ep, "worker");
    for (const old of [waiting, idem, runningId]) {
      expect((await call("GET", `/v2/${ep}/status/${old}`, { key: client })).status).toBe(404);
    }
    // The old jobs ended: waiting ones CANCELLED, the running one cancelled.
    expect((await record(idem))!).toMatchObject({ state: "CANCELLED", reason: "endpoint_deleted" });
    expect((await record(runningId))!).toMatchObject({ state: "CANCELLED", reason: "endpoint_deleted" });
    expect((await record(waiting))!.state).toBe("CANCELLING");
    // The old idempotency key starts a new job.
    const fresh = await submit(ep, { input: { n: "idem" }, idempotencyKey: "k1" }, client);
    expect(fresh).not.toBe(idem);
    expect(await stateOf(ep, fresh, client)).toMatchObject({ status: "IN_QUEUE" });
    // Workers of the new endpoint get only the new job.
    const res = await call("GET", `/v2/${ep}/job-take-batch/w9?batch_size=10`, { key: worker });
    expect((await json<Array<{ id: string }>>(res)).map((j) => j.id)).toEqual([fresh]);
    expect((await health(ep)).jobs).toMatchObject({ inQueue: 0, inProgress: 1 });
  });
});

describe("issue 11: index pruning runs by time", () => {
  it("defect 4: old terminal rows are pruned by the endpoint's alarm, not every 500 syncs", async () => {
    const ep = await createEndpoint({ shards: 1 }); // the rows of shard 0, the endpoint object
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await done(ep, "w1", id, { output: 1 })).status).toBe(200);
    const rows = () => runInDurableObject(endpointStub(ep), (_i: EndpointObject, s) => s.storage.sql.exec("SELECT COUNT(*) AS n FROM job_index").one().n);
    expect(await rows()).toBe(1);
    await freezeEndpoint(ep, Date.now() + 2 * 3600_000);
    expect(await runDurableObjectAlarm(endpointStub(ep))).toBe(true);
    expect(await rows()).toBe(0);
    await status(ep, id);
  });
});
