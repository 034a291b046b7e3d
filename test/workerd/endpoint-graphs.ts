/**
 * Jobs of tasks and of replicas in the endpoint-level model (issue 15, items 1 and 4): what the
 * model knows of each, how it lets a job of tasks do its work between steps, how it finds the
 * tasks' jobs the work created, and the invariants that span a job of tasks and its tasks' jobs.
 *
 * A job of tasks works on its own: a note from a task's job starts its work at once (kick), the
 * alarm being the backstop. The model holds that start back (endpoint-model.test.ts stubs kick)
 * and runs the work itself at the end of each step (driveGraphs), so what a step checks is the
 * step's own effect, and what the job of tasks does in reply comes after it, as a slow alarm would
 * make it come in production. Its tasks' jobs are then ordinary jobs of the model (MJob.task):
 * taken, reported, lost, cancelled and timed out by the same commands as plain jobs, under the
 * same invariants (one live attempt, the cap, /health counts, stops owed once).
 */
import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { GraphObject } from "../../src/graphs/graph-object";
import { loadGraph } from "../../src/graphs/store";
import { LIMITS } from "../../src/shared/limits";
import { call, json } from "./helpers";
import { graphStub, newJob, type MJob, type World } from "./endpoint-world";

export interface MGraph {
  id: string;
  gen: number;
  /** Replicas asked for (null: a job of tasks). */
  replicas: number | null;
  /** Each task's dependencies by name, in submit order. */
  deps: Map<string, string[]>;
  /** What it was submitted with beside its tasks (its tasks' jobs carry them). */
  priority: number;
  tags: string[] | null;
  /** Each task's attempts (its maxAttempts, else 3: GRAPH.attempts). */
  attempts: Map<string, number>;
  /** Each task's job in the current run as GET /tasks lists it (null: not created), and its listed state. */
  current: Map<string, string | null>;
  listed: Map<string, string>;
  /** Requeues it accepted (a new run each). */
  run: number;
  /** Jobs of each task ever read COMPLETED (0 duplicated: never two), per run for replicas (a requeue runs them all again). */
  completedJobs: Map<string, Set<string>>;
  /** Replicas: the workers handed one in the current run (none may get another). */
  took: Set<string>;
  /** Workers it blocklisted, as /status last named them. */
  blocked: string[];
  /** /status as last read (null: not yet). */
  status: Record<string, any> | null;
  gone: boolean;
  finishedSince: number | null;
}

const FINISHED = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
/** A task's listed state for its job's state (src/graphs/record.ts bucketOfJob). */
const BUCKET: Record<string, string[]> = {
  IN_QUEUE: ["queued", "soft-failed"], SEQUENCED: ["queued", "soft-failed"], PAUSED: ["paused"], IN_PROGRESS: ["active"], CANCELLING: ["active"],
  COMPLETED: ["completed"], FAILED: ["failed"], TIMED_OUT: ["failed"], CANCELLED: ["canceled"],
};

/** What the random runs did with jobs of tasks (printed by the model, so a run shows it reached them). */
export const graphStats = { graphs: 0, taken: 0, completed: 0, finished: 0 };

export const currentGraphs = (w: World) => w.graphs.filter((g) => g.gen === w.gen && !g.gone);
export const graphOf = (w: World, j: MJob) => (j.task === null ? undefined : w.graphs.find((g) => g.id === j.task!.graph));
const jobById = (w: World, id: string | null | undefined) => (id ? w.jobs.find((j) => j.id === id && !j.gone) : undefined);

export function newGraph(w: World, id: string, tasks: Array<{ name: string; dependsOn: string[]; maxAttempts?: number }>, replicas: number | null, priority: number, tags: string[] | null): MGraph {
  const g: MGraph = {
    id, gen: w.gen, replicas, priority, tags, deps: new Map(tasks.map((t) => [t.name, t.dependsOn])), attempts: new Map(tasks.map((t) => [t.name, t.maxAttempts ?? 3])),
    current: new Map(tasks.map((t) => [t.name, null])), listed: new Map(), run: 0, completedJobs: new Map(), took: new Set(), blocked: [], status: null, gone: false, finishedSince: null,
  };
  w.graphs.push(g);
  graphStats.graphs += 1;
  return g;
}

