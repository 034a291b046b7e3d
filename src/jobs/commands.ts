/**
 * The named transitions of a job, as pure functions of (record, arguments, now).
 *
 * Each command checks the state it acts on, moves the job through the one transition table and
 * returns a typed result: `ok: true` with the new record (and what to do with the stored output),
 * or `ok: false` with a conflict code for expected refusals. A command never throws for a
 * conflict; it throws only when the code asks for an edge the table forbids (a bug).
 * The job object runs each command inside one storage transaction.
 */
import { IDEMPOTENCY_MS, type EndReason, type HistoryEvent, type Idempotency, type JobKind, type JobPolicy, type JobRecord } from "./record";
import { PING_LIST_GRACE_MS } from "../shared/limits";
import { canTransition, isRunning, isTerminal, isWaiting, type JobState } from "./states";

export type ConflictCode =
  /** The job is not in a state this command acts on. */
  | "WRONG_STATE"
  /** The report comes from a worker that does not hold the current lease. */
  | "NOT_LEASE_HOLDER"
  /** The report names an attempt that is not the current one. */
  | "STALE_ATTEMPT"
  /** Nothing is due yet (an early or duplicate alarm). */
  | "NOT_DUE"
  /** The same dispatch message again while its push may still be in flight: try it later. */
  | "PUSH_IN_FLIGHT";

/** What the command does to the stored output blob. */
type OutputChange = "keep" | "set" | "clear";

export type CommandResult =
  | { ok: true; job: JobRecord; output: OutputChange; event: HistoryEvent | null }
  | { ok: false; code: ConflictCode; job: JobRecord; message: string };

/** Who reports: the worker, and the attempt if the report names one (RunPod workers do not). */
export interface Fence {
  workerId: string;
  attempt: number | null;
}

export interface SubmitInit {
  id: string;
  endpointId: string;
  endpointGen: string | null;
  kind: JobKind;
  policy: JobPolicy;
  webhook: string | null;
  idempotency: Idempotency | null;
  sequenceKey: string | null;
  origin: string | null;
}

/** How often a SEQUENCED job checks its turn itself, should the release by the job ahead be lost. */
const SEQUENCE_CHECK_MS = 30_000;

/** How long a worker URL has to answer a push (the dispatch consumer's timeout). */
export const PUSH_TIMEOUT_MS = 30_000;
/** How long a claimed push may be under way: the push timeout and a margin. */
export const PUSH_IN_FLIGHT_MS = PUSH_TIMEOUT_MS + 5_000;

/**
 * Creates the record of a freshly submitted job: waiting in the queue, or SEQUENCED when a job
 * of its sequence is ahead of it.
 */
