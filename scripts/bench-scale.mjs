#!/usr/bin/env node
// `npm run bench:scale`: where one endpoint's capacity goes. Against edge-jobs under `npm start`
// (wrangler dev, state on tmpfs like `npm run bench`), with the server's long-polls held
// 30 s / --compress, it runs three phases, each on a fresh endpoint with its load counts reset
// first (GET /admin/endpoints/{id}/load):
//   lifecycle  --jobs pull lifecycles (submit → take → done → status) on --concurrency lanes:
//              calls per job on the busiest object, and the per-endpoint jobs/s ceiling that
//              implies at 500 and at 1,000 calls/s per object;
//   fleet      --workers idle RunPod workers (ping every 10 s, job-stop poll and take each held
//              up to 30 s and re-sent at once), time compressed --compress times, for
//              --fleet-seconds of wall time: liveness calls per worker-minute on the busiest
//              object, in real time;
//   depth      for each of --depths: that many jobs queued by concurrent /run calls (the fill is
//              timed), then status of a waiting job and take+done p50/p90, one at a time.
// Prints the numbers and writes them all to a JSON file. Loopback only.
//
//   npm run bench:scale -- [--jobs 200] [--concurrency 8] [--workers 50] [--compress 10]
//                          [--fleet-seconds 15] [--depths 200,20000] [--samples 50]
//                          [--fill-concurrency 32] [--state tmpfs|disk] [--log-level warn]
//                          [--json bench-output/bench-scale-<time>.json]
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createRequire } from "node:module";
import { ROOT } from "./lib/wrangler-dev.mjs";
import { startEdge } from "./bench/edge.mjs";
import { depthPhase, fleetPhase, lifecyclePhase, RUNPOD } from "./bench/scale.mjs";

const USAGE =
  "usage: npm run bench:scale -- [--jobs 200] [--concurrency 8] [--workers 50] [--compress 10] [--fleet-seconds 15] " +
  "[--depths 200,20000] [--samples 50] [--fill-concurrency 32] [--state tmpfs|disk] [--log-level warn] [--json file.json]";
function usage(problem) {
  console.error(`${problem}\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      jobs: { type: "string", default: "200" },
      concurrency: { type: "string", default: "8" },
      workers: { type: "string", default: "50" },
      compress: { type: "string", default: "10" },
      "fleet-seconds": { type: "string", default: "15" },
      depths: { type: "string", default: "200,20000" },
      samples: { type: "string", default: "50" },
      "fill-concurrency": { type: "string", default: "32" },
      state: { type: "string", default: existsSync("/dev/shm") ? "tmpfs" : "disk" },
      "log-level": { type: "string", default: "warn" },
      json: { type: "string" },
    },
  });
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const opts = parsed.values;
const whole = (name, min = 1) => {
  const raw = opts[name];
  if (!/^\d+$/.test(raw) || Number(raw) < min) usage(`--${name} takes a whole number ≥ ${min}, not '${raw}'`);
  return Number(raw);
};
const settings = {
  jobs: whole("jobs"),
  concurrency: whole("concurrency"),
  workers: whole("workers"),
  compress: whole("compress"),
  fleetSeconds: whole("fleet-seconds"),
  samples: whole("samples"),
  fillConcurrency: whole("fill-concurrency"),
  depths: opts.depths.split(",").map((x) => x.trim()).filter(Boolean),
};
if (settings.depths.length === 0 || settings.depths.some((d) => !/^\d+$/.test(d) || Number(d) < 1)) usage("--depths takes whole numbers ≥ 1, e.g. 200,20000,100000");
settings.depths = settings.depths.map(Number);
if (settings.depths.some((d) => d < settings.samples)) usage("each of --depths must be at least --samples (the take+done samples drain that many jobs)");
if (!["tmpfs", "disk"].includes(opts.state)) usage("--state is tmpfs or disk");
if (settings.compress > 100) usage("--compress is at most 100 (the server holds long-polls 30 s / compress: 300 ms at 100)");

const require = createRequire(import.meta.url);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const stateRoot = opts.state === "tmpfs" ? path.join("/dev/shm", `edge-jobs-bench-scale-${stamp}`) : path.join(ROOT, ".wrangler", `bench-scale-${stamp}`);
const takeWaitMs = Math.round(RUNPOD.pollMs / settings.compress);
Object.assign(settings, {
  machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
  node: process.version,
  wrangler: require("wrangler/package.json").version,
  state: { kind: opts.state, location: stateRoot },
  logLevel: opts["log-level"],
  takeWaitMs,
});

console.log("edge-jobs scale benchmark");
console.log(`  machine    ${settings.machine.cpu}, ${settings.machine.cores} cores, ${settings.machine.memoryGiB} GiB, ${settings.machine.os}`);
console.log(`  runtime    node ${settings.node}, wrangler ${settings.wrangler} (wrangler dev --local), state on ${opts.state} (${stateRoot}), --log-level ${settings.logLevel}`);
console.log(`  lifecycle  ${settings.jobs} jobs on ${settings.concurrency} lanes`);
console.log(`  fleet      ${settings.workers} idle workers for ${settings.fleetSeconds} s, time × ${settings.compress} (ping every ${Math.round(RUNPOD.pingMs / settings.compress)} ms, long-polls held ${takeWaitMs} ms)`);
console.log(`  depths     ${settings.depths.join(", ")} queued (filled ${settings.fillConcurrency} at a time), ${settings.samples} samples each; loopback only\n`);

let server = null;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the server and removing ${stateRoot}`);
    await server?.stop();
    rmSync(stateRoot, { recursive: true, force: true });
    process.exit(130);
  });
}

