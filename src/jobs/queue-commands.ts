/**
 * The commands that put a job (back) in line or hold it out of it: a retry or requeue (at once or
 * after a delay), a SCHEDULED job's time coming, and a user's pause and resume of one job
 * (issues 14-16). Pure functions of (record, arguments, now), like ./commands (which re-exports them).
 */
import { ttlIsLifespan, type JobRecord } from "./record";
import { isRunning, isTerminal, isWaiting } from "./states";
import { conflict, moveTo, sameState, sameStateNoted, SEQUENCE_CHECK_MS, unchanged, wrongState, type CommandResult } from "./transition";

/**
 * Puts a terminal job back in the queue for a fresh attempt: same id, output and error cleared.
 * A job of a sequence re-enters it at the back: `behind` (a job of its key is unfinished) makes
 * it SEQUENCED until that job ends, so two jobs of one key never run at once. With a `delayMs`
 * it waits SCHEDULED that long first (it enters its sequence then), and its queue TTL counts
 * from then.
 */
function backToQueue(job: JobRecord, command: string, now: number, behind: boolean, delayMs = 0): CommandResult {
  const readyAt = delayMs > 0 ? now + delayMs : null;
  // A lifespan counts from submission: a delay that ends at or past it would never run.
  if (readyAt !== null && ttlIsLifespan(job.policy) && readyAt >= job.ttlAt) {
    return conflict(job, "WRONG_STATE", `a delay of ${delayMs} ms ends at or past the job's lifespan (ttlMode "lifespan" ends it ${Math.max(0, job.ttlAt - now)} ms from now): it could never run`);
  }
  const sequenced = readyAt === null && behind;
  return moveTo(
    job,
    readyAt !== null ? "SCHEDULED" : sequenced ? "SEQUENCED" : "IN_QUEUE",
    command,
    now,
    {
      retries: job.retries + 1,
      error: null,
      reason: null,
      workerId: null,
      lastReport: null,
      readyAt,
      queuedAt: readyAt ?? now,
      // A lifespan counts from submission, whatever happens since.
      ttlAt: ttlIsLifespan(job.policy) ? job.ttlAt : (readyAt ?? now) + job.policy.ttl,
      startedAt: null,
      completedAt: null,
      purgeAt: null,
      execDeadline: null,
      leaseCheckAt: null,
      cancelDeadline: null,
      sequenceCheckAt: sequenced ? now + SEQUENCE_CHECK_MS : null,
      dispatch: null,
      // The user's "try again" starts with a clean slate: no worker is avoided or blocklisted
      // (else a job that failed because every live worker was blocklisted would fail at once again).
      failedWorkers: [],
    },
    "clear",
    readyAt === null ? null : `ready at ${new Date(readyAt).toISOString()}`,
  );
}

/**
 * A task's job runs again only through its job of tasks (POST /requeue/{its id}): that keeps the
 * tasks that depend on it in step (a task completed twice would start them twice).
 */
function taskRefusal(job: JobRecord, command: string): CommandResult {
  return conflict(job, "WRONG_STATE", `cannot ${command} the job of task '${job.task!.name}' on its own: requeue its job of tasks (POST /requeue/${job.task!.graphId}), which runs its unfinished tasks again`);
}

/** A user retries a FAILED or TIMED_OUT job (RunPod's /retry), at once or after `delayMs`. */
export function retry(job: JobRecord, now: number, behind = false, delayMs = 0): CommandResult {
  if (job.task !== null) return taskRefusal(job, "retry");
  if (job.state !== "FAILED" && job.state !== "TIMED_OUT") return wrongState(job, "retry");
  return backToQueue(job, "retry", now, behind, delayMs);
}

/** Puts any terminal job back in the queue (Flamenco's requeue), keeping id and history; at once or after `delayMs`. */
export function requeue(job: JobRecord, now: number, behind = false, delayMs = 0): CommandResult {
  if (job.task !== null) return taskRefusal(job, "requeue");
  if (!isTerminal(job.state)) return wrongState(job, "requeue");
  return backToQueue(job, "requeue", now, behind, delayMs);
}

/**
 * SCHEDULED → IN_QUEUE: the job's time came (a delay, a run-at time, a retry's backoff). A job of
 * a sequence enters it now: `behind` (a job of its key is unfinished) makes it SEQUENCED. Its
 * delay time counts from `readyAt` (a late alarm shows in it). Before `readyAt` it is NOT_DUE.
 */
