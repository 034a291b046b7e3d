/**
 * Issue 15, item 2: per-job pause (Flamenco's `paused`). A paused waiting job is handed to no
 * worker until resumed (clients read IN_QUEUE with `paused: true` and queue.reason "job_paused");
 * a running one finishes its attempt; its TTL keeps running.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, freezeJob as freeze, jobStubOf as stubOf, json, status, submit, takeId, takeOne } from "./helpers";

async function record(id: string): Promise<JobRecord> {
  const r = await runInDurableObject(stubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)?.job ?? null);
  if (!r) throw new Error(`job ${id} has no record`);
  return r;
}

const act = async (ep: string, action: "pause" | "resume" | "cancel", id: string) => {
  const res = await call("POST", `/v2/${ep}/${action}/${id}`);
  return { status: res.status, body: await json<{ id: string; status: string; paused?: boolean; error?: string }>(res) };
};

describe("pausing one job", () => {
  it("a paused waiting job is handed to nobody until resumed; clients read IN_QUEUE, paused, job_paused", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1 });
    expect(await act(ep, "pause", id)).toMatchObject({ status: 200, body: { id, status: "IN_QUEUE", paused: true } });
    expect((await record(id)).state).toBe("PAUSED");
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE", paused: true, queue: { position: null, reason: "job_paused" } });
    expect(await takeId(ep, "w1")).toBeNull();
    // Pausing again changes nothing.
    expect(await act(ep, "pause", id)).toMatchObject({ status: 200, body: { status: "IN_QUEUE", paused: true } });
    const health = await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs.inQueue).toBe(1);
    // Listed as clients read it: IN_QUEUE finds it (found by review: only SCHEDULED was included), PAUSED alone too.
    for (const q of ["IN_QUEUE", "paused"]) {
      const listed = await json<{ requests: Array<{ id: string; status: string }> }>(await call("GET", `/v2/${ep}/requests?status=${q}`));
      expect(listed.requests.map((j) => [j.id, j.status]), q).toEqual([[id, "IN_QUEUE"]]);
    }
    expect((await json<{ requests: unknown[] }>(await call("GET", `/v2/${ep}/requests?status=SCHEDULED`))).requests).toEqual([]);
    // Refused commands name the state as clients read it, never the internal one.
    const retry = await call("POST", `/v2/${ep}/retry/${id}`);
    expect(retry.status).toBe(409);
    expect(JSON.stringify(await json(retry))).not.toMatch(/PAUSED/);
    const resumed = await act(ep, "resume", id);
    expect(resumed).toMatchObject({ status: 200, body: { id, status: "IN_QUEUE" } });
    expect(resumed.body.paused).toBeUndefined();
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id });
    // Resuming a job that is not paused changes nothing.
    expect(await act(ep, "resume", id)).toMatchObject({ status: 200, body: { status: "IN_PROGRESS" } });
  });

  it("a running job finishes its attempt; one that goes back for another waits paused", async () => {
    const ep = await createEndpoint({ retryOnError: true, maxAttempts: 3 });
    const a = await submit(ep, { input: "a" });
    const first = (await json<{ id: string }>(await takeOne(ep, "w1"))).id;
    expect(first).toBe(a);
    expect(await act(ep, "pause", a)).toMatchObject({ status: 200, body: { status: "IN_PROGRESS", paused: true } });
    expect((await done(ep, "w1", a, { error: "flaky" })).status).toBe(200);
    expect(await record(a)).toMatchObject({ state: "PAUSED", paused: true, retries: 1 });
    expect(await takeId(ep, "w2")).toBeNull();
    await act(ep, "resume", a);
    expect(await json<{ id: string }>(await takeOne(ep, "w2"))).toMatchObject({ id: a });
    // The pause of the running attempt is in the history though the state stayed.
    const lines = (await json<{ history: Array<{ command: string; from: string; to: string }> }>(await call("GET", `/v2/${ep}/history/${a}`))).history;
    expect(lines.map((l) => `${l.command} ${l.from}->${l.to}`)).toEqual([
      "submit IN_QUEUE->IN_QUEUE",
      "claim IN_QUEUE->IN_PROGRESS",
      "pause IN_PROGRESS->IN_PROGRESS",
      "fail IN_PROGRESS->PAUSED",
      "resume PAUSED->IN_QUEUE",
      "claim IN_QUEUE->IN_PROGRESS",
    ]);
    // A result while paused counts: the job completes, the pause is gone with it.
    await act(ep, "pause", a);
    expect((await done(ep, "w2", a, { output: "ok" })).status).toBe(200);
    expect(await record(a)).toMatchObject({ state: "COMPLETED", paused: false });
    expect(await json(await status(ep, a))).toMatchObject({ status: "COMPLETED", output: "ok" });
    // A finished job cannot be paused.
    expect(await act(ep, "pause", a)).toMatchObject({ status: 409, body: { status: "COMPLETED" } });
  });

  it("its TTL keeps running while paused; cancel and purge-queue end paused jobs", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 20_000 } });
    await act(ep, "pause", id);
    const job = await record(id);
    await freeze(id, job.ttlAt - 1);
    await runDurableObjectAlarm(stubOf(id));
    expect((await record(id)).state).toBe("PAUSED");
    await freeze(id, job.ttlAt);
    await runDurableObjectAlarm(stubOf(id));
    expect(await record(id)).toMatchObject({ state: "TIMED_OUT", reason: "ttl", paused: false });
    const b = await submit(ep, { input: 2 });
    const c = await submit(ep, { input: 3 });
    await act(ep, "pause", b);
    await act(ep, "pause", c);
    expect(await act(ep, "cancel", b)).toMatchObject({ status: 200, body: { status: "CANCELLED" } });
    const purged = await json<{ removed: number }>(await call("POST", `/v2/${ep}/purge-queue`));
    expect(purged.removed).toBe(1);
    expect(await record(c)).toMatchObject({ state: "CANCELLED", reason: "purged" });
  });

  it("a paused job of a sequence keeps its place: the jobs behind it wait until it is resumed and done", async () => {
    const ep = await createEndpoint();
    const a = await submit(ep, { input: "a", sequenceKey: "k" });
    const b = await submit(ep, { input: "b", sequenceKey: "k" });
    expect((await record(b)).state).toBe("SEQUENCED");
    await act(ep, "pause", a);
    expect(await takeId(ep, "w1")).toBeNull();
    // Pausing the one behind, then resuming both: order is kept.
    await act(ep, "pause", b);
    await act(ep, "resume", b);
    expect((await record(b)).state).toBe("SEQUENCED");
    expect(await takeId(ep, "w1")).toBeNull();
    await act(ep, "resume", a);
    expect((await record(a)).state).toBe("IN_QUEUE");
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: a });
    expect(await takeId(ep, "w2")).toBeNull();
    expect((await done(ep, "w1", a, { output: 1 })).status).toBe(200);
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: b });
  });

  it("a paused delayed job resumes SCHEDULED before its time and IN_QUEUE after it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 60_000 });
    await act(ep, "pause", id);
    const job = await record(id);
    expect(job).toMatchObject({ state: "PAUSED" });
    // Its time passes while paused: nothing happens.
    await freeze(id, job.readyAt! + 1);
    await runDurableObjectAlarm(stubOf(id));
    expect((await record(id)).state).toBe("PAUSED");
    await act(ep, "resume", id);
    expect((await record(id)).state).toBe("IN_QUEUE");
    const later = await submit(ep, { input: 2, delay: 60_000 });
    await act(ep, "pause", later);
    await act(ep, "resume", later);
    expect((await record(later)).state).toBe("SCHEDULED");
    expect(await json(await status(ep, later))).toMatchObject({ status: "IN_QUEUE", queue: { reason: "scheduled" } });
  });

  it("unknown jobs are a 404; wrong methods and ids never a 5xx", async () => {
    const ep = await createEndpoint();
    expect((await call("POST", `/v2/${ep}/pause/nope`)).status).toBe(404);
    expect((await call("POST", `/v2/${ep}/resume/${"0".repeat(64)}`)).status).toBe(404);
    const res = await call("GET", `/v2/${ep}/pause/${"0".repeat(64)}`);
    expect(res.status).toBeLessThan(500);
  });
});
