/**
 * A job of tasks' state, derived from its tasks' counts (never stored apart from them), and the
 * user commands on it as named transitions of its record. Plain data in, plain data out.
 */
import type { JobState } from "../jobs/states";
import { taskCounts, type Bucket, type GraphRecord } from "./record";

/** The states a job of tasks goes through, in the job vocabulary (clients read clientStatus of it). */
export type GraphState = Extract<JobState, "IN_QUEUE" | "PAUSED" | "IN_PROGRESS" | "CANCELLING" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT">;

export const isGraphFinished = (s: GraphState) => s === "COMPLETED" || s === "FAILED" || s === "CANCELLED" || s === "TIMED_OUT";

/**
 * The job's state: finished once nothing can progress (no task's job unfinished, and no ready task
 * to create unless cancelled); then FAILED when a task failed, CANCELLED when one was canceled or
 * the job was, COMPLETED otherwise. A task waiting on a failed one never runs: it stays queued
 * (`waiting_for` names it) until a requeue.
 *
 * A job of replicas (`started`: how many of its replicas started) is IN_QUEUE until all started
 * (UCloud's), and while it stops its replicas after one failed or its time ran out it reads as
 * before; it ends FAILED or TIMED_OUT.
 */
export function graphState(g: Pick<GraphRecord, "want" | "startedAt" | "replicas" | "stopping">, counts: ReadonlyMap<Bucket, number>, started = 0): GraphState {
  const n = (b: Bucket) => counts.get(b) ?? 0;
  const unfinished = n("queued") + n("soft-failed") + n("paused") + n("active");
  if (unfinished === 0 && (n("ready") === 0 || g.want === "cancel")) {
    if (g.stopping === "timed_out") return "TIMED_OUT";
    if (n("failed") > 0 || g.stopping === "failed") return "FAILED";
    if (n("canceled") > 0) return "CANCELLED";
    // A cancel that found every task completed (their notes came late) cancelled nothing: COMPLETED (found by the model).
    return g.want === "cancel" && n("completed") < taskCounts(counts).total ? "CANCELLED" : "COMPLETED";
  }
  if (g.want === "cancel" && g.stopping === null) return "CANCELLING";
  // Stopping its tasks' jobs after a failure or its timeout: it ran, and ends FAILED or TIMED_OUT.
  if (g.stopping !== null) return "IN_PROGRESS";
  if (g.want === "pause" && n("active") === 0) return "PAUSED";
  if (g.replicas !== null) return started >= g.replicas ? "IN_PROGRESS" : "IN_QUEUE";
  return g.startedAt !== null || n("active") > 0 ? "IN_PROGRESS" : "IN_QUEUE";
}

export type GraphChange = { ok: true; graph: GraphRecord } | { ok: false; code: "WRONG_STATE"; message: string };

const refuse = (command: string, state: GraphState, why = ""): GraphChange => ({ ok: false, code: "WRONG_STATE", message: `cannot ${command} a job of tasks that is ${state}${why}` });

/** Cancel: tasks not yet handed out are canceled, running ones are stopped (job-stop); then CANCELLED. */
export function cancel(g: GraphRecord, state: GraphState): GraphChange {
  if (g.want === "cancel" && (state === "CANCELLING" || state === "CANCELLED")) return { ok: true, graph: g };
  if (isGraphFinished(state)) return refuse("cancel", state);
  // A job of replicas stopping after a failure or its timeout is cancelled by its user now.
  return { ok: true, graph: { ...g, want: "cancel", stopping: null } };
}

/** Pause (Flamenco's): no task is handed out; running ones finish; waiting ones wait paused. */
export function pause(g: GraphRecord, state: GraphState): GraphChange {
  // A finished job cannot be paused, though it was paused before it finished (found by the endpoint model).
  if (isGraphFinished(state) || g.want === "cancel") return refuse("pause", state);
  if (g.want === "pause") return { ok: true, graph: g };
  return { ok: true, graph: { ...g, want: "pause" } };
}

/** Resume; a job that is not paused (finished ones too) is left as it is, as a plain job's resume does. */
export function resume(g: GraphRecord, _state: GraphState): GraphChange {
  if (g.want !== "pause") return { ok: true, graph: g };
  return { ok: true, graph: { ...g, want: "run" } };
}

/**
 * Requeue (Flamenco's): a FAILED or CANCELLED job runs its tasks that did not complete again (the
 * store gives them fresh jobs); completed ones are kept. Its blocklist starts over.
 */
export function requeue(g: GraphRecord, state: GraphState): GraphChange {
  if (!isGraphFinished(state)) return refuse("requeue", state, ": requeue runs a finished job's unfinished tasks again");
  if (state === "COMPLETED" && g.replicas === null) return refuse("requeue", state, ": every task completed");
  return { ok: true, graph: { ...g, want: "run", run: g.run + 1, blocked: [], busy: [], stopping: null, deadlineAt: null, startedAt: null, completedAt: null, error: null } };
}

/** A replica failed for good: the job stops the others and ends FAILED (UCloud's; a replica's own attempts come first). */
export function replicaFailed(g: GraphRecord): GraphRecord {
  return g.replicas === null || g.want === "cancel" ? g : { ...g, want: "cancel", stopping: "failed" };
}

/** The whole job's time ran out (replicas: executionTimeout from the first start): it stops them and ends TIMED_OUT. */
export function timedOut(g: GraphRecord, now: number, finished: boolean): GraphRecord {
  if (finished || g.deadlineAt === null || now < g.deadlineAt || g.stopping === "timed_out") return g;
  return { ...g, want: "cancel", stopping: "timed_out", error: `execution_timeout: the job's replicas ran longer than its executionTimeout (${g.executionTimeout} ms)` };
}
