/**
 * What the edge and jobs send a liveness shard, and what it answers or tells its endpoint
 * (LivenessObject).
 */
import type { LiveWorkers, TagSetSign, WorkerCounts, WorkerRow, WorkerState } from "./workers";

/**
 * What a ping found: CANCELLING jobs it no longer lists (`told`: their stop went out through
 * job-stop), and running jobs it does not list.
 */
export interface PingReply {
  quiet: Array<{ jobId: string; told: boolean }>;
  unlisted: string[];
}

/** A job its worker lost, found when a claim carried its take's word that the worker runs nothing else (hold). */
export interface LostJob {
  jobId: string;
  workerId: string;
}

/** A take as its worker's liveness object learns of it (LivenessObject.taking). */
export interface TakeSign {
  workerId: string;
  /** What the worker says it runs (`job_in_progress`; null: unsaid). */
  jobInProgress: boolean | null;
  /** When the take's long-poll ends at the latest. */
  pollUntil: number;
  /** The take's id (shared/take-ids; null: none). */
  takeId: string | null;
  /** The tags it declared (canonical; null: unsaid, kept as they were). */
  tags: string | null;
}

/** A heartbeat as its worker's liveness object reads it (LivenessObject.ping). */
export interface PingSign {
  /** The jobs the worker says it runs (null: the ping says nothing about jobs). */
  jobIds: string[] | null;
  sdkVersion: string | null;
  /** A failed start-up check, as "check: reason" (null: healthy). */
  unhealthy: string | null;
  /** The tags it declared (canonical; null or absent: unsaid, kept as they were). */
  tags?: string | null;
}

export interface WorkerView extends WorkerRow {
  state: WorkerState;
  currentJobs: string[];
}

/** What a shard tells its endpoint: for metrics samples, queue.reason, and cold starts. */
export interface ShardSummary {
  /** Its workers by state (none throttled: only the endpoint knows that). */
  counts: WorkerCounts;
  /** The latest sign of life of a worker not reported unhealthy (a long-poll counts to its end). */
  lastSign: number | null;
  /** Cold starts (first sign of life → first take, ms) not yet told. */
  coldStarts: number[];
  /** The tag sets its healthy workers declared, each with its latest sign (absent from older shards: none). */
  tagSets?: TagSetSign[];
  /** Its live workers by id, at most BLOCKLIST.liveIdsPerSummary (absent from older shards: not known). */
  live?: LiveWorkers;
}
