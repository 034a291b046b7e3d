/**
 * The invariants of the endpoint-level model, each its own function so a reviewer can see it,
 * checked against the real system after every step (the last snapshot of every job's /status,
 * plus the endpoint's /health). Step-specific expectations (what a take, a report, a cancel must
 * do) live beside their commands in endpoint-model.test.ts.
 */
import { expect } from "vitest";
import { call, json } from "./helpers";
import { current, isRunning, matchingWorkerAlive, RUNNING, WAITING, type MJob, type World } from "./endpoint-world";

const running = (w: World) => current(w).filter((j) => isRunning(j.snap));

/** I1: at most one live attempt per job: no two workers believe they run the job's current attempt. */
export function oneLiveAttempt(w: World): void {
  for (const j of running(w)) {
    const believers = Object.entries(w.workers).filter(([, mw]) => mw.held.get(j.id) === j.snap!.attempt).map(([id]) => id);
    expect(believers.length, `[I1 one live attempt] job ${j.id} attempt ${j.snap!.attempt} is believed run by ${believers}`).toBeLessThanOrEqual(1);
    if (believers.length === 1) expect(believers[0], `[I1 one live attempt] job ${j.id}: the lease is ${j.snap!.workerId}'s`).toBe(j.snap!.workerId);
  }
}

/** I2: never two jobs of one sequence key IN_PROGRESS or CANCELLING at once. */
export function oneRunningPerSequence(w: World): void {
  const bySeq = new Map<string, string[]>();
  for (const j of running(w)) if (j.seq !== null) bySeq.set(j.seq, [...(bySeq.get(j.seq) ?? []), `${j.id}:${j.snap!.state}`]);
  for (const [seq, ids] of bySeq) expect(ids, `[I2 sequence] two jobs of sequence '${seq}' run at once`).toHaveLength(1);
}

/** I3: the concurrency cap is never exceeded (IN_PROGRESS + CANCELLING over every job's /status). */
export function capHolds(w: World): void {
  if (w.cfg.concurrency === null) return;
  const ids = running(w).map((j) => `${j.id}:${j.snap!.state}`);
  expect(ids.length, `[I3 concurrency cap ${w.cfg.concurrency}] running: ${ids}`).toBeLessThanOrEqual(w.cfg.concurrency);
}

/** Running jobs (IN_PROGRESS, CANCELLING) per flow key. */
export function runningByKey(w: World): Map<string, number> {
  const m = new Map<string, number>();
  for (const j of running(w)) if (j.flow !== null) m.set(j.flow, (m.get(j.flow) ?? 0) + 1);
  return m;
}

/** I8: a flow key never holds more than its cap (keyConcurrency) running at once (issue 16, item 4). */
export function keyCapHolds(w: World): void {
  if (w.cfg.keyConcurrency === null) return;
  for (const [key, n] of runningByKey(w)) {
    const ids = running(w).filter((j) => j.flow === key).map((j) => `${j.id}:${j.snap!.state}`);
    expect(n, `[I8 key cap ${w.cfg.keyConcurrency}] key '${key}' runs ${ids}`).toBeLessThanOrEqual(w.cfg.keyConcurrency);
  }
}

/** I6: the endpoint's /health counts agree with the jobs' own states. */
export async function healthAgrees(w: World): Promise<void> {
  const res = await call("GET", `/v2/${w.ep}/health`, { key: w.clientKey });
  expect(res.status).toBe(200);
  const h = await json<{ jobs: { inQueue: number; inProgress: number } }>(res);
  const jobs = current(w);
  const want = {
    // A paused job (a paused job of tasks' waiting tasks) is counted waiting.
    inQueue: jobs.filter((j) => j.snap !== null && [...WAITING, "PAUSED"].includes(j.snap.state)).length,
    inProgress: jobs.filter((j) => j.snap !== null && RUNNING.includes(j.snap.state)).length,
  };
  const states = jobs.map((j) => `${j.id.slice(0, 8)}:${j.snap?.state}`).join(" ");
  expect({ inQueue: h.jobs.inQueue, inProgress: h.jobs.inProgress }, `[I6 /health counts] jobs: ${states}`).toEqual(want);
}

/** I7: every waiting job's `queue.reason` says why it waits, as the model sees the endpoint. */
export function queueReasonsAgree(w: World): void {
  const runningNow = running(w).length;
  for (const j of current(w)) {
    const s = j.snap;
    if (s === null || !WAITING.includes(s.state)) continue;
    if (s.state === "SEQUENCED") {
      expect(s.queueReason, `[I7 queue.reason] ${j.id} is SEQUENCED`).toBe("sequenced_behind");
      const ahead = current(w).find((a) => a.id === s.ahead);
      expect(ahead?.seq, `[I7 queue.reason] ${j.id} waits behind ${s.ahead}, a job of its sequence`).toBe(j.seq);
      continue;
    }
    // A job of a key at its cap waits for the key (an offer not yet claimed holds a slot too, so
    // a key below its cap in the model may still read key_concurrency for a moment).
    const keyFull = j.flow !== null && w.cfg.keyConcurrency !== null && (runningByKey(w).get(j.flow) ?? 0) >= w.cfg.keyConcurrency;
    if (keyFull) {
      expect(s.queueReason, `[I7 queue.reason] ${j.id} IN_QUEUE, its key '${j.flow}' at its cap`).toBe("key_concurrency");
      continue;
    }
    const capped = w.cfg.concurrency !== null && runningNow >= w.cfg.concurrency;
    // A job requiring tags, with workers alive, waits for one that declared them all (issue 15, item 3).
    const matched = j.tags === "" ? true : matchingWorkerAlive(w, j.tags);
    const busy = matched === null ? ["all_workers_busy", "no_matching_workers"] : [matched ? "all_workers_busy" : "no_matching_workers"];
    const want = capped ? ["concurrency_limit"] : w.aliveAtSnapshot === null ? [...busy, "no_workers"] : w.aliveAtSnapshot ? busy : ["no_workers"];
    expect([...want, ...(j.flow !== null ? ["key_concurrency"] : [])], `[I7 queue.reason] ${j.id} IN_QUEUE, ${runningNow} running`).toContain(s.queueReason);
  }
}

/** Every invariant that must hold between steps. */
export async function checkInvariants(w: World): Promise<void> {
  oneLiveAttempt(w);
  oneRunningPerSequence(w);
  capHolds(w);
  keyCapHolds(w);
  queueReasonsAgree(w);
  await healthAgrees(w);
}

/** The (state, attempt, retries) a step must leave unchanged. */
export const core = (j: MJob) => (j.snap === null ? null : { state: j.snap.state, attempt: j.snap.attempt, retries: j.snap.retries });
