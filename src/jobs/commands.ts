/**
 * The named transitions of a job, as pure functions of (record, arguments, now): workers'
 * reports, users' actions and what alarms run. Push dispatches are in ./push-commands,
 * deadlines in ./deadlines, the machinery they share (moveTo, typed refusals) in ./transition.
 *
 * Each command checks the state it acts on, moves the job through the one transition table and
 * returns a typed result: `ok: true` with the new record (and what to do with the stored output),
 * or `ok: false` with a conflict code for expected refusals. A command never throws for a
 * conflict; it throws only when the code asks for an edge the table forbids (a bug).
 * The job object runs each command inside one storage transaction.
 */
import { blocklisted, thresholdOf } from "./blocklist";
import { ttlIsLifespan, type EndReason, type Idempotency, type JobExtras, type JobKind, type JobPolicy, type JobRecord, type TaskLink } from "./record";
import { PING_LIST_GRACE_MS } from "../shared/limits";
import { isRunning, isTerminal, isWaiting } from "./states";
import { conflict, moveTo, releaseAttempt, sameState, SEQUENCE_CHECK_MS, unchanged, wrongState, type CommandResult } from "./transition";

export { becomeReady, pause, postponeReady, promote, requeue, reschedule, resume, retry } from "./queue-commands";

/** Who reports: the worker, and the attempt if the report names one (RunPod workers do not). */
export interface Fence {
  workerId: string;
  attempt: number | null;
}

export interface SubmitInit {
  id: string;
  endpointId: string;
  endpointGen: string | null;
  /** The shard the edge placed the job on (see endpoints/shards); absent: 0. */
  shard?: number;
  kind: JobKind;
  policy: JobPolicy;
  webhook: string | null;
  idempotency: Idempotency | null;
  sequenceKey: string | null;
  origin: string | null;
  /** The batch the job is a request of (absent: none). */
  batchId?: string | null;
  /** The job of tasks the job is a task of (absent: none). */
  task?: TaskLink | null;
  extras?: JobExtras | null;
  /** The client's run-at time (ms since the epoch; absent, or not after now: ready at once). */
  runAt?: number | null;
  /** The client's delay (ms from when the job object creates the job; absent or 0: none). */
  delayMs?: number;
  /** The job's flow-control key (absent: none). */
  flowKey?: string | null;
}


/**
 * Creates the record of a freshly submitted job: waiting in the queue, SEQUENCED when a job of its
 * sequence is ahead of it, or SCHEDULED until its `readyAt` (it enters its sequence then). A
 * queue TTL counts from when the job becomes ready; a lifespan from submission.
 */
export function submit(init: SubmitInit, now: number, behind = false): JobRecord {
  const { runAt, delayMs, ...fields } = init;
  const at = runAt ?? (delayMs ? now + delayMs : null);
  const readyAt = at !== null && at > now ? at : null;
  const state = readyAt !== null ? "SCHEDULED" : behind ? "SEQUENCED" : "IN_QUEUE";
  const ttlFrom = readyAt !== null && !ttlIsLifespan(init.policy) ? readyAt : now;
  return {
    ...fields,
    shard: init.shard ?? 0,
    batchId: init.batchId ?? null,
    task: init.task ?? null,
    extras: init.extras ?? null,
    readyAt,
    flowKey: init.flowKey ?? null,
    paused: false,
    phase: null,
    gone: false,
    dispatch: null,
    sequenceCheckAt: state === "SEQUENCED" ? now + SEQUENCE_CHECK_MS : null,
    state,
    version: 1,
    attempt: 0,
    retries: 0,
    workerId: null,
    failedWorkers: [],
    stopFor: null,
    lastReport: null,
    error: null,
    reason: null,
    hasOutput: false,
    createdAt: now,
    queuedAt: readyAt ?? now,
    startedAt: null,
    completedAt: null,
    ttlAt: ttlFrom + init.policy.ttl,
    execDeadline: null,
    leaseCheckAt: null,
    cancelDeadline: null,
    purgeAt: null,
  };
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
      leaseCheckAt: now + job.policy.heartbeatTimeout,
    },
    "keep",
  );
}

