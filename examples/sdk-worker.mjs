#!/usr/bin/env node
// A pulling worker built on the SDK (packages/client: `runWorker`): two jobs at a time, progress
// and a stream chunk per job, and a graceful stop on SIGTERM (running jobs finish first).
// Needs Node >= 22.18 (the SDK is TypeScript, run as is); in this repo `npm` scripts bring Node 24:
//   EDGE_JOBS_URL=http://127.0.0.1:8787 ENDPOINT_ID=demo API_KEY=<worker key> ./node_modules/.bin/node examples/sdk-worker.mjs
import { runWorker } from "edge-jobs-client";

const worker = runWorker({
  baseUrl: process.env.EDGE_JOBS_URL ?? "http://127.0.0.1:8787",
  apiKey: process.env.API_KEY ?? "dev-admin-key",
  endpointId: process.env.ENDPOINT_ID ?? "demo",
  workerId: process.env.WORKER_ID ?? `sdk-worker-${process.pid}`,
  concurrency: 2,
  handleSignals: true,
  handler: async (job, { signal, progress, stream }) => {
    await progress({ started: job.id });
    await stream({ echo: job.input });
    if (job.input && typeof job.input === "object" && "fail" in job.input) throw new Error(String(job.input.fail));
    await new Promise((resolve) => setTimeout(resolve, Number(job.input?.sleepMs ?? 0)));
    signal.throwIfAborted();
    return { echo: job.input, worker: process.env.WORKER_ID ?? null };
  },
});
console.log(JSON.stringify({ event: "started" }));
await worker.done;
console.log(JSON.stringify({ event: "stopped" }));
