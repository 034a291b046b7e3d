/**
 * End to end: the real Worker under wrangler dev, a client (this process) and a pulling worker
 * (examples/worker.mjs, another process) speaking RunPod's worker protocol over loopback.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });
const workers = server.procs;

const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

describe("the whole lifecycle over HTTP", () => {
  it("client submits, an external worker takes and reports, the client reads the result", async () => {
    const ep = "e2e-pull";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { executionTimeout: 30_000 });
    const call = (method: string, path: string, body?: unknown) => api(server.base, method, path, keys.client, body);
    const terminal = (id: string) =>
      eventually(`job ${id} to end`, 30_000, async () => {
        const s = await call("GET", `/v2/${ep}/status/${id}`);
        expect(s.status).toBe(200);
        return TERMINAL.includes(s.body.status as string) ? s.body : undefined;
      });

    expect(await call("GET", `/v2/${ep}/health`)).toMatchObject({ status: 200, body: { jobs: { inQueue: 0 } } });
    const ok = await call("POST", `/v2/${ep}/run`, { input: { prompt: "hello", n: 1 } });
    const bad = await call("POST", `/v2/${ep}/run`, { input: { fail: "no GPU today" } });
    expect(ok).toMatchObject({ status: 200, body: { status: "IN_QUEUE" } });

    const log: string[] = [];
    workers.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "e2e-worker-1", MAX_JOBS: "3" }, log));

    const done = await terminal(ok.body.id as string);
    expect(done).toMatchObject({ status: "COMPLETED", workerId: "e2e-worker-1", output: { echo: { prompt: "hello", n: 1 }, worker: "e2e-worker-1" } });
    expect(done.delayTime).toEqual(expect.any(Number));
    expect(done.executionTime).toEqual(expect.any(Number));
    expect(await terminal(bad.body.id as string)).toMatchObject({ status: "FAILED", error: "no GPU today" });

    // runsync: the same worker answers within the wait.
    const sync = await call("POST", `/v2/${ep}/runsync?wait=20000`, { input: { prompt: "sync" } });
    expect(sync).toMatchObject({ status: 200, body: { status: "COMPLETED", output: { echo: { prompt: "sync" } } } });

    expect((await call("GET", `/v2/${ep}/health`)).body).toMatchObject({ jobs: { completed: 2, failed: 1, inQueue: 0, inProgress: 0 } });
    expect(log.join("")).toContain("job-done HTTP 200");
  });
});
