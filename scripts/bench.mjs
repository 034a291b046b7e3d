#!/usr/bin/env node
// `npm run bench`: the full job lifecycle — submit → a worker takes it → done → the client reads
// the final status — against edge-jobs under `npm start` (pull; push through the local Queue
// with the result reported to the done URL; and push-sync: one /runsync answered inline), against the platform floor (a bare Worker: one Durable Object per job, one SQLite
// write per call), the queue floor (the same plus one queue object to take from), and BullMQ on
// a local redis-server (when one is on the PATH; otherwise BullMQ is left out, saying how to add
// it), at each concurrency. Prints jobs/s and p50/p99 per step and per
// lifecycle, the ratios of edge-jobs to each, and writes everything to a JSON file. Loopback only; bounded by --jobs and
// --max-seconds per run.
//
//   npm run bench -- [--jobs 300] [--concurrency 1,8] [--warmup 20] [--state tmpfs|disk]
//                    [--log-level warn] [--systems edge,floor,bullmq] [--modes pull,pull-next,push,push-sync]
//                    [--max-seconds 120] [--out bench-output/bench-<time>.json]
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createRequire } from "node:module";
import { ROOT } from "./lib/wrangler-dev.mjs";
import { bullmqPull, NO_REDIS_SERVER, redisVersion, startRedis } from "./bench/bullmq.mjs";
import { edgePull, edgePullNext, edgePush, edgePushSync, startEdge } from "./bench/edge.mjs";
import { floorPull, queueFloorPull, startFloor } from "./bench/floor.mjs";
import { runLanes } from "./bench/lanes.mjs";
import { printRatios, printRun, ratios } from "./bench/report.mjs";

const USAGE =
  "usage: npm run bench -- [--jobs 300] [--concurrency 1,8] [--warmup 20] [--state tmpfs|disk] [--log-level warn] " +
  "[--systems edge,floor,bullmq] [--modes pull,pull-next,push,push-sync] [--max-seconds 120] [--out file.json]";
