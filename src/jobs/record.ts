import type { JobState, TimeoutReason } from "./states";
import type { RetryBackoff } from "./backoff";

/** How the job was submitted: decides its default retention (RunPod: 30 min for /run, 1 min for /runsync). */
export type JobKind = "run" | "sync";

export type TtlMode = "queue" | "lifespan";

/** Is the job's TTL its whole lifespan (rather than its time in the queue)? */
export function ttlIsLifespan(policy: Pick<JobPolicy, "ttlMode">): boolean {
  return policy.ttlMode === "lifespan";
}

/** The policy a job runs under, resolved at submit from the body and the endpoint's defaults. */
export interface JobPolicy {
  /** ms a worker may run one attempt before the job ends TIMED_OUT (execution_timeout). */
  executionTimeout: number;
  /** ms from submission a job may wait before it ends TIMED_OUT (ttl); with ttlMode "lifespan", ms it may exist at all. */
  ttl: number;
  /**
   * What `ttl` bounds: "queue" (the wait for a worker: the job then ends TIMED_OUT and stays
   * readable for its retention) or "lifespan" (RunPod since 2026: the job's whole life from
   * submission; at its end the job is gone, whatever its state, and a running attempt is stopped).
   * Absent in records from before it was kept: "queue".
   */
  ttlMode?: TtlMode;
  /** Attempts allowed in all (first try included). */
  maxAttempts: number;
  /** ms without a sign of life from the worker before its lease is lost. */
  heartbeatTimeout: number;
  lowPriority: boolean;
  priority: number;
  /** ms a terminal job stays readable before it is deleted. */
  retentionMs: number;
  /** ms a CANCELLING job waits for its worker to stop before it ends CANCELLED. */
  cancelGraceMs: number;
  /** Whether a handler error puts the job back in the queue while attempts are left. */
  retryOnError: boolean;
  /** How long the job waits (SCHEDULED) before the next attempt after an error or a lost lease; absent or null: none. */
  retryBackoff?: RetryBackoff | null;
  /** The tags a worker must have declared to be handed the job (issue 15, item 3), sorted; absent: none. */
  tags?: string[];
  /** Failed attempts of this job after which a worker is blocklisted from it (jobs/blocklist; absent in older records: BLOCKLIST's default). */
  blocklistThreshold?: number;
}

/** Why a job ended where it did, when the state alone does not say. */
export type EndReason = TimeoutReason | "purged" | "cancelled" | "endpoint_deleted" | "blocklisted";

/** An idempotent submit's key and the hash of the body it came with. */
export interface Idempotency {
  key: string;
  bodyHash: string;
}

/** How long an idempotency key keeps answering with its first job. */
export const IDEMPOTENCY_MS = 24 * 60 * 60 * 1000;

/**
 * A push dispatch in flight: the queue message's token, whether the worker accepted, the last
 * error, and when the consumer last claimed it (absent in records written before it was kept).
 */
export interface Dispatch {
  token: string;
  accepted: boolean;
  tries: number;
  error: string | null;
  claimedAt?: number;
}

/** The last report a worker had accepted, so an exact repeat answers as the first did. */
/**
 * The job is one task of a job of tasks (issue 15, item 1): the job of tasks' id (workers get it
 * as `parentJobId`), the task's name (`taskName`), and the workers the job of tasks blocklisted
 * (they failed `blocklistThreshold` of its tasks): never handed this task's job.
 */
export interface TaskLink {
  graphId: string;
  name: string;
  blocked: string[];
  /**
   * A replica (issue 15, item 4): workers that took another replica of its job. They are not
   * handed this one (a job's replicas run on distinct workers), but are not blocklisted: the
   * replica waits for another worker rather than failing. Absent: none.
   */
  busy?: string[];
}

export interface AcceptedReport {
  workerId: string;
  attempt: number;
  kind: "complete" | "fail" | "error";
  /** The exit code the result carried (issue 15, item 5); absent when it carried none. */
  exitCode?: number;
  /** A retried error's text (the job's `error` stays unset while it waits again; a blocklist's end names it). */
  error?: string;
}

/**
 * What a client sent with the job that edge-jobs does not act on but keeps (RunPod's `s3Config`,
 * handed to workers as is, never echoed to clients; `webhookV2`, kept only).
 * Plain strings, so they cross RPC as they are.
 */
export interface JobExtras {
  /** The client's `s3Config`, as JSON text (spliced into what workers get). */
  s3Config?: string;
  webhookV2?: string;
}