/** Runs the work each job of tasks has due (creating, telling, cancelling its tasks' jobs) until none is due. */
export async function driveGraphs(w: World): Promise<void> {
  for (const g of w.graphs.filter((x) => !x.gone)) {
    await runInDurableObject(graphStub(g.id), async (o: GraphObject) => {
      for (let round = 0; round < 10; round++) {
        const r = loadGraph(o.sql);
        if (!r || r.workDueAt === null || r.workDueAt > o.clock.now()) return;
        await o.work();
      }
      throw new Error(`job of tasks ${g.id}: its work is still due after 10 runs`);
    });
  }
}

/**
 * Reads every job of tasks' /status and GET /tasks, and registers the tasks' jobs its work created
 * (checking that each was created only once every task it depends on completed).
 */
export async function readGraphs(w: World): Promise<void> {
  for (const g of currentGraphs(w)) {
    const res = await call("GET", `/v2/${w.ep}/status/${g.id}`, { key: w.clientKey });
    if (res.status === 404) {
      await res.body?.cancel();
      expect(g.finishedSince !== null && w.now >= g.finishedSince + w.cfg.retentionMs, `job of tasks ${g.id} (${g.status?.status}) answered 404 before its retention ended: lost`).toBe(true);
      g.gone = true;
      continue;
    }
    expect(res.status, `status of ${g.id}`).toBe(200);
    g.status = await json<Record<string, any>>(res);
    const finished = FINISHED.includes(g.status.status);
    if (finished && g.finishedSince === null) {
      g.finishedSince = w.now;
      graphStats.finished += 1;
    }
    if (!finished) g.finishedSince = null;
    g.blocked = ((g.status.blocklisted ?? []) as Array<{ workerId: string }>).map((b) => b.workerId);
    const listing = await json<{ tasks: Array<{ name: string; state: string; jobId: string | null; waiting_for?: string[] }> }>(await call("GET", `/v2/${w.ep}/tasks/${g.id}?limit=100`, { key: w.clientKey }));
    for (const t of listing.tasks) {
      const was = g.current.get(t.name);
      g.current.set(t.name, t.jobId);
      g.listed.set(t.name, t.state);
      if (t.jobId === null || t.jobId === was || w.jobs.some((j) => j.id === t.jobId && !j.gone)) continue;
      // A task's new job: for a job of tasks, every task it depends on completed first (issue 15, item 1).
      const notDone = g.deps.get(t.name)!.filter((d) => jobById(w, g.current.get(d))?.snap?.state !== "COMPLETED");
      expect(notDone, `[G2 dependencies] ${g.id}: task ${t.name} got a job while ${notDone} had not completed`).toEqual([]);
      const replica = g.replicas !== null;
      newJob(w, t.jobId, { input: {}, priority: g.priority, ...(g.tags ? { tags: g.tags } : {}) }, null, {
        task: { graph: g.id, name: t.name, run: g.run }, maxAttempts: replica ? 1 : g.attempts.get(t.name)!, retryOnError: !replica, retentionMs: LIMITS.retentionMs.max,
      });
    }
  }
}

