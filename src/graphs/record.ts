/**
 * A job of tasks (issue 15, item 1; Flamenco's jobs and tasks) as its object keeps it: the job's
 * record, its tasks' rows, and the one function that puts a task in its bucket. Plain data.
 *
 * A task is in exactly one bucket, kept with a count per bucket (./store), so the job's state
 * and summary never scan its tasks:
 * - `blocked`: its job not created, some task it depends on not completed;
 * - `ready`: its job not created, every dependency completed (the alarm creates it);
 * - `queued`, `soft-failed` (waiting again after a failed attempt), `paused`, `active`: its job
 *   waits, waits again, is paused, runs (or is being stopped);
 * - `completed` (COMPLETED, or ERROR: it ran and reported a result), `failed` (FAILED,
 *   TIMED_OUT), `canceled`.
 */
import type { JobState } from "../jobs/states";

export const BUCKETS = ["blocked", "ready", "queued", "soft-failed", "paused", "active", "completed", "failed", "canceled"] as const;
export type Bucket = (typeof BUCKETS)[number];

/** Flamenco's task statuses as clients read them: `blocked` and `ready` read `queued`. */
export type TaskState = Exclude<Bucket, "blocked" | "ready">;

export const taskStateOf = (b: Bucket): TaskState => (b === "blocked" || b === "ready" ? "queued" : b);

/** Buckets of tasks that are over for this run of the job. */
export const FINISHED_BUCKETS: readonly Bucket[] = ["completed", "failed", "canceled"];

/** The job object name of a task's job for run `run` (a requeue starts a run: the task gets a fresh job), and a replica's `tries`-th fresh job in it. */
export const taskObjectName = (graphId: string, idx: number, run: number, tries = 0) => `task:${graphId}:${idx}:${run}${tries > 0 ? `.${tries}` : ""}`;

/** What the job of tasks wants of its tasks' jobs now; a task's job is told once per change of it. */
export type Want = "run" | "pause" | "cancel";

export interface GraphRecord {
  id: string;
  endpointId: string;
  endpointGen: string;
  /** The submit body less its tasks (policy, priority, tags, webhook…): each task's job is submitted with it. */
  template: string;
  webhook: string | null;
  idempotency: { key: string; bodyHash: string } | null;
  origin: string | null;
  retentionMs: number;
  blocklistThreshold: number;
  /** What its tasks' jobs are told (./work); "cancel" once cancelled, until a requeue. */
  want: Want;
  /** Workers blocklisted from every task (they failed blocklistThreshold tasks), in order. */
  blocked: string[];
  /**
   * A job of replicas (issue 15, item 4; UCloud's): how many (its tasks are `replica-0`…, one input,
   * run on distinct workers, each created once the ones before it started); null: a job of tasks.
   */
  replicas: number | null;
  /** Replicas: the workers that took one in this run (none is handed another). */
  busy: string[];
  /** Replicas: jobs each replica may have in a run (its policy's maxAttempts, default 1: one failing fails the job). */
  replicaAttempts: number;
  /** Replicas: ms the whole job may run from its first replica's start (its policy's executionTimeout). */
  executionTimeout: number;
  /** Replicas: when the whole job times out (set when the first replica starts). */
  deadlineAt: number | null;
  /**
   * Why the job stops its tasks' jobs on its own (a replica failed, its time ran out, its tasks'
   * jobs could not be created): it reads as before until they stopped, then FAILED or TIMED_OUT.
   */
  stopping: "failed" | "timed_out" | null;
  /** Bumped by each requeue: a task's job object is named per run, so a requeued task gets a fresh job. */
  run: number;
  version: number;
  createdAt: number;
  startedAt: number | null;
  /** When nothing could progress any more (every task finished or waits on one that did not complete). */
  completedAt: number | null;
  /** Why the job failed: the first failed task and its error. */
  error: string | null;
  /** When the alarm next creates, tells or cancels tasks' jobs (null: nothing to do). */
  workDueAt: number | null;
  createFailingSince: number | null;
}

/** A task as its job of tasks keeps it. */
export interface TaskRow {
  idx: number;
  name: string;
  bucket: Bucket;
  /** The task's own tags (null: the job's). */
  tags: string[] | null;
  maxAttempts: number | null;
  depsLeft: number;
  /** Its job for this run (named per job of tasks, task and run). */
  jobId: string;
  created: boolean;
  /** The last state its job told (null: none yet), and that note's version. */
  jobState: JobState | null;
  version: number;
  attempt: number;
  workerId: string | null;
  startedAt: number | null;
  completedAt: number | null;
  error: string | null;
  outputBytes: number;
  /** Each worker that failed an attempt of its job, once per attempt. */
  failedWorkers: string[];
  /** What its job was last told: the job's want, and how many of the job's blocked and busy workers. */
  told: Want;
  blockedTold: number;
  busyTold: number;
  /** The exit code its job's result carried (null: none). */
  exitCode: number | null;
  /** A replica: the jobs it had before this one in this run (each failed; its job of replicas gave it a fresh one). */
  tries: number;
}

/** The bucket of a task's job in `state` (`attempt`: attempts started; a waiting job after one soft-failed). */
export function bucketOfJob(state: JobState, failedAttempts: number): Bucket {
  switch (state) {
    case "PAUSED":
      return "paused";
    case "SCHEDULED":
    case "SEQUENCED":
    case "IN_QUEUE":
      return failedAttempts > 0 ? "soft-failed" : "queued";
    case "IN_PROGRESS":
    case "CANCELLING":
      return "active";
    case "COMPLETED":
    case "ERROR":
      return "completed";
    case "FAILED":
    case "TIMED_OUT":
      return "failed";
    case "CANCELLED":
      return "canceled";
  }
}

/** The bucket of a task whose job is not created. */
export const bucketUncreated = (depsLeft: number): Bucket => (depsLeft > 0 ? "blocked" : "ready");

/** Counts of tasks by Flamenco's state, as /status shows them. */
export type TaskCounts = Record<TaskState, number> & { total: number };

export function taskCounts(byBucket: ReadonlyMap<Bucket, number>): TaskCounts {
  const n = (b: Bucket) => byBucket.get(b) ?? 0;
  return {
    total: BUCKETS.reduce((s, b) => s + n(b), 0),
    queued: n("blocked") + n("ready") + n("queued"),
    "soft-failed": n("soft-failed"),
    paused: n("paused"),
    active: n("active"),
    completed: n("completed"),
    failed: n("failed"),
    canceled: n("canceled"),
  };
}
