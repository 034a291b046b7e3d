#!/usr/bin/env node
// A pulling worker that speaks RunPod's worker protocol the way RunPod's Python SDK does:
// - the URL templates of RUNPOD_WEBHOOK_GET_JOB / _POST_OUTPUT / _POST_STREAM / _PING, with
//   `$ID` and `$RUNPOD_POD_ID` replaced and query parameters appended with `&`;
// - the raw key in Authorization; JSON bodies sent as application/x-www-form-urlencoded;
// - long-polled job-take with `&job_in_progress=`, re-polled at once after a 204;
// - job-done retried up to 3 times on 5xx and network errors, never on 4xx;
// - a ping every RUNPOD_PING_INTERVAL ms with `job_id=` the jobs in progress;
// - job-stop polled beside the work; a stopped job's handler is aborted and posts no job-done;
// - (edge-jobs' extension) what the handler logs with `log(message, level)` goes to job-log, batched
//   every 500 ms and before job-done, so clients read it live on /logs/{id}?follow=1.
//
// Run it against `npm start` (see the README for the four URL templates):
//   ENDPOINT_ID=demo API_KEY=dev-admin-key node examples/worker.mjs
// or with RunPod's own variables set. Extra: MAX_JOBS (exit after that many), WORKER_ID.
//
// The handler echoes its input; `input.sleepMs` makes it take that long, `input.hangOn` (a worker
// id) makes that worker hang, `input.failOn` (a worker id) makes that worker report an error, `input.failUnless` (a file path) makes it report an error while that file is missing, `input.fail` makes it report an error, `input.stream` (n) makes it
// stream n chunks, `input.progress` sends a progress update first, `input.log` (strings) logs each
// line `input.logEveryMs` apart. `input.exitCode` (an integer) runs a real child process that
// exits with it (after reporting `{"status":"INITIALIZING"}` while it starts) and reports the
// process's exit code with its output (edge-jobs' extension: a non-zero code ends the job ERROR).

const base = (process.env.EDGE_JOBS_URL ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const ep = process.env.ENDPOINT_ID ?? "demo";
const workerId = process.env.RUNPOD_POD_ID ?? process.env.WORKER_ID ?? `worker-${process.pid}`;
const apiKey = process.env.RUNPOD_AI_API_KEY ?? process.env.API_KEY ?? "dev-admin-key";
const pingInterval = Number(process.env.RUNPOD_PING_INTERVAL ?? 10_000);
const maxJobs = process.env.MAX_JOBS ? Number(process.env.MAX_JOBS) : Infinity;

const templates = {
  take: process.env.RUNPOD_WEBHOOK_GET_JOB ?? `${base}/v2/${ep}/job-take/$ID?gpu=none`,
  done: process.env.RUNPOD_WEBHOOK_POST_OUTPUT ?? `${base}/v2/${ep}/job-done/$RUNPOD_POD_ID/$ID?gpu=none`,
  stream: process.env.RUNPOD_WEBHOOK_POST_STREAM ?? `${base}/v2/${ep}/job-stream/$RUNPOD_POD_ID/$ID?gpu=none`,
  ping: process.env.RUNPOD_WEBHOOK_PING ?? `${base}/v2/${ep}/ping/$RUNPOD_POD_ID?gpu=none`,
};
// Exactly RunPod's substitutions: job-take replaces $ID with the worker id; the others replace
// $RUNPOD_POD_ID with the worker id now and $ID with the job id per job.
const takeUrl = templates.take.replace("$ID", workerId);
const stopUrl = takeUrl.replace("/job-take/", "/job-stop/");
const doneUrl = templates.done.replace("$RUNPOD_POD_ID", workerId);
const streamUrl = templates.stream.replace("$RUNPOD_POD_ID", workerId);
const pingUrl = templates.ping.replace("$RUNPOD_POD_ID", workerId);
const logUrl = (process.env.EDGE_JOBS_LOG_URL ?? `${base}/v2/${ep}/job-log/$RUNPOD_POD_ID/$ID?gpu=none`).replace("$RUNPOD_POD_ID", workerId);

const headers = { authorization: apiKey, "user-agent": "edge-jobs-example-worker (RunPod protocol)" };
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/** Jobs in progress: id → AbortController. */
const inProgress = new Map();
let stopping = false;

async function handler(job, signal, log) {
  const input = job.input ?? {};
  if (Number.isInteger(input.exitCode)) return runProgram(job, input.exitCode, signal);
  for (const line of Array.isArray(input.log) ? input.log : []) {
    if (signal.aborted) break;
    log(String(line), "INFO");
    if (typeof input.logEveryMs === "number") await sleep(input.logEveryMs, signal);
  }
  if (input.progress) await post(doneUrl, job.id, { status: "IN_PROGRESS", output: input.progress }, false);
  if (typeof input.sleepMs === "number") await sleep(input.sleepMs, signal);
  if (input.hangOn === workerId) await sleep(3_600_000, signal);
  if (input.failOn === workerId) return { error: `${workerId} cannot run this job` };
  if (typeof input.failUnless === "string" && !(await exists(input.failUnless))) return { error: `${input.failUnless} is missing` };
  for (let i = 1; i <= (input.stream ?? 0) && !signal.aborted; i++) {
    await post(streamUrl, job.id, { output: { chunk: i } }, false);
  }
  if (signal.aborted) return null;
  if (input.fail) return { error: String(input.fail) };
  if (input.stream) return { output: [] };
  // A task of a job of tasks (edge-jobs' extension) names its job and itself.
  const task = job.taskName === undefined ? {} : { task: job.taskName, parentJobId: job.parentJobId };
  return { output: { echo: input, worker: workerId, ...task } };
}

async function exists(path) {
  const { access } = await import("node:fs/promises");
  return access(path).then(() => true, () => false);
}

/**
 * Runs a child process (this Node binary) that prints a line and exits with `code`, as a worker
 * that runs a program would: INITIALIZING while it starts, then its output and exit code.
 */
async function runProgram(job, code, signal) {
  await post(doneUrl, job.id, { status: "INITIALIZING" }, false);
  const { spawn } = await import("node:child_process");
  const script = `console.log("ran " + ${JSON.stringify(job.id)}); process.exit(${code})`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  // A stop (job-stop) kills the program; the worker itself goes on.
  const kill = () => child.kill("SIGKILL");
  signal.addEventListener("abort", kill, { once: true });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  const exit = await new Promise((resolve) => {
    child.on("error", () => resolve(null));
    child.on("close", (c, sig) => resolve(sig ? null : c));
  });
  signal.removeEventListener("abort", kill);
  if (signal.aborted) return null;
  if (exit === null) return { error: "the program was killed" };
  return { output: { stdout: stdout.trim() }, exitCode: exit };
}

/**
 * A job's log: lines batched and posted to job-log every 500 ms (or at 100 lines) and flushed
 * before job-done. A 409 (the job was stopped) or a full log drops later lines.
 */
function jobLog(jobId) {
  let pending = [];
  let timer = null;
  let chain = Promise.resolve();
  let closed = false;
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (pending.length > 0) {
      const lines = pending;
      pending = [];
      chain = chain.then(async () => {
        if (closed) return;
        const code = await post(logUrl, jobId, { lines }, false);
        if (code === 409) closed = true;
      });
    }
    return chain;
  };
  const log = (message, level = "INFO") => {
    if (closed) return;
    pending.push({ level, message: String(message), ts: Date.now() });
    if (pending.length >= 100) void flush();
    else timer ??= setTimeout(flush, 500);
  };
  return { log, flush };
}

