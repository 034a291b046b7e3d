/**
 * Batch counts stay exact through retries, cancels and repeated or reordered tells; a failed tell
 * is retried by the job's alarm; the batch webhook is signed and sent once the batch finishes.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BatchObject } from "../../src/batches/batch-object";
import type { JobObject } from "../../src/jobs/job-object";
import { createChildren } from "../../src/batches/children";
import { call, done, endpointStubOf, freezeJob, interceptFetch, jobStubOf, json, take, takeOne } from "./helpers";
import { action, allCreated, batchEndpoint, batchStubOf, children, countsAgree, createBatch, summary, until, type Ep } from "./batch-kit";

afterEach(() => vi.restoreAllMocks());

const took = async (e: Ep, worker: string) => (await json<{ id: string; batchId: string }>(await takeOne(e.ep, worker))).id;
const counts = async (e: Ep, id: string) => {
  const s = await summary(e, id);
  return [s.requestInProgress, s.requestCompleted, s.requestFailed];
};

describe("batch counts", () => {
  it("follow each child: running, completed, failed, and a failed child retried leaves failed again", async () => {
    const e = await batchEndpoint({ maxAttempts: 1 });
    const id = await createBatch(e, [{ input: 1 }, { input: 2 }, { input: 3 }]);
    await action(e, id, "finalize");
    await allCreated(e, id, 3);
    const a = await took(e, "w1");
    const b = await took(e, "w2");
    expect(await counts(e, id)).toEqual([2, 0, 0]);
    await done(e.ep, "w1", a, { output: { ok: a } });
    await done(e.ep, "w2", b, { error: "boom" });
    expect(await counts(e, id)).toEqual([0, 1, 1]);
    const list = await children(e, id);
    expect(list.requests.map((r) => r.status)).toEqual(["FAILED", "IN_QUEUE", "COMPLETED"]);
    expect(list.requests[0]).toMatchObject({ id: b, error: "boom" });
    expect(list.requests[2]).toMatchObject({ id: a, output: { ok: a } });
    expect(list.requests[2]!.startedAt).toMatch(/Z$/);
    expect((await call("POST", `/v2/${e.ep}/retry/${b}`, { key: e.client })).status).toBe(200);
    expect(await counts(e, id)).toEqual([0, 1, 0]);
    const again = await took(e, "w3");
    const c = await took(e, "w1");
    expect(new Set([again, c])).toEqual(new Set([b, (list.requests[1]!.id)]));
    await done(e.ep, "w3", again, { output: 1 });
    await done(e.ep, "w1", c, { output: 2 });
    expect(await summary(e, id)).toMatchObject({ status: "FINALIZED", requestTotal: 3, requestInProgress: 0, requestCompleted: 3, requestFailed: 0 });
    expect(await countsAgree(id)).toBe(true);
  });

  it("a FINALIZED batch's cancel cancels waiting children at once; a running one finishes; then the batch is CANCELLED", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, [{ input: 1 }, { input: 2 }, { input: 3 }]);
    await action(e, id, "finalize");
    const ids = await allCreated(e, id, 3);
    const running = await took(e, "w1");
    const c = await action(e, id, "cancel");
    expect(await json(c)).toMatchObject({ status: "FINALIZED" });
    await until("the waiting children to be cancelled", async () => (await children(e, id)).requests.filter((r) => r.status === "CANCELLED").length === 2);
    for (const other of ids.filter((x) => x !== running)) {
      expect(await json(await call("GET", `/v2/${e.ep}/status/${other}`, { key: e.client }))).toMatchObject({ status: "CANCELLED" });
    }
    expect(await summary(e, id)).toMatchObject({ status: "FINALIZED", requestInProgress: 1 });
    // Not stopped: no stop signal for the running child's worker.
    const stop = await call("GET", `/v2/${e.ep}/job-stop/w1`, { key: e.worker });
    expect(JSON.stringify(await stop.json().catch(() => ({})))).not.toContain(running);
    expect((await done(e.ep, "w1", running, { output: "finished" })).status).toBe(200);
    expect(await summary(e, id)).toMatchObject({ status: "CANCELLED", requestTotal: 3, requestInProgress: 0, requestCompleted: 1, requestFailed: 0 });
    expect(await countsAgree(id)).toBe(true);
    expect((await action(e, id, "cancel")).status).toBe(200);
  });

  it("ignores a repeated or older tell (newest version wins)", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, [{ input: 1 }]);
    await action(e, id, "finalize");
    const [child] = await allCreated(e, id, 1);
    const got = await took(e, "w1");
    expect(got).toBe(child);
    await done(e.ep, "w1", child!, { output: { v: 1 } });
    const stub = batchStubOf(id);
    const stale = { jobId: child!, state: "IN_PROGRESS" as const, version: 2, startedAt: Date.now(), completedAt: null, error: null, output: null, outputBytes: 0 };
    await stub.childChanged(stale);
    await stub.childChanged({ ...stale, version: 1, state: "IN_QUEUE" });
    expect(await counts(e, id)).toEqual([0, 1, 0]);
    await stub.childChanged({ ...stale, jobId: "f".repeat(64), version: 99 }); // not a child: nothing
    expect((await children(e, id)).requests[0]).toMatchObject({ status: "COMPLETED", output: { v: 1 } });
    expect(await countsAgree(id)).toBe(true);
  });

  it("a tell that fails is retried by the job's alarm", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, [{ input: 1 }]);
    await action(e, id, "finalize");
    const [child] = await allCreated(e, id, 1);
    await took(e, "w1");
    type Holder = { env: Env };
    const real = await runInDurableObject(jobStubOf(child!), (j: JobObject) => {
      const h = j as unknown as Holder;
      const saved = h.env;
      const down = { idFromString: (s: string) => saved.BATCH.idFromString(s), get: () => ({ childChanged: () => Promise.reject(new Error("batch unreachable")) }) };
      h.env = { ...saved, BATCH: down as unknown as Env["BATCH"] };
      return true;
    });
    expect(real).toBe(true);
    await done(e.ep, "w1", child!, { output: "x" });
    expect(await counts(e, id)).toEqual([1, 0, 0]);
    await runInDurableObject(jobStubOf(child!), (j: JobObject) => {
      (j as unknown as Holder).env = env;
    });
    await freezeJob(child!, Date.now() + 6_000);
    await runDurableObjectAlarm(jobStubOf(child!));
    expect(await counts(e, id)).toEqual([0, 1, 0]);
  });

  it("creating a child twice (a crash between its submit and its record) reaches the same job", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, [{ input: { once: true } }]);
    await action(e, id, "finalize");
    const [child] = await allCreated(e, id, 1);
    const config = (await endpointStubOf(e.ep).getConfig())!;
    const body = new TextEncoder().encode(JSON.stringify({ input: { once: true }, policy: { lowPriority: true } }));
    const again = await createChildren(env, config, id, null, [{ idx: 0, jobId: child!, body }]);
    expect(again).toEqual([expect.objectContaining({ ok: true, idx: 0 })]);
    expect(again[0]!.ok && again[0]!.job.id).toBe(child);
    expect((await summary(e, id)).requestTotal).toBe(1);
    expect((await take(e.ep, "w1")).status).toBe(200);
    expect((await take(e.ep, "w2")).status).toBe(204);
  });
});

describe("the batch webhook", () => {
  it("is signed with the endpoint's secret and sent once when every child finished, with exact counts", async () => {
    const e = await batchEndpoint();
    const secret = (await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${e.ep}`))).webhookSecret;
    const hook = "https://batch-hook.example.com/done";
    const got = interceptFetch(hook, () => new Response("ok"));
    const id = await createBatch(e, { name: "n1", requests: [{ input: 1 }, { input: 2 }], webhook: hook });
    await action(e, id, "finalize");
    await allCreated(e, id, 2);
    const a = await took(e, "w1");
    await done(e.ep, "w1", a, { output: 1 });
    expect(got).toHaveLength(0);
    const b = await took(e, "w1");
    await done(e.ep, "w1", b, { error: "bad" });
    await until("the batch webhook", async () => got.length > 0 || (await runDurableObjectAlarm(batchStubOf(id)), false));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(1);
    const payload = new Webhook(secret).verify(got[0]!.body, got[0]!.headers);
    expect(payload).toMatchObject({
      type: "batch.finished",
      id,
      endpointId: e.ep,
      status: "FINALIZED",
      requestTotal: 2,
      requestInProgress: 0,
      requestCompleted: 1,
      requestFailed: 1,
      requestCancelled: 0,
      name: "n1",
    });
    expect(got[0]!.headers["webhook-id"]).toMatch(/^wh_batch_/);
    const o = await runInDurableObject(batchStubOf(id), (x: BatchObject) => x.sql.exec<{ state: string }>("SELECT state FROM webhook_event").toArray());
    expect(o).toEqual([{ state: "delivered" }]);
  });

  it("a cancelled DRAFT's webhook says CANCELLED", async () => {
    const e = await batchEndpoint();
    const hook = "https://batch-hook.example.com/cancel";
    const got = interceptFetch(hook, () => new Response("ok"));
    const id = await createBatch(e, [{ input: 1 }], `?webhook=${encodeURIComponent(hook)}`);
    await action(e, id, "cancel");
    await until("the batch webhook", async () => got.length > 0 || (await runDurableObjectAlarm(batchStubOf(id)), false));
    expect(got[0]!.json).toMatchObject({ id, status: "CANCELLED", requestTotal: 1, requestCancelled: 1 });
  });
});
