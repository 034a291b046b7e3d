/**
 * The Batch API's routes (RUNPOD-WIRE-2 §1): shapes, states, paging, limits and bad input.
 */
import { describe, expect, it } from "vitest";
import { BATCH } from "../../src/shared/limits";
import { call, json, uniqueEndpointId } from "./helpers";
import { action, allCreated, batchEndpoint, children, createBatch, summary, type Ep } from "./batch-kit";

const post = (e: Ep, path: string, body?: unknown, raw?: BodyInit) => call("POST", `/v2/${e.ep}/batch${path}`, { key: e.client, body, raw, headers: raw ? { "content-type": "application/json" } : {} });

describe("batch create, append, finalize, rename, remove", () => {
  it("creates from a bare array: {id, status: DRAFT}; the summary has exactly RunPod's fields; nothing is a job until finalize", async () => {
    const e = await batchEndpoint();
    const res = await post(e, "", [{ input: { text: "a" } }, { input: { text: "b" } }]);
    expect(res.status).toBe(200);
    const created = await json<{ id: string; status: string }>(res);
    expect(Object.keys(created).sort()).toEqual(["id", "status"]);
    expect(created.status).toBe("DRAFT");
    expect(created.id).toMatch(/^batch_[0-9a-f]{64}$/);
    const s = await summary(e, created.id);
    expect(Object.keys(s).sort()).toEqual(["createdAt", "endpointId", "id", "requestCompleted", "requestFailed", "requestInProgress", "requestTotal", "status"]);
    expect(s).toMatchObject({ id: created.id, endpointId: e.ep, status: "DRAFT", requestTotal: 2, requestInProgress: 0, requestCompleted: 0, requestFailed: 0 });
    expect(typeof s.createdAt).toBe("number");
    expect(Math.abs(s.createdAt - Date.now())).toBeLessThan(60_000);
    const list = await children(e, created.id);
    expect(list).toMatchObject({ total: 2, offset: 0, limit: 50, hasMore: false });
    for (const c of list.requests) {
      expect(c.status).toBe("IN_QUEUE");
      expect(c.startedAt).toBeUndefined();
      expect((await call("GET", `/v2/${e.ep}/status/${c.id}`, { key: e.client })).status).toBe(404);
    }
  });

  it("accepts the object form with a name and webhook, an empty array, an empty body, and the webhook as a query parameter", async () => {
    const e = await batchEndpoint();
    const a = await createBatch(e, { name: "nightly", requests: [{ input: 1 }], webhook: "https://example.com/hook" });
    expect((await summary(e, a)).requestTotal).toBe(1);
    expect((await summary(e, await createBatch(e, []))).requestTotal).toBe(0);
    const empty = await post(e, "", undefined, "");
    expect(empty.status).toBe(200);
    expect((await summary(e, await createBatch(e, [], "?webhook=https%3A%2F%2Fexample.com%2Fq"))).status).toBe("DRAFT");
    const differ = await post(e, "?webhook=https%3A%2F%2Fexample.com%2Fa", { webhook: "https://example.com/b" });
    expect(differ.status).toBe(400);
    expect((await post(e, "?webhook=ftp%3A%2F%2Fx", [])).status).toBe(400);
    expect((await post(e, "", { requests: [], webhook: "http://127.0.0.1:1/x" })).status).toBe(200); // local dev allows private URLs
  });

  it("appends to a DRAFT only; finalize is idempotent; PUT renames; a DRAFT's request can be removed by its id", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, [{ input: 0 }]);
    const app = await post(e, `/${id}/requests`, { requests: [{ input: 1 }, { input: 2 }] });
    expect(app.status).toBe(200);
    expect((await json<{ requestTotal: number }>(app)).requestTotal).toBe(3);
    const rows = (await children(e, id)).requests;
    const del = await call("DELETE", `/v2/${e.ep}/batch/${id}/requests/${rows[1]!.id}`, { key: e.client });
    expect(del.status).toBe(200);
    expect((await json<{ requestTotal: number }>(del)).requestTotal).toBe(2);
    expect((await call("DELETE", `/v2/${e.ep}/batch/${id}/requests/${rows[1]!.id}`, { key: e.client })).status).toBe(404);
    expect((await call("DELETE", `/v2/${e.ep}/batch/${id}/requests/__proto__`, { key: e.client })).status).toBe(404);
    const put = await call("PUT", `/v2/${e.ep}/batch/${id}`, { key: e.client, body: { name: "renamed" } });
    expect(put.status).toBe(200);
    expect(await json(put)).toMatchObject({ id, name: "renamed", status: "DRAFT" });
    expect((await call("PUT", `/v2/${e.ep}/batch/${id}`, { key: e.client, body: {} })).status).toBe(400);
    expect((await call("PUT", `/v2/${e.ep}/batch/${id}`, { key: e.client, body: { name: "x".repeat(BATCH.nameChars + 1) } })).status).toBe(400);
    const fin = await action(e, id, "finalize");
    expect(fin.status).toBe(200);
    expect((await json<{ status: string }>(fin)).status).toBe("FINALIZED");
    expect((await action(e, id, "finalize")).status).toBe(200);
    const late = await post(e, `/${id}/requests`, { requests: [{ input: 3 }] });
    expect(late.status).toBe(400);
    expect(await json(late)).toMatchObject({ status: "FINALIZED" });
    expect((await call("DELETE", `/v2/${e.ep}/batch/${id}/requests/${rows[0]!.id}`, { key: e.client })).status).toBe(400);
    await allCreated(e, id, 2);
    expect((await summary(e, id)).requestTotal).toBe(2);
  });

  it("an empty batch finalizes (and has finished); a DRAFT cancels at once, its requests never become jobs", async () => {
    const e = await batchEndpoint();
    const empty = await createBatch(e, []);
    expect((await json<{ status: string }>(await action(e, empty, "finalize"))).status).toBe("FINALIZED");
    const id = await createBatch(e, [{ input: 1 }, { input: 2 }]);
    const c = await action(e, id, "cancel");
    expect(c.status).toBe(200);
    expect(await json(c)).toMatchObject({ status: "CANCELLED", requestTotal: 2, requestCompleted: 0, requestFailed: 0 });
    expect((await children(e, id)).requests.map((r) => r.status)).toEqual(["CANCELLED", "CANCELLED"]);
    expect((await action(e, id, "cancel")).status).toBe(200);
    expect((await action(e, id, "finalize")).status).toBe(400);
  });
});