/** Does `fence` hold the lease on the current attempt of a running (or cancelling) job? */
function holdsLease(job: JobRecord, fence: Fence): boolean {
  return (
    isRunning(job.state) &&
    job.workerId === fence.workerId &&
    (fence.attempt === null || fence.attempt === job.attempt)
  );
}

/** Why a report is refused: another worker's lease, an older attempt, or a job no longer running. */
function refuseReport(job: JobRecord, fence: Fence, command: string): CommandResult {
  if (job.workerId !== fence.workerId) {
    return conflict(job, "NOT_LEASE_HOLDER", `worker ${fence.workerId} does not hold the lease on this job`);
  }
  if (fence.attempt !== null && fence.attempt !== job.attempt) {
    return conflict(job, "STALE_ATTEMPT", `attempt ${fence.attempt} is over; the job is on attempt ${job.attempt}`);
  }
  return wrongState(job, command);
}

/**
 * Is this an exact repeat of the last report the job accepted (RunPod workers resend job-done
 * when an answer is lost)? A report naming its attempt repeats that attempt's report. One that
 * does not (RunPod's SDK) is a repeat while the job is still on that attempt, or when the worker
 * no longer holds the job's current attempt; once the same worker runs a later attempt, a report
 * is new and takes effect.
 */
function isRepeat(job: JobRecord, fence: Fence, kind: "complete" | "fail" | "error"): boolean {
  const r = job.lastReport;
  if (r === null || r.kind !== kind || r.workerId !== fence.workerId) return false;
  if (fence.attempt !== null) return fence.attempt === r.attempt;
  return r.attempt === job.attempt || !holdsLease(job, fence);
}

/**
 * A progress update from the lease holder: stores the partial output and extends the lease,
 * leaving the state (and so the version) as it is. Refused after a final result, so it can
 * never override one, and while CANCELLING, so the worker learns to stop.
 */
export function progress(job: JobRecord, fence: Fence, now: number, phase: "initializing" | null = null, withOutput = true): CommandResult {
  if (job.state !== "IN_PROGRESS" || !holdsLease(job, fence)) return refuseReport(job, fence, "report progress on");
  return sameState(job, { hasOutput: job.hasOutput || withOutput, phase, leaseCheckAt: now + job.policy.heartbeatTimeout }, withOutput ? "set" : "keep");
}

/** A stream chunk from the lease holder: accepted while IN_PROGRESS, and a sign of life. */
export function streamChunk(job: JobRecord, fence: Fence, now: number): CommandResult {
  if (job.state !== "IN_PROGRESS" || !holdsLease(job, fence)) return refuseReport(job, fence, "stream to");
  return sameState(job, { phase: null, leaseCheckAt: now + job.policy.heartbeatTimeout }, "keep");
}

/**
 * Log lines from the lease holder (see ./logs): accepted while its attempt runs, CANCELLING
 * included (a stopping handler may say why); they change nothing in the record.
 */
export function logLines(job: JobRecord, fence: Fence): CommandResult {
  if (!holdsLease(job, fence)) return refuseReport(job, fence, "log to");
  return unchanged(job);
}

/**
 * The lease holder's final result. IN_PROGRESS → COMPLETED with the output. A result that arrives
 * while CANCELLING ends the job CANCELLED (the cancel came first; the output is discarded).
 * An exact repeat of the accepted result answers ok and changes nothing.
 */
export function complete(job: JobRecord, fence: Fence, now: number, exitCode: number | null = null): CommandResult {
  if (isRepeat(job, fence, "complete")) return unchanged(job);
  if (!holdsLease(job, fence)) return refuseReport(job, fence, "complete");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  const lastReport = { workerId: fence.workerId, attempt: job.attempt, kind: "complete" as const, ...(exitCode === null ? {} : { exitCode }) };
  return moveTo(job, "COMPLETED", "complete", now, { error: null, lastReport }, "set");
}

