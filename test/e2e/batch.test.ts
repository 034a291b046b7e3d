/**
 * End to end, the Batch API: the real Worker under wrangler dev, pulling worker processes
 * (examples/worker.mjs) and a webhook receiver process (examples/webhook-receiver.mjs) verifying
 * signatures. A 1,000-request batch runs to FINALIZED with every request completed and exact
 * counts, its children are handed to workers with their batchId, and the batch webhook arrives
 * verified. With BATCH_10K=1, a 10,000-request batch is built, finalized and cancelled. Prints the
 * times measured.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually, jsonLines } from "./api";
import { freePort, spawnNode, stopProcess, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });
const procs = server.procs;
const figures: Record<string, number> = {};
const ms = (since: number) => Math.round(performance.now() - since);
const note = (name: string, since: number) => {
  figures[name] = ms(since);
  console.log(`batch figure: ${name}: ${figures[name]} ms`);
};

/** Creates a batch of `n` requests: the first `perCall` in the create, the rest appended `perCall` per call. */
async function build(ep: string, key: string, n: number, perCall: number, webhook?: string): Promise<string> {
  const req = (i: number) => ({ input: { i } });
  const first = Array.from({ length: Math.min(n, perCall) }, (_, i) => req(i));
  const created = await api(server.base, "POST", `/v2/${ep}/batch${webhook ? `?webhook=${encodeURIComponent(webhook)}` : ""}`, key, first);
  expect(created.status).toBe(200);
  const id = created.body.id as string;
  for (let at = perCall; at < n; at += perCall) {
    const requests = Array.from({ length: Math.min(perCall, n - at) }, (_, i) => req(at + i));
    const r = await api(server.base, "POST", `/v2/${ep}/batch/${id}/requests`, key, { requests });
    expect(r.status).toBe(200);
  }
  return id;
}

/** The child ids in list order (a DRAFT's: the order they were added). */
async function childIds(ep: string, key: string, id: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; ) {
    const page = await api(server.base, "GET", `/v2/${ep}/batch/${id}/requests?offset=${offset}&limit=500`, key);
    ids.push(...(page.body.requests as Array<{ id: string }>).map((r) => r.id));
    offset += page.body.limit as number;
    if (!page.body.hasMore) return ids;
  }
}

