// Runs one lifecycle per iteration on `concurrency` lanes until `jobs` are done (or the time
// limit passes), after `warmup` uncounted iterations. Each iteration returns its step durations
// in ms; the lifecycle is the iteration's whole duration. Jobs/s counts completed lifecycles
// over the wall time from the first counted start to the last counted end. CPU per job: the
// server's (the `serverCpuMs` reading of its process group) and this load generator's own.
// `afterWarmup` runs between the warm-up and the counted iterations (edge-jobs resets its load counts there).
import { summarize } from "./stats.mjs";

export async function runLanes({ jobs, concurrency, warmup, maxSeconds, iteration, serverCpuMs = () => null, afterWarmup = async () => {} }) {
  let seq = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, Math.max(warmup, 1)) }, async (_, lane) => {
      while (seq < warmup) await iteration(lane, `w${seq++}`);
    }),
  );

  await afterWarmup();
  const steps = {};
  const lifecycles = [];
  const deadline = performance.now() + maxSeconds * 1000;
  let started = 0;
  let truncated = false;
  const serverBefore = serverCpuMs();
  const clientBefore = process.cpuUsage();
  const t0 = performance.now();
  let lastEnd = t0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      while (started < jobs) {
        if (performance.now() > deadline) {
          truncated = true;
          return;
        }
        const k = started++;
        const begin = performance.now();
        const measured = await iteration(lane, `j${k}`);
        const end = performance.now();
        lastEnd = Math.max(lastEnd, end);
        lifecycles.push(end - begin);
        for (const [name, ms] of Object.entries(measured)) (steps[name] ??= []).push(ms);
      }
    }),
  );
  const wallMs = lastEnd - t0;
  const serverAfter = serverCpuMs();
  const client = process.cpuUsage(clientBefore);
  const perJob = (ms) => (ms === null ? null : Math.round((ms / lifecycles.length) * 100) / 100);
  const serverMs = serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore;
  // /proc counts CPU in clock ticks (10 ms): a server that used less than one over a short run
  // reads 0, which is no measurement. Then the reading is absent, with the reason.
  const serverUnmeasured = serverMs === 0;
  return {
    jobs: lifecycles.length,
    concurrency,
    truncated,
    wallMs: Math.round(wallMs),
    jobsPerSecond: Math.round((lifecycles.length / wallMs) * 1000 * 10) / 10,
    lifecycle: summarize(lifecycles),
    cpuMsPerJob: {
      server: serverUnmeasured ? null : perJob(serverMs),
      ...(serverUnmeasured ? { serverNote: `less than one clock tick of CPU over ${lifecycles.length} jobs: too few to measure` } : {}),
      client: perJob((client.user + client.system) / 1000),
    },
    steps: Object.fromEntries(Object.entries(steps).map(([name, xs]) => [name, summarize(xs)])),
  };
}

/** Times one awaited call, in ms, and returns [result, ms]. */
export async function timed(fn) {
  const t = performance.now();
  const result = await fn();
  return [result, performance.now() - t];
}

/** One HTTP call expecting `expect`; returns the parsed JSON answer (null when empty). */
export async function call(url, init, expect = 200) {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${init?.method ?? "GET"} ${url} → ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}
