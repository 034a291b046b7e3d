/**
 * RunPod's worker protocol in workerd: fencing (every refused report leaves the stored job as it
 * was), batch takes, lost workers, heartbeats, stop signals, the worker registry.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, freezeJob, jobStubOf as jobStub, json, status, submit, take, freezeEndpoint } from "./helpers";


async function record(id: string): Promise<JobRecord> {
  return runInDurableObject(jobStub(id), (_i: JobObject, state) => loadJob(state.storage.sql)!.job);
}


async function history(ep: string, id: string): Promise<Array<{ command: string; detail: string | null }>> {
  return (await json<{ history: Array<{ command: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history;
}

const ping = (ep: string, w: string, query = "") => call("GET", `/v2/${ep}/ping/${w}?runpod_version=1.12.0${query}`);
const jobStop = (ep: string, w: string) => call("GET", `/v2/${ep}/job-stop/${w}`);

/** A job taken by w1, with its record. */
async function running(config: Record<string, unknown> = {}, policy: Record<string, unknown> = {}) {
  const ep = await createEndpoint(config);
  const id = await submit(ep, { input: { n: 1 }, policy });
  expect(await json(await take(ep, "w1"))).toMatchObject({ id, attempt: 1 });
  return { ep, id };
}

describe("fencing: a refused report leaves the stored job unchanged", () => {
  async function expectRefused(ep: string, id: string, send: () => Promise<Response>, code: number, pattern: RegExp) {
    const before = await record(id);
    const res = await send();
    expect(res.status).toBe(code);
    expect((await json(res)).error).toMatch(pattern);
    expect(await record(id)).toEqual(before);
    expect((await history(ep, id)).at(-1)?.command).toMatch(/^refused/);
  }

  it("from a worker that does not hold the lease", async () => {
    const { ep, id } = await running();
    await expectRefused(ep, id, () => done(ep, "w2", id, { output: "x" }), 409, /does not hold the lease/);
    await expectRefused(ep, id, () => done(ep, "w2", id, { status: "IN_PROGRESS", output: "x" }), 409, /does not hold the lease/);
    await expectRefused(ep, id, () => call("POST", `/v2/${ep}/job-stream/w2/${id}`, { body: { output: "x" } }), 409, /does not hold the lease/);
  });

  it("for a stale attempt", async () => {
    const { ep, id } = await running();
    // w1 restarts and asks for work saying it runs nothing: its attempt 1 is over. No other
    // worker comes, so after the grace period w1 gets the job again, as attempt 2.
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`)).status).toBe(204);
    await freezeEndpoint(ep, Date.now() + 31_000);
    const again = await json(await take(ep, "w1"));
    await freezeEndpoint(ep, null);
    expect(again).toMatchObject({ id, attempt: 2 });
    await expectRefused(ep, id, () => call("POST", `/v2/${ep}/job-done/w1/${id}?isStream=false&attempt=1`, { body: { output: "old" } }), 409, /attempt 1 is over/);
    expect((await call("POST", `/v2/${ep}/job-done/w1/${id}?isStream=false&attempt=2`, { body: { output: "new" } })).status).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "new", attempt: 2 });
  });

  it("after the execution timeout", async () => {
    const { ep, id } = await running({}, { executionTimeout: 5_000 });
    const job = await record(id);
    await freezeJob(id, job.execDeadline!);
    await runDurableObjectAlarm(jobStub(id));
    expect((await record(id)).state).toBe("TIMED_OUT");
    await expectRefused(ep, id, () => done(ep, "w1", id, { output: "late" }), 409, /TIMED_OUT/);
  });

  it("after a cancel", async () => {
    const { ep, id } = await running({ cancelGraceMs: 0 });
    await call("POST", `/v2/${ep}/cancel/${id}`);
    const job = await record(id);
    await freezeJob(id, job.cancelDeadline!);
    await runDurableObjectAlarm(jobStub(id));
    expect((await record(id)).state).toBe("CANCELLED");
    await expectRefused(ep, id, () => done(ep, "w1", id, { output: "late" }), 409, /CANCELLED/);
  });

  it("a duplicate done answers 200 and changes nothing", async () => {
    const { ep, id } = await running();
    expect((await done(ep, "w1", id, { output: "first" })).status).toBe(200);
    const before = await record(id);
    expect((await done(ep, "w1", id, { output: "first" })).status).toBe(200);
    expect((await done(ep, "w1", id, { output: "second" })).status).toBe(200);
    expect(await record(id)).toEqual(before);
    expect(await json(await status(ep, id))).toMatchObject({ output: "first" });
  });

  it("progress after done never overrides the result", async () => {
    const { ep, id } = await running();
    await done(ep, "w1", id, { output: "final" });
    await expectRefused(ep, id, () => done(ep, "w1", id, { status: "IN_PROGRESS", output: "50%" }), 409, /COMPLETED/);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "final" });
  });
});

describe("takes", () => {
  it("job-take-batch returns up to batch_size jobs as an array, in submit order; 204 when none", async () => {
    // Order holds within a shard (README "Shards"): one shard makes it the endpoint's order.
    const ep = await createEndpoint({ shards: 1 });
    const ids = [await submit(ep), await submit(ep), await submit(ep)];
    const res = await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=2&job_in_progress=0`);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    const batch = await json<Array<{ id: string; input: unknown }>>(res);
    expect(batch.map((j) => j.id)).toEqual(ids.slice(0, 2));
    const rest = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=5&job_in_progress=1`));
    expect(rest.map((j) => j.id)).toEqual([ids[2]]);
    expect((await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=5&job_in_progress=1`)).status).toBe(204);
    expect((await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=0`)).status).toBe(400);
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=maybe`)).status).toBe(400);
  });

  it("higher priority first, low priority last, then submit order", async () => {
    // Priority is strict within a shard (README "Shards"): one shard makes it endpoint-wide.
    const ep = await createEndpoint({ shards: 1 });
    const low = await submit(ep, { input: 1, policy: { lowPriority: true } });
    const a = await submit(ep, { input: 1 });
    const high = await submit(ep, { input: 1, priority: 5 });
    const b = await submit(ep, { input: 1 });
    const order = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=10`));
    expect(order.map((j) => j.id)).toEqual([high, a, b, low]);
  });

  it("a long-polled take is answered as soon as a job arrives", async () => {
    const ep = await createEndpoint();
    const pending = take(ep, "w1");
    const id = await submit(ep);
    const res = await pending;
    expect(await json(res)).toMatchObject({ id });
  });

  it("job_in_progress=0 from a worker holding a job means it lost it: retried elsewhere, stop sent", async () => {
    const { ep, id } = await running();
    // w1 restarted: it asks for work saying it runs nothing. Its job goes back to the queue, and
    // w1 is passed over for it (it failed it) while another worker may take it.
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`)).status).toBe(204);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE", retries: 1 });
    expect(await json(await take(ep, "w2"))).toMatchObject({ id, attempt: 2 });
    expect(await json(await jobStop(ep, "w1"))).toEqual({ jobsToStop: [id] });
    const workers = await json<{ workers: Array<{ workerId: string; recentFailures: Array<{ jobId: string }> }> }>(
      await call("GET", `/admin/endpoints/${ep}/workers`),
    );
    expect(workers.workers.find((w) => w.workerId === "w1")?.recentFailures).toEqual([expect.objectContaining({ jobId: id, reason: "lease_lost" })]);
  });
});