export function submit(init: SubmitInit, now: number, behind = false): JobRecord {
  return {
    ...init,
    gone: false,
    dispatch: null,
    sequenceCheckAt: behind ? now + SEQUENCE_CHECK_MS : null,
    state: behind ? "SEQUENCED" : "IN_QUEUE",
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
    queuedAt: now,
    startedAt: null,
    completedAt: null,
    ttlAt: now + init.policy.ttl,
    execDeadline: null,
    leaseCheckAt: null,
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
 * stamps completedAt and the retention deadline and drops the running deadlines.
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
  let next: JobRecord = { ...job, stopFor: null, ...patch, state: to, version: job.version + 1 };
  if (isTerminal(to)) {
    next = {
      ...next,
      completedAt: now,
      execDeadline: null,
      leaseCheckAt: null,
      cancelDeadline: null,
      sequenceCheckAt: null,
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
    workerId: job.workerId ?? next.workerId,
    detail,
  };
  return { ok: true, job: next, output, event };
}

function unchanged(job: JobRecord): CommandResult {
  return { ok: true, job, output: "keep", event: null };
}

/** A change that keeps the state (and so the version): a progress output, an extended lease. */
function sameState(job: JobRecord, patch: Partial<JobRecord>, output: OutputChange): CommandResult {
  return { ok: true, job: { ...job, ...patch }, output, event: null };
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
 * Is this an exact repeat of the last report the job accepted? Only for the attempt that report
 * ended: once the job has started another attempt (even on the same worker), a report is new.
 */
function isRepeat(job: JobRecord, fence: Fence, kind: "complete" | "fail"): boolean {
  const r = job.lastReport;
  return (
    r !== null &&
    r.kind === kind &&
    r.workerId === fence.workerId &&
    r.attempt === job.attempt &&
    (fence.attempt === null || fence.attempt === r.attempt)
  );
}

/**
 * A progress update from the lease holder: stores the partial output and extends the lease,
 * leaving the state (and so the version) as it is. Refused after a final result, so it can
 * never override one, and while CANCELLING, so the worker learns to stop.
 */
export function progress(job: JobRecord, fence: Fence, now: number): CommandResult {
  if (job.state !== "IN_PROGRESS" || !holdsLease(job, fence)) return refuseReport(job, fence, "report progress on");
  return sameState(job, { hasOutput: true, leaseCheckAt: now + job.policy.heartbeatTimeout }, "set");
}

/** A stream chunk from the lease holder: accepted while IN_PROGRESS, and a sign of life. */
export function streamChunk(job: JobRecord, fence: Fence, now: number): CommandResult {
  if (job.state !== "IN_PROGRESS" || !holdsLease(job, fence)) return refuseReport(job, fence, "stream to");
  return sameState(job, { leaseCheckAt: now + job.policy.heartbeatTimeout }, "keep");
}

/**
 * The lease holder's final result. IN_PROGRESS → COMPLETED with the output. A result that arrives
 * while CANCELLING ends the job CANCELLED (the cancel came first; the output is discarded).
 * An exact repeat of the accepted result answers ok and changes nothing.
 */
export function complete(job: JobRecord, fence: Fence, now: number): CommandResult {
  if (isRepeat(job, fence, "complete")) return unchanged(job);
  if (!holdsLease(job, fence)) return refuseReport(job, fence, "complete");
  if (job.state === "CANCELLING") return finishCancel(job, now);
  const lastReport = { workerId: fence.workerId, attempt: job.attempt, kind: "complete" as const };
  return moveTo(job, "COMPLETED", "complete", now, { error: null, lastReport }, "set");
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
    return releaseAttempt(job, "fail", now, { lastReport }, error);
  }
  return moveTo(job, "FAILED", "fail", now, { error, lastReport }, withOutput ? "set" : "keep", error);
}

/**
 * IN_PROGRESS → IN_QUEUE: the attempt is over without a result; the job waits for another
 * worker. Its queue TTL still counts from submission.
 */
function releaseAttempt(job: JobRecord, command: string, now: number, patch: Partial<JobRecord>, detail: string): CommandResult {
  const failedWorkers = job.workerId && !job.failedWorkers.includes(job.workerId) ? [...job.failedWorkers, job.workerId] : job.failedWorkers;
  return moveTo(
    job,
    "IN_QUEUE",
    command,
    now,
    {
      ...patch,
      retries: job.retries + 1,
      failedWorkers,
      workerId: null,
      queuedAt: now,
      startedAt: null,
      execDeadline: null,
      leaseCheckAt: null,
    },
    "clear",
    detail,
  );
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
    case "SEQUENCED":
    case "IN_QUEUE":
      return moveTo(job, "CANCELLED", "cancel", now, { reason: "cancelled" }, "keep");
    case "IN_PROGRESS":
      return moveTo(job, "CANCELLING", "cancel", now, { cancelDeadline: now + job.policy.cancelGraceMs, stopFor: job.workerId }, "keep");
    case "CANCELLING":
    case "CANCELLED":
      return unchanged(job);
    case "COMPLETED":
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

/** The worker told to stop a CANCELLING job no longer lists it: it stopped. */
export function workerQuiet(job: JobRecord, workerId: string, now: number): CommandResult {
  if (job.state !== "CANCELLING" || job.workerId !== workerId) return wrongState(job, "finish cancelling");
  return finishCancel(job, now);
}

/**
 * A deadline passed: a waiting job past its TTL, or a running job past its execution timeout,
 * ends TIMED_OUT with the reason (the worker is told to stop). Before the deadline it is
 * NOT_DUE and changes nothing.
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
    return moveTo(job, "TIMED_OUT", "expire", now, { reason: "execution_timeout", stopFor: job.workerId }, "keep", "execution_timeout");
  }
  return wrongState(job, "expire");
}

/**
 * Puts a terminal job back in the queue for a fresh attempt: same id, output and error cleared.
 * A job of a sequence re-enters it at the back: `behind` (a job of its key is unfinished) makes
 * it SEQUENCED until that job ends, so two jobs of one key never run at once.
 */
function backToQueue(job: JobRecord, command: string, now: number, behind: boolean): CommandResult {
  return moveTo(
    job,
    behind ? "SEQUENCED" : "IN_QUEUE",
    command,
    now,
    {
      retries: job.retries + 1,
      error: null,
      reason: null,
      workerId: null,
      lastReport: null,
      queuedAt: now,
      ttlAt: now + job.policy.ttl,
      startedAt: null,
      completedAt: null,
      purgeAt: null,
      execDeadline: null,
      leaseCheckAt: null,
      cancelDeadline: null,
      sequenceCheckAt: behind ? now + SEQUENCE_CHECK_MS : null,
      dispatch: null,
    },
    "clear",
  );
}

/** A user retries a FAILED or TIMED_OUT job (RunPod's /retry). */
export function retry(job: JobRecord, now: number, behind = false): CommandResult {
  if (job.state !== "FAILED" && job.state !== "TIMED_OUT") return wrongState(job, "retry");
  return backToQueue(job, "retry", now, behind);
}

/** Puts any terminal job back in the queue (Flamenco's requeue), keeping id and history. */
export function requeue(job: JobRecord, now: number, behind = false): CommandResult {
  if (!isTerminal(job.state)) return wrongState(job, "requeue");
  return backToQueue(job, "requeue", now, behind);
}

/**
 * The dispatch consumer claims the job for a push to a worker URL, under the queue message's
 * token. IN_QUEUE → IN_PROGRESS under a new attempt. The same message again before the worker
 * accepted: PUSH_IN_FLIGHT while the first push may be under way, then (a crash mid-push) it
 * pushes again. Anything else is a duplicate.
 */
export function pushClaim(job: JobRecord, token: string, workerId: string, now: number): CommandResult {
  if (holdsDispatch(job, token)) {
    // The same message again, its push not yet accepted. Within PUSH_IN_FLIGHT_MS the first
    // push may still be under way (a duplicate delivery): it waits, so a worker never gets one
    // attempt twice at once. Later, the consumer that claimed it is gone: this one pushes again.
    const since = now - (job.dispatch!.claimedAt ?? 0);
    if (since < PUSH_IN_FLIGHT_MS) return conflict(job, "PUSH_IN_FLIGHT", `a push of this dispatch started ${since} ms ago`);
    return sameState(job, { dispatch: { ...job.dispatch!, claimedAt: now } }, "keep");
  }
  if (job.state !== "IN_QUEUE") return wrongState(job, "dispatch");
  const claimed = claim(job, workerId, now);
  if (!claimed.ok) return claimed;
  const tries = (job.dispatch?.tries ?? 0) + 1;
  return { ...claimed, job: { ...claimed.job, dispatch: { token, accepted: false, tries, error: job.dispatch?.error ?? null, claimedAt: now } } };
}

function holdsDispatch(job: JobRecord, token: string): boolean {
  return job.state === "IN_PROGRESS" && job.dispatch?.token === token && !job.dispatch.accepted;
}

/** The worker URL answered 2xx: the push is accepted and the attempt runs. */
export function pushAccepted(job: JobRecord, token: string): CommandResult {
  if (!holdsDispatch(job, token)) return wrongState(job, "accept a push for");
  return sameState(job, { dispatch: { ...job.dispatch!, accepted: true, error: null } }, "keep");
}

/**
 * The worker URL refused the push or could not be reached: the attempt is released and the job
 * waits for the queue's retry of the same message.
 */
export function pushFailed(job: JobRecord, token: string, error: string, now: number): CommandResult {
  if (!holdsDispatch(job, token)) return wrongState(job, "fail a push for");
  return releaseAttempt(job, "pushFailed", now, { dispatch: { ...job.dispatch!, error } }, error);
}

/** The queue gave up on the dispatch (dead letter): the job fails with the reason. */
export function deadLetter(job: JobRecord, token: string, now: number): CommandResult {
  const waitingForRetry = job.state === "IN_QUEUE" && job.dispatch?.token === token;
  if (!waitingForRetry && !holdsDispatch(job, token)) return wrongState(job, "dead-letter");
  const tries = job.dispatch?.tries ?? 0;
  const error = `could not deliver the job to a worker URL after ${tries} ${tries === 1 ? "try" : "tries"}: ${job.dispatch?.error ?? "no answer"}`;
  return moveTo(job, "FAILED", "deadLetter", now, { error }, "keep", error);
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

function earliest(...times: Array<number | null>): number | null {
  const set = times.filter((t): t is number => t !== null);
  return set.length === 0 ? null : Math.min(...set);
}

/** The earliest deadline that applies to the job in its state, or null when none does. */
export function nextDeadline(job: JobRecord): number | null {
  switch (job.state) {
    case "SEQUENCED":
      return earliest(job.ttlAt, job.sequenceCheckAt);
    case "IN_QUEUE":
      return job.ttlAt;
    case "IN_PROGRESS":
      return earliest(job.execDeadline, job.leaseCheckAt);
    case "CANCELLING":
      return earliest(job.cancelDeadline, job.leaseCheckAt);
    case "COMPLETED":
    case "FAILED":
    case "CANCELLED":
    case "TIMED_OUT":
      return job.gone ? idempotencyUntil(job) : job.purgeAt;
  }
}

/** Until when a job's idempotency key must keep answering, if it has one. */
function idempotencyUntil(job: JobRecord): number | null {
  return job.idempotency ? job.createdAt + IDEMPOTENCY_MS : null;
}

/**
 * What a due deadline asks for: a command to run, a lease check (which needs the worker's
 * last sign of life from the endpoint), the deletion of a retained job, or nothing.
 */
type DueWork =
  | { kind: "command"; run: (job: JobRecord, now: number) => CommandResult }
  | { kind: "checkLease"; workerId: string }
  | { kind: "checkSequence"; sequenceKey: string }
  | { kind: "delete" }
  /** Retention is over but the idempotency key is not: keep only what a repeat submit needs. */
  | { kind: "tombstone" }
  | null;

export function dueWork(job: JobRecord, now: number): DueWork {
  const deadline = nextDeadline(job);
  if (deadline === null || now < deadline) return null;
  if (isTerminal(job.state)) {
    const until = idempotencyUntil(job);
    return !job.gone && until !== null && now < until ? { kind: "tombstone" } : { kind: "delete" };
  }
  if (isWaiting(job.state) && now >= job.ttlAt) return { kind: "command", run: expire };
  if (job.state === "SEQUENCED") return job.sequenceKey === null ? null : { kind: "checkSequence", sequenceKey: job.sequenceKey };
  if (job.state === "IN_PROGRESS" && job.execDeadline !== null && now >= job.execDeadline) return { kind: "command", run: expire };
  if (job.state === "CANCELLING" && job.cancelDeadline !== null && now >= job.cancelDeadline) {
    return { kind: "command", run: finishCancel };
  }
  return job.workerId === null ? null : { kind: "checkLease", workerId: job.workerId };
}
