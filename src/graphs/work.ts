/**
 * A job of tasks' alarm work, a time slice at a time (GRAPH.alarmSliceMs; then the alarm re-arms
 * at once, letting tells in between): creating ready tasks' jobs (GRAPH.createParallel at a time,
 * keeping at most GRAPH.createAhead of them waiting in the queue,
 * each round recorded in one transaction, so a crash resumes where it stopped and a task created
 * twice reaches the same job), and telling its tasks' jobs what the job wants of them now (pause,
 * resume, cancel: running ones are stopped through job-stop) and whom it blocklisted.
 */
import { submitJob } from "../flows/submit";
import { jobAt } from "../flows/stubs";
import type { JobChange } from "../jobs/job-object";
import type { TaskNote } from "../jobs/task-tell";
import type { SubmitBody } from "../jobs/policy";
import type { Clock } from "../shared/clock";
import { GRAPH, LIMITS } from "../shared/limits";
import { publicOrigin } from "../shared/urls";
import type { EndpointConfig } from "../endpoints/config";
import { taskObjectName, type GraphRecord, type TaskRow, type Want } from "./record";
import { addOrphans, countsByBucket, dropOrphan, loadGraph, orphans, markCreated, markTold, readyTasks, saveGraph, taskInput, tasksToTell, waitingCreated } from "./store";

/** How soon failed or unfinished work is tried again. */
export const RETRY_MS = 5_000;

export interface WorkHost {
  readonly sql: SqlStorage;
  readonly clock: Clock;
  transact<T>(fn: () => T): T;
  commit(g: GraphRecord, now: number, before?: GraphRecord | null): void;
  endpointFor(g: GraphRecord): { getConfig(): Promise<EndpointConfig | null> };
  /** A task's note takes effect (GraphObject.noteTask). */
  noteTask(name: string, note: TaskNote): void;
}

type Sweep = "done" | "more" | "later";

export async function runWork(o: WorkHost, env: Env): Promise<void> {
  const start = loadGraph(o.sql);
  if (!start) return;
  // Due again soon unless this run finishes its work: a crash in the middle is retried.
  o.transact(() => saveGraph(o.sql, { ...start, workDueAt: o.clock.now() + RETRY_MS }));
  const deadline = Date.now() + GRAPH.alarmSliceMs;
  const outcomes: Sweep[] = [await orphanSweep(o, env, start), await tellSweep(o, env, deadline)];
  const g = loadGraph(o.sql)!;
  if (g.want === "run" && (countsByBucket(o.sql).get("ready") ?? 0) > 0) outcomes.push(await createSweep(o, env, g, deadline));
  const now = o.clock.now();
  const after = loadGraph(o.sql)!;
  const pending = (after.want === "run" && (countsByBucket(o.sql).get("ready") ?? 0) > 0 && canCreate(o.sql, after)) || tasksToTell(o.sql, -1, 1).length > 0 || orphans(o.sql, 1).length > 0;
  const dueAt = outcomes.includes("later") ? now + RETRY_MS : outcomes.includes("more") || pending ? now : null;
  o.transact(() => saveGraph(o.sql, { ...loadGraph(o.sql)!, workDueAt: dueAt }));
}

/**
 * How many ready tasks may become jobs now: as many as keep at most GRAPH.createAhead of the job's
 * tasks waiting in the queue; a job of replicas creates the next replica only once every one
 * created before it started (so each is created knowing who took the others).
 */
function room(sql: SqlStorage, g: GraphRecord): number {
  const waiting = waitingCreated(sql);
  if (g.replicas !== null) return waiting === 0 ? 1 : 0;
  return Math.max(0, Math.min(GRAPH.createParallel, GRAPH.createAhead - waiting));
}

const canCreate = (sql: SqlStorage, g: GraphRecord) => room(sql, g) > 0;

/** The body a task's job is submitted with: the job's template, the task's input, tags and attempts (errors retried: soft-failed). */
function taskBody(g: GraphRecord, t: TaskRow): SubmitBody {
  const template = JSON.parse(g.template) as Pick<SubmitBody, "policy" | "priority" | "tags">;
  // A replica's job is tried once: another try is a fresh job its job of replicas creates (knowing every worker that took one).
  const maxAttempts = g.replicas === null ? (t.maxAttempts ?? template.policy?.maxAttempts ?? GRAPH.attempts) : 1;
  const policy = { ...template.policy, maxAttempts, retryOnError: g.replicas === null ? (template.policy?.retryOnError ?? true) : false };
  const tags = t.tags ?? template.tags;
  return { input: {}, policy, ...(template.priority === undefined ? {} : { priority: template.priority }), ...(tags === undefined ? {} : { tags }) };
}

