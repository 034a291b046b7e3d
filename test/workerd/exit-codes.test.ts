/**
 * Issue 15, item 5: exit codes, the ERROR outcome and the INITIALIZING phase. A result with a
 * non-zero exitCode ran with errors: ERROR, read COMPLETED by RunPod's clients (with error and
 * outcome "error"), output kept, never retried; an error without exitCode keeps RunPod's FAILED.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, jobStubOf, json, status, submit, takeId, takeOne } from "./helpers";

async function record(id: string): Promise<JobRecord> {
  const r = await runInDurableObject(jobStubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)?.job ?? null);
  if (!r) throw new Error(`job ${id} has no record`);
  return r;
}

type View = { status: string; output?: unknown; error?: string; outcome?: string; exitCode?: number; phase?: string; retries: number };
const view = async (ep: string, id: string) => json<View>(await status(ep, id));

/** A job taken by `worker` (the only one waiting). */
async function running(ep: string, worker = "w1", body: unknown = { input: 1 }): Promise<string> {
  const id = await submit(ep, body);
  expect((await json<{ id: string }>(await takeOne(ep, worker))).id).toBe(id);
  return id;
}

describe("exit codes and ERROR", () => {
  it("exitCode 0 completes and is shown; a non-zero one ends ERROR, read COMPLETED with error and outcome, output kept, never retried", async () => {
    const ep = await createEndpoint({ retryOnError: true, maxAttempts: 3 });
    const ok = await running(ep);
    expect((await done(ep, "w1", ok, { output: "fine", exitCode: 0 })).status).toBe(200);
    const okView = await view(ep, ok);
    expect(okView).toMatchObject({ status: "COMPLETED", output: "fine", exitCode: 0 });
    expect(okView.outcome).toBeUndefined();
    expect(okView.error).toBeUndefined();

    const bad = await running(ep);
    expect((await done(ep, "w1", bad, { output: { rows: 7 }, exitCode: 3 })).status).toBe(200);
    expect(await view(ep, bad)).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: 3, error: "exit code 3", output: { rows: 7 }, retries: 0 });
    expect((await record(bad)).state).toBe("ERROR");
    // retryOnError with attempts left changes nothing: it ran; nothing waits.
    expect(await takeId(ep, "w2")).toBeNull();
    // A repeat of the same result is answered 200 and changes nothing; another report is a 409.
    const version = (await record(bad)).version;
    expect((await done(ep, "w1", bad, { output: { rows: 7 }, exitCode: 3 })).status).toBe(200);
    const other = await done(ep, "w1", bad, { output: "x" });
    expect(other.status).toBe(409);
    // Named as clients read it, the internal state after it.
    expect(JSON.stringify(await json(other))).toMatch(/COMPLETED \(error\)/);
    expect(await record(bad)).toMatchObject({ state: "ERROR", version });

    // An error beside an exit code is the error shown; a negative code is a code.
    const withError = await running(ep);
    expect((await done(ep, "w1", withError, { error: "3 rows rejected", exitCode: -1 })).status).toBe(200);
    expect(await view(ep, withError)).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: -1, error: "3 rows rejected" });
    // Even exit code 0 with an error ran with errors.
    const zeroError = await running(ep);
    expect((await done(ep, "w1", zeroError, { output: 1, error: "warnings", exitCode: 0 })).status).toBe(200);
    expect(await view(ep, zeroError)).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: 0, error: "warnings" });
  });

  it("an error without exitCode keeps RunPod's meaning: retried under retryOnError, else FAILED, even with an output beside it", async () => {
    const ep = await createEndpoint({ retryOnError: true, maxAttempts: 2 });
    const id = await running(ep);
    expect((await done(ep, "w1", id, { output: { rest: 1 }, error: "boom" })).status).toBe(200);
    expect(await view(ep, id)).toMatchObject({ status: "IN_QUEUE", retries: 1 });
    expect((await json<{ id: string }>(await takeOne(ep, "w2"))).id).toBe(id);
    expect((await done(ep, "w2", id, { output: { rest: 1 }, error: "boom" })).status).toBe(200);
    const v = await view(ep, id);
    expect(v).toMatchObject({ status: "FAILED", error: "boom" });
    expect(v.outcome).toBeUndefined();
    expect(v.exitCode).toBeUndefined();
  });

  it("a malformed exitCode is a 400 and changes nothing; null is none", async () => {
    const ep = await createEndpoint();
    const id = await running(ep);
    for (const exitCode of [1.5, "3", true, [1], { n: 1 }, 4_294_967_296, -2_147_483_649, 1e300]) {
      const res = await done(ep, "w1", id, { output: 1, exitCode });
      expect(res.status, JSON.stringify(exitCode)).toBe(400);
      expect((await json<{ error: string }>(res)).error).toMatch(/exitCode must be an integer/);
    }
    // On a progress update too (found by an outsider: it was taken and the code ignored).
    for (const status of ["IN_PROGRESS", "INITIALIZING"]) expect((await done(ep, "w1", id, { status, exitCode: "x" })).status, status).toBe(400);
    expect((await record(id)).state).toBe("IN_PROGRESS");
    for (const edge of [4_294_967_295, -2_147_483_648]) {
      const j = await running(ep, `w-${edge}`);
      expect((await done(ep, `w-${edge}`, j, { exitCode: edge })).status).toBe(200);
      expect(await view(ep, j)).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: edge });
    }
    expect((await done(ep, "w1", id, { output: 2, exitCode: null })).status).toBe(200);
    const v = await view(ep, id);
    expect(v).toMatchObject({ status: "COMPLETED", output: 2 });
    expect(v.exitCode).toBeUndefined();
  });

  it("a result while CANCELLING ends CANCELLED; /retry refuses an ERROR job (it reads COMPLETED), /requeue runs it again", async () => {
    const ep = await createEndpoint();
    const id = await running(ep);
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200);
    expect((await done(ep, "w1", id, { output: 1, exitCode: 9 })).status).toBe(200);
    expect((await record(id)).state).toBe("CANCELLED");

    const e = await running(ep);
    await done(ep, "w1", e, { output: 1, exitCode: 9 });
    const retry = await call("POST", `/v2/${ep}/retry/${e}`);
    expect(retry.status).toBe(409);
    expect(JSON.stringify(await json(retry))).not.toMatch(/"ERROR"|is ERROR/);
    expect(await json(await call("POST", `/v2/${ep}/requeue/${e}`))).toMatchObject({ status: "IN_QUEUE" });
    const v = await view(ep, e);
    expect(v.outcome).toBeUndefined();
    expect(v.exitCode).toBeUndefined();
    expect((await json<{ id: string }>(await takeOne(ep, "w2"))).id).toBe(e);
    expect((await done(ep, "w2", e, { output: "second time", exitCode: 0 })).status).toBe(200);
    expect(await view(ep, e)).toMatchObject({ status: "COMPLETED", output: "second time", exitCode: 0 });
  });

  it("counted apart in /metrics and Prometheus, as completed in RunPod's /health; listed under COMPLETED, and alone under ERROR", async () => {
    const ep = await createEndpoint();
    const ok = await running(ep);
    await done(ep, "w1", ok, { output: 1 });
    const bad = await running(ep);
    await done(ep, "w1", bad, { output: 1, exitCode: 2 });
    const health = await json<{ jobs: Record<string, number> }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs).toMatchObject({ completed: 2, failed: 0 });
    const metrics = await json<{ total: { requests: Record<string, number> } }>(await call("GET", `/v2/${ep}/metrics`));
    expect(metrics.total.requests).toMatchObject({ completed: 1, errored: 1, failed: 0 });
    const prom = await (await call("GET", `/admin/metrics`)).text();
    expect(prom).toContain(`edge_jobs_jobs_ended_total{endpoint="${ep}",outcome="error"} 1`);
    expect(prom).toContain(`edge_jobs_jobs{endpoint="${ep}",state="ERROR"} 1`);
    const list = async (q: string) => (await json<{ requests: Array<{ id: string; status: string; outcome?: string }> }>(await call("GET", `/v2/${ep}/requests?status=${q}`))).requests;
    expect((await list("COMPLETED")).map((r) => [r.id, r.status, r.outcome ?? null]).sort()).toEqual([[bad, "COMPLETED", "error"], [ok, "COMPLETED", null]].sort());
    expect((await list("error")).map((r) => r.id)).toEqual([bad]);
  });
});

