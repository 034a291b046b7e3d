/**
 * End to end: the real Worker under wrangler dev, a client (this process) and a pulling worker
 * (examples/worker.mjs, another process) speaking RunPod's worker protocol over loopback.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Server, spawnNode, startServer, stopProcess } from "./harness";

let server: Server;
const workers: ChildProcess[] = [];

async function api(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function waitTerminal(ep: string, id: string, key: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await api("GET", `/v2/${ep}/status/${id}`, key);
    expect(s.status).toBe(200);
    if (["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(s.body.status as string)) return s.body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${String(s.body.status)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  server = await startServer({ TAKE_WAIT_MS: "2000" });
});

afterAll(async () => {
  await Promise.all(workers.map(stopProcess));
  await server?.stop();
});

describe("the whole lifecycle over HTTP", () => {
  it("client submits, an external worker takes and reports, the client reads the result", async () => {
    const ep = "e2e-pull";
    expect((await api("PUT", `/admin/endpoints/${ep}`, server.adminKey, { executionTimeout: 30_000 })).status).toBe(200);
    const clientKey = (await api("POST", `/admin/endpoints/${ep}/keys`, server.adminKey, { scope: "client" })).body.key as string;
    const workerKey = (await api("POST", `/admin/endpoints/${ep}/keys`, server.adminKey, { scope: "worker" })).body.key as string;

    const health = await api("GET", `/v2/${ep}/health`, clientKey);
    expect(health).toMatchObject({ status: 200, body: { jobs: { inQueue: 0 } } });

    const ok = await api("POST", `/v2/${ep}/run`, clientKey, { input: { prompt: "hello", n: 1 } });
    const bad = await api("POST", `/v2/${ep}/run`, clientKey, { input: { fail: "no GPU today" } });
    expect(ok).toMatchObject({ status: 200, body: { status: "IN_QUEUE" } });

    const log: string[] = [];
    workers.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: workerKey, WORKER_ID: "e2e-worker-1", MAX_JOBS: "3" }, log));

    const done = await waitTerminal(ep, ok.body.id as string, clientKey);
    expect(done).toMatchObject({ status: "COMPLETED", workerId: "e2e-worker-1", output: { echo: { prompt: "hello", n: 1 }, worker: "e2e-worker-1" } });
    expect(done.delayTime).toEqual(expect.any(Number));
    expect(done.executionTime).toEqual(expect.any(Number));

    const failed = await waitTerminal(ep, bad.body.id as string, clientKey);
    expect(failed).toMatchObject({ status: "FAILED", error: "no GPU today" });

    // runsync: the same worker answers within the wait.
    const sync = await api("POST", `/v2/${ep}/runsync?wait=20000`, clientKey, { input: { prompt: "sync" } });
    expect(sync).toMatchObject({ status: 200, body: { status: "COMPLETED", output: { echo: { prompt: "sync" } } } });

    const after = await api("GET", `/v2/${ep}/health`, clientKey);
    expect(after.body).toMatchObject({ jobs: { completed: 2, failed: 1, inQueue: 0, inProgress: 0 } });
    expect(log.join("")).toContain("job-done HTTP 200");
  });
});
