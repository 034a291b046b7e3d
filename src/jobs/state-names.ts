/**
 * Every state of a job and what each seed system calls it (issue 15, item 6; SPEC §4's table,
 * PEERS.md's seed state models): RunPod (what its clients read here), UCloud, Actian's
 * jobconfig system (DataConnect Integration Manager) and Flamenco. Served at GET /v2/{ep}/states
 * and written out in the README. Null: that system has no such state.
 */
import { clientStatus, JOB_STATES, type JobState } from "./states";

export interface StateNames {
  state: JobState;
  /** What `/status` shows a client (RunPod's vocabulary). */
  shownAs: string;
  meaning: string;
  runpod: string | null;
  ucloud: string | null;
  actian: string | null;
  flamenco: string | null;
}

const NAMES: Record<JobState, Omit<StateNames, "state" | "shownAs">> = {
  SCHEDULED: { meaning: "Waiting for its time (a delay, runAt, a retry's delay or backoff); no worker may take it yet.", runpod: null, ucloud: null, actian: "WAITING", flamenco: null },
  PAUSED: { meaning: "Held out of line by its user (POST /pause/{id}) until resumed; its TTL keeps running.", runpod: null, ucloud: "SUSPENDED", actian: null, flamenco: "paused" },
  SEQUENCED: { meaning: "Behind an unfinished job of its sequenceKey.", runpod: null, ucloud: null, actian: "SEQUENCED", flamenco: null },
  IN_QUEUE: { meaning: "Ready, waiting for a worker (a task of a job of tasks waiting again after a failed attempt: Flamenco's soft-failed).", runpod: "IN_QUEUE", ucloud: "IN_QUEUE", actian: "QUEUED", flamenco: "queued / soft-failed" },
  IN_PROGRESS: { meaning: "A worker holds its lease and runs it.", runpod: "IN_PROGRESS", ucloud: "RUNNING", actian: "INITIALIZING / RUNNING", flamenco: "active" },
  CANCELLING: { meaning: "Cancelled while running; its worker is told to stop (job-stop) within the grace period.", runpod: null, ucloud: "CANCELING", actian: null, flamenco: "cancel-requested" },
  COMPLETED: { meaning: "Its worker reported a result.", runpod: "COMPLETED", ucloud: "SUCCESS", actian: "FINISHED", flamenco: "completed" },
  ERROR: {
    meaning: "It ran and reported a result with a non-zero exitCode: an outcome, output kept, never retried. RunPod's clients read COMPLETED with error set.",
    runpod: "COMPLETED (with error)",
    ucloud: "SUCCESS (non-zero exit code)",
    actian: "ERROR",
    flamenco: null,
  },
  FAILED: { meaning: "Its handler failed with no attempt left (an error without exitCode), or it could not be delivered (push).", runpod: "FAILED", ucloud: "FAILURE", actian: "FAILED", flamenco: "failed" },
  CANCELLED: { meaning: "Cancelled by its user, purged, or its endpoint was deleted (reason says which).", runpod: "CANCELLED", ucloud: "SUCCESS (cancelled)", actian: "CANCELLED", flamenco: "canceled" },
  TIMED_OUT: {
    meaning: "Not started within its TTL (reason ttl), ran past its execution timeout (execution_timeout), or its worker went silent on the last attempt (heartbeat_lost).",
    runpod: "TIMED_OUT",
    ucloud: "EXPIRED",
    actian: null,
    flamenco: "failed (task_timeout)",
  },
};

export const STATE_NAMES: readonly StateNames[] = JOB_STATES.map((state) => ({ state, shownAs: clientStatus(state), ...NAMES[state] }));
