/**
 * The named transitions of a job, as pure functions of (record, arguments, now).
 *
 * Each command checks the state it acts on, moves the job through the one transition table and
 * returns a typed result: `ok: true` with the new record (and what to do with the stored output),
 * or `ok: false` with a conflict code for expected refusals. A command never throws for a
 * conflict; it throws only when the code asks for an edge the table forbids (a bug).
 * The job object runs each command inside one storage transaction.
 */
import type { EndReason, HistoryEvent, JobKind, JobPolicy, JobRecord } from "./record";
import { canTransition, isTerminal, isWaiting, type JobState } from "./states";

export type ConflictCode =
  /** The job is not in a state this command acts on. */
  | "WRONG_STATE"
  /** The report comes from a worker that does not hold the current lease. */
  | "NOT_LEASE_HOLDER"
  /** Nothing is due yet (an early or duplicate alarm). */
  | "NOT_DUE";

/** What the command does to the stored output blob. */
export type OutputChange = "keep" | "set" | "clear";

export type CommandResult =
  | { ok: true; job: JobRecord; output: OutputChange; event: HistoryEvent | null }
  | { ok: false; code: ConflictCode; job: JobRecord; message: string };

export interface SubmitInit {
  id: string;
  endpointId: string;
  kind: JobKind;
  policy: JobPolicy;
  webhook: string | null;
}

/** Creates the record of a freshly submitted job, waiting in the queue. */
export function submit(init: SubmitInit, now: number): JobRecord {
  return {
    ...init,
    state: "IN_QUEUE",
    version: 1,
    attempt: 0,
    retries: 0,
    workerId: null,
    error: null,
    reason: null,
    hasOutput: false,
    createdAt: now,
    queuedAt: now,
    startedAt: null,
    completedAt: null,
    ttlAt: now + init.policy.ttl,
    execDeadline: null,
    cancelDeadline: null,
    purgeAt: null,
  };
}

function conflict(job: JobRecord, code: ConflictCode, message: string): CommandResult {
  return { ok: false, code, job, message };
}

function wrongState(job: JobRecord, command: string): CommandResult {
  return conflict(job, "WRONG_STATE", `cannot ${command} a job that is ${job.state}`);
}

/**
 * Moves `job` to `to` through the transition table, applying `patch`. Entering a terminal state
 * stamps completedAt and the retention deadline; leaving one clears them.
 */
function moveTo(
  job: JobRecord,
  to: JobState,
  command: string,
  now: number,
  patch: Partial<JobRecord>,
  output: OutputChange,
  detail: string | null = null,
): CommandResult {
  if (!canTransition(job.state, to)) {
    throw new Error(`transition table forbids ${job.state} -> ${to} (${command})`);
  }
  let next: JobRecord = { ...job, ...patch, state: to, version: job.version + 1 };
  if (isTerminal(to)) {
    next = {
      ...next,
      completedAt: now,
      execDeadline: null,
      cancelDeadline: null,
      purgeAt: now + job.policy.retentionMs,
    };
  }
  if (output === "set") next.hasOutput = true;
  if (output === "clear") next.hasOutput = false;
  const event: HistoryEvent = {
    at: now,
    command,
    from: job.state,
    to,
    attempt: next.attempt,
    workerId: next.workerId,
    detail,
  };
  return { ok: true, job: next, output, event };
}

function unchanged(job: JobRecord): CommandResult {
  return { ok: true, job, output: "keep", event: null };
}

/** IN_QUEUE → IN_PROGRESS: grants attempt n+1 to `workerId` and starts the execution clock. */
export function claim(job: JobRecord, workerId: string, now: number): CommandResult {
  if (job.state !== "IN_QUEUE") return wrongState(job, "claim");
  return moveTo(
    job,
    "IN_PROGRESS",
    "claim",
    now,
    {
      attempt: job.attempt + 1,
      workerId,
      startedAt: now,
      execDeadline: now + job.policy.executionTimeout,
    },
    "keep",
  );
}

/** Is `workerId` the holder of the lease on the current attempt? */
function holdsLease(job: JobRecord, workerId: string): boolean {
  return job.workerId === workerId && (job.state === "IN_PROGRESS" || job.state === "CANCELLING");
}

function refuseReport(job: JobRecord, workerId: string, command: string): CommandResult {
  if (job.workerId !== workerId) {
    return conflict(job, "NOT_LEASE_HOLDER", `worker ${workerId} does not hold the lease on this job`);
  }
  return wrongState(job, command);
}

/**
 * A progress update from the lease holder: stores the partial output and leaves the state (and
 * so the version) as it is. After a final result it is refused, so it can never override one.
 */
export function progress(job: JobRecord, workerId: string): CommandResult {
  if (job.state !== "IN_PROGRESS" || job.workerId !== workerId) return refuseReport(job, workerId, "report progress on");
  return { ok: true, job: { ...job, hasOutput: true }, output: "set", event: null };
}

/**
 * The lease holder's final result. IN_PROGRESS → COMPLETED with the output. A result that arrives
 * while CANCELLING ends the job CANCELLED (the cancel came first; the output is discarded).
 * A repeat from the same worker after it completed answers ok and changes nothing.
 */