async function createSweep(o: WorkHost, env: Env, g: GraphRecord, deadline: number): Promise<Sweep> {
  let config: EndpointConfig | null;
  try {
    config = await o.endpointFor(g).getConfig();
  } catch (e) {
    return creationFailed(o, `the endpoint could not be reached: ${String(e).slice(0, 200)}`);
  }
  if (config === null) {
    // The endpoint was deleted: its tasks' jobs end with it; nothing more is created, and the job ends (then its retention runs).
    o.transact(() => {
      const fresh = loadGraph(o.sql)!;
      o.commit({ ...fresh, want: "cancel" }, o.clock.now(), fresh);
    });
    return "done";
  }
  const pub = publicOrigin(env);
  if (config.mode === "push" && !pub.ok) return creationFailed(o, pub.reason);
  // Kept as long as any job: the job of tasks reads large outputs from its tasks' jobs.
  const kept = { ...config, retentionMs: LIMITS.retentionMs.max };
  while (Date.now() < deadline) {
    const cur = loadGraph(o.sql)!;
    const n = cur.want === "run" ? room(o.sql, cur) : 0;
    if (n === 0) return "done"; // the queue holds enough of this job's tasks: more as they start (taskChanged)
    const chunk = readyTasks(o.sql, n);
    if (chunk.length === 0) return "done";
    const results = await Promise.all(
      chunk.map(async (t) => {
        try {
          const r = await submitJob(env, kept, {
            kind: "run",
            body: taskBody(cur, t),
            input: taskInput(o.sql, t.idx),
            key: null,
            origin: pub.ok ? pub.origin : null,
            objectName: taskObjectName(cur.id, t.idx, cur.run, t.tries),
            task: { graphId: cur.id, name: t.name, blocked: cur.blocked, ...(cur.replicas === null ? {} : { busy: cur.busy }) },
          });
          if (!r.ok) return { t, error: "unexpected idempotency refusal" };
          // A job under another name than the row's (a requeue renamed it meanwhile): an orphan (markCreated).
          return { t, job: r.job };
        } catch (e) {
          return { t, error: String(e).slice(0, 300) };
        }
      }),
    );
    let failure: string | null = null;
    o.transact(() => {
      const fresh = loadGraph(o.sql)!;
      const lost: string[] = [];
      for (const r of results) {
        if ("job" in r && r.job) {
          // Created as `cur` was; what changed since (a cancel, a blocklist) is still to be told.
          const due = fresh.want !== "run" || fresh.blocked.length !== cur.blocked.length || fresh.busy.length !== cur.busy.length;
          if (markCreated(o.sql, r.t, r.job.state, r.job.version, { want: "run", blocked: cur.blocked.length, busy: cur.busy.length }, due) === "orphan") lost.push(r.job.id);
        } else failure ??= r.error ?? "unknown";
      }
      // Jobs nobody tracks (a requeue renamed their task, or it was canceled meanwhile): none may run (orphanSweep).
      addOrphans(o.sql, lost);
      o.commit({ ...fresh, createFailingSince: failure ? (fresh.createFailingSince ?? o.clock.now()) : null }, o.clock.now(), fresh);
    });
    if (failure !== null) return creationFailed(o, failure);
  }
  return "more";
}

/** Creating tasks' jobs failed: tried again later, until it has failed for GRAPH.createGiveUpMs, then the job FAILED. */
function creationFailed(o: WorkHost, why: string): Sweep {
  console.warn(`job of tasks: creating tasks' jobs failed: ${why}`);
  o.transact(() => {
    const g = loadGraph(o.sql)!;
    const now = o.clock.now();
    const since = g.createFailingSince ?? now;
    if (now - since < GRAPH.createGiveUpMs) {
      if (g.createFailingSince === null) saveGraph(o.sql, { ...g, createFailingSince: since });
      return;
    }
    o.commit({ ...g, want: "cancel", stopping: "failed", error: `its tasks' jobs could not be created for ${GRAPH.createGiveUpMs / 60_000} minutes: ${why.slice(0, 300)}` }, now, g);
  });
  return "later";
}

/** Cancels jobs no run tracks (see addOrphans); one that cannot be reached is tried again later. */
async function orphanSweep(o: WorkHost, env: Env, g: GraphRecord): Promise<Sweep> {
  const ids = orphans(o.sql, GRAPH.createParallel);
  if (ids.length === 0) return "done";
  const ref = { id: g.endpointId, generation: g.endpointGen };
  const done = await Promise.all(ids.map((id) => jobAt(env, id).cancel(ref).then(() => true, () => false)));
  o.transact(() => ids.forEach((id, i) => done[i] && dropOrphan(o.sql, id)));
  return done.every(Boolean) ? (orphans(o.sql, 1).length > 0 ? "more" : "done") : "later";
}

