/**
 * Issue 15, item 1, end to end (its "done when"): jobs of tasks with real worker processes
 * (examples/worker.mjs speaks RunPod's worker protocol as RunPod's Python SDK does; it sees each
 * task as an ordinary job, with parentJobId and taskName beside its input).
 * - A 3-stage DAG (1 → 20 → 1) on 4 pulling workers, one of which fails every task: it is
 *   blocklisted after 3, the tasks it failed soft-fail and complete elsewhere, the job completes.
 * - A job with 2 failed tasks: requeue runs exactly those 2 again (then the join), and completes.
 * - A task needing a tag waits (no_matching_workers) until a worker with it starts.
 * - A paused job hands out nothing until resumed.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, stopProcess, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });
const procs = server.procs;

function worker(ep: string, key: string, id: string, tags: string | null = null): ChildProcess {
  const q = tags === null ? "" : `&tags=${tags}`;
  const child = spawnNode("examples/worker.mjs", {
    EDGE_JOBS_URL: server.base,
    ENDPOINT_ID: ep,
    API_KEY: key,
    WORKER_ID: id,
    RUNPOD_PING_INTERVAL: "1000",
    RUNPOD_WEBHOOK_GET_JOB: `${server.base}/v2/${ep}/job-take/$ID?gpu=none${q}`,
    RUNPOD_WEBHOOK_PING: `${server.base}/v2/${ep}/ping/$RUNPOD_POD_ID?gpu=none${q}`,
  });
  procs.push(child);
  return child;
}

type Task = { name: string; state: string; jobId: string | null; attempts: number; workerId: string | null; failedWorkers?: string[]; output?: any; waiting_for?: string[] };

async function tasksOf(ep: string, key: string, id: string): Promise<Task[]> {
  const r = await api(server.base, "GET", `/v2/${ep}/tasks/${id}?limit=1000`, key);
  expect(r.status).toBe(200);
  return r.body.tasks as Task[];
}

async function finished(ep: string, key: string, id: string, ms = 90_000): Promise<Record<string, any>> {
  return eventually(`job of tasks ${id} to finish`, ms, async () => {
    const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, key);
    return ["COMPLETED", "FAILED", "CANCELLED"].includes(s.body.status as string) ? s.body : undefined;
  });
}

describe("jobs of tasks over HTTP, real worker processes", () => {
  it("a 3-stage DAG (fan-out 20, fan-in 1) on 4 workers, one failing every task: it is blocklisted, the rest retry, the job completes", async () => {
    const ep = "e2e-tasks-dag";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { blocklistThreshold: 3 });
    const parts = Array.from({ length: 20 }, (_, i) => ({ name: `part-${i}`, input: { i, failOn: "bad", sleepMs: 100 }, dependsOn: ["split"] }));
    const body = {
      tasks: [{ name: "split", input: { failOn: "bad", sleepMs: 50 } }, ...parts, { name: "merge", input: { failOn: "bad" }, dependsOn: parts.map((p) => p.name) }],
      policy: { maxAttempts: 4 },
    };
    const submitted = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, body);
    expect(submitted.status).toBe(200);
    const id = submitted.body.id as string;
    expect(submitted.body).toMatchObject({ status: "IN_QUEUE", tasks: { total: 22, queued: 22 } });
    for (const w of ["bad", "w1", "w2", "w3"]) worker(ep, keys.worker, w);

    const s = await finished(ep, keys.client, id);
    expect(s).toMatchObject({ status: "COMPLETED", tasks: { total: 22, completed: 22 } });
    expect(s.blocklisted).toEqual([{ workerId: "bad", failedTasks: 3 }]);
    expect(s.output.merge).toMatchObject({ task: "merge", parentJobId: id });
    expect(Object.keys(s.output)).toHaveLength(22);
    const tasks = await tasksOf(ep, keys.client, id);
    // Every task completed once, never by the failing worker; the ones it failed were retried elsewhere.
    for (const t of tasks) {
      expect(t.state).toBe("completed");
      expect(t.workerId).not.toBe("bad");
      expect(t.output.worker).toBe(t.workerId);
    }
    const retried = tasks.filter((t) => (t.failedWorkers ?? []).length > 0);
    expect(retried.length).toBeGreaterThanOrEqual(3);
    for (const t of retried) expect(new Set(t.failedWorkers)).toEqual(new Set(["bad"]));
    // Dependencies held: every part started after split completed, merge after every part.
    const started = (n: string) => Date.parse((tasks.find((t) => t.name === n) as any).startedAt);
    const completed = (n: string) => Date.parse((tasks.find((t) => t.name === n) as any).completedAt);
    for (const p of parts) expect(started(p.name)).toBeGreaterThanOrEqual(completed("split"));
    for (const p of parts) expect(started("merge")).toBeGreaterThanOrEqual(completed(p.name));
  });

  it("a job with 2 failed tasks: requeue re-runs exactly those 2, then the join; completed tasks keep their jobs", async () => {
    const ep = "e2e-tasks-requeue";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const dir = mkdtempSync(join(tmpdir(), "edge-jobs-tasks-"));
    const flag = join(dir, "fixed");
    const fan = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, input: i === 2 || i === 4 ? { failUnless: flag } : { i } }));
    const body = { tasks: [...fan, { name: "join", input: {}, dependsOn: fan.map((f) => f.name) }], policy: { maxAttempts: 1 } };
    const id = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, body)).body.id as string;
    worker(ep, keys.worker, "r1");
    worker(ep, keys.worker, "r2");
    const failed = await finished(ep, keys.client, id);
    expect(failed).toMatchObject({ status: "FAILED", tasks: { completed: 5 - 1, failed: 2, queued: 1 } });
    expect(failed.error).toContain("is missing");
    const before = await tasksOf(ep, keys.client, id);
    expect(before.find((t) => t.name === "join")).toMatchObject({ state: "queued", jobId: null, waiting_for: ["f2", "f4"] });

    writeFileSync(flag, "ok");
    const requeued = await api(server.base, "POST", `/v2/${ep}/requeue/${id}`, keys.client);
    expect(requeued.status).toBe(200);
    const done = await finished(ep, keys.client, id);
    expect(done).toMatchObject({ status: "COMPLETED", tasks: { completed: 7 } });
    const after = await tasksOf(ep, keys.client, id);
    const jobOf = (ts: Task[], n: string) => ts.find((t) => t.name === n)!.jobId;
    for (const n of ["f0", "f1", "f3", "f5"]) expect(jobOf(after, n), n).toBe(jobOf(before, n)); // not run again
    for (const n of ["f2", "f4"]) {
      expect(jobOf(after, n), n).not.toBe(jobOf(before, n)); // a fresh job each
      expect(after.find((t) => t.name === n)).toMatchObject({ state: "completed", attempts: 1 });
    }
    // The old jobs of the two stay FAILED; each ran exactly once more (attempt 1 of the fresh job).
    for (const n of ["f2", "f4"]) {
      const old = await api(server.base, "GET", `/v2/${ep}/status/${jobOf(before, n)}`, keys.client);
      expect(old.body).toMatchObject({ status: "FAILED", attempt: 1, parentJobId: id, taskName: n });
    }
  });

  it("a task needing a tag waits for a matching worker; a paused job hands out nothing until resumed", async () => {
    const ep = "e2e-tasks-tags";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const id = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { tasks: [{ name: "cpu", input: {} }, { name: "gpu", input: {}, tags: ["gpu"] }] })).body.id as string;
    worker(ep, keys.worker, "plain");
    const gpuJob = await eventually("the cpu task to complete, the gpu one to wait", 30_000, async () => {
      const ts = await tasksOf(ep, keys.client, id);
      return ts[0]!.state === "completed" && ts[1]!.jobId ? ts[1]!.jobId : undefined;
    });
    const waiting = await api(server.base, "GET", `/v2/${ep}/status/${gpuJob}`, keys.client);
    expect(waiting.body).toMatchObject({ status: "IN_QUEUE", tags: ["gpu"], taskName: "gpu", queue: { reason: "no_matching_workers" } });
    expect((await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)).body).toMatchObject({ status: "IN_PROGRESS", tasks: { completed: 1, queued: 1 } });
    worker(ep, keys.worker, "gpu-1", "gpu");
    const s = await finished(ep, keys.client, id, 30_000);
    expect(s).toMatchObject({ status: "COMPLETED", output: { cpu: { worker: "plain" }, gpu: { worker: "gpu-1" } } });

    // Paused before any worker polls its endpoint: a worker then polls, nothing is handed out; resumed: it runs.
    const ep2 = "e2e-tasks-pause";
    const keys2 = await endpointWithKeys(server.base, server.adminKey, ep2);
    const paused = (await api(server.base, "POST", `/v2/${ep2}/run`, keys2.client, { tasks: [{ name: "a", input: {} }, { name: "b", input: {}, dependsOn: ["a"] }] })).body.id as string;
    expect((await api(server.base, "POST", `/v2/${ep2}/pause/${paused}`, keys2.client)).body).toMatchObject({ paused: true });
    worker(ep2, keys2.worker, "p1");
    await new Promise((r) => setTimeout(r, 3_000)); // the worker polls meanwhile
    const still = await api(server.base, "GET", `/v2/${ep2}/status/${paused}`, keys2.client);
    expect(still.body).toMatchObject({ status: "IN_QUEUE", paused: true, tasks: { completed: 0, active: 0, paused: 1, queued: 1 } });
    await api(server.base, "POST", `/v2/${ep2}/resume/${paused}`, keys2.client);
    expect(await finished(ep2, keys2.client, paused, 30_000)).toMatchObject({ status: "COMPLETED", tasks: { completed: 2 } });
    for (const p of procs.splice(0)) await stopProcess(p);
  });

  it("replicas: 3 becomes IN_PROGRESS only when the third worker takes it; each replica on its own worker; outputs in order", async () => {
    const ep = "e2e-replicas";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const r = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { replicas: 3, input: { sleepMs: 4_000 } });
    expect(r.body).toMatchObject({ status: "IN_QUEUE", replicas: { requested: 3, started: 0 } });
    const id = r.body.id as string;
    worker(ep, keys.worker, "rep-1");
    worker(ep, keys.worker, "rep-2");
    const two = await eventually("two replicas to start", 20_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return (s.body.replicas as { started: number }).started === 2 ? s.body : undefined;
    });
    expect(two).toMatchObject({ status: "IN_QUEUE", queue: { reason: "replicas_starting" } });
    await new Promise((res) => setTimeout(res, 1_000));
    expect((await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)).body).toMatchObject({ status: "IN_QUEUE", replicas: { started: 2 } });
    worker(ep, keys.worker, "rep-3");
    await eventually("the third replica to start: IN_PROGRESS", 20_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      return s.body.status === "IN_PROGRESS" ? s.body : undefined;
    });
    const s = await finished(ep, keys.client, id, 30_000);
    expect(s).toMatchObject({ status: "COMPLETED", replicas: { requested: 3, started: 3, completed: 3 } });
    const workers = (s.output as Array<{ worker: string; task: string }>).map((o) => o.worker);
    expect(new Set(workers).size).toBe(3);
    expect((s.output as Array<{ task: string }>).map((o) => o.task)).toEqual(["replica-0", "replica-1", "replica-2"]);
  });

  it("10,000 tasks: one submit, every task listed, the first ones run as soon as their dependency completed, a cancel ends them all", async () => {
    const ep = "e2e-tasks-10k";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const parts = Array.from({ length: 9_998 }, (_, i) => ({ name: `part-${i}`, input: { i }, dependsOn: ["split"] }));
    const body = { tasks: [{ name: "split", input: {} }, ...parts, { name: "merge", input: {}, dependsOn: parts.map((p) => p.name) }] };
    const t0 = Date.now();
    const r = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, body);
    const submitMs = Date.now() - t0;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "IN_QUEUE", tasks: { total: 10_000, queued: 10_000 } });
    const id = r.body.id as string;
    // Every task is listed, a page at a time, in submit order; the merge waits on all 9,998 parts.
    const last = await api(server.base, "GET", `/v2/${ep}/tasks/${id}?offset=9999&limit=1`, keys.client);
    expect(last.body).toMatchObject({ total: 10_000, hasMore: false, tasks: [{ name: "merge", state: "queued" }] });
    expect((last.body.tasks as Array<{ waiting_for: string[] }>)[0]!.waiting_for).toHaveLength(9_998);
    worker(ep, keys.worker, "k1");
    worker(ep, keys.worker, "k2");
    const running = await eventually("the split to complete and parts to run", 60_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client);
      const t = s.body.tasks as { completed: number };
      return t.completed >= 50 ? s.body : undefined;
    });
    expect(running.status).toBe("IN_PROGRESS");
    const cancel = await api(server.base, "POST", `/v2/${ep}/cancel/${id}`, keys.client);
    expect(cancel.status).toBe(200);
    const s = await finished(ep, keys.client, id, 120_000);
    expect(s.status).toBe("CANCELLED");
    const t = s.tasks as { total: number; completed: number; canceled: number };
    expect(t.total).toBe(10_000);
    expect(t.completed + t.canceled).toBe(10_000); // every task either ran to the end or was cancelled: none lost
    expect(t.completed).toBeGreaterThanOrEqual(50);
    console.log(`10,000 tasks: submit ${submitMs} ms; ${t.completed} completed before the cancel, the rest cancelled`);
    for (const p of procs.splice(0)) await stopProcess(p);
  }, 240_000);
});