describe("INITIALIZING", () => {
  it("shows phase initializing while IN_PROGRESS; the next progress, a stream chunk or the end clears it; fenced like any report", async () => {
    const ep = await createEndpoint();
    const id = await running(ep);
    expect((await done(ep, "w2", id, { status: "INITIALIZING" })).status).toBe(409);
    expect((await done(ep, "w1", id, { status: "INITIALIZING" })).status).toBe(200);
    expect(await view(ep, id)).toMatchObject({ status: "IN_PROGRESS", phase: "initializing" });
    expect((await done(ep, "w1", id, { status: "IN_PROGRESS", output: { pct: 10 } })).status).toBe(200);
    const v = await view(ep, id);
    expect(v).toMatchObject({ status: "IN_PROGRESS", output: { pct: 10 } });
    expect(v.phase).toBeUndefined();
    // An initializing report without output keeps the progress output there.
    expect((await done(ep, "w1", id, { status: "INITIALIZING" })).status).toBe(200);
    expect(await view(ep, id)).toMatchObject({ phase: "initializing", output: { pct: 10 } });
    const chunk = await call("POST", `/v2/${ep}/job-stream/w1/${id}`, { body: { output: "a" } });
    expect(chunk.status).toBe(200);
    expect((await view(ep, id)).phase).toBeUndefined();
    await done(ep, "w1", id, { status: "INITIALIZING" });
    // next=1 needs a final report, as with IN_PROGRESS.
    expect((await call("POST", `/v2/${ep}/job-done/w1/${id}?isStream=false&next=1`, { body: { status: "INITIALIZING" } })).status).toBe(400);
    await done(ep, "w1", id, { output: "done" });
    const end = await view(ep, id);
    expect(end.status).toBe("COMPLETED");
    expect(end.phase).toBeUndefined();
  });
});

