/**
 * A job of tasks as clients read it: /status's fields in RunPod's vocabulary (the state, with
 * `tasks` counts by Flamenco's task states, the blocklist, the outputs by name spliced in), and a
 * task as GET /tasks/{id} lists it.
 */
import { clientStatus } from "../jobs/states";
import { arrayPieces, joinPieces, objectPieces } from "../shared/pieces";
import type { GraphState } from "./commands";
import { taskStateOf, type GraphRecord, type TaskCounts, type TaskRow } from "./record";

export interface GraphRead {
  graph: GraphRecord;
  state: GraphState;
  tasks: TaskCounts;
  /** A job of replicas: how many were asked for, started, completed, and each one's exit code. */
  replicas: { requested: number; started: number; completed: number; exitCodes: (number | null)[] } | null;
  /** Workers blocklisted from every task, with the tasks they failed. */
  blocklisted: { workerId: string; failedTasks: number }[];
  /** COMPLETED: `{"name": output, …}` as bytes, when small enough (else null and outputsTooLarge). */
  output: Uint8Array | null;
  outputsTooLarge: boolean;
}

/** A task as listed: its row with its dependencies' names, those not completed, and its output when read. */
export interface TaskView extends TaskRow {
  dependsOn: string[];
  waitingFor: string[];
  output: Uint8Array | null;
}

const iso = (t: number | null) => (t === null ? undefined : new Date(t).toISOString());

/** /status's fields of a job of tasks (the output is spliced in from its bytes by the route). */
export function graphFields(r: GraphRead, now = Date.now()): Record<string, unknown> {
  const g = r.graph;
  const body: Record<string, unknown> = { id: g.id, status: clientStatus(r.state) };
  if (g.startedAt !== null) {
    body.delayTime = g.startedAt - g.createdAt;
    body.executionTime = (g.completedAt ?? now) - g.startedAt;
  }
  if (g.error !== null && (r.state === "FAILED" || r.state === "TIMED_OUT" || r.state === "COMPLETED")) body.error = g.error;
  // A task ran with errors (ERROR): the job reads COMPLETED with `error`, as a job with errors does.
  if (g.error !== null && r.state === "COMPLETED") body.outcome = "error";
  if (g.want === "pause") body.paused = true;
  if (r.state === "PAUSED") body.queue = { position: null, reason: "job_paused" };
  else if (r.replicas !== null && r.state === "IN_QUEUE") body.queue = { position: null, reason: "replicas_starting" };
  if (r.state === "TIMED_OUT") body.reason = "execution_timeout";
  if (r.replicas !== null) {
    const { exitCodes, ...counts } = r.replicas;
    body.replicas = { ...counts, ...(exitCodes.some((c) => c !== null) ? { exitCodes } : {}) };
  }
  body.tasks = r.tasks;
  if (r.blocklisted.length > 0) body.blocklisted = r.blocklisted;
  if (r.outputsTooLarge) body.outputs = `the tasks' outputs are too large to show here: read them with GET /v2/${g.endpointId}/tasks/${g.id}`;
  body.createdAt = iso(g.createdAt);
  body.startedAt = iso(g.startedAt);
  body.completedAt = iso(g.completedAt);
  return body;
}

/** A task as GET /tasks/{id} lists it (its output spliced in by the route). */
export function taskFields(t: TaskView): Record<string, unknown> {
  return {
    name: t.name,
    state: taskStateOf(t.bucket),
    jobId: t.created ? t.jobId : null,
    attempts: t.attempt,
    workerId: t.workerId,
    dependsOn: t.dependsOn,
    ...(t.waitingFor.length > 0 && t.bucket === "blocked" ? { waiting_for: t.waitingFor } : {}),
    ...(t.tags !== null ? { tags: t.tags } : {}),
    ...(t.error !== null ? { error: t.error } : {}),
    ...(t.jobState === "ERROR" ? { outcome: "error" } : {}),
    ...(t.exitCode !== null ? { exitCode: t.exitCode } : {}),
    ...(t.failedWorkers.length > 0 ? { failedWorkers: t.failedWorkers } : {}),
    startedAt: iso(t.startedAt) ?? null,
    completedAt: iso(t.completedAt) ?? null,
  };
}

const NULL = new TextEncoder().encode("null");

/** `[<output>, …]` as bytes: a job of replicas' outputs in replica order. */
export const encodeList = (outputs: (Uint8Array | null)[]) => joinPieces(arrayPieces(outputs.map((out) => [out ?? NULL])));

/** `{"name": <output>, …}` as bytes: each output as its worker sent it (null when it sent none). */
export const encodeOutputs = (outputs: Map<string, Uint8Array | null>) => joinPieces(objectPieces({}, [...outputs].map(([name, out]) => [name, out ?? NULL] as const)));