describe("heartbeats and lost workers", () => {
  it("a pinged worker keeps its lease; a silent one loses it and the job is retried", async () => {
    const { ep, id } = await running({ heartbeatTimeout: 5_000 });
    const job = await record(id);
    expect(job.leaseCheckAt).toBe(job.startedAt! + 5_000);
    // The worker pings 1 s before the check: the lease moves on to 4 s after the check.
    await freezeEndpoint(ep, job.leaseCheckAt! - 1_000);
    expect((await ping(ep, "w1", `&job_id=${id}`)).status).toBe(200);
    await freezeEndpoint(ep, null);
    await freezeJob(id, job.leaseCheckAt!);
    await runDurableObjectAlarm(jobStub(id));
    const extended = await record(id);
    expect(extended).toMatchObject({ state: "IN_PROGRESS", leaseCheckAt: job.leaseCheckAt! + 4_000, version: job.version });
    // Then it goes silent.
    await freezeJob(id, extended.leaseCheckAt!);
    await runDurableObjectAlarm(jobStub(id));
    expect(await record(id)).toMatchObject({ state: "IN_QUEUE", attempt: 1, retries: 1, failedWorkers: ["w1"], workerId: null });
    expect(await json(await take(ep, "w2"))).toMatchObject({ id, attempt: 2 });
  });

  it("after maxAttempts lost leases the job ends TIMED_OUT (heartbeat_lost)", async () => {
    const ep = await createEndpoint({ heartbeatTimeout: 5_000, maxAttempts: 2 });
    const id = await submit(ep);
    for (const [w, attempt] of [["w1", 1], ["w2", 2]] as const) {
      expect(await json(await take(ep, w))).toMatchObject({ id, attempt });
      const job = await record(id);
      await freezeJob(id, job.leaseCheckAt! + 60_000);
      await runDurableObjectAlarm(jobStub(id));
      await runInDurableObject(jobStub(id), (i: JobObject) => i.clock.thaw());
    }
    expect(await json(await status(ep, id))).toMatchObject({ status: "TIMED_OUT", reason: "heartbeat_lost", attempt: 2 });
  });

  it("handler errors fail at once by default, and retry elsewhere when the job allows it", async () => {
    const plain = await running();
    await done(plain.ep, "w1", plain.id, { error: "boom" });
    expect(await json(await status(plain.ep, plain.id))).toMatchObject({ status: "FAILED", error: "boom" });

    const { ep, id } = await running({}, { retryOnError: true, maxAttempts: 2 });
    await done(ep, "w1", id, { error: "boom" });
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE", retries: 1 });
    expect((await take(ep, "w1")).status).toBe(204); // w1 failed it: others first
    expect(await json(await take(ep, "w2"))).toMatchObject({ id, attempt: 2 });
    await done(ep, "w2", id, { error: "boom again" });
    expect(await json(await status(ep, id))).toMatchObject({ status: "FAILED", error: "boom again" });
  });
});

