// The floors (bench/floor), started with the same wrangler settings as edge-jobs: the platform
// floor (the same four calls, one Durable Object per job, one SQLite write per call) and the
// queue floor (job objects plus one queue object: the least a pull queue on objects needs).
import path from "node:path";
import { ROOT, spawnWranglerDev } from "../lib/wrangler-dev.mjs";
import { call, timed } from "./lanes.mjs";
import { freePort, serverReady } from "./processes.mjs";

export async function startFloor({ persist, logLevel }) {
  const port = await freePort();
  const config = path.join(ROOT, "bench", "floor", "wrangler.toml");
  const child = spawnWranglerDev({ config, host: "127.0.0.1", port, persist, logLevel }, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const base = `http://127.0.0.1:${port}`;
  return serverReady(child, base, `${base}/`, "the floor Worker");
}

/** submit → take (the worker is handed the id: the platform floor has no queue) → done → status. */
export function floorPull(base, run) {
  return lifecycle(run, `${base}`, (job) => `/take/${job.id}`);
}

/** submit (enqueued) → take (the oldest id from the queue object) → done → status. */
export function queueFloorPull(base, run) {
  return lifecycle(run, `${base}/q`, () => "/take");
}

function lifecycle(run, base, takePath) {
  return run.lanes(async (_lane, token) => {
    const [job, submit] = await timed(() => call(`${base}/run`, { method: "POST", body: JSON.stringify({ token }) }));
    const [taken, take] = await timed(() => call(`${base}${takePath(job)}`));
    const [, done] = await timed(() => call(`${base}/done/${taken.id}`, { method: "POST", body: JSON.stringify({ ok: taken.input.token }) }));
    const [, status] = await timed(async () => {
      const body = await call(`${base}/status/${taken.id}`);
      if (body.status !== "COMPLETED") throw new Error(`floor job ${taken.id} is ${body.status}`);
    });
    return { submit, take, done, status };
  });
}
