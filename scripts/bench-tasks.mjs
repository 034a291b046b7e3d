#!/usr/bin/env node
// `npm run bench:tasks`: one job of --tasks tasks (issue 15, item 1) against edge-jobs under
// `npm start` (started here, state on tmpfs, like `npm run bench`; or --url of one running).
// The job is a 3-stage DAG: one "split" task, --tasks - 2 "part" tasks depending on it, one
// "merge" task depending on every part. --workers pulling workers take --batch jobs at a time
// (job-take-batch) and report each with job-done. Prints: how long the submit took, until the
// first part was handed out, until the job was COMPLETED, tasks per second, and checks that
// every task completed exactly once. Loopback only.
//
//   npm run bench:tasks -- [--tasks 10000] [--workers 8] [--batch 20] [--shards n] [--url http://127.0.0.1:8787]
//                          [--json bench-output/bench-tasks-<time>.json]
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./lib/wrangler-dev.mjs";
import { createEndpoint, EDGE_ADMIN_KEY, startEdge } from "./bench/edge.mjs";
import { call, timed } from "./bench/lanes.mjs";

const { values: opts } = parseArgs({
  options: {
    tasks: { type: "string", default: "10000" },
    workers: { type: "string", default: "8" },
    batch: { type: "string", default: "20" },
    shards: { type: "string" },
    url: { type: "string" },
    json: { type: "string" },
  },
});
const n = Number(opts.tasks);
const workers = Number(opts.workers);
const batch = Number(opts.batch);
if (!(n >= 3 && n <= 10_000 && workers >= 1 && batch >= 1 && batch <= 100)) {
  console.error("usage: npm run bench:tasks -- [--tasks 3..10000] [--workers n] [--batch 1..100] [--url base] [--json file]");
  process.exit(2);
}

let edge = null;
let base = opts.url;
let persist = null;
if (!base) {
  persist = path.join(existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), `edge-jobs-bench-tasks-${process.pid}`);
  rmSync(persist, { recursive: true, force: true });
  edge = await startEdge({ persist, logLevel: "warn", takeWaitMs: 2000 });
  base = edge.base;
}
const adminKey = process.env.ADMIN_KEY ?? EDGE_ADMIN_KEY;
const ep = `bench-tasks-${Date.now().toString(36)}`;
const config = opts.shards ? { shards: Number(opts.shards) } : {};
const keys = opts.url
  ? await (async () => {
      const admin = { authorization: `Bearer ${adminKey}` };
      await call(`${base}/admin/endpoints/${ep}`, { method: "PUT", headers: admin, body: JSON.stringify(config) });
      return { client: adminKey, worker: adminKey };
    })()
  : await createEndpoint(base, ep, config);
const client = { authorization: `Bearer ${keys.client}` };

const parts = Array.from({ length: n - 2 }, (_, i) => ({ name: `part-${i}`, input: { i }, dependsOn: ["split"] }));
const body = { tasks: [{ name: "split", input: {} }, ...parts, { name: "merge", input: {}, dependsOn: parts.map((p) => p.name) }] };
const bodyBytes = Buffer.byteLength(JSON.stringify(body));
const t0 = performance.now();
const [submitted, submitMs] = await timed(() => call(`${base}/v2/${ep}/run`, { method: "POST", headers: client, body: JSON.stringify(body) }));
const id = submitted.id;

const ran = new Map();
let firstPartAt = null;
let splitAt = null;
let stop = false;
let dropped = 0;
async function lane(w) {
  const worker = `bench-w${w}`;
  const auth = { authorization: keys.worker };
  while (!stop) {
    let jobs;
    try {
      const res = await fetch(`${base}/v2/${ep}/job-take-batch/${worker}?gpu=none&batch_size=${batch}&job_in_progress=0`, { headers: auth });
      if (res.status === 204) continue;
      jobs = await res.json();
    } catch (e) {
      // A dropped connection (the local server under load): counted, and the worker asks again.
      dropped++;
      continue;
    }
    await Promise.all(
      jobs.map(async (job) => {
        ran.set(job.taskName, (ran.get(job.taskName) ?? 0) + 1);
        if (firstPartAt === null && job.taskName.startsWith("part-")) firstPartAt = performance.now();
        if (job.taskName === "split") splitAt = performance.now();
        await call(`${base}/v2/${ep}/job-done/${worker}/${job.id}?gpu=none&isStream=false`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
          body: JSON.stringify({ output: { task: job.taskName } }),
        });
      }),
    );
  }
}
const lanes = Array.from({ length: workers }, (_, w) => lane(w));
let status;
for (;;) {
  status = await call(`${base}/v2/${ep}/status/${id}`, { headers: client });
  if (["COMPLETED", "FAILED", "CANCELLED"].includes(status.status)) break;
  await new Promise((r) => setTimeout(r, 200));
}
const finishedMs = performance.now() - t0;
stop = true;
await Promise.allSettled(lanes);
const twice = [...ran].filter(([, k]) => k > 1).length;
const result = {
  tasks: n,
  workers,
  batch,
  bodyBytes,
  submitMs: Math.round(submitMs),
  splitMs: splitAt === null ? null : Math.round(splitAt - t0),
  firstPartMs: firstPartAt === null ? null : Math.round(firstPartAt - t0),
  finishedMs: Math.round(finishedMs),
  tasksPerSecond: Math.round((n / finishedMs) * 1000),
  status: status.status,
  counts: status.tasks,
  handedOut: [...ran.values()].reduce((a, b) => a + b, 0),
  handedTwice: twice,
  droppedTakes: dropped,
};
console.log(`job of ${n} tasks (1 → ${n - 2} → 1), ${workers} workers taking ${batch} at a time, body ${(bodyBytes / 1024).toFixed(0)} KiB`);
console.log(`  submit ${result.submitMs} ms; split handed out after ${result.splitMs} ms, the first part after ${result.firstPartMs} ms; ${status.status} after ${result.finishedMs} ms (${result.tasksPerSecond} tasks/s)`);
console.log(`  tasks handed out ${result.handedOut}, handed out twice ${twice}; counts ${JSON.stringify(status.tasks)}`);
const out = opts.json ?? path.join(ROOT, "bench-output", `bench-tasks-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2));
console.log(`  written to ${path.relative(process.cwd(), out)}`);
if (edge) await edge.stop();
if (persist) rmSync(persist, { recursive: true, force: true });
process.exit(status.status === "COMPLETED" && twice === 0 ? 0 : 1);
