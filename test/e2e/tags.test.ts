/**
 * Issue 15, item 3, end to end: worker tags with real worker processes (examples/worker.mjs
 * speaks RunPod's worker protocol as RunPod's Python SDK does). A RunPod worker declares its tags
 * in its URL templates (RUNPOD_WEBHOOK_GET_JOB=…/job-take/$ID?tags=gpu), nothing else changed:
 * GPU jobs run only on the GPU worker, plain jobs on any, and a job needing a tag nobody has
 * waits (queue.reason no_matching_workers) until a worker with it starts.
 */
import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, useServer } from "./harness";
import { runWorker } from "../../packages/client/src/worker.ts";

const server = useServer({ TAKE_WAIT_MS: "2000" });
const procs = server.procs;

/** A worker process whose take and ping URLs declare `tags` (none: the example's own URLs). */
function worker(ep: string, key: string, id: string, tags: string | null): ChildProcess {
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

describe("worker tags over HTTP, real worker processes", () => {
  it("GPU jobs run only on the GPU worker, plain jobs anywhere; a TPU job waits for a TPU worker", async () => {
    const ep = "e2e-tags";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const submit = async (input: Record<string, unknown>, tags?: string[]) =>
      (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input, ...(tags ? { tags } : {}) })).body.id as string;
    const gpuJobs: string[] = [];
    const plainJobs: string[] = [];
    for (let i = 0; i < 10; i++) {
      gpuJobs.push(await submit({ n: i, sleepMs: 50 }, ["gpu"]));
      plainJobs.push(await submit({ n: i, sleepMs: 50 }));
    }
    const tpu = await submit({ tpu: true }, ["tpu"]);
    worker(ep, keys.worker, "cpu-1", null);
    worker(ep, keys.worker, "cpu-2", "cpu");
    worker(ep, keys.worker, "gpu-1", "gpu,cuda");

    const finished = await eventually("the GPU and plain jobs to complete", 60_000, async () => {
      const all = await Promise.all([...gpuJobs, ...plainJobs].map((id) => api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)));
      return all.every((s) => s.body.status === "COMPLETED") ? all.map((s) => s.body) : undefined;
    });
    const byId = new Map(finished.map((b) => [b.id as string, b]));
    for (const id of gpuJobs) expect(byId.get(id)).toMatchObject({ workerId: "gpu-1", tags: ["gpu"], attempt: 1 });
    // Plain jobs went to whoever asked: the CPU workers took some (they had nothing else to do).
    const plainWorkers = new Set(plainJobs.map((id) => byId.get(id)!.workerId));
    expect([...plainWorkers].some((w) => w === "cpu-1" || w === "cpu-2")).toBe(true);

    // Nobody has "tpu": the job says why it waits.
    const waiting = await api(server.base, "GET", `/v2/${ep}/status/${tpu}`, keys.client);
    expect(waiting.body).toMatchObject({ status: "IN_QUEUE", tags: ["tpu"], queue: { reason: "no_matching_workers", tags: ["tpu"] } });
    const list = await api(server.base, "GET", `/admin/endpoints/${ep}/workers`, server.adminKey);
    const tagsOf = Object.fromEntries((list.body.workers as Array<{ workerId: string; tags: string[] }>).map((w) => [w.workerId, w.tags]));
    expect(tagsOf).toMatchObject({ "cpu-1": [], "cpu-2": ["cpu"], "gpu-1": ["cuda", "gpu"] });

    worker(ep, keys.worker, "tpu-1", "tpu");
    const done = await eventually("the TPU job to complete on the TPU worker", 30_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${tpu}`, keys.client);
      return s.body.status === "COMPLETED" ? s.body : undefined;
    });
    expect(done).toMatchObject({ workerId: "tpu-1", output: { worker: "tpu-1" } });
  });

  it("the SDK's runWorker with tags: takes (and takes next) the GPU jobs; its list row shows its tags", async () => {
    const ep = "e2e-tags-sdk";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { n: i }, tags: ["gpu"] })).body.id as string);
    const errors: unknown[] = [];
    const worker = runWorker({
      baseUrl: server.base, apiKey: keys.worker, endpointId: ep, workerId: "sdk-gpu", tags: ["gpu"], pingIntervalMs: 500,
      handler: async (job) => ({ n: (job.input as { n: number }).n }), onError: (e) => errors.push(e),
    });
    try {
      const done = await eventually("the SDK worker to finish the GPU jobs", 30_000, async () => {
        const all = await Promise.all(ids.map((id) => api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)));
        return all.every((s) => s.body.status === "COMPLETED") ? all.map((s) => s.body) : undefined;
      });
      for (const b of done) expect(b).toMatchObject({ workerId: "sdk-gpu", tags: ["gpu"] });
      const list = await api(server.base, "GET", `/admin/endpoints/${ep}/workers`, server.adminKey);
      expect((list.body.workers as Array<{ workerId: string; tags: string[] }>).find((w) => w.workerId === "sdk-gpu")?.tags).toEqual(["gpu"]);
    } finally {
      await worker.stop();
    }
    expect(errors).toEqual([]);
  });
});

describe("blocklists over HTTP, real worker processes", () => {
  it("a worker that fails a job is blocklisted from it (threshold 1): another finishes it; alone, the job fails with reason blocklisted", async () => {
    const ep = "e2e-blocklist";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { shards: 1, retryOnError: true, maxAttempts: 5, blocklistThreshold: 1 });
    const status = async (id: string) => (await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)).body;
    // Alone: the bad worker fails the job once, is blocklisted, and no other live worker may take it.
    const alone = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { failOn: "bad" } })).body.id as string;
    worker(ep, keys.worker, "bad", null);
    const failed = await eventually("the job to fail: every live worker blocklisted", 20_000, async () => {
      const s = await status(alone);
      return s.status === "FAILED" ? s : undefined;
    });
    expect(failed).toMatchObject({ reason: "blocklisted", attempt: 1, blocklisted: [{ workerId: "bad", failures: 1 }] });
    expect(String(failed.error)).toBe("every live worker that may take this job is blocklisted from it (blocklisted: bad (1 failed attempt)); its last error: bad cannot run this job");
    // With a good worker alive too: the bad one fails it at most once, the good one finishes it.
    worker(ep, keys.worker, "good", null);
    await eventually("the good worker to be seen", 10_000, async () => {
      const list = await api(server.base, "GET", `/admin/endpoints/${ep}/workers`, server.adminKey);
      return (list.body.workers as Array<{ workerId: string }>).some((w) => w.workerId === "good") ? true : undefined;
    });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { n: i, failOn: "bad" } })).body.id as string);
    const done = await eventually("the jobs to complete on the good worker", 30_000, async () => {
      const all = await Promise.all(ids.map(status));
      return all.every((s) => s.status === "COMPLETED") ? all : undefined;
    });
    for (const s of done) {
      expect(s).toMatchObject({ workerId: "good", output: { worker: "good" } });
      // Taken by the bad worker first or not: at most one failure, then blocklisted.
      expect((s.blocklisted as unknown[] | undefined)?.length ?? 0).toBeLessThanOrEqual(1);
      expect(Number(s.attempt)).toBeLessThanOrEqual(2);
    }
  });
});