function usage(problem) {
  console.error(`${problem}\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
  options: {
    jobs: { type: "string", default: "300" },
    concurrency: { type: "string", default: "1,8" },
    warmup: { type: "string", default: "20" },
    state: { type: "string", default: existsSync("/dev/shm") ? "tmpfs" : "disk" },
    "log-level": { type: "string", default: "warn" },
    // No default here: BullMQ named on purpose needs redis-server; by default it is left out without it.
    systems: { type: "string" },
    modes: { type: "string", default: "pull,pull-next,push,push-sync" },
    "max-seconds": { type: "string", default: "120" },
    out: { type: "string" },
  },
  });
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const opts = parsed.values;
const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const jobs = Number(opts.jobs);
const concurrencies = list(opts.concurrency).map(Number);
const systems = list(opts.systems ?? "edge,floor,bullmq");
const modes = list(opts.modes);
if (!(jobs > 0) || concurrencies.length === 0 || concurrencies.some((c) => !(c > 0))) usage("--jobs and --concurrency take positive numbers");
if (!["tmpfs", "disk"].includes(opts.state)) usage("--state is tmpfs or disk");
const unknown = [...systems.filter((x) => !["edge", "floor", "bullmq"].includes(x)), ...modes.filter((x) => !["pull", "pull-next", "push", "push-sync"].includes(x))];
if (unknown.length > 0) usage(`unknown system or mode: ${unknown.join(", ")}`);

// BullMQ runs against a local redis-server. Without one on the PATH, a default run leaves BullMQ
// out and says so (and how to add it); a run that names bullmq in --systems stops here.
const redis = systems.includes("bullmq") ? redisVersion() : null;
const skipped = [];
if (systems.includes("bullmq") && !redis) {
  if (opts.systems !== undefined) {
    console.error(`--systems bullmq: ${NO_REDIS_SERVER}`);
    process.exit(2);
  }
  systems.splice(systems.indexOf("bullmq"), 1);
  skipped.push({ system: "bullmq", reason: NO_REDIS_SERVER });
}

const require = createRequire(import.meta.url);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const stateRoot = opts.state === "tmpfs" ? path.join("/dev/shm", `edge-jobs-bench-${stamp}`) : path.join(ROOT, ".wrangler", `bench-${stamp}`);
const settings = {
  machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
  node: process.version,
  wrangler: require("wrangler/package.json").version,
  bullmq: require("bullmq/package.json").version,
  redis,
  state: { kind: opts.state, location: stateRoot },
  logLevel: opts["log-level"],
  jobsPerRun: jobs,
  warmupPerRun: Number(opts.warmup),
  maxSecondsPerRun: Number(opts["max-seconds"]),
  concurrency: concurrencies,
};

console.log("edge-jobs lifecycle benchmark");
console.log(`  machine    ${settings.machine.cpu}, ${settings.machine.cores} cores, ${settings.machine.memoryGiB} GiB, ${settings.machine.os}`);
console.log(`  runtime    node ${settings.node}, wrangler ${settings.wrangler} (wrangler dev --local), bullmq ${settings.bullmq}, redis ${settings.redis ?? "-"}`);
console.log(`  wrangler   both Workers: state on ${opts.state} (${stateRoot}), --log-level ${settings.logLevel}`);
for (const s of skipped) console.log(`  left out   ${s.system}: ${s.reason}`);
console.log(`  runs       ${jobs} jobs each after ${settings.warmupPerRun} warm-up, concurrency ${concurrencies.join(", ")}, ≤ ${settings.maxSecondsPerRun} s each, loopback only\n`);

const runs = [];
const runOptions = (concurrency, serverCpuMs) => ({
  concurrency,
  // Iterations in all (warm-up included): a mode may change its last ones (see edgePullNext).
  total: jobs + settings.warmupPerRun,
  lanes: (iteration, hooks = {}) => runLanes({ jobs, concurrency, warmup: settings.warmupPerRun, maxSeconds: settings.maxSecondsPerRun, iteration, serverCpuMs, ...hooks }),
});
async function measure(system, mode, server, fn) {
  for (const concurrency of concurrencies) {
    const result = { system, mode, ...(await fn(runOptions(concurrency, server.cpuMs))) };
    printRun(result);
    runs.push(result);
  }
}

/** Runs `body` with a started server, stopping it afterwards; Ctrl-C stops it too. */
const running = new Set();
async function withServer(start, body) {
  const server = await start();
  running.add(server);
  try {
    await body(server);
  } finally {
    running.delete(server);
    await server.stop();
  }
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the servers and removing ${stateRoot}`);
    await Promise.all([...running].map((server) => server.stop()));
    rmSync(stateRoot, { recursive: true, force: true });
    process.exit(130);
  });
}

mkdirSync(stateRoot, { recursive: true });
try {
  if (systems.includes("edge")) {
    await withServer(
      () => startEdge({ persist: path.join(stateRoot, "edge-jobs"), logLevel: settings.logLevel }),
      async (edge) => {
        if (modes.includes("pull")) await measure("edge-jobs", "pull", edge, (run) => edgePull(edge.base, run));
        if (modes.includes("pull-next")) await measure("edge-jobs", "pull-next", edge, (run) => edgePullNext(edge.base, run));
        if (modes.includes("push")) await measure("edge-jobs", "push", edge, (run) => edgePush(edge.base, run));
        if (modes.includes("push-sync")) await measure("edge-jobs", "push-sync", edge, (run) => edgePushSync(edge.base, run));
      },
    );
  }
  if (systems.includes("floor")) {
    await withServer(
      () => startFloor({ persist: path.join(stateRoot, "floor"), logLevel: settings.logLevel }),
      async (floor) => {
        await measure("floor", "pull", floor, (run) => floorPull(floor.base, run));
        await measure("queue-floor", "pull", floor, (run) => queueFloorPull(floor.base, run));
      },
    );
  }
  if (systems.includes("bullmq")) {
    await withServer(
      () => startRedis({ dir: path.join(stateRoot, "redis") }),
      async (redis) => {
        settings.redisSettings = redis.settings;
        await measure("bullmq", "pull", redis, (run) => bullmqPull(redis.connection, run));
      },
    );
  }
} finally {
  rmSync(stateRoot, { recursive: true, force: true });
}

const compared = ratios(runs);
printRatios(compared);
const out = opts.out ?? path.join(ROOT, "bench-output", `bench-${stamp}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), settings, skipped, runs, ratios: compared }, null, 2)}\n`);
for (const s of skipped) console.log(`\n${s.system} was left out: ${s.reason}`);
console.log(`\nwritten to ${path.relative(process.cwd(), out) || out}`);