/** What a task's job is told next, one at a time: the job's want, then its blocklist, then who took other replicas. */
type Tell = { kind: "want"; want: Want } | { kind: "blocked" | "busy"; workers: string[] };

function nextTell(g: GraphRecord, t: TaskRow): Tell | null {
  if (t.told !== g.want) return { kind: "want", want: g.want };
  if (t.blockedTold < g.blocked.length) return { kind: "blocked", workers: g.blocked };
  if (t.busyTold < g.busy.length) return { kind: "busy", workers: g.busy };
  return null;
}

function tellCall(env: Env, g: GraphRecord, t: TaskRow, tell: Tell): Promise<JobChange> {
  const ref = { id: g.endpointId, generation: g.endpointGen };
  const job = jobAt(env, t.jobId);
  if (tell.kind !== "want") return job.blockForGraph(ref, tell.workers, tell.kind);
  return tell.want === "cancel" ? job.cancel(ref) : tell.want === "pause" ? job.pause(ref) : job.resume(ref);
}

/**
 * Tells unfinished tasks' jobs the job's want, blocklist and busy workers, a chunk at a time, one
 * thing per call (what is left stays due for the next round). An answer that shows the job ended
 * (a note of it missed) is taken as its note, so a task whose note was lost still settles.
 */
async function tellSweep(o: WorkHost, env: Env, deadline: number): Promise<Sweep> {
  let after = -1;
  let failed = false;
  while (Date.now() < deadline) {
    const g = loadGraph(o.sql)!;
    const rows = tasksToTell(o.sql, after, GRAPH.createParallel);
    if (rows.length === 0) return failed ? "later" : "done";
    after = rows.at(-1)!.idx;
    const results = await Promise.all(
      rows.map(async (t) => {
        const tell = nextTell(g, t);
        const now = { want: t.told, blocked: t.blockedTold, busy: t.busyTold };
        if (tell === null) return { t, ok: true as const, told: now, answer: null };
        try {
          const answer = await tellCall(env, g, t, tell);
          const told = {
            want: tell.kind === "want" ? tell.want : t.told,
            blocked: tell.kind === "blocked" ? g.blocked.length : t.blockedTold,
            busy: tell.kind === "busy" ? g.busy.length : t.busyTold,
          };
          return { t, ok: true as const, told, answer };
        } catch (e) {
          console.warn(`job of tasks ${g.id}: telling task ${t.name}'s job failed`, e);
          return { t, ok: false as const, told: now, answer: null };
        }
      }),
    );
    o.transact(() => {
      const fresh = loadGraph(o.sql)!;
      for (const r of results) {
        if (!r.ok) {
          failed = true;
          continue;
        }
        const complete = nextTell(fresh, { ...r.t, told: r.told.want, blockedTold: r.told.blocked, busyTold: r.told.busy }) === null;
        markTold(o.sql, r.t, r.told, complete);
      }
    });
    for (const r of results) {
      const note = r.ok ? noteFromAnswer(o, r.t, r.answer) : null;
      if (note) o.noteTask(r.t.name, note);
    }
  }
  return "more";
}

/**
 * A tell's answer that shows the task's job ended without its note reaching us (or gone), as its
 * note; null otherwise (a result's output is left to the job's own note, which its alarm tells again).
 */
function noteFromAnswer(o: WorkHost, t: TaskRow, answer: JobChange | null): TaskNote | null {
  if (answer === null) return null;
  const base = { output: null, outputBytes: 0, exitCode: null };
  if (!answer.ok && answer.code === "NOT_FOUND") {
    return { ...base, jobId: t.jobId, state: "CANCELLED", version: t.version + 1, startedAt: t.startedAt, completedAt: o.clock.now(), error: "its job is gone", workerId: t.workerId, attempt: t.attempt, failedWorkers: t.failedWorkers };
  }
  const job = "job" in answer ? answer.job : null;
  if (!job || job.id !== t.jobId || job.version <= t.version || !["FAILED", "CANCELLED", "TIMED_OUT"].includes(job.state)) return null;
  return { ...base, jobId: job.id, state: job.state, version: job.version, startedAt: job.startedAt, completedAt: job.completedAt, error: job.error, workerId: job.workerId, attempt: job.attempt, failedWorkers: job.failedWorkers };
}
