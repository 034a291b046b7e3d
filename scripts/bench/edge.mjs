// edge-jobs under `npm start` (scripts/start.mjs): the lifecycle pulled by RunPod-protocol
// workers; pushed to a push worker that accepts (202) and reports to its done URL; and in the
// fewest round trips, one /runsync answered by a push worker that returns the result inline.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { ROOT } from "../lib/wrangler-dev.mjs";
import { call, timed } from "./lanes.mjs";
import { freePort, serverReady } from "./processes.mjs";

const ADMIN_KEY = "bench-admin-key";

/**
 * `takeWaitMs`: how long the server holds a take or job-stop long-poll (TAKE_WAIT_MS; 30 s unset).
 * Client rate limits are off (RATE_LIMITS): a fill of thousands of jobs outruns /run's 1000 per 10 s.
 */
export async function startEdge({ persist, logLevel, takeWaitMs }) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, "scripts", "start.mjs")], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PORT: String(port), PERSIST_DIR: persist, LOG_LEVEL: logLevel, ADMIN_KEY, RATE_LIMITS: "off", ...(takeWaitMs ? { TAKE_WAIT_MS: String(takeWaitMs) } : {}) },
  });
  const base = `http://127.0.0.1:${port}`;
  return serverReady(child, base, `${base}/`, "edge-jobs", { authorization: `Bearer ${ADMIN_KEY}` });
}

export const EDGE_ADMIN_KEY = ADMIN_KEY;

export async function createEndpoint(base, name, config) {
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  await call(`${base}/admin/endpoints/${name}`, { method: "PUT", headers: admin, body: JSON.stringify(config) });
  const key = async (scope) => (await call(`${base}/admin/endpoints/${name}/keys`, { method: "POST", headers: admin, body: JSON.stringify({ scope }) })).key;
  return { client: await key("client"), worker: await key("worker") };
}

/**
 * Runs `iteration` on the lanes and adds `objectCalls`: the calls the endpoint's own objects (its
 * index shards, the endpoint object, its workers' liveness shards) served per counted job, from
 * GET /admin/endpoints/{ep}/load, reset after the warm-up. Job objects are one per job and not
 * counted there: each job adds its own calls (submit, claim, done, status in pull).
 */
async function lanesCounted(base, ep, run, iteration) {
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  const result = await run.lanes(iteration, { afterWarmup: () => call(`${base}/admin/endpoints/${ep}/load/reset`, { method: "POST", headers: admin }) });
  const load = await call(`${base}/admin/endpoints/${ep}/load`, { headers: admin });
  const per = (n) => Math.round((n / Math.max(1, result.jobs)) * 100) / 100;
  const byKind = {};
  const byMethod = {};
  for (const o of load.objects) {
    byKind[o.kind] = (byKind[o.kind] ?? 0) + o.calls.total;
    for (const [m, n] of Object.entries(o.calls.byMethod)) byMethod[`${o.kind}.${m}`] = (byMethod[`${o.kind}.${m}`] ?? 0) + n;
  }
  const total = Object.values(byKind).reduce((a, b) => a + b, 0);
  const busiest = load.objects.reduce((b, o) => (b === null || o.calls.total > b.calls.total ? o : b), null);
  return {
    ...result,
    objectCalls: {
      perJob: per(total),
      byKind: Object.fromEntries(Object.entries(byKind).map(([k, n]) => [k, per(n)])),
      byMethod: Object.fromEntries(Object.entries(byMethod).sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, per(n)])),
      busiest: busiest === null ? null : { kind: busiest.kind, name: busiest.name, perJob: per(busiest.calls.total) },
    },
  };
}

function statusCall(base, ep, client, id) {
  return timed(async () => {
    const body = await call(`${base}/v2/${ep}/status/${id}`, { headers: { authorization: `Bearer ${client}` } });
    if (body.status !== "COMPLETED") throw new Error(`job ${id} is ${body.status}, expected COMPLETED`);
  });
}

