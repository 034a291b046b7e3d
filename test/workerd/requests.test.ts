/**
 * Issue 14, item 3: GET /v2/{ep}/requests (paging by cursor over every shard, filters) and the
 * admin's bulk cancel and retry by the same filters.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { listJobs, planOf, walkSql, pathsOf, type ListFilter } from "../../src/endpoints/job-listing";
import { submitJob } from "../../src/flows/submit";
import { mergePages } from "../../src/flows/requests";
import { applyMigrations } from "../../src/shared/migrations";
import { ENDPOINT_MIGRATIONS } from "../../src/endpoints/schema";
import { ADMIN, call, createEndpoint, createKey, done, endpointStubOf, json, shardStubsOf, submit, takeId } from "./helpers";

interface Summary {
  id: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  delayTime?: number;
  executionTime?: number;
  workerId: string | null;
  attempt: number;
  priority: number;
  batchId: string | null;
  sequenceKey: string | null;
}
interface Page {
  requests: Summary[];
  limit: number;
  hasMore: boolean;
  cursor: string | null;
}

async function submitMany(ep: string, n: number, body: (i: number) => unknown = (i) => ({ input: { i } }), parallel = 32): Promise<string[]> {
  const ids: string[] = new Array<string>(n);
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, async (_, k) => (ids[i + k] = await submit(ep, body(i + k)))));
  }
  return ids;
}

async function page(ep: string, query: string, key: string = ADMIN): Promise<Page> {
  const res = await call("GET", `/v2/${ep}/requests${query ? `?${query}` : ""}`, { key });
  if (res.status !== 200) throw new Error(`list ${query}: ${res.status} ${await res.text()}`);
  return json<Page>(res);
}

/** Every page of a listing, with `between` run before each next page. */
async function listAll(ep: string, query: string, between: (n: number) => Promise<void> = async () => undefined): Promise<{ all: Summary[]; pages: number }> {
  const all: Summary[] = [];
  let cursor: string | null = null;
  let pages = 0;
  for (;;) {
    const q: string = [query, cursor ? `cursor=${encodeURIComponent(cursor)}` : ""].filter(Boolean).join("&");
    const p = await page(ep, q);
    pages++;
    all.push(...p.requests);
    expect(p.requests.length).toBeLessThanOrEqual(p.limit);
    if (!p.hasMore) {
      expect(p.cursor).toBeNull();
      return { all, pages };
    }
    expect(p.cursor).toBeTypeOf("string");
    cursor = p.cursor;
    if (pages > 1000) throw new Error("no end of pages");
    await between(pages);
  }
}

/** Newest first by (createdAt, id), strictly: no repeats, no disorder. */
function expectOrdered(list: Summary[]): void {
  for (let i = 1; i < list.length; i++) {
    const a = list[i - 1]!;
    const b = list[i]!;
    const ta = Date.parse(a.createdAt);
    const tb = Date.parse(b.createdAt);
    expect(ta > tb || (ta === tb && a.id > b.id), `${a.id}@${a.createdAt} before ${b.id}@${b.createdAt}`).toBe(true);
  }
}

const ids = (l: Summary[]) => l.map((s) => s.id);

async function cancel(ep: string, id: string): Promise<void> {
  const res = await call("POST", `/v2/${ep}/cancel/${id}`);
  expect([200, 409]).toContain(res.status);
}