/**
 * The lease holder's result with a non-zero exit code (issue 15, item 5): the job ran and ended
 * with errors, which is an outcome (UCloud: only the scheduler's faults fail a job), not a failure
 * to run. IN_PROGRESS → ERROR with the output (if any) and the error; never retried. While
 * CANCELLING it ends CANCELLED, as a result would. An exact repeat changes nothing.
 */
export function errorOutcome(job: JobRecord, fence: Fence, error: string, exitCode: number, withOutput: boolean, now: number): CommandResult {
  if (isRepeat(job, fence, "error")) return unchanged(job);
  if (!holdsLease(job, fence)) return refuseReport(job, fence, "report a result for");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  const lastReport = { workerId: fence.workerId, attempt: job.attempt, kind: "error" as const, exitCode };
  return moveTo(job, "ERROR", "error", now, { error, lastReport }, withOutput ? "set" : "keep", error);
}

/**
 * The lease holder reports the handler failed. The job ends FAILED with the error, unless its
 * policy retries on errors and attempts are left: then it goes back to the queue, preferring
 * another worker. While CANCELLING, it ends CANCELLED.
 */
export function fail(job: JobRecord, fence: Fence, error: string, withOutput: boolean, now: number): CommandResult {
  if (isRepeat(job, fence, "fail")) return unchanged(job);
  if (!holdsLease(job, fence)) return refuseReport(job, fence, "fail");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  const lastReport = { workerId: fence.workerId, attempt: job.attempt, kind: "fail" as const };
  if (job.policy.retryOnError && job.attempt < job.policy.maxAttempts) {
    return releaseAttempt(job, "fail", now, { lastReport: { ...lastReport, error } }, error);
  }
  return moveTo(job, "FAILED", "fail", now, { error, lastReport }, withOutput ? "set" : "keep", error);
}

/**
 * The lease holder is gone (silent past its heartbeat timeout, or it asked for work saying it
 * runs nothing). A running job goes back to the queue while attempts are left, else ends
 * TIMED_OUT (heartbeat_lost); a CANCELLING job ends CANCELLED. Its worker is told to stop.
 */
export function loseLease(job: JobRecord, workerId: string, why: string, now: number): CommandResult {
  if (job.workerId !== workerId || !isRunning(job.state)) {
    return refuseReport(job, { workerId, attempt: null }, "release the lease of");
  }
  if (job.state === "CANCELLING") return finishCancel(job, now);
  if (job.attempt < job.policy.maxAttempts) return releaseAttempt(job, "loseLease", now, { stopFor: workerId }, why);
  return moveTo(job, "TIMED_OUT", "loseLease", now, { reason: "heartbeat_lost", stopFor: workerId }, "keep", why);
}

/**
 * The lease holder's ping lists the jobs it runs, and not this one: it never received the job
 * (its take was aborted) or dropped it. Once the attempt is older than PING_LIST_GRACE_MS (a ping
 * sent just before the take was answered cannot list it), the lease is lost as if the worker had
 * gone silent.
 */
export function notListed(job: JobRecord, workerId: string, now: number): CommandResult {
  if (job.state !== "IN_PROGRESS" || job.workerId !== workerId || job.startedAt === null) {
    return refuseReport(job, { workerId, attempt: null }, "release the lease of");
  }
  if (now - job.startedAt < PING_LIST_GRACE_MS) return conflict(job, "NOT_DUE", "the attempt is too new to be listed by a ping");
  return loseLease(job, workerId, `worker ${workerId}'s ping does not list this job`, now);
}

/**
 * The job's endpoint was deleted (and perhaps re-created): the job belongs to nothing any more.
 * A waiting job ends CANCELLED (endpoint_deleted); a running one is cancelled like a user cancel.
 */
export function orphan(job: JobRecord, now: number): CommandResult {
  if (isWaiting(job.state)) return moveTo(job, "CANCELLED", "orphan", now, { reason: "endpoint_deleted" }, "keep", "endpoint_deleted");
  if (job.state === "IN_PROGRESS") return cancel(job, now);
  return unchanged(job);
}