describe("batches over HTTP", () => {
  it("a 1,000-request batch runs to FINALIZED with every request completed, exact counts and a verified batch webhook", async () => {
    const ep = "e2e-batch";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const secret = (await api(server.base, "GET", `/admin/endpoints/${ep}`, server.adminKey)).body.webhookSecret as string;
    const port = await freePort();
    const log: string[] = [];
    procs.push(spawnNode("examples/webhook-receiver.mjs", { PORT: String(port), WEBHOOK_SECRET: secret }, log));
    await eventually("the receiver to listen", 10_000, async () => (log.join("").includes('"listening"') ? true : undefined));

    let t = performance.now();
    const id = await build(ep, keys.client, 1000, 1000, `http://127.0.0.1:${port}/batch`);
    note("create 1,000 (one call)", t);
    const ids = await childIds(ep, keys.client, id);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);

    t = performance.now();
    const fin = await api(server.base, "POST", `/v2/${ep}/batch/${id}/finalize`, keys.client);
    note("finalize 1,000", t);
    expect(fin.body).toMatchObject({ status: "FINALIZED", requestTotal: 1000 });
    await eventually("the last child to be a job", 120_000, async () => ((await api(server.base, "GET", `/v2/${ep}/status/${ids.at(-1)}`, keys.client)).status === 200 ? true : undefined));
    note("finalize → all 1,000 are jobs", t);

    // A child as a worker gets it: its batchId at the top level.
    const taken = await fetch(`${server.base}/v2/${ep}/job-take/probe?job_in_progress=0`, { headers: { authorization: keys.worker } });
    expect(taken.status).toBe(200);
    const job = (await taken.json()) as { id: string; batchId: string; input: { i: number } };
    expect(job.batchId).toBe(id);
    expect(ids).toContain(job.id);
    const doneRes = await fetch(`${server.base}/v2/${ep}/job-done/probe/${job.id}?isStream=false`, { method: "POST", headers: { authorization: keys.worker }, body: JSON.stringify({ output: { echo: job.input, worker: "probe" } }) });
    expect(doneRes.status).toBe(200);

    t = performance.now();
    for (const w of ["batch-w1", "batch-w2"]) procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: w }));
    const finished = await eventually("every request to complete", 300_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/batch/${id}`, keys.client);
      return s.body.requestCompleted === 1000 ? s.body : undefined;
    });
    note("run 999 through 2 worker processes", t);
    expect(finished).toEqual({ id, endpointId: ep, status: "FINALIZED", requestTotal: 1000, requestInProgress: 0, requestCompleted: 1000, requestFailed: 0, createdAt: expect.any(Number) });

    const hook = await eventually("the batch webhook", 60_000, async () => jsonLines(log).find((e) => e.event === "received" && e.jobId === id));
    expect(hook.status).toBe("FINALIZED");
    expect(jsonLines(log).some((e) => e.event === "rejected")).toBe(false);
    expect(jsonLines(log).filter((e) => e.jobId === id && e.event === "received")).toHaveLength(1);

    const page = await api(server.base, "GET", `/v2/${ep}/batch/${id}/requests?limit=500`, keys.client);
    expect(page.body).toMatchObject({ total: 1000, offset: 0, limit: 500, hasMore: true });
    const requests = page.body.requests as Array<{ id: string; status: string; output: { echo: { i: number } }; startedAt: string; completedAt: string }>;
    expect(requests.every((r) => r.status === "COMPLETED" && typeof r.output.echo.i === "number" && r.startedAt <= r.completedAt)).toBe(true);
    const list = await api(server.base, "GET", `/v2/${ep}/batch`, keys.client);
    expect((list.body.batches as Array<{ id: string }>)[0]!.id).toBe(id);
    for (const p of procs.splice(0)) await stopProcess(p);
  }, 900_000);

  // A measurement (about 8 minutes under `npm start` on 2 cores): BATCH_10K=1 runs it.
  it.skipIf(!process.env.BATCH_10K)("a 10,000-request batch: built by appends, finalized at once, every request a job, then cancelled and drained", async () => {
    const ep = "e2e-batch-10k";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    let t = performance.now();
    const id = await build(ep, keys.client, 10_000, 1000);
    note("create + append 10,000 (10 calls of 1,000)", t);
    const ids = await childIds(ep, keys.client, id);
    expect(ids).toHaveLength(10_000);
    t = performance.now();
    const fin = await api(server.base, "POST", `/v2/${ep}/batch/${id}/finalize`, keys.client);
    note("finalize 10,000", t);
    expect(fin.body).toMatchObject({ status: "FINALIZED", requestTotal: 10_000 });
    await eventually("the last child to be a job", 600_000, async () => ((await api(server.base, "GET", `/v2/${ep}/status/${ids.at(-1)}`, keys.client)).status === 200 ? true : undefined));
    note("finalize → all 10,000 are jobs", t);
    const s = await api(server.base, "GET", `/v2/${ep}/batch/${id}`, keys.client);
    expect(s.body).toMatchObject({ requestTotal: 10_000, requestInProgress: 0, requestCompleted: 0, requestFailed: 0 });

    t = performance.now();
    const c = await api(server.base, "POST", `/v2/${ep}/batch/${id}/cancel`, keys.client);
    note("cancel call (10,000 waiting)", t);
    expect(c.status).toBe(200);
    await eventually("the batch to be CANCELLED", 600_000, async () => ((await api(server.base, "GET", `/v2/${ep}/batch/${id}`, keys.client)).body.status === "CANCELLED" ? true : undefined));
    note("cancel → CANCELLED (10,000 jobs cancelled)", t);
    const first = await api(server.base, "GET", `/v2/${ep}/status/${ids[0]}`, keys.client);
    expect(first.body.status).toBe("CANCELLED");
    console.log(`batch figures (ms): ${JSON.stringify(figures, null, 1)}`);
  }, 1_800_000);
});