describe("batch lists", () => {
  it("lists an endpoint's batches newest first with offset, limit, total and hasMore", async () => {
    const e = await batchEndpoint();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await createBatch(e, []));
      await new Promise((r) => setTimeout(r, 3));
    }
    const page = async (q: string) => json<{ batches: Array<{ id: string }>; total: number; offset: number; limit: number; hasMore: boolean }>(await call("GET", `/v2/${e.ep}/batch${q}`, { key: e.client }));
    const first = await page("?limit=3");
    expect(first).toMatchObject({ total: 4, offset: 0, limit: 3, hasMore: true });
    expect(first.batches.map((b) => b.id)).toEqual([ids[3], ids[2], ids[1]]);
    const second = await page("?offset=3&limit=3");
    expect(second).toMatchObject({ total: 4, offset: 3, hasMore: false });
    expect(second.batches.map((b) => b.id)).toEqual([ids[0]]);
    expect((await call("GET", `/v2/${e.ep}/batch?limit=0`, { key: e.client })).status).toBe(400);
    expect((await call("GET", `/v2/${e.ep}/batch?limit=${BATCH.listPage.max + 1}`, { key: e.client })).status).toBe(400);
  });

  it("pages children in the documented order with the applied limit", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, Array.from({ length: 7 }, (_, i) => ({ input: { i } })));
    const a = await children(e, id, "?limit=3");
    const b = await children(e, id, "?offset=3&limit=3");
    const c = await children(e, id, "?offset=6&limit=3");
    expect([a.hasMore, b.hasMore, c.hasMore]).toEqual([true, true, false]);
    expect(new Set([...a.requests, ...b.requests, ...c.requests].map((r) => r.id)).size).toBe(7);
    expect((await call("GET", `/v2/${e.ep}/batch/${id}/requests?offset=-1`, { key: e.client })).status).toBe(400);
    expect((await call("GET", `/v2/${e.ep}/batch/${id}/requests?limit=${BATCH.page.max + 1}`, { key: e.client })).status).toBe(400);
  });
});