/**
 * Every live worker that may take the job is blocklisted from it (its shard found none other, as
 * of `version`): a job still waiting at that version ends FAILED (reason "blocklisted"), its
 * error naming them. A job that moved on since (taken, cancelled) is left alone.
 */
export function blocklistedOut(job: JobRecord, version: number, now: number): CommandResult {
  if (job.version !== version || job.state !== "IN_QUEUE") return unchanged(job);
  const byGraph = new Set(job.task?.blocked ?? []);
  const names = blocklisted(job).map((b) => `${b.workerId} (${byGraph.has(b.workerId) && b.failures < thresholdOf(job) ? "failed too many tasks of its job" : `${b.failures} failed attempt${b.failures === 1 ? "" : "s"}`})`);
  // The last attempt's own error stays readable beside why the job ends (found from outside).
  const last = job.lastReport?.kind === "fail" && job.lastReport.error !== undefined ? `; its last error: ${job.lastReport.error}` : "";
  const error = `every live worker that may take this job is blocklisted from it (blocklisted: ${names.join(", ")})${last}`;
  return moveTo(job, "FAILED", "blocklisted", now, { error, reason: "blocklisted" }, "keep", error);
}

/**
 * A task's job of tasks blocklisted `workers` (they failed its blocklistThreshold tasks), or, for
 * a replica (`list` "busy"), they took another replica of its job: they are never handed this
 * task's job (its index entry's blockedWorkers). A running attempt of theirs finishes; a finished
 * job, or one that already lists them all, is left as it is. A new version, so the endpoint's
 * index takes it.
 */
export function blockForGraph(job: JobRecord, workers: readonly string[], now: number, list: "blocked" | "busy" = "blocked"): CommandResult {
  if (job.task === null || isTerminal(job.state)) return unchanged(job);
  const had = job.task[list] ?? [];
  const next = [...new Set([...had, ...workers])];
  if (next.length === had.length) return unchanged(job);
  const added = next.slice(had.length);
  const detail = list === "blocked" ? `its job of tasks blocklisted ${added.join(", ")}` : `${added.join(", ")} took another replica of its job: not handed this one`;
  const event = { at: now, command: list === "blocked" ? "blocklist" : "replica-taken", from: job.state, to: job.state, attempt: job.attempt, workerId: null, detail };
  return { ok: true, job: { ...job, task: { ...job.task, [list]: next }, version: job.version + 1 }, output: "keep", event };
}

/**
 * The lease check came due: `lastSeen` is when the endpoint last heard from the lease holder.
 * A worker heard from within its heartbeat timeout keeps the lease (the check moves on);
 * otherwise the lease is lost.
 */
export function checkLease(job: JobRecord, lastSeen: number | null, now: number): CommandResult {
  if (!isRunning(job.state) || job.workerId === null) return wrongState(job, "check the lease of");
  if (job.leaseCheckAt === null || now < job.leaseCheckAt) return conflict(job, "NOT_DUE", "the lease check is not due");
  const heardUntil = Math.max(lastSeen ?? 0, job.leaseCheckAt - job.policy.heartbeatTimeout) + job.policy.heartbeatTimeout;
  if (heardUntil > now) return sameState(job, { leaseCheckAt: heardUntil }, "keep");
  return loseLease(job, job.workerId, `no sign of life from worker ${job.workerId} for ${job.policy.heartbeatTimeout} ms`, now);
}

/**
 * A user cancels. Waiting jobs end CANCELLED at once; a running job goes CANCELLING (its worker
 * is told to stop) and ends CANCELLED when the worker stops or the grace period runs out.
 * Cancelling a job that is already CANCELLING or CANCELLED changes nothing; any other terminal
 * job is a conflict.
 */
export function cancel(job: JobRecord, now: number): CommandResult {
  switch (job.state) {
    case "PAUSED":
    case "SCHEDULED":
    case "SEQUENCED":
    case "IN_QUEUE":
      return moveTo(job, "CANCELLED", "cancel", now, { reason: "cancelled", readyAt: null }, "keep");
    case "IN_PROGRESS":
      return moveTo(job, "CANCELLING", "cancel", now, { cancelDeadline: now + job.policy.cancelGraceMs, stopFor: job.workerId }, "keep");
    case "CANCELLING":
    case "CANCELLED":
      return unchanged(job);
    case "COMPLETED":
    case "ERROR":
    case "FAILED":
    case "TIMED_OUT":
      return wrongState(job, "cancel");
  }
}

