#!/usr/bin/env node
// A pulling worker that speaks RunPod's worker protocol exactly as RunPod's Python SDK does:
// the raw key in Authorization, long-polled job-take with `&job_in_progress=`, and job-done with a
// JSON body sent as application/x-www-form-urlencoded, retried on 5xx and network errors.
//
//   EDGE_JOBS_URL=http://127.0.0.1:8787 ENDPOINT_ID=demo API_KEY=dev-admin-key node examples/worker.mjs
//
// Environment: EDGE_JOBS_URL, ENDPOINT_ID, API_KEY (a worker key or the admin key), WORKER_ID
// (default: worker-<pid>), MAX_JOBS (exit after this many; default: run forever).
//
// The handler below echoes its input; `input.sleepMs` makes it take that long and `input.fail`
// makes it report an error, so it can stand in for a real model in demos and tests.

const base = (process.env.EDGE_JOBS_URL ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const endpointId = process.env.ENDPOINT_ID ?? "demo";
const apiKey = process.env.API_KEY ?? "dev-admin-key";
const workerId = process.env.WORKER_ID ?? `worker-${process.pid}`;
const maxJobs = process.env.MAX_JOBS ? Number(process.env.MAX_JOBS) : Infinity;

async function handler(job) {
  const input = job.input ?? {};
  if (typeof input.sleepMs === "number") await new Promise((r) => setTimeout(r, input.sleepMs));
  if (input.fail) return { error: String(input.fail) };
  return { output: { echo: input, worker: workerId } };
}

async function takeJob(inProgress) {
  const url = `${base}/v2/${endpointId}/job-take/${workerId}?gpu=none&job_in_progress=${inProgress ? 1 : 0}`;
  const res = await fetch(url, { headers: { authorization: apiKey } });
  if (res.status === 204 || res.status === 400) return null;
  if (res.status === 429) {
    await new Promise((r) => setTimeout(r, 5000));
    return null;
  }
  if (!res.ok) throw new Error(`job-take: HTTP ${res.status} ${await res.text()}`);
  const job = await res.json();
  if (!job.id || !("input" in job)) throw new Error("Job has missing field(s): id or input.");
  return job;
}

async function sendResult(jobId, body) {
  const url = `${base}/v2/${endpointId}/job-done/${workerId}/${jobId}?gpu=none&isStream=false`;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: apiKey, "content-type": "application/x-www-form-urlencoded", charset: "utf-8" },
        body: JSON.stringify(body),
      });
      if (res.status < 500) return res.status; // 4xx: the coordinator refused it; do not retry
    } catch (e) {
      if (attempt >= 3) throw e;
    }
    if (attempt >= 3) return 500;
    await new Promise((r) => setTimeout(r, attempt * 500));
  }
}

let done = 0;
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => (stopping = true));
console.log(`worker ${workerId} pulling from ${base}/v2/${endpointId}`);
while (!stopping && done < maxJobs) {
  let job;
  try {
    job = await takeJob(false);
  } catch (e) {
    console.error(String(e));
    await new Promise((r) => setTimeout(r, 1000));
    continue;
  }
  if (!job) continue; // RunPod workers re-poll at once after an empty answer
  const result = await handler(job).catch((e) => ({ error: JSON.stringify({ error_type: e?.name, error_message: String(e?.message ?? e) }) }));
  const code = await sendResult(job.id, result);
  done++;
  console.log(`job ${job.id}: ${result.error ? "failed" : "completed"} (job-done HTTP ${code})`);
}