/** Invariants spanning each job of tasks and its tasks' jobs (after its work ran and every job was read). */
export function graphsAgree(w: World): void {
  for (const g of currentGraphs(w)) {
    const s = g.status!;
    const jobOf = (name: string) => jobById(w, g.current.get(name));
    const states = [...g.deps.keys()].map((n) => `${n}:${g.listed.get(n)}/${jobOf(n)?.snap?.state ?? "-"}`).join(" ");
    const ctx = `${g.id.slice(0, 14)} ${s.status} [${states}]`;
    const tally = new Map<string, number>();
    for (const [name] of g.deps) {
      const listed = g.listed.get(name)!;
      tally.set(listed, (tally.get(listed) ?? 0) + 1);
      const j = jobOf(name);
      // G1: each task reads as its job's state (index vs jobs: the job of tasks is told of every change).
      if (j?.snap) expect(BUCKET[j.snap.state], `[G1 task vs its job] ${name} reads ${listed}, its job ${j.snap.state}: ${ctx}`).toContain(listed);
      else if (g.current.get(name) === null) expect(["queued", "canceled"], `[G1] ${name} has no job yet: ${ctx}`).toContain(listed);
      for (const x of w.jobs.filter((x) => x.task?.graph === g.id && x.task.name === name && x.snap?.state === "COMPLETED")) {
        const key = g.replicas === null ? name : `${name} (run ${x.task!.run})`;
        const done = g.completedJobs.get(key) ?? new Set();
        if (!done.has(x.id)) graphStats.completed += 1;
        g.completedJobs.set(key, done.add(x.id));
      }
    }
    // G3: 0 duplicated: a task completes once (a requeue runs only the tasks that did not; a job of replicas' requeue runs them all).
    for (const [key, done] of g.completedJobs) expect([...done], `[G3 duplicated] ${key} completed by two jobs: ${ctx}`).toHaveLength(1);
    const counts = s.tasks as Record<string, number>;
    for (const st of ["queued", "soft-failed", "paused", "active", "completed", "failed", "canceled"]) expect(counts[st] ?? 0, `[G1 counts] ${st}: ${ctx}`).toBe(tally.get(st) ?? 0);
    expect(counts.total, `[G1 counts] total: ${ctx}`).toBe(g.deps.size);
    const all = [...g.deps.keys()];
    const completed = all.filter((n) => jobOf(n)?.snap?.state === "COMPLETED");
    // G4: the job's state is its tasks' (COMPLETED iff every task completed; FAILED with a failed task or replica).
    if (s.status === "COMPLETED") expect(completed, `[G4] COMPLETED with unfinished tasks (lost): ${ctx}`).toEqual(all);
    if (completed.length === all.length) expect(s.status, `[G4] every task completed: ${ctx}`).toBe("COMPLETED");
    if (s.status === "FAILED" && g.replicas === null) expect(tally.get("failed") ?? 0, `[G4] FAILED without a failed task: ${ctx}`).toBeGreaterThan(0);
    // Replicas, by their jobs' own states: IN_PROGRESS only once every replica's job started, IN_QUEUE
    // while one has not (a job stopping its replicas after a failure or its timeout reads IN_PROGRESS: not checked).
    // (A replica's job cancelled on its own before it started never started: found by the model, seed 320291.)
    const started = all.filter((n) => (jobOf(n)?.snap?.startedAt ?? null) !== null).length;
    const stopping = (tally.get("failed") ?? 0) + (tally.get("canceled") ?? 0) > 0;
    if (g.replicas !== null && s.status === "IN_PROGRESS" && !stopping) expect(started, `[G4 replicas] IN_PROGRESS before every replica's job started: ${ctx}`).toBe(g.replicas);
    if (g.replicas !== null && s.status === "IN_QUEUE") expect(started, `[G4 replicas] IN_QUEUE though every replica's job started: ${ctx}`).toBeLessThan(g.replicas);
    // G5: 0 lost: once its work ran, a running job of tasks has a job for every task that may run.
    if (s.status !== "IN_QUEUE" && s.status !== "IN_PROGRESS") continue;
    if (s.paused === true) continue;
    const waitingReplica = g.replicas !== null && all.some((n) => jobOf(n)?.snap?.state === "IN_QUEUE");
    for (const name of all.filter((n) => g.current.get(n) === null)) {
      const waitsOn = g.deps.get(name)!.filter((d) => jobOf(d)?.snap?.state !== "COMPLETED");
      expect(waitsOn.length > 0 || waitingReplica, `[G5 lost] ${name} may run but has no job after the work ran: ${ctx}`).toBe(true);
    }
  }
}

/** At a take of a task's job: its dependencies completed, the worker not blocklisted, no second replica for one worker. */
export function checkTaskTake(w: World, j: MJob, worker: string): void {
  const g = graphOf(w, j);
  if (!g) return;
  const notDone = g.deps.get(j.task!.name)!.filter((d) => jobById(w, g.current.get(d))?.snap?.state !== "COMPLETED");
  expect(notDone, `[G2 dependencies] ${j.task!.name} handed to ${worker} before ${notDone} completed`).toEqual([]);
  graphStats.taken += 1;
  expect(g.blocked, `[G6 blocklist] ${j.task!.name} of ${g.id} handed to ${worker}, blocklisted from it`).not.toContain(worker);
  if (g.replicas !== null) {
    expect(g.took.has(worker), `[G6 replicas] ${worker} handed ${j.task!.name} after another replica of ${g.id}`).toBe(false);
    g.took.add(worker);
  }
}

/** May `worker` be handed the waiting task's job `j` (not blocklisted from its job of tasks, no replica of it already)? */
export function graphAllows(w: World, j: MJob, worker: string): boolean {
  const g = graphOf(w, j);
  if (!g) return true;
  return !g.blocked.includes(worker) && !(g.replicas !== null && g.took.has(worker));
}
