// edge-jobs under `npm start` (scripts/start.mjs): the lifecycle pulled by RunPod-protocol
// workers, and pushed to a push worker that accepts (202) and reports to its done URL.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { ROOT, waitReady } from "../lib/wrangler-dev.mjs";
import { timed } from "./lanes.mjs";
import { captureOutput, freePort, stopGroup } from "./processes.mjs";

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
  return { base, stop: () => stopGroup(child) };
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

/**
 * Push: submit (client) → the job arrives at the push worker (measured from the submit being
 * sent; it may arrive before the submit's answer) → the worker answers 202 and POSTs its result
 * to the job's done URL → status (client).
 */
export async function edgePush(base, run) {
  const arrivals = new Map();
  const waiting = new Map();
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const at = performance.now();
      const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      res.writeHead(202).end();
      const [, done] = await timed(() => call(job.urls.done, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ output: { ok: job.input.token } }) }, 200));
      const arrival = { at, done, id: job.id };
      const resolve = waiting.get(job.input.token);
      if (resolve) resolve(arrival);
      else arrivals.set(job.input.token, arrival);
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const ep = `bench-push-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, { mode: "push", workerUrls: [`http://127.0.0.1:${receiver.address().port}/`] });
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
    receiver.close();
  }
}