/** POSTs a JSON body as form data, as RunPod's SDK does; retries 5xx and network errors 3 times. */
async function post(template, jobId, body, isStream) {
  const url = `${template.replace("$ID", jobId)}&isStream=${isStream}`;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/x-www-form-urlencoded", charset: "utf-8" },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      if (res.status < 500) return res.status;
    } catch {
      // network error: retry
    }
    await sleep(attempt * 300);
  }
  return 0;
}

async function takeJob() {
  const res = await fetch(`${takeUrl}&job_in_progress=${inProgress.size > 0 ? 1 : 0}`, { headers });
  if (res.status === 204 || res.status === 400) return null;
  if (res.status === 429) {
    await sleep(5000);
    return null;
  }
  if (!res.ok) throw new Error(`job-take: HTTP ${res.status} ${await res.text()}`);
  const job = await res.json();
  if (!job.id || !("input" in job)) throw new Error("Job has missing field(s): id or input.");
  return job;
}

async function pingLoop() {
  while (!stopping) {
    const ids = [...inProgress.keys()].join(",");
    const url = `${pingUrl}${ids ? `&job_id=${ids}` : ""}&runpod_version=example-1.0`;
    await fetch(url, { headers }).then((r) => r.arrayBuffer()).catch(() => undefined);
    await sleep(pingInterval);
  }
}

async function stopLoop() {
  while (!stopping) {
    try {
      const res = await fetch(stopUrl, { headers });
      if (res.status === 200) {
        const { jobsToStop } = await res.json();
        for (const id of jobsToStop ?? []) {
          if (typeof id !== "string") continue;
          inProgress.get(id)?.abort();
          console.log(`job ${id}: stop requested, handler aborted`);
        }
      } else {
        await res.arrayBuffer();
        await sleep(1000);
      }
    } catch {
      await sleep(1000);
    }
  }
}

async function workLoop() {
  let handled = 0;
  while (!stopping && handled < maxJobs) {
    let job;
    try {
      job = await takeJob();
    } catch (e) {
      console.error(String(e));
      await sleep(1000);
      continue;
    }
    if (!job) continue; // re-poll at once, as RunPod's SDK does
    const controller = new AbortController();
    inProgress.set(job.id, controller);
    const logs = jobLog(job.id);
    try {
      const result = await handler(job, controller.signal, logs.log).catch((e) => ({
        error: JSON.stringify({ error_type: e?.name ?? "Error", error_message: String(e?.message ?? e), worker_id: workerId }),
      }));
      await logs.flush(); // the lines go before job-done: once the job has ended they are refused
      if (result === null) continue; // stopped: RunPod workers post no job-done for a stopped job
      const code = await post(doneUrl, job.id, result, Boolean(job.input?.stream));
      const ended = result.exitCode !== undefined && (result.exitCode !== 0 || result.error) ? `completed with errors (exit code ${result.exitCode})` : result.error ? "failed" : "completed";
      console.log(`job ${job.id}: ${ended} (job-done HTTP ${code})`);
    } finally {
      inProgress.delete(job.id);
      handled++;
    }
  }
  stopping = true;
}

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
console.log(`worker ${workerId} pulling from ${takeUrl}`);
void pingLoop();
void stopLoop();
await workLoop();
process.exit(0);
