// The phases of `npm run bench:scale` against edge-jobs under `npm start`: job lifecycles by
// pull workers, a simulated fleet of idle RunPod workers, and latency with a deep queue. Each
// phase uses a fresh endpoint, resets its load counts first and reads them after
// (GET /admin/endpoints/{id}/load: every object serving the endpoint, and the busiest).
import { createEndpoint, EDGE_ADMIN_KEY } from "./edge.mjs";
import { call, timed } from "./lanes.mjs";
import { percentile } from "./stats.mjs";

/** RunPod's worker intervals in real time: ping every 10 s; job-stop and idle takes held ≤ 30 s. */
export const RUNPOD = { pingMs: 10_000, pollMs: 30_000 };

const admin = { authorization: `Bearer ${EDGE_ADMIN_KEY}` };
const round = (x, digits = 2) => (x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits);

/** {n, p50, p90} in ms (nearest rank over every sample), rounded to 0.1 ms. */
export function p50p90(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: round(percentile(sorted, 50), 1), p90: round(percentile(sorted, 90), 1) };
}

async function resetLoad(base, ep) {
  await call(`${base}/admin/endpoints/${ep}/load/reset`, { method: "POST", headers: admin });
}

/** The endpoint's load report, with the busiest object's counts kept short for the output. */
async function readLoad(base, ep) {
  const report = await call(`${base}/admin/endpoints/${ep}/load`, { headers: admin });
  const busiest = report.busiest;
  // The busiest of each kind too: the endpoint object's own share shows beside the shards'.
  const byKind = {};
  for (const o of report.objects) if (!byKind[o.kind] || o.calls.total > byKind[o.kind].calls) byKind[o.kind] = { name: o.name, calls: o.calls.total, byMethod: o.calls.byMethod };
  return {
    objects: report.objects.length,
    busiest: busiest && { kind: busiest.kind, name: busiest.name, calls: busiest.calls, rowsWritten: busiest.rowsWritten, callsPerSecond: busiest.callsPerSecond, seconds: round((busiest.at - busiest.since) / 1000) },
    busiestByKind: byKind,
  };
}

const perUnit = (byMethod, n) => Object.fromEntries(Object.entries(byMethod).map(([m, c]) => [m, round(c / n, 3)]));

async function endpoint(base, kind) {
  const ep = `scale-${kind}-${Date.now().toString(36)}`;
  return { ep, keys: await createEndpoint(base, ep, {}) };
}

/** One pull lifecycle: submit → take (until handed a job) → done → status. Returns step times. */
async function lifecycle(base, ep, keys, worker, token) {
  const client = { authorization: `Bearer ${keys.client}` };
  const [, submit] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify({ input: { token } }) }));
  const t = performance.now();
  let job = null;
  while (!job) {
    const res = await fetch(`${base}/v2/${ep}/job-take/${worker}?job_in_progress=0`, { headers: { authorization: keys.worker } });
    if (res.status === 200) job = await res.json();
    else if (res.status === 204) await res.arrayBuffer();
    else throw new Error(`job-take → ${res.status} ${await res.text()}`);
  }
  const take = performance.now() - t;
  const [, done] = await timed(() =>
    call(`${base}/v2/${ep}/job-done/${worker}/${job.id}?isStream=false`, { method: "POST", headers: { authorization: keys.worker }, body: JSON.stringify({ output: { ok: token } }) }),
  );
  // Another lane's take may have been handed this lane's job: read the status of the job done here.
  const [final, status] = await timed(() => call(`${base}/v2/${ep}/status/${job.id}`, { headers: client }));
  if (final.status !== "COMPLETED") throw new Error(`job ${job.id} is ${final.status}, expected COMPLETED`);
  return { submit, take, done, status };
}

/**
 * Lifecycle phase: `jobs` lifecycles on `concurrency` lanes (after a few uncounted ones that warm
 * the Worker's caches). Calls per job on the busiest object, and the per-endpoint jobs/s ceiling
 * that implies at 500 and at 1,000 calls/s per object.
 */