describe("batch refusals", () => {
  it("refuses bad bodies with a 400 naming the request", async () => {
    const e = await batchEndpoint();
    const cases: Array<[unknown, RegExp]> = [
      ["text", /invalid body/],
      [5, /invalid body/],
      [[{ text: "no input" }], /requests\[0\].*input is required/],
      [[{ input: null }], /input is required/],
      [[{ input: 1 }, 7], /requests\[1\] must be a JSON object/],
      [[{ input: 1, idempotencyKey: "k" }], /idempotencyKey is not accepted/],
      [[{ input: 1, webhook: "ftp://x" }], /requests\[0\]/],
      [[{ input: 1, policy: { ttl: 1 } }], /requests\.0\.policy\.ttl/],
      [{ requests: [], extra: 1 }, /invalid body/],
      [{ requests: "no" }, /invalid body/],
    ];
    for (const [body, message] of cases) {
      const res = await post(e, "", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json<{ error: string }>(res)).error).toMatch(message);
    }
    expect((await post(e, "", undefined, "[{")).status).toBe(400);
    const id = await createBatch(e, []);
    expect((await post(e, `/${id}/requests`, [{ input: 1 }])).status).toBe(400);
    expect((await post(e, `/${id}/requests`, { requests: [{}] })).status).toBe(400);
    expect((await summary(e, id)).requestTotal).toBe(0);
  });

  it("refuses a body over 10 MiB with a 400 and takes one of exactly 10 MiB", async () => {
    const e = await batchEndpoint();
    const id = await createBatch(e, []);
    const envelope = '{"requests":[{"input":""}]}';
    const exact = `{"requests":[{"input":"${"a".repeat(BATCH.bodyBytes - envelope.length)}"}]}`;
    expect(exact.length).toBe(BATCH.bodyBytes);
    expect((await post(e, `/${id}/requests`, undefined, exact)).status).toBe(200);
    const over = `{"requests":[{"input":"${"a".repeat(BATCH.bodyBytes - envelope.length + 1)}"}]}`;
    const res = await post(e, `/${id}/requests`, undefined, over);
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toMatch(/larger than 10485760 bytes/);
    expect((await post(e, "", undefined, `[{"input":"${"a".repeat(BATCH.bodyBytes)}"}]`)).status).toBe(400);
    expect((await summary(e, id)).requestTotal).toBe(1);
  });

  it("keeps prototype names as plain keys: __proto__ and constructor in input reach the job as sent", async () => {
    const e = await batchEndpoint();
    const raw = '[{"input":{"__proto__":{"polluted":true},"constructor":{"prototype":1}},"__proto__":{"input":2}}]';
    const res = await post(e, "", undefined, raw);
    expect(res.status).toBe(200);
    const id = (await json<{ id: string }>(res)).id;
    await action(e, id, "finalize");
    const [child] = await allCreated(e, id, 1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const take = await call("GET", `/v2/${e.ep}/job-take/w1?job_in_progress=0`, { key: e.worker });
    const job = JSON.parse(await take.text()) as { id: string; input: unknown; batchId: string };
    expect(job.id).toBe(child);
    expect(job.batchId).toBe(id);
    expect(JSON.stringify(job.input)).toBe('{"__proto__":{"polluted":true},"constructor":{"prototype":1}}');
  });

  it("answers 404 for unknown, malformed and other endpoints' batch ids, 401 without a key", async () => {
    const e = await batchEndpoint();
    const other = await batchEndpoint();
    const id = await createBatch(e, [{ input: 1 }]);
    const unknown = `batch_${"ab".repeat(32)}`;
    for (const bad of [unknown, "batch_x", "constructor", "__proto__", "batch_01j9abc123", id.toUpperCase()]) {
      expect((await call("GET", `/v2/${e.ep}/batch/${bad}`, { key: e.client })).status, bad).toBe(404);
      expect((await post(e, `/${bad}/finalize`)).status, bad).toBe(404);
    }
    expect((await call("GET", `/v2/${other.ep}/batch/${id}`, { key: other.client })).status).toBe(404);
    expect((await call("GET", `/v2/${other.ep}/batch/${id}/requests`, { key: other.client })).status).toBe(404);
    expect((await call("POST", `/v2/${other.ep}/batch/${id}/cancel`, { key: other.client })).status).toBe(404);
    expect((await call("GET", `/v2/${e.ep}/batch/${id}`, { key: other.client })).status).toBe(401);
    expect((await call("GET", `/v2/${e.ep}/batch/${id}`, { key: null })).status).toBe(401);
    expect((await call("GET", `/v2/${uniqueEndpointId()}/batch`, { key: e.client })).status).toBe(404);
    expect((await summary(e, id)).status).toBe("DRAFT");
  });
});

describe("batch limits", () => {
  it(`allows ${BATCH.activePerEndpoint} active batches per endpoint (429 past it); a cancelled or finished one frees its place`, async () => {
    const e = await batchEndpoint();
    const ids: string[] = [];
    for (let i = 0; i < BATCH.activePerEndpoint; i++) ids.push(await createBatch(e, []));
    const refused = await post(e, "", []);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    await action(e, ids[0]!, "cancel");
    await createBatch(e, []); // the cancelled one's place, after it confirms it is no longer active
    expect((await post(e, "", [])).status).toBe(429);
    await action(e, ids[1]!, "finalize"); // empty: finished at once
    await createBatch(e, []);
    const other = await batchEndpoint();
    await createBatch(other, []); // per endpoint
  });

  it(`holds at most ${BATCH.requestsPerBatch} requests per batch (400 past it, nothing added)`, async () => {
    const e = await batchEndpoint();
    const tooMany = Array.from({ length: BATCH.requestsPerBatch + 1 }, () => ({ input: 0 }));
    const res = await post(e, "", tooMany);
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toMatch(/at most 10000 requests/);
    const id = await createBatch(e, tooMany.slice(1));
    expect((await summary(e, id)).requestTotal).toBe(BATCH.requestsPerBatch);
    expect((await post(e, `/${id}/requests`, { requests: [{ input: 1 }] })).status).toBe(400);
    expect((await summary(e, id)).requestTotal).toBe(BATCH.requestsPerBatch);
  });
});

describe("batch limits, refused creates", () => {
  it("a create refused for too many requests leaves no place taken in the endpoint's limit", async () => {
    const e = await batchEndpoint();
    const tooMany = Array.from({ length: BATCH.requestsPerBatch + 1 }, () => ({ input: 0 }));
    for (let i = 0; i < BATCH.activePerEndpoint + 2; i++) expect((await post(e, "", tooMany)).status).toBe(400);
    const list = await json<{ total: number }>(await call("GET", `/v2/${e.ep}/batch`, { key: e.client }));
    expect(list.total).toBe(0);
    for (let i = 0; i < BATCH.activePerEndpoint; i++) await createBatch(e, []);
  });
});
