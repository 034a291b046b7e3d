/**
 * A job of tasks' alarm work, a time slice at a time (GRAPH.alarmSliceMs; then the alarm re-arms
 * at once, letting tells in between): creating ready tasks' jobs (GRAPH.createParallel at a time,
 * each round recorded in one transaction, so a crash resumes where it stopped and a task created
 * twice reaches the same job), and telling its tasks' jobs what the job wants of them now (pause,
 * resume, cancel: running ones are stopped through job-stop) and whom it blocklisted.
 */
import { submitJob } from "../flows/submit";
import { jobAt } from "../flows/stubs";
import type { JobChange } from "../jobs/job-object";
import type { SubmitBody } from "../jobs/policy";
import type { Clock } from "../shared/clock";
import { GRAPH, LIMITS } from "../shared/limits";
import { publicOrigin } from "../shared/urls";
import type { EndpointConfig } from "../endpoints/config";
import { taskObjectName, type GraphRecord, type TaskRow, type Want } from "./record";
import { cancelUncreated, countsByBucket, loadGraph, markCreated, markTold, readyTasks, saveGraph, taskInput, tasksToTell, waitingCreated } from "./store";

/** How soon failed or unfinished work is tried again. */
export const RETRY_MS = 5_000;

export interface WorkHost {
  readonly sql: SqlStorage;
  readonly clock: Clock;
  transact<T>(fn: () => T): T;
  commit(g: GraphRecord, now: number, before?: GraphRecord | null): void;
  endpointFor(g: GraphRecord): { getConfig(): Promise<EndpointConfig | null> };
}

type Sweep = "done" | "more" | "later";

export async function runWork(o: WorkHost, env: Env): Promise<void> {
  const start = loadGraph(o.sql);
  if (!start) return;
  // Due again soon unless this run finishes its work: a crash in the middle is retried.
  o.transact(() => saveGraph(o.sql, { ...start, workDueAt: o.clock.now() + RETRY_MS }));
  const deadline = Date.now() + GRAPH.alarmSliceMs;
  const outcomes: Sweep[] = [await tellSweep(o, env, deadline)];
  const g = loadGraph(o.sql)!;
  if (g.want === "run" && (countsByBucket(o.sql).get("ready") ?? 0) > 0) outcomes.push(await createSweep(o, env, g, deadline));
  const now = o.clock.now();
  const after = loadGraph(o.sql)!;
  const pending = (after.want === "run" && (countsByBucket(o.sql).get("ready") ?? 0) > 0 && canCreate(o.sql, after)) || tasksToTell(o.sql, after.want, after.blocked.length, after.busy.length, -1, 1).length > 0;
  const dueAt = outcomes.includes("later") ? now + RETRY_MS : outcomes.includes("more") || pending ? now : null;
  o.transact(() => saveGraph(o.sql, { ...loadGraph(o.sql)!, workDueAt: dueAt }));
}

/** A job of replicas creates the next replica only once every one created before it started (so each is created knowing who took the others). */
function canCreate(sql: SqlStorage, g: GraphRecord): boolean {
  return g.replicas === null || waitingCreated(sql) === 0;
}

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
      cancelUncreated(o.sql);
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
    if (cur.want !== "run" || !canCreate(o.sql, cur)) return "done";
    const chunk = readyTasks(o.sql, cur.replicas === null ? GRAPH.createParallel : 1);
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
          if (!r.ok || r.job.id !== t.jobId) return { t, error: `created job ${r.ok ? r.job.id : "?"}, expected ${t.jobId}` };
          return { t, job: r.job };
        } catch (e) {
          return { t, error: String(e).slice(0, 300) };
        }
      }),
    );
    let failure: string | null = null;
    const orphans: string[] = [];
    o.transact(() => {
      const fresh = loadGraph(o.sql)!;
      for (const r of results) {
        if ("job" in r && r.job) {
          if (!markCreated(o.sql, r.t, r.job.state, r.job.version, { want: "run", blocked: cur.blocked.length, busy: cur.busy.length })) orphans.push(r.job.id);
        } else failure ??= r.error ?? "unknown";
      }
      o.commit({ ...fresh, createFailingSince: failure ? (fresh.createFailingSince ?? o.clock.now()) : null }, o.clock.now(), fresh);
    });
    // Jobs created for a run a requeue ended meanwhile: nobody hears from them, so none may run.
    const ref = { id: cur.endpointId, generation: cur.endpointGen };
    await Promise.allSettled(orphans.map((jobId) => jobAt(env, jobId).cancel(ref)));
    if (failure !== null) return creationFailed(o, failure);
  }
  return "more";
}

function creationFailed(o: WorkHost, why: string): Sweep {
  console.warn(`job of tasks: creating tasks' jobs failed: ${why}`);
  return "later";
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

/** Tells unfinished tasks' jobs the job's want and blocklist, a chunk at a time; each task once per change. */
async function tellSweep(o: WorkHost, env: Env, deadline: number): Promise<Sweep> {
  let after = -1;
  let failed = false;
  while (Date.now() < deadline) {
    const g = loadGraph(o.sql)!;
    const rows = tasksToTell(o.sql, g.want, g.blocked.length, g.busy.length, after, GRAPH.createParallel);
    if (rows.length === 0) return failed ? "later" : "done";
    after = rows.at(-1)!.idx;
    const results = await Promise.all(
      rows.map(async (t) => {
        const tell = nextTell(g, t);
        if (tell === null) return { t, ok: true, told: { want: t.told, blocked: t.blockedTold, busy: t.busyTold } };
        try {
          // One thing per round (the next round tells the rest): the want, the blocklist, the busy workers.
          await tellCall(env, g, t, tell);
          const told = {
            want: tell.kind === "want" ? tell.want : t.told,
            blocked: tell.kind === "blocked" ? g.blocked.length : t.blockedTold,
            busy: tell.kind === "busy" ? g.busy.length : t.busyTold,
          };
          return { t, ok: true, told };
        } catch (e) {
          console.warn(`job of tasks ${g.id}: telling task ${t.name}'s job failed`, e);
          return { t, ok: false, told: null };
        }
      }),
    );
    o.transact(() => {
      for (const r of results) {
        if (r.ok && r.told) markTold(o.sql, r.t.idx, r.told);
        else failed = true;
      }
    });
  }
  return "more";
}
