// The peer: BullMQ on a local redis-server, the same lifecycle in BullMQ's
// manual-processing API: queue.add → worker.getNextJob → job.moveToCompleted → queue.getJobState.
// Redis runs with an append-only file fsynced every second (BullMQ's advice for production),
// in the same state location as the Workers.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { Queue, Worker } from "bullmq";
import { timed } from "./lanes.mjs";
import { captureOutput, freePort, groupCpuMs, stopGroup } from "./processes.mjs";

/** Why BullMQ cannot run, and how to include it. */
export const NO_REDIS_SERVER =
  "redis-server is not on the PATH; to include BullMQ, install Redis so that redis-server is on the PATH, and run again";

/** The version of the redis-server on the PATH, or null when there is none. */
export function redisVersion() {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (r.error) return null;
  return /v=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.trim();
}

export async function startRedis({ dir }) {
  if (!redisVersion()) throw new Error(NO_REDIS_SERVER);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"];
  const child = spawn("redis-server", args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output = captureOutput(child);
  const deadline = Date.now() + 10_000;
  while (!output.some((l) => l.includes("Ready to accept connections"))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopGroup(child);
      throw new Error(`redis-server did not start:\n${output.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    connection: { host: "127.0.0.1", port },
    settings: "appendonly yes, appendfsync everysec, no RDB snapshots",
    cpuMs: () => groupCpuMs(child.pid),
    stop: () => stopGroup(child),
  };
}

/** getNextJob blocks up to BullMQ's drain delay (5 s) per try. */
const TAKE_TRIES = 6;

export async function bullmqPull(connection, run) {
  const queue = new Queue(`bench-${Date.now().toString(36)}-c${run.concurrency}`, { connection });
  const workers = new Map();
  const workerFor = (lane) => {
    if (!workers.has(lane)) workers.set(lane, { worker: new Worker(queue.name, null, { connection }), token: `lane-${lane}` });
    return workers.get(lane);
  };
  try {
    return await run.lanes(async (lane, token) => {
      const { worker, token: lock } = workerFor(lane);
      const [, submit] = await timed(() => queue.add("job", { input: { token } }));
      const [job, take] = await timed(async () => {
        // The job was just added, so it is there to take; a bound keeps a lost job from hanging the run.
        for (let tries = 0; tries < TAKE_TRIES; tries++) {
          const next = await worker.getNextJob(lock);
          if (next) return next;
        }
        throw new Error(`BullMQ handed out no job in ${TAKE_TRIES} tries of getNextJob`);
      });
      const [, done] = await timed(() => job.moveToCompleted({ ok: job.data.input.token }, lock, false));
      const [, status] = await timed(async () => {
        const state = await queue.getJobState(job.id);
        if (state !== "completed") throw new Error(`BullMQ job ${job.id} is ${state}`);
      });
      return { submit, take, done, status };
    });
  } finally {
    await Promise.all([...workers.values()].map(({ worker }) => worker.close()));
    await queue.close();
  }
}
