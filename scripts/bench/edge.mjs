// edge-jobs under `npm start` (scripts/start.mjs): the lifecycle pulled by RunPod-protocol
// workers; pushed to a push worker that accepts (202) and reports to its done URL; and in the
// fewest round trips, one /runsync answered by a push worker that returns the result inline.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { ROOT, waitReady } from "../lib/wrangler-dev.mjs";
import { timed } from "./lanes.mjs";
import { captureOutput, freePort, groupCpuMs, stopGroup } from "./processes.mjs";

const ADMIN_KEY = "bench-admin-key";

export async function startEdge({ persist, logLevel }) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, "scripts", "start.mjs")], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORT: String(port), PERSIST_DIR: persist, LOG_LEVEL: logLevel, ADMIN_KEY },
  });
  const output = captureOutput(child);
  const base = `http://127.0.0.1:${port}`;
  if (!(await waitReady(child, `${base}/`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }))) {
    await stopGroup(child);
    throw new Error(`edge-jobs did not start:\n${output.join("\n")}`);
  }
  return { base, cpuMs: () => groupCpuMs(child.pid), stop: () => stopGroup(child) };
}

async function call(url, init, expect) {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${init?.method ?? "GET"} ${url} → ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

async function createEndpoint(base, name, config) {
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  await call(`${base}/admin/endpoints/${name}`, { method: "PUT", headers: admin, body: JSON.stringify(config) }, 200);
  const key = async (scope) => (await call(`${base}/admin/endpoints/${name}/keys`, { method: "POST", headers: admin, body: JSON.stringify({ scope }) }, 200)).key;
  return { client: await key("client"), worker: await key("worker") };
}

function statusCall(base, ep, client, id) {
  return timed(async () => {
    const body = await call(`${base}/v2/${ep}/status/${id}`, { headers: { authorization: `Bearer ${client}` } }, 200);
    if (body.status !== "COMPLETED") throw new Error(`job ${id} is ${body.status}, expected COMPLETED`);
  });
}

/** Pull: submit (client) → job-take → job-done (worker, RunPod's form body) → status (client). */
export async function edgePull(base, run) {
  const ep = `bench-pull-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, {});
  const client = { authorization: `Bearer ${keys.client}` };
  return run.lanes(async (lane, token) => {
    const worker = `bench-worker-${lane}`;
    const [, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }, 200));
    const [job, take] = await timed(() => call(`${base}/v2/${ep}/job-take/${worker}?gpu=none&job_in_progress=0`, { headers: { authorization: keys.worker } }, 200));
    const [, done] = await timed(() =>
      call(
        `${base}/v2/${ep}/job-done/${worker}/${job.id}?gpu=none&isStream=false`,
        { method: "POST", headers: { authorization: keys.worker, "content-type": "application/x-www-form-urlencoded" }, body: JSON.stringify({ output: { ok: job.input.token } }) },
        200,
      ),
    );
    const [, status] = await statusCall(base, ep, keys.client, job.id);
    return { submit, take, done, status };
  });
}

/** A push worker on loopback; `handle(job, arrivedAt)` answers each push. */
async function pushWorker(handle) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => handle(JSON.parse(Buffer.concat(chunks).toString("utf8")), performance.now(), res));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/**
 * Push: submit (client) → the job arrives at the push worker (measured from the submit being
 * sent; it may arrive before the submit's answer) → the worker answers 202 and POSTs its result
 * to the job's done URL → status (client).
 */
export async function edgePush(base, run) {
  const arrivals = new Map();
  const waiting = new Map();
  const worker = await pushWorker(async (job, at, res) => {
    res.writeHead(202).end();
    const [, done] = await timed(() => call(job.urls.done, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ output: { ok: job.input.token } }) }, 200));
    const arrival = { at, done, id: job.id };
    const resolve = waiting.get(job.input.token);
    if (resolve) resolve(arrival);
    else arrivals.set(job.input.token, arrival);
  });
  const ep = `bench-push-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, { mode: "push", workerUrls: [worker.url] });
  const client = { authorization: `Bearer ${keys.client}` };
  try {
    return await run.lanes(async (_lane, token) => {
      const sent = performance.now();
      const [submitted, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }, 200));
      const arrival = arrivals.get(token) ?? (await new Promise((resolve) => waiting.set(token, resolve)));
      arrivals.delete(token);
      waiting.delete(token);
      if (arrival.id !== submitted.id) throw new Error(`pushed ${arrival.id}, submitted ${submitted.id}`);
      const [, status] = await statusCall(base, ep, keys.client, submitted.id);
      return { submit, push: arrival.at - sent, done: arrival.done, status };
    });
  } finally {
    worker.close();
  }
}

/**
 * Push, synchronous: one /runsync from the client; the push worker answers 200 with the result,
 * which finishes the job and answers the /runsync. Two HTTP requests per job in all.
 */
export async function edgePushSync(base, run) {
  const arrivals = new Map();
  const worker = await pushWorker((job, at, res) => {
    arrivals.set(job.input.token, at);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ output: { ok: job.input.token } }));
  });
  const ep = `bench-pushsync-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, { mode: "push", workerUrls: [worker.url] });
  const client = { authorization: `Bearer ${keys.client}` };
  try {
    return await run.lanes(async (_lane, token) => {
      const sent = performance.now();
      const [answer, runsync] = await timed(() => call(`${base}/v2/${ep}/runsync?wait=60000`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }, 200));
      if (answer.status !== "COMPLETED" || answer.output?.ok !== token) throw new Error(`runsync answered ${JSON.stringify(answer).slice(0, 200)}`);
      const at = arrivals.get(token);
      arrivals.delete(token);
      return { runsync, push: at - sent };
    });
  } finally {
    worker.close();
  }
}
