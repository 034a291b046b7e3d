/**
 * Job states and the one transition table every state change goes through (SPEC §4).
 */
export const JOB_STATES = [
  "PAUSED",
  "SCHEDULED",
  "SEQUENCED",
  "IN_QUEUE",
  "IN_PROGRESS",
  "CANCELLING",
  "COMPLETED",
  "ERROR",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** ERROR: it ran and reported a result with a non-zero exitCode (issue 15, item 5; Actian's ERROR, UCloud's exit code); clients read COMPLETED, with `error` and `outcome: "error"`. */
export const TERMINAL_STATES = ["COMPLETED", "ERROR", "FAILED", "CANCELLED", "TIMED_OUT"] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

/** SCHEDULED: not ready before its time (a delay, runAt, a retry's backoff); clients read IN_QUEUE (queue.reason "scheduled"). */
/** PAUSED: its user paused it (per-job pause); clients read IN_QUEUE (queue.reason "job_paused"). */
export const WAITING_STATES = ["PAUSED", "SCHEDULED", "SEQUENCED", "IN_QUEUE"] as const;
export type WaitingState = (typeof WAITING_STATES)[number];

/** Why a job ended TIMED_OUT. */
export const TIMEOUT_REASONS = ["ttl", "execution_timeout", "heartbeat_lost"] as const;
export type TimeoutReason = (typeof TIMEOUT_REASONS)[number];

/** Every allowed edge. Nothing writes a state that is not reachable through this table. */
export const TRANSITIONS = {
  // PAUSED → where a resume sends it: IN_QUEUE, or SCHEDULED (not yet its time, or to enter its sequence).
  PAUSED: ["IN_QUEUE", "SCHEDULED", "CANCELLED", "TIMED_OUT"],
  // SCHEDULED → IN_QUEUE or SEQUENCED at its time; → TIMED_OUT only when its TTL is a lifespan that ends first.
  SCHEDULED: ["IN_QUEUE", "SEQUENCED", "PAUSED", "CANCELLED", "TIMED_OUT"],
  SEQUENCED: ["IN_QUEUE", "PAUSED", "CANCELLED", "TIMED_OUT"],
  // IN_QUEUE → FAILED: a push job whose dispatch the queue gave up on (dead letter).
  IN_QUEUE: ["IN_PROGRESS", "PAUSED", "CANCELLED", "TIMED_OUT", "FAILED"],
  // IN_PROGRESS → SCHEDULED: an attempt failed or was lost and the policy backs off before the next;
  // → PAUSED: that happened to a job paused while it ran.
  // IN_PROGRESS → ERROR: a result with a non-zero exitCode (an outcome, never retried).
  IN_PROGRESS: ["COMPLETED", "ERROR", "FAILED", "IN_QUEUE", "SCHEDULED", "PAUSED", "CANCELLING", "TIMED_OUT"],
  CANCELLING: ["CANCELLED"],
  // Terminal → SEQUENCED: a retried or requeued job re-enters its sequence behind an unfinished job.
  // Terminal → SCHEDULED: a retry or requeue with a delay.
  COMPLETED: ["IN_QUEUE", "SEQUENCED", "SCHEDULED"],
  ERROR: ["IN_QUEUE", "SEQUENCED", "SCHEDULED"],
  FAILED: ["IN_QUEUE", "SEQUENCED", "SCHEDULED"],
  CANCELLED: ["IN_QUEUE", "SEQUENCED", "SCHEDULED"],
  TIMED_OUT: ["IN_QUEUE", "SEQUENCED", "SCHEDULED"],
} as const satisfies Record<JobState, readonly JobState[]>;

export function canTransition(from: JobState, to: JobState): boolean {
  return (TRANSITIONS[from] as readonly JobState[]).includes(to);
}

export function isTerminal(state: JobState): state is TerminalState {
  return (TERMINAL_STATES as readonly JobState[]).includes(state);
}

export function isWaiting(state: JobState): state is WaitingState {
  return (WAITING_STATES as readonly JobState[]).includes(state);
}

/**
 * The status a client reads for a state: a SCHEDULED or PAUSED job is IN_QUEUE to RunPod's clients
 * (its `queue.reason` says "scheduled" or "job_paused"), an ERROR job COMPLETED (with `error` and
 * `outcome: "error"`); every other state reads as itself.
 */
export function clientStatus(state: JobState): Exclude<JobState, "SCHEDULED" | "PAUSED" | "ERROR"> {
  if (state === "ERROR") return "COMPLETED";
  return state === "SCHEDULED" || state === "PAUSED" ? "IN_QUEUE" : state;
}

/** Held by a worker: running, or told to stop and not yet stopped. */
export function isRunning(state: string): boolean {
  return state === "IN_PROGRESS" || state === "CANCELLING";
}
