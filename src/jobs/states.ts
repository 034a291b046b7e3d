/**
 * Job states and the one transition table every state change goes through (SPEC §4).
 */
export const JOB_STATES = [
  "SEQUENCED",
  "IN_QUEUE",
  "IN_PROGRESS",
  "CANCELLING",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

export const WAITING_STATES = ["SEQUENCED", "IN_QUEUE"] as const;
export type WaitingState = (typeof WAITING_STATES)[number];

/** Why a job ended TIMED_OUT. */
export const TIMEOUT_REASONS = ["ttl", "execution_timeout", "heartbeat_lost"] as const;
export type TimeoutReason = (typeof TIMEOUT_REASONS)[number];

/** Every allowed edge. Nothing writes a state that is not reachable through this table. */
export const TRANSITIONS = {
  SEQUENCED: ["IN_QUEUE", "CANCELLED", "TIMED_OUT"],
  // IN_QUEUE → FAILED: a push job whose dispatch the queue gave up on (dead letter).
  IN_QUEUE: ["IN_PROGRESS", "CANCELLED", "TIMED_OUT", "FAILED"],
  IN_PROGRESS: ["COMPLETED", "FAILED", "IN_QUEUE", "CANCELLING", "TIMED_OUT"],
  CANCELLING: ["CANCELLED"],
  // Terminal → SEQUENCED: a retried or requeued job re-enters its sequence behind an unfinished job.
  COMPLETED: ["IN_QUEUE", "SEQUENCED"],
  FAILED: ["IN_QUEUE", "SEQUENCED"],
  CANCELLED: ["IN_QUEUE", "SEQUENCED"],
  TIMED_OUT: ["IN_QUEUE", "SEQUENCED"],
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

/** Held by a worker: running, or told to stop and not yet stopped. */
export function isRunning(state: string): boolean {
  return state === "IN_PROGRESS" || state === "CANCELLING";
}