/** The authoritative record of one job; payloads (input, output) live beside it as blobs. */
export interface JobRecord {
  id: string;
  endpointId: string;
  /** The endpoint's incarnation (its `generation`) at submit; null for jobs from before it was kept. */
  endpointGen: string | null;
  /** The shard of the endpoint's ready index the job was placed on at submit (0: the endpoint object). */
  shard: number;
  kind: JobKind;
  state: JobState;
  /** Bumped by every change; the endpoint's index keeps only the newest version it saw. */
  version: number;
  policy: JobPolicy;
  webhook: string | null;
  idempotency: Idempotency | null;
  /** Jobs with the same key run one at a time, in submit order (SEQUENCED until their turn). */
  sequenceKey: string | null;
  /** The batch the job is a request of (issue 14; workers get it as `batchId`). */
  batchId: string | null;
  /** The job of tasks this job is a task of (absent in older records: none). */
  task: TaskLink | null;
  extras: JobExtras | null;
  /**
   * When a SCHEDULED job becomes ready (a delay, a run-at time, a retry's backoff); null otherwise.
   * Its own alarm makes it ready then (issue 16).
   */
  readyAt: number | null;
  /**
   * The job's flow-control key (its concurrencyKey or rateLimitKey; issue 16): the key's jobs are
   * placed on one shard, take turns with other keys' jobs, and count against the key's limits.
   */
  flowKey: string | null;
  /**
   * Paused by its user (issue 15, Flamenco's `paused`): a waiting job is PAUSED and handed to no
   * worker until resumed; a running one finishes its attempt, and waits PAUSED should it go back.
   */
  paused: boolean;
  /** When a SEQUENCED job next asks its endpoint whether its turn has come (a backstop). */
  sequenceCheckAt: number | null;
  /** PUBLIC_URL's origin when the job was submitted (push URLs use PUBLIC_URL as it is at dispatch). */
  origin: string | null;
  dispatch: Dispatch | null;
  /**
   * Retention is over but the idempotency key is younger than 24 h: payloads and history are gone,
   * reads answer 404, and only a repeat submit still sees the job.
   */
  gone: boolean;
  /** Attempts started so far (0 until the first claim). The lease is (workerId, attempt). */
  attempt: number;
  /** Times the job went back to the queue after its first attempt. */
  retries: number;
  workerId: string | null;
  /**
   * The worker of each failed or lost attempt, in order (a worker once per attempt it failed; in
   * records from before blocklists, once at most): the queue prefers others for the next attempt,
   * and a worker listed blocklistThreshold times is blocklisted from the job (jobs/blocklist).
   */
  failedWorkers: string[];
  /** A worker whose attempt was taken away (cancel, timeout, lost lease) and must be told to stop. */
  stopFor: string | null;
  lastReport: AcceptedReport | null;
  /**
   * What the lease holder said it is doing (issue 15, item 5): "initializing" after it reported
   * `{"status": "INITIALIZING"}` (preparing: loading a model, fetching inputs); null once it reports
   * progress, streams, or the attempt ends. Clients read IN_PROGRESS with `phase`.
   */
  phase: "initializing" | null;
  error: string | null;
  reason: EndReason | null;
  hasOutput: boolean;
  createdAt: number;
  /** When the job last entered IN_QUEUE (delayTime is measured from here). */
  queuedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Deadlines; the job's alarm is always the earliest one that applies to its state. */
  ttlAt: number;
  execDeadline: number | null;
  /** When the lease holder must next have shown a sign of life (heartbeatTimeout after the last). */
  leaseCheckAt: number | null;
  cancelDeadline: number | null;
  purgeAt: number | null;
}

/** One line of a job's history: every transition, and every report that was refused. */
export interface HistoryEvent {
  at: number;
  command: string;
  from: JobState;
  to: JobState;
  attempt: number;
  workerId: string | null;
  detail: string | null;
}

/**
 * How a caller names the endpoint a job must belong to: its id, and from the edge also the
 * incarnation it authorized against (a job of an earlier incarnation is then not found).
 * Internal callers that already hold the job's own endpoint id may pass the id alone.
 */
export type EndpointRef = string | { id: string; generation: string };

export function endpointIdOf(ref: EndpointRef): string {
  return typeof ref === "string" ? ref : ref.id;
}

/** Does the job belong to the endpoint `ref` names (and to its current incarnation)? */
export function belongsTo(job: Pick<JobRecord, "endpointId" | "endpointGen">, ref: EndpointRef): boolean {
  if (typeof ref === "string") return job.endpointId === ref;
  return job.endpointId === ref.id && (job.endpointGen === null || job.endpointGen === ref.generation);
}
