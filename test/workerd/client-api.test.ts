/**
 * The RunPod client API through the Worker's fetch: shapes, status codes and endpoint scoping.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, createKey, done, json, status, submit, take, takeOne } from "./helpers";

describe("run and status", () => {
  it("/run answers 200 {id, status: IN_QUEUE}; status is readable by GET and POST", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/run`, { body: { input: { prompt: "x" } } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({ id: expect.stringMatching(/^[0-9a-f]{64}$/), status: "IN_QUEUE" });
    for (const method of ["GET", "POST"]) {
      const s = await call(method, `/v2/${ep}/status/${body.id}`);
      expect(s.status).toBe(200);
      expect(await json(s)).toMatchObject({ id: body.id, status: "IN_QUEUE", retries: 0, attempt: 0 });
    }
  });

  it("reports delayTime and executionTime in ms, and the worker that ran it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "gpu-7");
    const running = await json(await status(ep, id));
    expect(running).toMatchObject({ status: "IN_PROGRESS", workerId: "gpu-7", attempt: 1 });
    await done(ep, "gpu-7", id, { output: { ok: true } });
    const s = await json(await status(ep, id));
    expect(s).toMatchObject({ status: "COMPLETED", output: { ok: true }, workerId: "gpu-7" });
    expect(Number.isInteger(s.delayTime) && (s.delayTime as number) >= 0).toBe(true);
    expect(Number.isInteger(s.executionTime) && (s.executionTime as number) >= 0).toBe(true);
    expect(Date.parse(s.completedAt as string)).toBeGreaterThanOrEqual(Date.parse(s.startedAt as string));
  });

  it("a failed job carries the error string; a progress update shows as output while running", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    await done(ep, "w1", id, { status: "IN_PROGRESS", output: "50%" });
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS", output: "50%" });
    await done(ep, "w1", id, { error: '{"error_type":"ValueError"}' });
    expect(await json(await status(ep, id))).toMatchObject({ status: "FAILED", error: '{"error_type":"ValueError"}' });
  });

  it("a job is readable only through the endpoint it was submitted to", async () => {
    const a = await createEndpoint();
    const b = await createEndpoint();
    const id = await submit(a);
    const res = await status(b, id);
    expect(res.status).toBe(404);
    expect((await json(res)).error).toMatch(/not found/);
    expect((await call("POST", `/v2/${b}/cancel/${id}`)).status).toBe(404);
    expect(await json(await status(a, id))).toMatchObject({ status: "IN_QUEUE" });
  });

  it("unknown and malformed job ids answer 404", async () => {
    const ep = await createEndpoint();
    for (const id of ["nope", "0".repeat(64), "f".repeat(63), "../x"]) {
      const res = await status(ep, id);
      expect(res.status, id).toBe(404);
      expect((await json(res)).error).toEqual(expect.any(String));
    }
  });
});

describe("runsync and status-sync", () => {
  it("runsync returns the finished job when it ends within wait", async () => {
    const ep = await createEndpoint();
    const pending = call("POST", `/v2/${ep}/runsync?wait=10000`, { body: { input: { n: 2 } } });
    const t = await takeOne(ep, "w1");
    const job = await json<{ id: string; input: unknown }>(t);
    expect(job.input).toEqual({ n: 2 });
    await done(ep, "w1", job.id, { output: [4] });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ id: job.id, status: "COMPLETED", output: [4] });
  });

  it("runsync returns the id and current state with 200 when wait runs out", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/runsync?wait=1000`, { body: { input: 1 } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ id: expect.any(String), status: "IN_QUEUE" });
    expect(body.output).toBeUndefined();
  });

  it("status-sync waits for the terminal state (GET and POST)", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    const waiting = call("GET", `/v2/${ep}/status-sync/${id}?wait=10000`);
    await done(ep, "w1", id, { output: "done" });
    expect(await json(await waiting)).toMatchObject({ id, status: "COMPLETED", output: "done" });
    expect(await json(await call("POST", `/v2/${ep}/status-sync/${id}?wait=1000`))).toMatchObject({ status: "COMPLETED" });
  });

  it("a wait that is not a number is a 400", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/runsync?wait=soon`, { body: { input: 1 } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(/wait/);
  });
});

describe("cancel, retry, purge-queue, health", () => {
  it("cancel of a queued job ends it CANCELLED; repeating it is harmless; a worker can no longer take it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await json(await call("POST", `/v2/${ep}/cancel/${id}`, { body: {} }))).toEqual({ id, status: "CANCELLED" });
    expect(await json(await call("POST", `/v2/${ep}/cancel/${id}`))).toEqual({ id, status: "CANCELLED" });
    expect((await take(ep, "w1")).status).toBe(204);
  });

  it("cancel of a completed job is a 409 and changes nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    await done(ep, "w1", id, { output: 1 });
    const res = await call("POST", `/v2/${ep}/cancel/${id}`);
    expect(res.status).toBe(409);
    expect(await json(res)).toMatchObject({ error: expect.stringMatching(/COMPLETED/), status: "COMPLETED" });
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: 1 });
  });

  it("retry puts a FAILED job back with the same id and no output; other states are a 409", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: "again" });
    await take(ep, "w1");
    await done(ep, "w1", id, { error: "boom", output: { partial: true } });
    expect(await json(await status(ep, id))).toMatchObject({ status: "FAILED", output: { partial: true } });
    expect(await json(await call("POST", `/v2/${ep}/retry/${id}`))).toEqual({ id, status: "IN_QUEUE" });
    const s = await json(await status(ep, id));
    expect(s).toMatchObject({ id, status: "IN_QUEUE", retries: 1 });
    expect(s.output).toBeUndefined();
    expect(s.error).toBeUndefined();
    const again = await take(ep, "w2");
    expect(await json(again)).toMatchObject({ id, input: "again", attempt: 2 });
    expect((await call("POST", `/v2/${ep}/retry/${id}`)).status).toBe(409);
  });

  it("purge-queue removes queued jobs only; running ones continue", async () => {
    const ep = await createEndpoint();
    const running = await submit(ep);
    await take(ep, "w1");
    const queued = [await submit(ep), await submit(ep), await submit(ep)];
    const res = await call("POST", `/v2/${ep}/purge-queue`);
    expect(await json(res)).toEqual({ removed: 3, status: "completed" });
    for (const id of queued) expect(await json(await status(ep, id))).toMatchObject({ status: "CANCELLED", reason: "purged" });
    expect(await json(await status(ep, running))).toMatchObject({ status: "IN_PROGRESS" });
    expect(await json(await call("GET", `/v2/${ep}/health`))).toMatchObject({ jobs: { inQueue: 0, inProgress: 1 } });
  });

  it("health is RunPod-shaped with every key an integer", async () => {
    const ep = await createEndpoint();
    const both = [await submit(ep), await submit(ep)];
    // With shards either job may be handed out first (order is per shard).
    const first = (await json<{ id: string }>(await take(ep, "w1"))).id;
    expect(both).toContain(first);
    await done(ep, "w1", first, {});
    const h = await json<{ jobs: Record<string, number>; workers: Record<string, number> }>(await call("GET", `/v2/${ep}/health`));
    expect(Object.keys(h.jobs).sort()).toEqual(["completed", "failed", "inProgress", "inQueue", "retried"]);
    expect(Object.keys(h.workers).sort()).toEqual(["idle", "initializing", "ready", "running", "throttled", "unhealthy"]);
    for (const v of [...Object.values(h.jobs), ...Object.values(h.workers)]) expect(Number.isInteger(v)).toBe(true);
    expect(h.jobs).toMatchObject({ completed: 1, inQueue: 1, inProgress: 0 });
    expect(h.workers).toMatchObject({ idle: 1, running: 0 });
  });
});

describe("keys", () => {
  it("a client key uses the client API of its endpoint only", async () => {
    const a = await createEndpoint();
    const b = await createEndpoint();
    const key = await createKey(a, "client");
    expect((await call("POST", `/v2/${a}/run`, { key, body: { input: 1 } })).status).toBe(200);
    expect((await call("GET", `/v2/${a}/health`, { headers: { authorization: key }, key: null })).status).toBe(200);
    expect((await call("POST", `/v2/${b}/run`, { key, body: { input: 1 } })).status).toBe(401);
    expect((await call("GET", `/v2/${a}/job-take/w1`, { key })).status).toBe(403);
    expect((await call("GET", `/admin/endpoints`, { key })).status).toBe(401);
  });

  it("a worker key uses the worker API only, with the raw key as RunPod workers send it", async () => {
    const ep = await createEndpoint();
    const worker = await createKey(ep, "worker");
    const id = await submit(ep);
    const t = await call("GET", `/v2/${ep}/job-take/w9?job_in_progress=0`, { key: null, headers: { authorization: worker } });
    expect(await json(t)).toMatchObject({ id });
    const d = await call("POST", `/v2/${ep}/job-done/w9/${id}?isStream=false`, {
      key: null,
      headers: { authorization: worker, "content-type": "application/x-www-form-urlencoded" },
      raw: JSON.stringify({ output: "ok" }),
    });
    expect(d.status).toBe(200);
    expect((await call("POST", `/v2/${ep}/run`, { key: worker, body: { input: 1 } })).status).toBe(403);
    expect((await call("GET", `/v2/${ep}/status/${id}`, { key: worker })).status).toBe(403);
  });

  it("a deleted key stops working", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/admin/endpoints/${ep}/keys`, { body: { scope: "client" } });
    const { id, key } = await json<{ id: string; key: string }>(res);
    expect((await call("GET", `/v2/${ep}/health`, { key })).status).toBe(200);
    expect((await call("DELETE", `/admin/endpoints/${ep}/keys/${id}`)).status).toBe(200);
    expect((await call("GET", `/v2/${ep}/health`, { key })).status).toBe(401);
    expect((await call("DELETE", `/admin/endpoints/${ep}/keys/${id}`)).status).toBe(404);
  });
});
