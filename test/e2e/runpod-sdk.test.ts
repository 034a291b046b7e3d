/**
 * RunPod's own JS client (npm `runpod-sdk`) pointed at edge-jobs with `baseUrl`: run, runSync,
 * status, stream, cancel, health and purgeQueue, against the real Worker and a real worker process.
 */
import type { ChildProcess } from "node:child_process";
import runpodSdk from "runpod-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointWithKeys, eventually } from "./api";
import { type Server, spawnNode, startServer, stopProcess } from "./harness";

let server: Server;
let workerProc: ChildProcess | undefined;

beforeAll(async () => {
  server = await startServer({ TAKE_WAIT_MS: "2000" });
});

afterAll(async () => {
  if (workerProc) await stopProcess(workerProc);
  await server?.stop();
});

describe("runpod-sdk against edge-jobs", () => {
  it("run, status, runSync and stream with a worker", async () => {
    const keys = await endpointWithKeys(server.base, server.adminKey, "sdk-served");
    workerProc = spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: "sdk-served", API_KEY: keys.worker, WORKER_ID: "sdk-worker" });
    const endpoint = runpodSdk(keys.client, { baseUrl: `${server.base}/v2` }).endpoint("sdk-served")!;

    const queued = await endpoint.run({ input: { prompt: "hi" } });
    expect(queued).toMatchObject({ id: expect.any(String), status: "IN_QUEUE" });
    const done = await eventually("status COMPLETED", 20_000, async () => {
      const s = await endpoint.status(queued.id);
      return s.status === "COMPLETED" ? s : undefined;
    });
    expect(done).toMatchObject({ status: "COMPLETED", output: { echo: { prompt: "hi" } }, started: true, completed: true, succeeded: true });

    const sync = await endpoint.runSync({ input: { prompt: "sync" } }, 20_000);
    expect(sync).toMatchObject({ status: "COMPLETED", output: { echo: { prompt: "sync" } }, completed: true, succeeded: true });

    const streamed = await endpoint.run({ input: { stream: 3 } });
    const chunks: unknown[] = [];
    for await (const chunk of endpoint.stream(streamed.id, 20_000)) chunks.push(chunk);
    expect(chunks).toEqual([{ output: { chunk: 1 } }, { output: { chunk: 2 } }, { output: { chunk: 3 } }]);
  });

  it("health, cancel and purgeQueue on an endpoint with no workers", async () => {
    const keys = await endpointWithKeys(server.base, server.adminKey, "sdk-idle");
    const endpoint = runpodSdk(keys.client, { baseUrl: `${server.base}/v2` }).endpoint("sdk-idle")!;
    const jobs = await Promise.all([1, 2, 3].map((n) => endpoint.run({ input: { n } })));
    expect(await endpoint.health()).toMatchObject({ jobs: { inQueue: 3, inProgress: 0 }, workers: { running: 0 } });
    expect(await endpoint.cancel(jobs[0]!.id)).toEqual({ id: jobs[0]!.id, status: "CANCELLED" });
    expect(await endpoint.purgeQueue()).toEqual({ removed: 2, status: "completed" });
    expect(await endpoint.health()).toMatchObject({ jobs: { inQueue: 0 } });
    expect(await endpoint.status(jobs[1]!.id)).toMatchObject({ status: "CANCELLED", completed: true, succeeded: false });
  });
});
