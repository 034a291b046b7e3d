/**
 * A job of tasks' state, derived from its tasks' counts (never stored apart from them), and the
 * user commands on it as named transitions of its record. Plain data in, plain data out.
 */
import type { JobState } from "../jobs/states";
import type { Bucket, GraphRecord } from "./record";

/** The states a job of tasks goes through, in the job vocabulary (clients read clientStatus of it). */
export type GraphState = Extract<JobState, "IN_QUEUE" | "PAUSED" | "IN_PROGRESS" | "CANCELLING" | "COMPLETED" | "FAILED" | "CANCELLED">;

export const isGraphFinished = (s: GraphState) => s === "COMPLETED" || s === "FAILED" || s === "CANCELLED";

/**
 * The job's state: finished once nothing can progress (no task's job unfinished, and no ready task
 * to create unless cancelled); then FAILED when a task failed, CANCELLED when one was canceled or
 * the job was, COMPLETED otherwise. A task waiting on a failed one never runs: it stays queued
 * (`waiting_for` names it) until a requeue.
 */
export function graphState(g: Pick<GraphRecord, "want" | "startedAt">, counts: ReadonlyMap<Bucket, number>): GraphState {
  const n = (b: Bucket) => counts.get(b) ?? 0;
  const unfinished = n("queued") + n("soft-failed") + n("paused") + n("active");
  if (unfinished === 0 && (n("ready") === 0 || g.want === "cancel")) {
    if (n("failed") > 0) return "FAILED";
    return n("canceled") > 0 || g.want === "cancel" ? "CANCELLED" : "COMPLETED";
  }
  if (g.want === "cancel") return "CANCELLING";
  if (g.want === "pause" && n("active") === 0) return "PAUSED";
  return g.startedAt !== null || n("active") > 0 ? "IN_PROGRESS" : "IN_QUEUE";
}

export type GraphChange = { ok: true; graph: GraphRecord } | { ok: false; code: "WRONG_STATE"; message: string };

const refuse = (command: string, state: GraphState, why = ""): GraphChange => ({ ok: false, code: "WRONG_STATE", message: `cannot ${command} a job of tasks that is ${state}${why}` });

/** Cancel: tasks not yet handed out are canceled, running ones are stopped (job-stop); then CANCELLED. */
export function cancel(g: GraphRecord, state: GraphState): GraphChange {
  if (g.want === "cancel" && (state === "CANCELLING" || state === "CANCELLED")) return { ok: true, graph: g };
  if (isGraphFinished(state)) return refuse("cancel", state);
  return { ok: true, graph: { ...g, want: "cancel" } };
}

/** Pause (Flamenco's): no task is handed out; running ones finish; waiting ones wait paused. */
export function pause(g: GraphRecord, state: GraphState): GraphChange {
  if (g.want === "pause") return { ok: true, graph: g };
  if (isGraphFinished(state) || g.want === "cancel") return refuse("pause", state);
  return { ok: true, graph: { ...g, want: "pause" } };
}

export function resume(g: GraphRecord, state: GraphState): GraphChange {
  if (g.want !== "pause") return isGraphFinished(state) || g.want === "cancel" ? refuse("resume", state) : { ok: true, graph: g };
  return { ok: true, graph: { ...g, want: "run" } };
}

/**
 * Requeue (Flamenco's): a FAILED or CANCELLED job runs its tasks that did not complete again (the
 * store gives them fresh jobs); completed ones are kept. Its blocklist starts over.
 */
export function requeue(g: GraphRecord, state: GraphState): GraphChange {
  if (!isGraphFinished(state)) return refuse("requeue", state, ": requeue runs a finished job's unfinished tasks again");
  if (state === "COMPLETED") return refuse("requeue", state, ": every task completed");
  return { ok: true, graph: { ...g, want: "run", run: g.run + 1, blocked: [], startedAt: null, completedAt: null, error: null } };
}