export function complete(job: JobRecord, workerId: string, now: number): CommandResult {
  if (job.state === "COMPLETED" && job.workerId === workerId) return unchanged(job);
  if (!holdsLease(job, workerId)) return refuseReport(job, workerId, "complete");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  return moveTo(job, "COMPLETED", "complete", now, { error: null }, "set");
}

/** The lease holder reports the handler failed. IN_PROGRESS → FAILED with the error. */
export function fail(job: JobRecord, workerId: string, error: string, withOutput: boolean, now: number): CommandResult {
  if (job.state === "FAILED" && job.workerId === workerId) return unchanged(job);
  if (!holdsLease(job, workerId)) return refuseReport(job, workerId, "fail");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  return moveTo(job, "FAILED", "fail", now, { error }, withOutput ? "set" : "keep", error);
}

/**
 * A user cancels. Waiting jobs end CANCELLED at once; a running job goes CANCELLING and ends
 * CANCELLED when its worker stops or the grace period runs out. Cancelling a job that is already
 * CANCELLING or CANCELLED changes nothing; any other terminal job is a conflict.
 */
export function cancel(job: JobRecord, now: number): CommandResult {
  switch (job.state) {
    case "SEQUENCED":
    case "IN_QUEUE":
      return moveTo(job, "CANCELLED", "cancel", now, { reason: "cancelled" }, "keep");
    case "IN_PROGRESS":
      return moveTo(job, "CANCELLING", "cancel", now, { cancelDeadline: now + job.policy.cancelGraceMs }, "keep");
    case "CANCELLING":
    case "CANCELLED":
      return unchanged(job);
    case "COMPLETED":
    case "FAILED":
    case "TIMED_OUT":
      return wrongState(job, "cancel");
  }
}

/** CANCELLING → CANCELLED: the worker stopped, or the grace period ran out. */
export function finishCancel(job: JobRecord, now: number): CommandResult {
  if (job.state !== "CANCELLING") return wrongState(job, "finish cancelling");
  return moveTo(job, "CANCELLED", "finishCancel", now, { reason: "cancelled" }, "keep");
}

/**
 * A deadline passed: a waiting job past its TTL, or a running job past its execution timeout,
 * ends TIMED_OUT with the reason. Before the deadline it is NOT_DUE and changes nothing.
 */
export function expire(job: JobRecord, now: number): CommandResult {
  if (isWaiting(job.state)) {
    if (now < job.ttlAt) return conflict(job, "NOT_DUE", "the queue TTL has not passed");
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "ttl" }, "keep", "ttl");
  }
  if (job.state === "IN_PROGRESS") {
    if (job.execDeadline === null || now < job.execDeadline) {
      return conflict(job, "NOT_DUE", "the execution timeout has not passed");
    }
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "execution_timeout" }, "keep", "execution_timeout");
  }
  return wrongState(job, "expire");
}

/** Puts a terminal job back in the queue for a fresh attempt: same id, output and error cleared. */
function backToQueue(job: JobRecord, command: string, now: number): CommandResult {
  return moveTo(
    job,
    "IN_QUEUE",
    command,
    now,
    {
      retries: job.retries + 1,
      error: null,
      reason: null,
      queuedAt: now,
      ttlAt: now + job.policy.ttl,
      startedAt: null,
      completedAt: null,
      purgeAt: null,
      execDeadline: null,
      cancelDeadline: null,
    },
    "clear",
  );
}

/** A user retries a FAILED or TIMED_OUT job (RunPod's /retry). */
export function retry(job: JobRecord, now: number): CommandResult {
  if (job.state !== "FAILED" && job.state !== "TIMED_OUT") return wrongState(job, "retry");
  return backToQueue(job, "retry", now);
}

/** Puts any terminal job back in the queue (Flamenco's requeue), keeping id and history. */
export function requeue(job: JobRecord, now: number): CommandResult {
  if (!isTerminal(job.state)) return wrongState(job, "requeue");
  return backToQueue(job, "requeue", now);
}

/** Removes a waiting job from the queue (purge-queue): it ends CANCELLED with reason "purged". */
export function purge(job: JobRecord, now: number): CommandResult {
  if (!isWaiting(job.state)) return wrongState(job, "purge");
  return moveTo(job, "CANCELLED", "purge", now, { reason: "purged" satisfies EndReason }, "keep");
}

/** The earliest deadline that applies to the job in its state, or null when none does. */
export function nextDeadline(job: JobRecord): number | null {
  switch (job.state) {
    case "SEQUENCED":
    case "IN_QUEUE":
      return job.ttlAt;
    case "IN_PROGRESS":
      return job.execDeadline;
    case "CANCELLING":
      return job.cancelDeadline;
    case "COMPLETED":
    case "FAILED":
    case "CANCELLED":
    case "TIMED_OUT":
      return job.purgeAt;
  }
}

/** What a due deadline asks for: a command to run, the deletion of a retained job, or nothing. */
export type DueWork = { kind: "command"; run: (job: JobRecord, now: number) => CommandResult } | { kind: "delete" } | null;

export function dueWork(job: JobRecord, now: number): DueWork {
  const deadline = nextDeadline(job);
  if (deadline === null || now < deadline) return null;
  if (isTerminal(job.state)) return { kind: "delete" };
  if (job.state === "CANCELLING") return { kind: "command", run: finishCancel };
  return { kind: "command", run: expire };
}