export function becomeReady(job: JobRecord, now: number, behind = false): CommandResult {
  if (job.state !== "SCHEDULED") return wrongState(job, "make ready");
  if (job.readyAt !== null && now < job.readyAt) return conflict(job, "NOT_DUE", "the job is scheduled for later");
  return moveTo(
    job,
    behind ? "SEQUENCED" : "IN_QUEUE",
    "ready",
    now,
    // A push job is dispatched afresh (a dispatch message of its that came meanwhile was refused).
    { readyAt: null, queuedAt: job.readyAt ?? now, sequenceCheckAt: behind ? now + SEQUENCE_CHECK_MS : null, dispatch: null },
    "keep",
  );
}

/**
 * A user asks a SCHEDULED job to run now (BullMQ's promote): its time becomes now, and its queue
 * TTL counts from now (a lifespan still from submission); the job's due work then makes it ready
 * (or enters its sequence). Any other state is a conflict: only a job waiting for its time has one.
 */
export function promote(job: JobRecord, now: number): CommandResult {
  if (job.state !== "SCHEDULED") return wrongState(job, "promote");
  const ttlAt = ttlIsLifespan(job.policy) ? job.ttlAt : Math.min(job.ttlAt, now + job.policy.ttl);
  return sameStateNoted(job, { readyAt: now, ttlAt }, "promote", now, `run now${wasDue(job)}`);
}

/**
 * A user moves a SCHEDULED job's time (BullMQ's changeDelay): it becomes ready at `readyAt` (a
 * time already past: at once, as a promote), and its queue TTL counts from then, as a delayed
 * submit's does (a lifespan still from submission: a time at or past its end is refused, the job
 * could never run). Any other state is a conflict: only a job waiting for its time has one.
 */
export function reschedule(job: JobRecord, now: number, readyAt: number): CommandResult {
  if (job.state !== "SCHEDULED") return wrongState(job, "reschedule");
  const at = Math.max(now, readyAt);
  if (ttlIsLifespan(job.policy) && at >= job.ttlAt) {
    return conflict(job, "WRONG_STATE", `that time is at or past the job's lifespan (ttlMode "lifespan" ends it ${Math.max(0, job.ttlAt - now)} ms from now): it could never run`);
  }
  const ttlAt = ttlIsLifespan(job.policy) ? job.ttlAt : at + job.policy.ttl;
  return sameStateNoted(job, { readyAt: at, ttlAt }, "reschedule", now, `ready at ${new Date(at).toISOString()}${wasDue(job)}`);
}

/** A history detail's note of the time a SCHEDULED job had before a promote or reschedule. */
function wasDue(job: JobRecord): string {
  return job.readyAt === null ? "" : ` (it was due ${new Date(job.readyAt).toISOString()})`;
}

/** A SCHEDULED job whose time came could not enter its sequence (its shard did not answer): try again at `at`. */
export function postponeReady(job: JobRecord, at: number): CommandResult {
  if (job.state !== "SCHEDULED") return wrongState(job, "postpone");
  return sameState(job, { readyAt: at }, "keep");
}

/**
 * A user pauses the job (Flamenco's pause): a waiting job goes PAUSED and no worker gets it until
 * it is resumed (its TTL keeps running); a running one finishes its attempt, and would wait
 * PAUSED should it go back for another. Pausing a paused job changes nothing; a finished (or
 * cancelling) job is a conflict.
 */
export function pause(job: JobRecord, now: number): CommandResult {
  if (job.state === "PAUSED" || (job.state === "IN_PROGRESS" && job.paused)) return unchanged(job);
  if (job.state === "IN_PROGRESS") return sameStateNoted(job, { paused: true }, "pause", now, "it finishes this attempt; another would wait paused");
  if (!isWaiting(job.state)) return wrongState(job, "pause");
  // A SEQUENCED job keeps its place in its sequence (and the jobs behind it wait for it).
  return moveTo(job, "PAUSED", "pause", now, { paused: true, sequenceCheckAt: null }, "keep");
}

/**
 * A user resumes a paused job: PAUSED → IN_QUEUE, or SCHEDULED when its time has not come yet,
 * or when it has a sequence to enter first (its alarm does that at once: JobDue.becomeReady). A
 * running job just drops the pause; resuming a job that is not paused changes nothing.
 */
export function resume(job: JobRecord, now: number): CommandResult {
  if (job.state !== "PAUSED") {
    if (isRunning(job.state) && job.paused) return sameStateNoted(job, { paused: false }, "resume", now);
    if (isTerminal(job.state) || !job.paused) return unchanged(job);
  }
  const later = job.readyAt !== null && job.readyAt > now;
  // A push job is dispatched afresh (a dispatch message of its that came while paused was refused).
  if (!later && job.sequenceKey === null) return moveTo(job, "IN_QUEUE", "resume", now, { paused: false, readyAt: null, queuedAt: now, dispatch: null }, "keep");
  return moveTo(job, "SCHEDULED", "resume", now, { paused: false, readyAt: later ? job.readyAt : now, dispatch: null }, "keep");
}
