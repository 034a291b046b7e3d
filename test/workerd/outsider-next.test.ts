/**
 * An outsider's attack on job-done?next=1 (issue 12, fewer hops): repeated reports, batch
 * takers, stopPod, push endpoints, a paused or full endpoint, a job cancelled meanwhile. Tests
 * named `defect:` failed before their fix; the others record what held.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LivenessObject } from "../../src/endpoints/liveness-object";
import { call, createEndpoint, createKey, json, livenessRefOf, livenessStubAt, status, submit, take } from "./helpers";

const doneNext = (ep: string, w: string, id: string, body: unknown, query = "next=1", key?: string | null) =>
  call("POST", `/v2/${ep}/job-done/${w}/${id}?${query}`, { body, key });

describe("outsider: job-done?next=1", () => {
  it("defect: an exact repeat of an accepted report (its answer was lost) hands out no second job", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const a = await submit(ep);
    const b = await submit(ep);
    const c = await submit(ep);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id: a });
    expect(await json(await doneNext(ep, "w1", a, { output: 1 }))).toMatchObject({ next: { id: b } });
    // The worker never saw that answer and sends the same report again.
    const again = await doneNext(ep, "w1", a, { output: 1 });
    expect(again.status).toBe(200);
    expect(await json(again)).toEqual({ next: null });
    expect(await json(await status(ep, c))).toMatchObject({ status: "IN_QUEUE" });
    // The same for a repeated failure report.
    expect(await json(await doneNext(ep, "w1", b, { error: "boom" }))).toMatchObject({ next: { id: c } });
    const d = await submit(ep);
    expect(await json(await doneNext(ep, "w1", b, { error: "boom" }))).toEqual({ next: null });
    expect(await json(await status(ep, d))).toMatchObject({ status: "IN_QUEUE" });
  });

  it("at the concurrency limit the finished job's slot is free again: next hands out the following job", async () => {
    const ep = await createEndpoint({ concurrency: 1 });
    const a = await submit(ep);
    const b = await submit(ep);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id: a });
    expect((await take(ep, "w2")).status).toBe(204); // the one slot is a's
    expect(await json(await doneNext(ep, "w1", a, { output: 1 }))).toMatchObject({ next: { id: b, attempt: 1 } });
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_PROGRESS" });
  });

  it("a job cancelled meanwhile: its report ends it CANCELLED and next hands out the following job", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const a = await submit(ep);
    const b = await submit(ep);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id: a });
    expect((await call("POST", `/v2/${ep}/cancel/${a}`)).status).toBe(200);
    expect(await json(await doneNext(ep, "w1", a, { output: 1 }))).toMatchObject({ next: { id: b } });
    expect(await json(await status(ep, a))).toMatchObject({ status: "CANCELLED" });
  });

  it("stopPod with next: the report counts, nothing is taken, the worker is marked for recycling", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const a = await submit(ep);
    const b = await submit(ep);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id: a });
    expect(await json(await doneNext(ep, "w1", a, { output: 1, stopPod: true }))).toEqual({ next: null });
    expect(await json(await status(ep, a))).toMatchObject({ status: "COMPLETED" });
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_QUEUE" });
    const ref = await livenessRefOf(ep, "w1");
    const recycle = await runInDurableObject(livenessStubAt(ref), (_i: LivenessObject, s) => s.storage.sql.exec("SELECT recycle FROM worker WHERE worker_id = 'w1'").one().recycle);
    expect(recycle).toBe(1);
  });

  it("a batch taker's next adds one job and loses none of the batch it still runs", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: a batch in submit order
    const ids = [await submit(ep), await submit(ep), await submit(ep)];
    const batch = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=2&job_in_progress=0`));
    expect(batch.map((j) => j.id)).toEqual(ids.slice(0, 2));
    expect(await json(await doneNext(ep, "w1", ids[0]!, { output: 1 }))).toMatchObject({ next: { id: ids[2] } });
    expect(await json(await status(ep, ids[1]!))).toMatchObject({ status: "IN_PROGRESS" });
    expect(await json(await status(ep, ids[2]!))).toMatchObject({ status: "IN_PROGRESS" });
  });

  it("bad next uses on a push endpoint are a clear 4xx: an unknown job (404), a bad report token (401)", async () => {
    const ep = await createEndpoint({ mode: "push", workerUrls: ["https://worker.example/run"] });
    const key = await createKey(ep, "worker");
    const unknown = await doneNext(ep, "w1", "0".repeat(64), { output: 1 }, "next=1", key);
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toMatchObject({ error: expect.any(String) });
    const token = await doneNext(ep, "w1", "0".repeat(64), { output: 1 }, "next=1&attempt=1&token=abc", null);
    expect(token.status).toBe(401);
  });
});