describe("ERROR across jobs", () => {
  it("an ERROR job of a sequence releases the next one, as any finished job does", async () => {
    const ep = await createEndpoint();
    const first = await submit(ep, { input: 1, sequenceKey: "s" });
    const second = await submit(ep, { input: 2, sequenceKey: "s" });
    expect((await view(ep, second)).status).toBe("SEQUENCED");
    expect((await json<{ id: string }>(await takeOne(ep, "w1"))).id).toBe(first);
    expect((await done(ep, "w1", first, { output: 1, exitCode: 5 })).status).toBe(200);
    expect((await record(first)).state).toBe("ERROR");
    expect((await view(ep, second)).status).toBe("IN_QUEUE");
    expect((await json<{ id: string }>(await takeOne(ep, "w1"))).id).toBe(second);
  });
});

describe("internal state names never reach RunPod's clients", () => {
  it("/stream reads COMPLETED for an ERROR job and IN_QUEUE for a SCHEDULED or PAUSED one (found by an outsider: it showed the internal names)", async () => {
    const ep = await createEndpoint();
    const bad = await running(ep);
    await done(ep, "w1", bad, { output: 1, exitCode: 3 });
    const delayed = await submit(ep, { input: 2, delay: 3_600_000 });
    const paused = await submit(ep, { input: 3 });
    await call("POST", `/v2/${ep}/pause/${paused}`);
    const streamed = async (id: string) => (await json<{ status: string; stream: unknown[] }>(await call("GET", `/v2/${ep}/stream/${id}`))).status;
    expect(await streamed(bad)).toBe("COMPLETED");
    expect(await streamed(delayed)).toBe("IN_QUEUE");
    expect(await streamed(paused)).toBe("IN_QUEUE");
  });

  it("bulk cancel's reason for skipping an ERROR job says COMPLETED", async () => {
    const ep = await createEndpoint();
    const bad = await running(ep);
    await done(ep, "w1", bad, { output: 1, exitCode: 3 });
    const res = await json<{ skipped: Array<{ id: string; reason: string }> }>(await call("POST", `/admin/endpoints/${ep}/requests/cancel`, { body: { status: "COMPLETED" } }));
    expect(res.skipped).toEqual([{ id: bad, reason: "already finished (COMPLETED)" }]);
  });
});