/** CANCELLING → CANCELLED: the worker stopped or went quiet on it, or the grace period ran out. */
export function finishCancel(job: JobRecord, now: number): CommandResult {
  if (job.state !== "CANCELLING") return wrongState(job, "finish cancelling");
  return moveTo(job, "CANCELLED", "finishCancel", now, { reason: "cancelled" satisfies EndReason }, "keep");
}

/**
 * The worker of a CANCELLING job pings without it: it stopped. It may have learnt of the cancel
 * through job-stop (`told`) or from the 409 to a report; either way a ping that does not list
 * the attempt counts once the attempt is old enough to have been listed (PING_LIST_GRACE_MS).
 */
export function workerQuiet(job: JobRecord, workerId: string, told: boolean, now: number): CommandResult {
  if (job.state !== "CANCELLING" || job.workerId !== workerId) return wrongState(job, "finish cancelling");
  if (!told && (job.startedAt === null || now - job.startedAt < PING_LIST_GRACE_MS)) {
    return conflict(job, "NOT_DUE", "the attempt is too new to be listed by a ping");
  }
  return finishCancel(job, now);
}

/**
 * A deadline passed: a waiting job past its TTL, or a running job past its execution timeout
 * (or past its TTL when that is its lifespan), ends TIMED_OUT with the reason (the worker is told
 * to stop). Before the deadline it is NOT_DUE and changes nothing.
 */
export function expire(job: JobRecord, now: number): CommandResult {
  if (isWaiting(job.state)) {
    if (now < job.ttlAt) return conflict(job, "NOT_DUE", "the queue TTL has not passed");
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "ttl" }, "keep", "ttl");
  }
  if (job.state === "IN_PROGRESS" && ttlIsLifespan(job.policy) && now >= job.ttlAt) {
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "ttl", stopFor: job.workerId }, "keep", "ttl (lifespan)");
  }
  if (job.state === "IN_PROGRESS") {
    if (job.execDeadline === null || now < job.execDeadline) {
      return conflict(job, "NOT_DUE", "the execution timeout has not passed");
    }
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "execution_timeout", stopFor: job.workerId }, "keep", "execution_timeout");
  }
  return wrongState(job, "expire");
}

/**
 * RunPod's `/status/{id}?ttl=<ms>`: a finished job stays readable at most `ms` more (its
 * retention is shortened, never lengthened). A job that has not finished is left as it is.
 */
export function shortenRetention(job: JobRecord, ms: number, now: number): CommandResult {
  if (!isTerminal(job.state) || job.gone || job.purgeAt === null || job.purgeAt <= now + ms) return unchanged(job);
  return sameState(job, { purgeAt: now + ms }, "keep");
}

/** SEQUENCED → IN_QUEUE: the job ahead of it in its sequence ended. The TTL keeps running. */
export function release(job: JobRecord, now: number): CommandResult {
  if (job.state !== "SEQUENCED") return wrongState(job, "release");
  return moveTo(job, "IN_QUEUE", "release", now, { queuedAt: now, sequenceCheckAt: null }, "keep");
}

/** A SEQUENCED job's own check found a job still ahead: check again later. */
export function recheckSequence(job: JobRecord, now: number): CommandResult {
  if (job.state !== "SEQUENCED") return wrongState(job, "recheck the sequence of");
  return sameState(job, { sequenceCheckAt: now + SEQUENCE_CHECK_MS }, "keep");
}

/** Removes a waiting job from the queue (purge-queue): it ends CANCELLED with reason "purged". */
export function purge(job: JobRecord, now: number): CommandResult {
  if (!isWaiting(job.state)) return wrongState(job, "purge");
  return moveTo(job, "CANCELLED", "purge", now, { reason: "purged" satisfies EndReason }, "keep");
}
