/**
 * The machinery every named command goes through: the result type, typed refusals, and moveTo,
 * which moves a job along the one transition table with its history event and new version.
 * The commands themselves live in ./commands (workers, users, alarms) and ./push-commands.
 */
import { blocklistsNow, thresholdOf } from "./blocklist";
import { ttlIsLifespan, type HistoryEvent, type JobRecord } from "./record";
import { canTransition, clientStatus, isTerminal, type JobState } from "./states";
import { backoffMs } from "./backoff";

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

/** How often a SEQUENCED job checks its turn itself, should the release by the job ahead be lost. */
export const SEQUENCE_CHECK_MS = 30_000;

/** What the command does to the stored output blob. */
type OutputChange = "keep" | "set" | "clear";

export type CommandResult =
  | {
      ok: true;
      job: JobRecord;
      output: OutputChange;
      event: HistoryEvent | null;
      /** A line for the history of a change that keeps the state (a user's command worth seeing there). */
      note?: HistoryEvent;
    }
  | { ok: false; code: ConflictCode; job: JobRecord; message: string };

export function conflict(job: JobRecord, code: ConflictCode, message: string): CommandResult {
  return { ok: false, code, job, message };
}

/** Refused in this state: named as clients read it, an internal state after it ("IN_QUEUE (scheduled)"). */
export function wrongState(job: JobRecord, command: string): CommandResult {
  const shown = clientStatus(job.state);
  const state = shown === job.state ? shown : `${shown} (${job.state.toLowerCase()})`;
  return conflict(job, "WRONG_STATE", `cannot ${command} a job that is ${state}`);
}

/**
 * Moves `job` to `to` through the transition table, applying `patch`. Entering a terminal state
 * stamps completedAt and the retention deadline and drops the running deadlines.
 */
export function moveTo(
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
  // A phase ("initializing") belongs to the running attempt: any move ends it.
  let next: JobRecord = { ...job, stopFor: null, phase: null, ...patch, state: to, version: job.version + 1 };
  if (isTerminal(to)) {
    next = {
      ...next,
      completedAt: now,
      execDeadline: null,
      leaseCheckAt: null,
      cancelDeadline: null,
      sequenceCheckAt: null,
      readyAt: null,
      paused: false,
      // A lifespan TTL ends the job's readability too (RunPod: deleted whatever its state).
      purgeAt: ttlIsLifespan(job.policy) ? Math.min(now + job.policy.retentionMs, job.ttlAt) : now + job.policy.retentionMs,
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

export function unchanged(job: JobRecord): CommandResult {
  return { ok: true, job, output: "keep", event: null };
}

/** A change that keeps the state (and so the version): a progress output, an extended lease. */
export function sameState(job: JobRecord, patch: Partial<JobRecord>, output: OutputChange): CommandResult {
  return { ok: true, job: { ...job, ...patch }, output, event: null };
}

/** As sameState, with a history line naming the user's `command` (the state stays, so no transition). */
export function sameStateNoted(job: JobRecord, patch: Partial<JobRecord>, command: string, now: number, detail: string | null = null): CommandResult {
  const note: HistoryEvent = { at: now, command, from: job.state, to: job.state, attempt: job.attempt, workerId: job.workerId, detail };
  return { ok: true, job: { ...job, ...patch }, output: "keep", event: null, note };
}

/**
 * IN_PROGRESS → IN_QUEUE: the attempt is over without a result; the job waits for another
 * worker. Its queue TTL still counts from submission (a backoff's wait included). With a retry
 * backoff it waits SCHEDULED for that long first (IN_PROGRESS → SCHEDULED); not after a refused
 * push (`backoff` false), whose dispatch message the queue retries with its own backoff.
 */
export function releaseAttempt(job: JobRecord, command: string, now: number, patch: Partial<JobRecord>, detail: string, backoff = true): CommandResult {
  // A pulling worker's failure counts toward its blocklist from this job (jobs/blocklist); a
  // push attempt's does not (the queue retries the same push; its URL is no worker to avoid).
  const counts = job.workerId !== null && job.dispatch === null;
  const failedWorkers = counts ? [...job.failedWorkers, job.workerId!] : job.failedWorkers;
  if (counts && blocklistsNow(job, job.workerId!)) detail = `${detail}; ${job.workerId} is blocklisted from this job (${thresholdOf(job)} failed attempts)`;
  const wait = backoff ? backoffMs(job.policy.retryBackoff, job.retries, `${job.id}:${job.attempt}`) : 0;
  const readyAt = wait > 0 ? now + wait : null;
  // A job paused while it ran waits PAUSED (until its resume, then its backoff's end).
  return moveTo(
    job,
    job.paused ? "PAUSED" : readyAt === null ? "IN_QUEUE" : "SCHEDULED",
    command,
    now,
    {
      // A push job's next attempt is a new dispatch (its accepted one is over); a refused push
      // keeps its dispatch (patch), whose message the queue retries.
      dispatch: null,
      ...patch,
      readyAt,
      retries: job.retries + 1,
      failedWorkers,
      workerId: null,
      queuedAt: readyAt ?? now,
      startedAt: null,
      execDeadline: null,
      leaseCheckAt: null,
    },
    "clear",
    detail,
  );
}
