/**
 * End to end (issue 14, item 3): GET /v2/{ep}/requests pages through 5,000 jobs with a filter
 * while workers change their states, with no repeats or gaps; then the admin's bulk cancel ends
 * the rest a page at a time. The real Worker under wrangler dev, a client and workers in this process.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys } from "./api";
import { useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "300" });

const JOBS = 5000;
const PAGE = 500;
const ALL_STATES = "SEQUENCED,IN_QUEUE,IN_PROGRESS,CANCELLING,COMPLETED,FAILED,CANCELLED,TIMED_OUT";

interface Summary {
  id: string;
  status: string;
  createdAt: string;
}

/**
 * Retries a call the connection dropped: wrangler dev restarts the Worker when a source file
 * changes (other work in the same tree), ending requests in flight. Every call retried here is
 * safe to repeat (GETs, cancels, submits under an idempotency key).
 */
async function retrying<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (i >= 8 || !(e instanceof TypeError)) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** One call, its body read in full (a dropped connection is retried, also mid-body); a 503 while wrangler dev reloads is retried too. */
async function raw(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  for (let tries = 0; ; tries++) {
    const r = await retrying(async () => {
      const res = await fetch(`${server.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    });
    if (r.status !== 503 || tries >= 8) return r;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

describe("GET /v2/{ep}/requests end to end", () => {
  it("lists 5,000 jobs with a filter while workers change their states: no repeats, no gaps", async () => {
    const ep = "e2e-requests";
    const { client, worker } = await retrying(() => endpointWithKeys(server.base, server.adminKey, ep, { maxAttempts: 1 }));
    // /run allows 1,000 per 10 s per key: submit with several client keys.
    const submitKeys = [client];
    for (let i = 0; i < 5; i++) submitKeys.push((await retrying(() => api(server.base, "POST", `/admin/endpoints/${ep}/keys`, server.adminKey, { scope: "client" }))).body.key as string);
    const before = Date.now() - 1;
    const ids: string[] = [];
    const t0 = Date.now();
    for (let i = 0; i < JOBS; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, JOBS - i) }, async (_, k) => {
          // The idempotency key makes a repeat after a dropped connection safe: the same job.
          const res = await raw("POST", `/v2/${ep}/run`, submitKeys[(i + k) % submitKeys.length]!, { input: { n: i + k } }, { "idempotency-key": `job-${i + k}` });
          expect(res.status, res.text.slice(0, 300)).toBe(200);
          return (JSON.parse(res.text) as { id: string }).id;
        }),
      );
      ids.push(...batch);
    }
    const after = Date.now() + 1;
    console.log(`submitted ${JOBS} jobs in ${Date.now() - t0} ms`);

    // Workers: take, then complete (2 in 3) or fail, until stopped.
    let stop = false;
    let changed = 0;
    let cancels = 0;
    const workerLoop = async (w: string) => {
      while (!stop) {
        await workerStep(w).catch(() => undefined);
      }
    };
    const workerStep = async (w: string) => {
      const t = await raw("GET", `/v2/${ep}/job-take/${w}?job_in_progress=0`, worker);
      if (t.status !== 200) return;
      const job = JSON.parse(t.text) as { id: string; input: { n: number } };
      const body = job.input.n % 3 === 2 ? { error: "odd one out" } : { output: { n: job.input.n } };
      const d = await raw("POST", `/v2/${ep}/job-done/${w}/${job.id}?isStream=false`, worker, body);
      if (d.status === 200) changed++;
    };
    const loops = ["wa", "wb", "wc", "wd"].map(workerLoop);

    // Two listings, each with its own client key (10 calls per 10 s per key): a time range, and
    // a status filter naming every state (one walk per state on every shard, merged).
    const listAll = async (filter: string, key: string) => {
      const seen: Summary[] = [];
      const pageMs: number[] = [];
      let cursor: string | null = null;
      let calls = 0;
      let limited = 0;
      let unavailable = 0;
      const started = Date.now();
      for (;;) {
        const q: string = `${filter}&limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
        const t = Date.now();
        const r = await retrying(() => api(server.base, "GET", `/v2/${ep}/requests?${q}`, key));
        calls++;
        if (r.status === 429) {
          limited++;
          await new Promise((res) => setTimeout(res, 1000 * Number((r.body as { retryAfterSeconds?: number }).retryAfterSeconds ?? 10)));
          continue;
        }
        if (r.status === 503) {
          // wrangler dev reloading (or a shard that did not answer): the same cursor again.
          unavailable++;
          await new Promise((res) => setTimeout(res, 1000));
          continue;
        }
        expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
        pageMs.push(Date.now() - t);
        const body = r.body as { requests: Summary[]; hasMore: boolean; cursor: string | null; limit: number };
        expect(body.limit).toBe(PAGE);
        seen.push(...body.requests);
        if (!body.hasMore) break;
        cursor = body.cursor;
        expect(calls).toBeLessThan(40);
        // Between pages, cancels here too (admin key: no rate limit), of jobs listed and not yet listed.
        await Promise.all(
          Array.from({ length: 25 }, async () => {
            const id = ids[Math.floor(Math.random() * ids.length)]!;
            const c = await raw("POST", `/v2/${ep}/cancel/${id}`, server.adminKey);
            if (c.status === 200) cancels++;
          }),
        );
      }
      return { seen, pageMs, calls, limited, unavailable, seconds: (Date.now() - started) / 1000 };
    };
    const listKey2 = (await retrying(() => api(server.base, "POST", `/admin/endpoints/${ep}/keys`, server.adminKey, { scope: "client" }))).body.key as string;
    const byTime = await listAll(`createdSince=${before}&createdUntil=${new Date(after).toISOString()}`, client);
    const byState = await listAll(`status=${ALL_STATES}`, listKey2);
    stop = true;
    await Promise.all(loops);

    for (const [name, l] of [["time range", byTime], ["every state", byState]] as const) {
      const sorted = [...l.pageMs].sort((a, b) => a - b);
      console.log(
        `${name}: ${l.seen.length} jobs in ${l.pageMs.length} pages of ${PAGE} (${l.calls} calls, ${l.limited} answered 429, ${l.unavailable} 503, ${l.seconds.toFixed(1)} s); ` +
          `ms a page: median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)}`,
      );
      const listed = l.seen.map((s) => s.id);
      expect(new Set(listed).size, `${name}: repeats`).toBe(listed.length);
      expect(listed.length, `${name}: count`).toBe(JOBS);
      expect(new Set(listed), `${name}: the jobs`).toEqual(new Set(ids));
      for (let i = 1; i < l.seen.length; i++) {
        const a = l.seen[i - 1]!;
        const b = l.seen[i]!;
        expect(Date.parse(a.createdAt) > Date.parse(b.createdAt) || (a.createdAt === b.createdAt && a.id > b.id), `${name}: order at ${i}`).toBe(true);
      }
    }
    console.log(`workers finished ${changed} jobs and ${cancels} cancels were made while the listings ran`);
    expect(cancels).toBeGreaterThan(100);
    expect(changed).toBeGreaterThan(0);
    // The listings saw the states change: the first pages (newest) and the last disagree somewhere.
    const statesSeen = new Set([...byTime.seen, ...byState.seen].map((s) => s.status));
    expect(statesSeen.has("IN_QUEUE")).toBe(true);
    expect([...statesSeen].some((s) => s !== "IN_QUEUE")).toBe(true);

    // The admin cancels what is left, 500 a call, going on by cursor; finished jobs are skipped.
    let cursor: string | null = null;
    let cancelled = 0;
    let skipped = 0;
    let calls = 0;
    const bulkStart = Date.now();
    for (let tries = 0; tries < 60; tries++) {
      const r = await retrying(() => api(server.base, "POST", `/admin/endpoints/${ep}/requests/cancel`, server.adminKey, { createdSince: before, limit: PAGE, ...(cursor ? { cursor } : {}) }));
      if (r.status === 503) {
        await new Promise((res) => setTimeout(res, 1000));
        continue;
      }
      expect(r.status).toBe(200);
      const body = r.body as { matched: number; cancelled: number; skippedCount: number; cursor: string | null };
      expect(body.matched).toBeLessThanOrEqual(PAGE);
      cancelled += body.cancelled;
      skipped += body.skippedCount;
      cursor = body.cursor;
      calls++;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    console.log(`bulk cancel: ${cancelled} cancelled, ${skipped} skipped (finished), in ${calls} calls (${((Date.now() - bulkStart) / calls).toFixed(0)} ms a call)`);
    expect(cancelled + skipped).toBe(JOBS);
    expect(skipped).toBeGreaterThanOrEqual(changed);
    expect(cancelled).toBeGreaterThan(0);
    const left = await retrying(() => api(server.base, "GET", `/v2/${ep}/requests?status=IN_QUEUE,IN_PROGRESS&limit=10`, server.adminKey));
    expect(left.body).toMatchObject({ requests: [], hasMore: false });
  }, 900_000);
});
