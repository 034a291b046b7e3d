/**
 * End to end with real worker processes (examples/worker.mjs speaks RunPod's worker protocol as
 * RunPod's Python SDK does): a worker killed mid-job has its job retried by another, and a cancel
 * reaches a running worker through job-stop.
 */
import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });
const procs = server.procs;

function worker(ep: string, key: string, id: string, log: string[]): ChildProcess {
  const child = spawnNode(
    "examples/worker.mjs",
    { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: key, WORKER_ID: id, RUNPOD_PING_INTERVAL: "1000" },
    log,
  );
  procs.push(child);
  return child;
}

describe("workers over HTTP", () => {
  it("a worker killed mid-job loses its lease and another worker finishes the job", async () => {
    const ep = "e2e-killed";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { heartbeatTimeout: 5_000 });
    const job = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { hangOn: "doomed" } });
    const id = job.body.id as string;

    const doomed = worker(ep, keys.worker, "doomed", []);
    await eventually("the doomed worker to take the job", 20_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return s.body.workerId === "doomed" ? s : undefined;
    });
    process.kill(-doomed.pid!, "SIGKILL");

    const log: string[] = [];
    worker(ep, keys.worker, "rescuer", log);
    const final = await eventually("the job to complete elsewhere", 40_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return s.body.status === "COMPLETED" ? s.body : undefined;
    });
    expect(final).toMatchObject({ status: "COMPLETED", workerId: "rescuer", attempt: 2, retries: 1, output: { worker: "rescuer" } });
    const history = await api(server.base, "GET", `/v2/${ep}/history/${id}`, keys.client);
    expect((history.body.history as Array<{ command: string }>).map((e) => e.command)).toEqual(["submit", "claim", "loseLease", "claim", "complete"]);
    const workers = await api(server.base, "GET", `/admin/endpoints/${ep}/workers`, server.adminKey);
    const doomedRow = (workers.body.workers as Array<Record<string, unknown>>).find((w) => w.workerId === "doomed");
    expect(doomedRow).toMatchObject({ recentFailures: [expect.objectContaining({ jobId: id })] });
  });

  it("a cancel reaches the running worker through job-stop; the job ends CANCELLED without waiting out the grace", async () => {
    const ep = "e2e-cancel";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { cancelGraceMs: 600_000 });
    const log: string[] = [];
    worker(ep, keys.worker, "stoppable", log);
    const job = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { sleepMs: 600_000 } });
    const id = job.body.id as string;
    await eventually("the worker to take the job", 20_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return s.body.status === "IN_PROGRESS" ? s : undefined;
    });
    const cancelled = await api(server.base, "POST", `/v2/${ep}/cancel/${id}`, keys.client);
    expect(cancelled.body).toEqual({ id, status: "CANCELLING" });
    const final = await eventually("the job to end CANCELLED", 15_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return s.body.status === "CANCELLED" ? s.body : undefined;
    });
    expect(final).toMatchObject({ status: "CANCELLED", reason: "cancelled" });
    expect(log.join("")).toContain(`job ${id}: stop requested, handler aborted`);
    // The worker is free again and takes the next job.
    const next = await api(server.base, "POST", `/v2/${ep}/runsync?wait=20000`, keys.client, { input: { n: 2 } });
    expect(next.body).toMatchObject({ status: "COMPLETED", workerId: "stoppable" });
  });

  it("issue 15, item 5: a worker that runs a program reports its exit code: 0 completes, 3 ends ERROR (read COMPLETED), never retried", async () => {
    const ep = "e2e-exit-codes";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { retryOnError: true, maxAttempts: 3 });
    worker(ep, keys.worker, "runner", []);
    const ok = await api(server.base, "POST", `/v2/${ep}/runsync?wait=20000`, keys.client, { input: { exitCode: 0 } });
    expect(ok.body).toMatchObject({ status: "COMPLETED", exitCode: 0, output: { stdout: `ran ${ok.body.id as string}` } });
    expect(ok.body.outcome).toBeUndefined();
    const bad = await api(server.base, "POST", `/v2/${ep}/runsync?wait=20000`, keys.client, { input: { exitCode: 3 } });
    expect(bad.body).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: 3, error: "exit code 3", retries: 0, output: { stdout: `ran ${bad.body.id as string}` } });
    const history = await api(server.base, "GET", `/v2/${ep}/history/${bad.body.id as string}`, keys.client);
    expect((history.body.history as Array<{ command: string; to: string }>).map((e) => `${e.command}>${e.to}`)).toEqual(["submit>IN_QUEUE", "claim>IN_PROGRESS", "error>ERROR"]);
    const health = await api(server.base, "GET", `/v2/${ep}/health`, keys.client);
    expect(health.body).toMatchObject({ jobs: { completed: 2, failed: 0, retried: 0 } });
  });
});