export async function lifecyclePhase(base, { jobs, concurrency, warmup = 4 }) {
  const { ep, keys } = await endpoint(base, "lifecycle");
  for (let i = 0; i < warmup; i++) await lifecycle(base, ep, keys, "warm", `w${i}`);
  await resetLoad(base, ep);
  let next = 0;
  const steps = {};
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, jobs) }, async (_, lane) => {
      while (next < jobs) {
        const measured = await lifecycle(base, ep, keys, `lane-${lane}`, `j${next++}`);
        for (const [name, ms] of Object.entries(measured)) (steps[name] ??= []).push(ms);
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const load = await readLoad(base, ep);
  const callsPerJob = load.busiest ? load.busiest.calls.total / jobs : null;
  return {
    endpoint: ep,
    jobs,
    concurrency,
    wallMs: Math.round(wallMs),
    jobsPerSecond: round((jobs / wallMs) * 1000, 1),
    load,
    callsPerJob: round(callsPerJob, 3),
    callsPerJobByMethod: load.busiest ? perUnit(load.busiest.calls.byMethod, jobs) : {},
    rowsWrittenPerJob: load.busiest ? round(load.busiest.rowsWritten / jobs, 2) : null,
    ceilingJobsPerSecond: { at500: ceiling(500, jobs, load), at1000: ceiling(1000, jobs, load) },
    steps: Object.fromEntries(Object.entries(steps).map(([name, xs]) => [name, p50p90(xs)])),
  };
}

/** Jobs/s one endpoint can carry when its busiest object serves `perObject` calls/s (exact integers: no rounding). */
function ceiling(perObject, jobs, load) {
  const total = load.busiest?.calls.total;
  return total ? Math.floor((perObject * jobs) / total) : null;
}

/**
 * One simulated idle RunPod worker, its clock `compress` times faster than real: a ping every
 * 10 s (on a fixed schedule, skipped while one is in flight), and a job-stop poll and a take
 * each re-sent as soon as the server answers (it holds them up to TAKE_WAIT_MS, 30 s / compress).
 */
function simulatedWorker(base, ep, key, workerId, compress, signal, errors, held) {
  const headers = { authorization: key };
  const get = async (path) => {
    const t = performance.now();
    try {
      const res = await fetch(`${base}/v2/${ep}/${path}`, { headers, signal });
      await res.arrayBuffer();
      if (res.status !== 200 && res.status !== 204) errors.push(`${path.split("/")[0]} → ${res.status}`);
      else if (!path.startsWith("ping")) held.push(performance.now() - t);
    } catch (e) {
      if (!signal.aborted) errors.push(String(e));
    }
  };
  const pingEvery = RUNPOD.pingMs / compress;
  let pinging = false;
  const ping = async () => {
    if (pinging || signal.aborted) return;
    pinging = true;
    await get(`ping/${workerId}?runpod_version=1.7.13`);
    pinging = false;
  };
  // Workers start spread over one ping interval, as a fleet does.
  const start = setTimeout(() => {
    void ping();
    const timer = setInterval(ping, pingEvery);
    signal.addEventListener("abort", () => clearInterval(timer));
  }, Math.random() * pingEvery);
  signal.addEventListener("abort", () => clearTimeout(start));
  const poll = async (path) => {
    await new Promise((r) => setTimeout(r, Math.random() * pingEvery));
    while (!signal.aborted) await get(path);
  };
  return Promise.all([poll(`job-stop/${workerId}`), poll(`job-take/${workerId}?job_in_progress=0`)]);
}

/**
 * Fleet phase: `workers` idle workers for `seconds` of wall time (after one poll interval to get
 * going); liveness calls per worker-minute on the busiest object, in real time (× compress).
 */
export async function fleetPhase(base, { workers, compress, seconds }) {
  const { ep, keys } = await endpoint(base, "fleet");
  const controller = new AbortController();
  const errors = [];
  const held = [];
  const fleet = Array.from({ length: workers }, (_, i) => simulatedWorker(base, ep, keys.worker, `sim-${i}`, compress, controller.signal, errors, held));
  await new Promise((r) => setTimeout(r, RUNPOD.pollMs / compress + 500));
  await resetLoad(base, ep);
  held.length = 0;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const load = await readLoad(base, ep);
  const wallSeconds = (performance.now() - t0) / 1000;
  controller.abort();
  await Promise.all(fleet);
  // The busiest object's own window (reset → read) is the time its counts cover.
  const covered = load.busiest?.seconds || wallSeconds;
  const workerMinutes = (workers * covered * compress) / 60;
  const perWorkerMinute = load.busiest ? load.busiest.calls.total / workerMinutes : null;
  return {
    endpoint: ep,
    workers,
    compress,
    wallSeconds: round(wallSeconds, 1),
    realSecondsSimulated: round(covered * compress, 1),
    load,
    livenessCallsPerWorkerMinute: round(perWorkerMinute, 2),
    byMethodPerWorkerMinute: load.busiest ? perUnit(load.busiest.calls.byMethod, workerMinutes) : {},
    // What 1,000 such workers cost the busiest object, before any job.
    callsPerSecondPer1000Workers: round(perWorkerMinute === null ? null : (perWorkerMinute * 1000) / 60, 1),
    // How long the server held each idle take and job-stop poll (wall ms; TAKE_WAIT_MS asked).
    longPollHeldMs: p50p90(held),
    errors: errors.slice(0, 5),
    errorCount: errors.length,
  };
}

/**
 * Depth phase: `depth` jobs queued by concurrent /run calls (timed), then, one at a time,
 * `samples` status reads of random waiting jobs and `samples` take+done pairs.
 */
export async function depthPhase(base, { depth, samples, fillConcurrency }) {
  const { ep, keys } = await endpoint(base, `depth${depth}`);
  const client = { authorization: `Bearer ${keys.client}` };
  await resetLoad(base, ep);
  const ids = [];
  let next = 0;
  let retries = 0;
  // A submit whose answer is lost (a loaded local server may drop a connection) is sent again
  // under the same idempotency key, so it never queues a job twice.
  const submit = async (n) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const body = JSON.stringify({ input: { n } });
        return (await call(`${base}/v2/${ep}/run`, { method: "POST", headers: { ...client, "idempotency-key": `fill-${n}` }, body })).id;
      } catch (e) {
        if (attempt >= 5) throw e;
        retries++;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(fillConcurrency, depth) }, async () => {
      while (next < depth) ids.push(await submit(++next));
    }),
  );
  const fillMs = performance.now() - t0;
  const fillLoad = await readLoad(base, ep);

  await resetLoad(base, ep);
  // Random waiting jobs, then the same ones again: the first read of a job object long untouched
  // may cost more than the read itself (the second pass shows the read alone).
  const sampled = Array.from({ length: samples }, () => ids[Math.floor(Math.random() * ids.length)]);
  const readAll = async () => {
    const out = [];
    for (const id of sampled) {
      const [body, ms] = await timed(() => call(`${base}/v2/${ep}/status/${id}`, { headers: client }));
      if (body.status !== "IN_QUEUE") throw new Error(`job ${id} is ${body.status}, expected IN_QUEUE`);
      out.push(ms);
    }
    return out;
  };
  const status = await readAll();
  const statusAgain = await readAll();
  const takeDone = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/v2/${ep}/job-take/depth-worker?job_in_progress=0`, { headers: { authorization: keys.worker } });
    if (res.status !== 200) throw new Error(`job-take with ${depth} queued → ${res.status} ${await res.text()}`);
    const job = await res.json();
    await call(`${base}/v2/${ep}/job-done/depth-worker/${job.id}?isStream=false`, { method: "POST", headers: { authorization: keys.worker }, body: JSON.stringify({ output: 1 }) });
    takeDone.push(performance.now() - t);
  }
  const measureLoad = await readLoad(base, ep);
  return {
    endpoint: ep,
    depth,
    fillMs: Math.round(fillMs),
    fillPerSecond: round((depth / fillMs) * 1000, 1),
    fillRetries: retries,
    fillCallsPerSubmit: fillLoad.busiest ? round(fillLoad.busiest.calls.total / depth, 3) : null,
    status: p50p90(status),
    statusAgain: p50p90(statusAgain),
    takeDone: p50p90(takeDone),
    load: { fill: fillLoad, measure: measureLoad },
  };
}