async function takeAndFinish(ep: string, worker: string, outcome: "complete" | "fail" | "hold"): Promise<string | null> {
  const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=1`);
  if (res.status !== 200) return null;
  const id = (await json<{ id: string }>(res)).id;
  if (outcome === "complete") expect((await done(ep, worker, id, { output: { ok: true } })).status).toBe(200);
  if (outcome === "fail") expect((await done(ep, worker, id, { error: "boom" })).status).toBe(200);
  return id;
}

describe("GET /v2/{ep}/requests", () => {
  it("pages through 2,000 jobs over 9 shards while jobs change state: each once, in order", async () => {
    const ep = await createEndpoint();
    const config = (await endpointStubOf(ep).getConfig())!;
    expect(config).toMatchObject({ shards: 8, firstShard: 1 });
    const t0 = Date.now();
    const submitted = await submitMany(ep, 2000);
    console.log(`submitted 2000 jobs in ${Date.now() - t0} ms`);
    const later: string[] = [];
    let changed = 0;
    const start = Date.now();
    const { all, pages } = await listAll(ep, "limit=200", async (n) => {
      // Between pages: claims, completions, failures, cancels of listed and unlisted jobs, new jobs.
      for (let k = 0; k < 6; k++) if (await takeAndFinish(ep, `w${n}-${k}`, k % 3 === 0 ? "hold" : k % 3 === 1 ? "complete" : "fail")) changed++;
      for (let k = 0; k < 8; k++) {
        await cancel(ep, submitted[(n * 97 + k * 31) % submitted.length]!);
        changed++;
      }
      later.push(await submit(ep, { input: { late: n } }));
    });
    const ms = Date.now() - start;
    console.log(`listed ${all.length} jobs in ${pages} pages of 200 (${(ms / pages).toFixed(0)} ms a page, ${changed} state changes between pages)`);
    expect(new Set(ids(all)).size).toBe(all.length);
    expect(new Set(ids(all))).toEqual(new Set(submitted));
    expectOrdered(all);
    // Jobs submitted after the first page are newer than it: never among later pages.
    expect(ids(all).filter((id) => later.includes(id))).toEqual([]);
    expect(pages).toBe(2000 / 200);
    // States are what the index knows now-ish: some of each change made are visible.
    const states = new Set(all.map((s) => s.status));
    expect(states.has("CANCELLED")).toBe(true);
    expect(states.has("IN_QUEUE")).toBe(true);
  }, 600_000);

  it("filters exactly: status lists, time range, batchId, sequenceKey, and combinations", async () => {
    const ep = await createEndpoint();
    const config = (await endpointStubOf(ep).getConfig())!;
    const plain = await submitMany(ep, 40, (i) => ({ input: { i }, policy: { maxAttempts: 1 } }), 8);
    const seqA = await submitMany(ep, 6, (i) => ({ input: { i }, sequenceKey: "seq-a" }), 1);
    const batch: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await submitJob(env, config, { kind: "run", body: { input: { b: i } }, input: new TextEncoder().encode(`{"b":${i}}`), key: null, origin: null, batchId: i < 20 ? "batch-1" : "batch-2" });
      if (!r.ok) throw new Error("submit");
      batch.push(r.job.id);
    }
    // Some of everything: running, completed, failed, cancelled.
    for (let k = 0; k < 5; k++) await takeAndFinish(ep, `hold${k}`, "hold");
    for (let k = 0; k < 5; k++) await takeAndFinish(ep, `ok${k}`, "complete");
    for (let k = 0; k < 5; k++) await takeAndFinish(ep, `bad${k}`, "fail");
    for (const id of [...plain.slice(0, 4), batch[3]!, batch[25]!]) await cancel(ep, id);

    const everything = (await listAll(ep, "limit=7")).all;
    expect(new Set(ids(everything))).toEqual(new Set([...plain, ...seqA, ...batch]));
    expectOrdered(everything);
    const expectSame = async (query: string, keep: (s: Summary) => boolean) => {
      const got = (await listAll(ep, `${query}&limit=4`)).all;
      expectOrdered(got);
      expect(ids(got), query).toEqual(ids(everything.filter(keep)));
      return got;
    };
    const byState = (...st: string[]) => (s: Summary) => st.includes(s.status);
    for (const st of ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "SEQUENCED"]) {
      const got = await expectSame(`status=${st}`, byState(st));
      if (st !== "IN_QUEUE") expect(got.length, st).toBeGreaterThan(0);
    }
    await expectSame("status=failed,Cancelled", byState("FAILED", "CANCELLED"));
    await expectSame("status=COMPLETED&status=FAILED", byState("COMPLETED", "FAILED"));
    expect((await expectSame("batchId=batch-1", (s) => s.batchId === "batch-1")).length).toBe(20);
    await expectSame("batchId=batch-2&status=CANCELLED", (s) => s.batchId === "batch-2" && s.status === "CANCELLED");
    expect((await expectSame("sequenceKey=seq-a", (s) => s.sequenceKey === "seq-a")).length).toBe(6);
    await expectSame("sequenceKey=seq-a&status=SEQUENCED", (s) => s.sequenceKey === "seq-a" && s.status === "SEQUENCED");
    await expectSame("batchId=nope", () => false);
    // A page that holds exactly what is left says there is no more (each walk reads one row ahead).
    const failedCount = everything.filter(byState("FAILED", "CANCELLED")).length;
    expect(await page(ep, `status=FAILED,CANCELLED&limit=${failedCount}`)).toMatchObject({ hasMore: false, cursor: null });
    expect((await page(ep, `status=FAILED,CANCELLED&limit=${failedCount}`)).requests).toHaveLength(failedCount);
    expect(await page(ep, `limit=${everything.length}`)).toMatchObject({ hasMore: false, cursor: null });
    expect((await page(ep, `limit=${everything.length - 1}`)).hasMore).toBe(true);
    // A time range: [since, until) by creation time, in both spellings.
    const times = [...new Set(everything.map((s) => Date.parse(s.createdAt)))].sort((a, b) => a - b);
    const since = times[Math.floor(times.length / 4)]!;
    const until = times[Math.floor((3 * times.length) / 4)]!;
    const inRange = (s: Summary) => Date.parse(s.createdAt) >= since && Date.parse(s.createdAt) < until;
    await expectSame(`createdSince=${since}&createdUntil=${until}`, inRange);
    await expectSame(`createdSince=${new Date(since).toISOString()}&createdUntil=${new Date(until).toISOString()}`, inRange);
    await expectSame(`createdSince=${since}&status=IN_QUEUE,COMPLETED&batchId=batch-1`, (s) => Date.parse(s.createdAt) >= since && byState("IN_QUEUE", "COMPLETED")(s) && s.batchId === "batch-1");
    // The row: no input, no output; times as ISO; delay and execution once known.
    const completed = everything.find((s) => s.status === "COMPLETED")!;
    expect(Object.keys(completed).sort()).toEqual(["attempt", "batchId", "createdAt", "delayTime", "executionTime", "id", "priority", "sequenceKey", "status", "updatedAt", "workerId"]);
    expect(completed.workerId).toMatch(/^ok/);
    const queued = everything.find((s) => s.status === "IN_QUEUE")!;
    expect(queued).not.toHaveProperty("delayTime");
    expect(queued).not.toHaveProperty("output");
    // A client key may list; a worker key may not.
    const client = await createKey(ep, "client");
    expect((await page(ep, "limit=1", client)).requests).toHaveLength(1);
    expect((await call("GET", `/v2/${ep}/requests`, { key: await createKey(ep, "worker") })).status).toBe(403);
    expect((await call("GET", `/v2/${ep}/requests`, { key: null })).status).toBe(401);
  }, 300_000);

  it("refuses bad filters, limits and cursors with a 400 naming the problem", async () => {
    const ep = await createEndpoint();
    const other = await createEndpoint();
    await submitMany(ep, 5);
    await submitMany(other, 5);
    const bad = async (query: string, pattern: RegExp) => {
      const res = await call("GET", `/v2/${ep}/requests?${query}`);
      const body = await json<{ error: string }>(res);
      expect(res.status, `${query}: ${body.error}`).toBe(400);
      expect(body.error, query).toMatch(pattern);
    };
    await bad("status=DONE", /unknown states/);
    await bad("status=IN_QUEUE,,FAILED", /one or more job states/);
    await bad("status=", /one or more job states/);
    await bad("status=__proto__", /unknown states/);
    await bad("createdSince=yesterday", /createdSince must be/);
    await bad("createdUntil=2026-13-45T99:00:00Z", /createdUntil must be/);
    await bad("createdSince=-5", /createdSince must be/);
    await bad("createdSince=2000&createdUntil=1000", /before createdUntil/);
    await bad("createdSince=1000&createdUntil=1000", /before createdUntil/);
    await bad("limit=0", /limit must be/);
    await bad(`limit=501`, /limit must be/);
    await bad("limit=1e2", /limit must be/);
    await bad("limit=5&limit=6", /given 2 times/);
    await bad("offset=10", /go by `cursor`, not offset/);
    await bad("constructor=1", /unknown query parameter/);
    await bad(`batchId=${"x".repeat(256)}`, /batchId must be/);
    await bad("cursor=", /cursor is empty/);
    await bad("cursor=abc", /not a cursor of this API/);
    await bad(`cursor=${"a".repeat(2000)}.b`, /not a cursor of this API/);
    await bad("cursor=eyJ2IjoxfQ.AAAA", /not a cursor of this API/);

    const first = await page(ep, "limit=2");
    expect(first.hasMore).toBe(true);
    const cursor = first.cursor!;
    // Another endpoint's cursor, another filter, an altered cursor.
    const theirs = (await page(other, "limit=2")).cursor!;
    await bad(`cursor=${encodeURIComponent(theirs)}&limit=2`, /another endpoint/);
    await bad(`cursor=${encodeURIComponent(cursor)}&status=IN_QUEUE`, /other filters/);
    const [payload, mac] = cursor.split(".") as [string, string];
    const decoded = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const forged = btoa(JSON.stringify({ ...decoded, c: (decoded.c as number) + 1 })).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    await bad(`cursor=${forged}.${mac}`, /altered/);
    await bad(`cursor=${payload}.${mac.slice(0, -2)}${mac.endsWith("AA") ? "BB" : "AA"}`, /altered/);
    // The same cursor with the same filters (the limit may change) goes on.
    expect((await page(ep, `cursor=${encodeURIComponent(cursor)}&limit=10`)).requests).toHaveLength(3);
    // Unknown endpoint, wrong method.
    expect((await call("GET", `/v2/nope-${Date.now()}/requests`)).status).toBe(404);
    expect((await call("POST", `/v2/${ep}/requests`)).status).toBe(405);
  }, 120_000);

  it("a cursor of a deleted and re-created endpoint is refused", async () => {
    const ep = await createEndpoint();
    await submitMany(ep, 3);
    const cursor = (await page(ep, "limit=1")).cursor!;
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    await createEndpoint({}, ep);
    const res = await call("GET", `/v2/${ep}/requests?cursor=${encodeURIComponent(cursor)}&limit=1`);
    expect(res.status).toBe(400);
    expect((await json<{ error: string }>(res)).error).toMatch(/earlier incarnation/);
  });

  it("every walk is an index search, and a page reads about `limit` rows however many jobs a shard holds", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const config = (await endpointStubOf(ep).getConfig())!;
    await submitMany(ep, 30, (i) => ({ input: { i }, ...(i % 3 === 0 ? { sequenceKey: "s" } : {}) }));
    const filters: ListFilter[] = [
      { states: null, since: null, until: null, batchId: null, sequenceKey: null },
      { states: ["IN_QUEUE", "FAILED"], since: null, until: null, batchId: null, sequenceKey: null },
      { states: null, since: 1, until: 2 ** 50, batchId: null, sequenceKey: null },
      { states: ["COMPLETED"], since: 1, until: 2 ** 50, batchId: null, sequenceKey: null },
      { states: null, since: null, until: null, batchId: "b", sequenceKey: null },
      { states: ["FAILED"], since: 5, until: null, batchId: "b", sequenceKey: null },
      { states: null, since: null, until: null, batchId: null, sequenceKey: "s" },
      { states: ["SEQUENCED"], since: null, until: 9, batchId: "b", sequenceKey: "s" },
    ];
    // One shard: the endpoint object indexes the jobs (shard 0; the ShardObjects run the same code and schema).
    expect(shardStubsOf(config)).toEqual([]);
    await runInDurableObject(endpointStubOf(ep), (_i: EndpointObject, state) => {
      const sql = state.storage.sql;
      const seen = new Set<string>();
      for (const f of filters) {
        for (const after of [null, { createdAt: Date.now(), jobId: "z" }]) {
          const plan = planOf(sql, f, after);
          for (const line of plan) seen.add(line);
          expect(plan.length, JSON.stringify(f)).toBeGreaterThan(0);
          for (const line of plan) {
            // A search of a listing index; only a walk with no term at all (no filter, no position)
            // is an ordered scan of job_index_listing, which stops at the LIMIT. Never a sort.
            const open = f.states === null && f.batchId === null && f.sequenceKey === null && f.since === null && f.until === null && after === null;
            expect(line, JSON.stringify(f)).toMatch(open ? /^SCAN job_index USING INDEX job_index_listing$/ : /^SEARCH job_index USING INDEX job_index_listing/);
            expect(line).not.toMatch(/TEMP B-TREE/);
          }
          // A position is a range of the index, not a filter on its rows.
          if (after) for (const line of plan) expect(line).toMatch(/\(created_at,job_id\)<\(\?,\?\)/);
        }
      }
      console.log(`listing plans:\n${[...seen].join("\n")}`);
      // 5,000 more rows: a page of 50 after a position deep in the middle still reads ~50 rows.
      const now = Date.now();
      for (let i = 0; i < 5000; i++) {
        sql.exec(
          `INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, updated_at, batch_id)
           VALUES (?, 1, ?, 0, 0, ?, ?, ?)`,
          `fake-${String(i).padStart(5, "0")}`, i % 2 ? "COMPLETED" : "IN_QUEUE", now - i, now, i % 10 === 0 ? "b" : null,
        );
      }
      const after = { createdAt: now - 2500, jobId: "fake-02500" };
      for (const f of filters.slice(0, 5)) {
        for (const path of pathsOf(f)) {
          const { sql: text, args } = walkSql(path, { filter: f, after });
          const cursor = sql.exec(text, ...args, 50);
          cursor.toArray();
          expect(cursor.rowsRead, `${JSON.stringify(f)} ${text}`).toBeLessThanOrEqual(51);
        }
      }
      // A filter its index does not cover walks at most scanRows rows and says how far it got.
      const sparse = listJobs(sql, { filter: { states: ["FAILED"], since: null, until: null, batchId: "b", sequenceKey: null }, after: null, limit: 10 }, 100);
      expect(sparse.jobs).toEqual([]);
      expect(sparse.reached).not.toBeNull();
      const dense = listJobs(sql, { filter: { states: ["IN_QUEUE"], since: null, until: null, batchId: "b", sequenceKey: null }, after: null, limit: 10 }, 100);
      expect(dense.jobs).toHaveLength(10);
      // Rows of a batch are b every 10th (all IN_QUEUE: even i); the page ends at the 10th.
      expect(dense.reached).toEqual({ createdAt: dense.jobs[9]!.createdAt, jobId: dense.jobs[9]!.jobId });
      sql.exec("DELETE FROM job_index WHERE job_id LIKE 'fake-%'");
    });
  });

  it("merges shards' pages up to the least advanced shard (short pages, exhausted shards)", () => {
    const j = (t: number, id: string) => ({ jobId: id, state: "IN_QUEUE" as const, createdAt: t, updatedAt: t, priority: 0, workerId: null, attempt: 0, batchId: null, sequenceKey: null, delayMs: null, executionMs: null });
    // Shard A walked down to t=50 without filling; B returned rows down to 10; C is done.
    const m = mergePages(
      [
        { jobs: [j(90, "a")], reached: { createdAt: 50, jobId: "x" } },
        { jobs: [j(80, "b1"), j(40, "b2"), j(10, "b3")], reached: null },
        { jobs: [j(95, "c")], reached: null },
      ],
      10,
    );
    expect(m.jobs.map((x) => x.jobId)).toEqual(["c", "a", "b1"]);
    expect(m).toMatchObject({ next: { createdAt: 50, jobId: "x" }, hasMore: true });
    // Every shard done: all rows, no more.
    expect(mergePages([{ jobs: [j(5, "a")], reached: null }, { jobs: [j(6, "b")], reached: null }], 2)).toMatchObject({ next: null, hasMore: false });
    // Full page: the next starts after its last row; ties by id, descending.
    const full = mergePages([{ jobs: [j(5, "c"), j(5, "a")], reached: { createdAt: 5, jobId: "a" } }, { jobs: [j(5, "b")], reached: null }], 2);
    expect(full.jobs.map((x) => x.jobId)).toEqual(["c", "b"]);
    expect(full).toMatchObject({ next: { createdAt: 5, jobId: "b" }, hasMore: true });
  });
});

describe("admin bulk cancel and retry", () => {
  const bulk = async (ep: string, action: "cancel" | "retry", body: Record<string, unknown>) => {
    const res = await call("POST", `/admin/endpoints/${ep}/requests/${action}`, { body });
    if (res.status !== 200) throw new Error(`${action}: ${res.status} ${await res.text()}`);
    return json<{ matched: number; cancelled?: number; retried?: number; skipped: Array<{ id: string; reason: string }>; skippedCount: number; cursor: string | null; hasMore: boolean }>(res);
  };

  it("cancels everything matching a page at a time, skipping finished jobs; retries failed ones", async () => {
    const ep = await createEndpoint();
    const jobs = await submitMany(ep, 120, (i) => ({ input: { i }, policy: { maxAttempts: 1 } }));
    const finished: string[] = [];
    for (let k = 0; k < 10; k++) finished.push((await takeAndFinish(ep, `ok${k}`, "complete"))!);
    const failed: string[] = [];
    for (let k = 0; k < 10; k++) failed.push((await takeAndFinish(ep, `bad${k}`, "fail"))!);
    const running: string[] = [];
    for (let k = 0; k < 5; k++) running.push((await takeAndFinish(ep, `run${k}`, "hold"))!);

    let cursor: string | null = null;
    let calls = 0;
    let cancelled = 0;
    const skipped: Array<{ id: string; reason: string }> = [];
    let matched = 0;
    do {
      const r = await bulk(ep, "cancel", { limit: 25, ...(cursor ? { cursor } : {}) });
      calls++;
      expect(r.matched).toBeLessThanOrEqual(25);
      expect(r.skipped.length).toBe(r.skippedCount);
      matched += r.matched;
      cancelled += r.cancelled!;
      skipped.push(...r.skipped);
      cursor = r.cursor;
      if (!r.hasMore) expect(r.cursor).toBeNull();
    } while (cursor !== null && calls < 50);
    expect(calls).toBe(Math.ceil(120 / 25));
    expect(matched).toBe(120);
    expect(cancelled).toBe(100);
    expect(new Set(skipped.map((s) => s.id))).toEqual(new Set([...finished, ...failed]));
    for (const s of skipped) expect(s.reason).toMatch(/^already finished \((COMPLETED|FAILED)\)$/);
    // Nothing left waiting or running (running ones: CANCELLING until their workers stop).
    const left = (await listAll(ep, "status=IN_QUEUE,IN_PROGRESS,SEQUENCED&limit=500")).all;
    expect(left).toEqual([]);
    const cancelling = (await listAll(ep, "status=CANCELLING&limit=500")).all;
    expect(new Set(ids(cancelling))).toEqual(new Set(running));
    // Again: everything is skipped now, never an error.
    const again = await bulk(ep, "cancel", { limit: 500 });
    expect(again).toMatchObject({ matched: 120, cancelled: 0, skippedCount: 120, hasMore: false, cursor: null });
    expect(again.skipped).toHaveLength(100);

    // Retry by status, 3 a call: the failed ones go back to the queue; others skipped.
    let retried = 0;
    cursor = null;
    calls = 0;
    do {
      const r = await bulk(ep, "retry", { status: ["FAILED", "COMPLETED"], limit: 3, ...(cursor ? { cursor } : {}) });
      calls++;
      retried += r.retried!;
      for (const s of r.skipped) {
        expect(finished).toContain(s.id);
        expect(s.reason).toMatch(/not retryable: COMPLETED/);
      }
      cursor = r.cursor;
    } while (cursor !== null && calls < 50);
    expect(retried).toBe(10);
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(20 / 3));
    const requeued = (await listAll(ep, "status=IN_QUEUE&limit=100")).all;
    expect(new Set(ids(requeued))).toEqual(new Set(failed));
    for (const s of requeued) expect(s.attempt).toBeGreaterThanOrEqual(1);
    expect(jobs).toHaveLength(120);
  }, 300_000);

  it("bulk cancel by batch and sequence key touches only those; bad bodies are 400s", async () => {
    const ep = await createEndpoint();
    const config = (await endpointStubOf(ep).getConfig())!;
    const plain = await submitMany(ep, 10);
    const inBatch: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await submitJob(env, config, { kind: "run", body: { input: i }, input: new TextEncoder().encode(String(i)), key: null, origin: null, batchId: "bb" });
      if (r.ok) inBatch.push(r.job.id);
    }
    const seq = await submitMany(ep, 4, (i) => ({ input: i, sequenceKey: "q" }), 1);
    const r = await bulk(ep, "cancel", { batchId: "bb", limit: 500 });
    expect(r).toMatchObject({ matched: 12, cancelled: 12, skippedCount: 0, hasMore: false });
    const s = await bulk(ep, "cancel", { sequenceKey: "q", status: "SEQUENCED" });
    expect(s).toMatchObject({ matched: 3, cancelled: 3 });
    const waiting = (await listAll(ep, "status=IN_QUEUE")).all;
    expect(new Set(ids(waiting))).toEqual(new Set([...plain, seq[0]!]));

    const badBody = async (body: unknown, pattern: RegExp, status = 400) => {
      const res = await call("POST", `/admin/endpoints/${ep}/requests/cancel`, body === undefined ? {} : { raw: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json" } });
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await json<{ error: string }>(res)).error).toMatch(pattern);
    };
    await badBody(undefined, /body is empty/);
    await badBody("[]", /JSON object/);
    await badBody({ limit: 501 }, /limit/);
    await badBody({ limit: 0 }, /limit/);
    await badBody({ status: "DONE" }, /unknown states/);
    await badBody({ status: [] }, /one or more job states/);
    await badBody({ createdSince: "soon" }, /createdSince must be/);
    await badBody({ cursor: "garbage" }, /not a cursor/);
    await badBody({ bogus: 1 }, /bogus/);
    await badBody('{"__proto__": {"limit": 1}}', /__proto__/);
    await badBody("x".repeat(70 * 1024), /larger than/, 413);
    // Admin key only; an unknown endpoint is a 404.
    const client = await createKey(ep, "client");
    expect((await call("POST", `/admin/endpoints/${ep}/requests/cancel`, { key: client, body: {} })).status).toBe(401);
    expect((await call("POST", `/admin/endpoints/nope-${Date.now()}/requests/retry`, { body: {} })).status).toBe(404);
    // Nothing above changed a job.
    expect((await listAll(ep, "status=IN_QUEUE")).all).toHaveLength(waiting.length);
  }, 120_000);

  it("an endpoint index at schema 7 reaches 8 with its rows listed, sequence keys of unfinished jobs backfilled", async () => {
    const stub = env.DIRECTORY.get(env.DIRECTORY.newUniqueId());
    await runInDurableObject(stub, (_i, state) => {
      const storage = state.storage;
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 7), "_endpoint")).toBe(7);
      const row = "INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, updated_at) VALUES (?, 1, ?, 0, 0, ?, 1)";
      storage.sql.exec(row, "a", "IN_QUEUE", 10);
      storage.sql.exec(row, "b", "SEQUENCED", 20);
      storage.sql.exec(row, "c", "COMPLETED", 30);
      storage.sql.exec("INSERT INTO sequence_member (job_id, sequence_key, position, state) VALUES ('b', 'k', 1, 'SEQUENCED')");
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS, "_endpoint")).toBe(ENDPOINT_MIGRATIONS.at(-1)!.version);
      const none: ListFilter = { states: null, since: null, until: null, batchId: null, sequenceKey: null };
      expect(listJobs(storage.sql, { filter: none, after: null, limit: 10 }).jobs.map((j) => [j.jobId, j.sequenceKey])).toEqual([["c", null], ["b", "k"], ["a", null]]);
      expect(listJobs(storage.sql, { filter: { ...none, sequenceKey: "k" }, after: null, limit: 10 }).jobs.map((j) => j.jobId)).toEqual(["b"]);
      expect(listJobs(storage.sql, { filter: { ...none, states: ["IN_QUEUE", "COMPLETED"] }, after: { createdAt: 30, jobId: "c" }, limit: 10 })).toEqual({
        jobs: [expect.objectContaining({ jobId: "a" })],
        reached: null,
      });
    });
  });

  it("an index row from before migration 8 (no batch, no sequence key) still lists, and filters once the job changes", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const [id] = await submitMany(ep, 1);
    // As a row written before migration 8 would be: no batch, no sequence key, no times.
    await runInDurableObject(endpointStubOf(ep), (_i: EndpointObject, state) => {
      state.storage.sql.exec("UPDATE job_index SET batch_id = NULL, sequence_key = NULL, delay_ms = NULL WHERE job_id = ?", id!);
    });
    const got = (await page(ep, "")).requests;
    expect(got.map((s) => s.id)).toEqual([id]);
    expect(got[0]).toMatchObject({ batchId: null, sequenceKey: null, status: "IN_QUEUE" });
    expect(await takeId(ep, "w")).toBe(id);
    expect((await page(ep, "status=IN_PROGRESS")).requests.map((s) => s.id)).toEqual([id]);
  });
});