const ms = (s) => `${s.p50}/${s.p90} ms`;
const result = { at: new Date().toISOString(), settings };
/** "endpoint 0.14, shard 0.41, liveness 0.38": each kind's busiest object, its calls per `unit`. */
function kinds(load, unit) {
  return Object.entries(load.busiestByKind ?? {}).map(([kind, o]) => `${kind} ${(o.calls / unit).toFixed(3)}`).join(", ");
}

mkdirSync(stateRoot, { recursive: true });
try {
  server = await startEdge({ persist: path.join(stateRoot, "edge-jobs"), logLevel: settings.logLevel, takeWaitMs });
  const base = server.base;

  const life = await lifecyclePhase(base, { jobs: settings.jobs, concurrency: settings.concurrency });
  result.lifecycle = life;
  const b = life.load.busiest;
  console.log(`lifecycle  ${life.jobs} jobs in ${life.wallMs} ms (${life.jobsPerSecond} jobs/s); busiest object ${b?.kind} ${b?.name}`);
  console.log(`           ${life.callsPerJob} calls per job (${Object.entries(life.callsPerJobByMethod).map(([m, n]) => `${m} ${n}`).join(", ")}), ${life.rowsWrittenPerJob} rows written per job`);
  console.log(`           per-endpoint ceiling ${life.ceilingJobsPerSecond.at500} jobs/s at 500 calls/s per object, ${life.ceilingJobsPerSecond.at1000} at 1,000`);
  console.log(`           busiest of each kind, calls per job: ${kinds(life.load, life.jobs)}`);

  const fleet = await fleetPhase(base, { workers: settings.workers, compress: settings.compress, seconds: settings.fleetSeconds });
  result.fleet = fleet;
  console.log(`fleet      ${fleet.workers} workers, ${fleet.wallSeconds} s (= ${fleet.realSecondsSimulated} s real); busiest object ${fleet.load.busiest?.kind} ${fleet.load.busiest?.name}`);
  console.log(`           ${fleet.livenessCallsPerWorkerMinute} liveness calls per worker-minute (${Object.entries(fleet.byMethodPerWorkerMinute).map(([m, n]) => `${m} ${n}`).join(", ")}); 1,000 such workers ≈ ${fleet.callsPerSecondPer1000Workers} calls/s`);
  console.log(`           idle take and job-stop polls held p50/p90 ${ms(fleet.longPollHeldMs)} (asked: ${takeWaitMs} ms)`);
  console.log(`           busiest of each kind, calls per worker-minute: ${kinds(fleet.load, (fleet.workers * fleet.realSecondsSimulated) / 60)}`);
  if (fleet.errorCount > 0) console.log(`           ${fleet.errorCount} worker calls failed, e.g. ${fleet.errors.join("; ")}`);

  result.depths = [];
  for (const depth of settings.depths) {
    const d = await depthPhase(base, { depth, samples: settings.samples, fillConcurrency: settings.fillConcurrency });
    result.depths.push(d);
    console.log(`depth ${String(depth).padEnd(7)} filled in ${(d.fillMs / 1000).toFixed(1)} s (${d.fillPerSecond} submits/s${d.fillRetries ? `, ${d.fillRetries} resent` : ""}, ${d.fillCallsPerSubmit} calls per submit on the busiest object); status of a waiting job p50/p90 ${ms(d.status)} (the same jobs again ${ms(d.statusAgain)}), take+done ${ms(d.takeDone)}`);
  }
} finally {
  await server?.stop();
  rmSync(stateRoot, { recursive: true, force: true });
}

const out = opts.json ?? path.join(ROOT, "bench-output", `bench-scale-${stamp}.json`);
mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(process.cwd(), out) || out}`);