describe("stops", () => {
  it("a cancelled running job reaches its worker through job-stop, and ends when the worker goes quiet", async () => {
    const { ep, id } = await running();
    const poll = jobStop(ep, "w1");
    expect(await json(await call("POST", `/v2/${ep}/cancel/${id}`))).toEqual({ id, status: "CANCELLING" });
    expect(await json(await poll)).toEqual({ jobsToStop: [id] });
    expect((await jobStop(ep, "w1")).status).toBe(204); // delivered once
    // A progress report while cancelling is refused, so the worker learns it too.
    expect((await done(ep, "w1", id, { status: "IN_PROGRESS", output: "1%" })).status).toBe(409);
    // The worker stopped it and posts no result; its next ping no longer lists the job.
    await ping(ep, "w1");
    expect(await json(await status(ep, id))).toMatchObject({ status: "CANCELLED", reason: "cancelled" });
  });

  it("an execution timeout is delivered the same way", async () => {
    const { ep, id } = await running({}, { executionTimeout: 5_000 });
    await freezeJob(id, (await record(id)).execDeadline!);
    await runDurableObjectAlarm(jobStub(id));
    expect(await json(await jobStop(ep, "w1"))).toEqual({ jobsToStop: [id] });
  });

  it("a ping that still lists the cancelling job keeps it CANCELLING until the grace ends", async () => {
    const { ep, id } = await running();
    await call("POST", `/v2/${ep}/cancel/${id}`);
    await jobStop(ep, "w1");
    await ping(ep, "w1", `&job_id=${id}`);
    expect(await json(await status(ep, id))).toMatchObject({ status: "CANCELLING" });
  });
});

describe("worker registry", () => {
  it("counts and lists workers by state", async () => {
    const ep = await createEndpoint();
    expect((await take(ep, "fresh")).status).toBe(204); // registered, never took a job
    const id = await submit(ep);
    await take(ep, "busy");
    const other = await submit(ep);
    await take(ep, "done");
    await done(ep, "done", other, { output: 1, stopPod: true });
    await ping(ep, "sick", "&status=unhealthy&check=cuda&reason=no%20GPU");
    const h = await json(await call("GET", `/v2/${ep}/health`));
    expect(h.workers).toEqual({ idle: 1, initializing: 1, ready: 2, running: 1, throttled: 0, unhealthy: 1 });
    const list = await json<{ workers: Array<Record<string, unknown>> }>(await call("GET", `/admin/endpoints/${ep}/workers`));
    const by = Object.fromEntries(list.workers.map((w) => [w.workerId, w]));
    expect(by.busy).toMatchObject({ state: "running", currentJobs: [id], jobsTaken: 1 });
    expect(by.done).toMatchObject({ state: "idle", recycle: true });
    expect(by.fresh).toMatchObject({ state: "initializing", jobsTaken: 0 });
    expect(by.sick).toMatchObject({ state: "unhealthy", unhealthyReason: "cuda: no GPU", sdkVersion: "1.12.0" });
    expect(by.busy!.lastSeen).toEqual(expect.stringMatching(/^\d{4}-/));
  });

  it("a worker silent past the heartbeat timeout counts unhealthy", async () => {
    const ep = await createEndpoint({ heartbeatTimeout: 5_000 });
    await ping(ep, "w1");
    await freezeEndpoint(ep, Date.now() + 6_000);
    expect((await json(await call("GET", `/v2/${ep}/health`))).workers).toMatchObject({ unhealthy: 1 });
    await freezeEndpoint(ep, null);
  });
});