/** Pull: submit (client) → job-take → job-done (worker, RunPod's form body) → status (client). */
export async function edgePull(base, run) {
  const ep = `bench-pull-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, {});
  const client = { authorization: `Bearer ${keys.client}` };
  return lanesCounted(base, ep, run, async (lane, token) => {
    const worker = `bench-worker-${lane}`;
    const [, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }));
    const [job, take] = await timed(() => call(`${base}/v2/${ep}/job-take/${worker}?gpu=none&job_in_progress=0`, { headers: { authorization: keys.worker } }));
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
 * Pull with done-and-take-next (`job-done?next=1`, our extension): as pull, but a job-done hands
 * its worker the next job, which the next iteration runs instead of taking. Handed-out jobs wait
 * in one pool (another lane's own submit may be what a job-done handed out), each reported by the
 * worker it was handed to; a take that finds the queue empty meanwhile looks in the pool again. The last `concurrency` iterations ask for no next
 * job, so none is left handed out at the end.
 *
 * A queue a worker asks `next` of has work waiting: one job per lane is submitted before the run
 * (left in the queue at its end), so each job-done finds one to hand out. Without it, at c=1 every
 * iteration's own job is taken before its job-done asks, and `next` never finds anything.
 */
export async function edgePullNext(base, run) {
  const ep = `bench-pull-next-${Date.now().toString(36)}-c${run.concurrency}`;
  const keys = await createEndpoint(base, ep, {});
  const client = { authorization: `Bearer ${keys.client}` };
  const pool = [];
  for (let i = 0; i < run.concurrency; i++) {
    await call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token: `backlog${i}` } }) });
  }
  let iterations = 0;
  const takeOne = async (worker) => {
    for (;;) {
      if (pool.length > 0) return pool.shift();
      // job_in_progress=1: a job handed to this worker may still wait in the pool (0 would release it).
      const res = await fetch(`${base}/v2/${ep}/job-take/${worker}?gpu=none&job_in_progress=1`, { headers: { authorization: keys.worker } });
      if (res.status === 200) return { job: await res.json(), worker };
      if (res.status !== 204) throw new Error(`job-take → ${res.status} ${await res.text()}`);
    }
  };
  return lanesCounted(base, ep, run, async (lane, token) => {
    const wantNext = ++iterations <= run.total - run.concurrency;
    const [, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }));
    // A handed-out job needs no take: the step is counted only for the takes made.
    const handed = pool.shift();
    const [{ job, worker }, take] = handed ? [handed, null] : await timed(() => takeOne(`bench-worker-${lane}`));
    const [answer, done] = await timed(() =>
      call(`${base}/v2/${ep}/job-done/${worker}/${job.id}?gpu=none&isStream=false${wantNext ? "&next=1" : ""}`, { method: "POST", headers: { authorization: keys.worker }, body: JSON.stringify({ output: { ok: job.input.token } }) }),
    );
    if (answer?.next) pool.push({ job: answer.next, worker });
    const [, status] = await statusCall(base, ep, keys.client, job.id);
    return take === null ? { submit, done, status } : { submit, take, done, status };
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
 * A push endpoint whose worker URL is a push worker on loopback answering with `handle`; runs
 * the lanes with `iteration(client, ep)` and closes the worker whatever happens.
 */
async function withPushEndpoint(base, run, kind, handle, iteration) {
  const worker = await pushWorker(handle);
  try {
    const ep = `bench-${kind}-${Date.now().toString(36)}-c${run.concurrency}`;
    const keys = await createEndpoint(base, ep, { mode: "push", workerUrls: [worker.url] });
    return await lanesCounted(base, ep, run, iteration({ authorization: `Bearer ${keys.client}` }, ep, keys));
  } finally {
    worker.close();
  }
}

/**
 * Push: submit (client) → the job arrives at the push worker (measured from the submit being
 * sent; it may arrive before the submit's answer) → the worker answers 202 and POSTs its result
 * to the job's done URL → status (client).
 */
export function edgePush(base, run) {
  const arrivals = new Map();
  const waiting = new Map();
  const handle = async (job, at, res) => {
    res.writeHead(202).end();
    const [, done] = await timed(() => call(job.urls.done, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ output: { ok: job.input.token } }) }));
    const arrival = { at, done, id: job.id };
    const resolve = waiting.get(job.input.token);
    if (resolve) resolve(arrival);
    else arrivals.set(job.input.token, arrival);
  };
  return withPushEndpoint(base, run, "push", handle, (client, ep, keys) => async (_lane, token) => {
    const sent = performance.now();
    const [submitted, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }));
    const arrival = arrivals.get(token) ?? (await new Promise((resolve) => waiting.set(token, resolve)));
    arrivals.delete(token);
    waiting.delete(token);
    if (arrival.id !== submitted.id) throw new Error(`pushed ${arrival.id}, submitted ${submitted.id}`);
    const [, status] = await statusCall(base, ep, keys.client, submitted.id);
    return { submit, push: arrival.at - sent, done: arrival.done, status };
  });
}

/**
 * Push, synchronous: one /runsync from the client; the push worker answers 200 with the result,
 * which finishes the job and answers the /runsync. Two HTTP requests per job in all.
 */
export function edgePushSync(base, run) {
  const arrivals = new Map();
  const handle = (job, at, res) => {
    arrivals.set(job.input.token, at);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ output: { ok: job.input.token } }));
  };
  return withPushEndpoint(base, run, "pushsync", handle, (client, ep) => async (_lane, token) => {
    const sent = performance.now();
    const [answer, runsync] = await timed(() => call(`${base}/v2/${ep}/runsync?wait=60000`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }));
    if (answer.status !== "COMPLETED" || answer.output?.ok !== token) throw new Error(`runsync answered ${JSON.stringify(answer).slice(0, 200)}`);
    const at = arrivals.get(token);
    arrivals.delete(token);
    return { runsync, push: at - sent };
  });
}
