/**
 * The bodies the client API (/v2/{endpointId}/…), the job stream, the metrics and the load report
 * answer with, as their handlers build them (http/render, jobs/view, endpoints/health,
 * metrics/buckets, shared/load). Output objects are closed: every field a handler may send is listed.
 */
import { z } from "zod";
import { SubmitBody } from "../../jobs/policy";
import { ReplicasBody, TasksBody } from "../../graphs/validate";
import { QUEUE_REASONS } from "../../endpoints/shards";
import { IsoTime, JobState, JobStatus } from "./common";

const int = () => z.number().int();
const count = () => z.number().int().nonnegative();

// ---- requests ----

/** The body of /run and /runsync: the schema that validates it. */
/** /run with `tasks`: a job of tasks (issue 15, item 1). */
export const TasksRequest = TasksBody.meta({
  id: "TasksRequest",
  description: "A job of tasks: `tasks` (1-10,000, a DAG by `dependsOn`), and for every task `policy`, `priority`, `tags`; `webhook` and `idempotencyKey` for the job. /run only.",
});

/** /run with `replicas`: a job of replicas (issue 15, item 4). */
export const ReplicasRequest = ReplicasBody.meta({
  id: "ReplicasRequest",
  description: "A job of replicas: `replicas` (1-64) distinct workers run `input` at once; `policy` (maxAttempts: tries per replica, default 1; executionTimeout: the whole job's), `priority`, `tags`, `webhook`, `idempotencyKey`. /run only.",
});

export const RunRequest = SubmitBody.meta({
  id: "RunRequest",
  description:
    "RunPod's submit body: `input` (any JSON value but null) is handed to the worker as is. `webhook`, `policy` " +
    "(RunPod's executionTimeout, ttl, lowPriority, plus maxAttempts, heartbeatTimeout, retryOnError and retryBackoff), `priority`, " +
    "`idempotencyKey`, `sequenceKey`, a flow key (`concurrencyKey` or `rateLimitKey`), and `delay` or `runAt` (the job waits for its time, read as IN_QUEUE) are optional; `s3Config` is handed to the job's workers as sent (never echoed); `webhookV2` is kept, not called; other top-level fields are ignored.",
});

// ---- job status ----

/** Why a waiting job waits (endpoints/shards QueueInfo). */
export const JobQueueInfo = z
  .object({
    position: int()
      .positive()
      .nullable()
      .describe("1 + ready jobs ahead of it on its shard (approximate; a job with a flow key: ahead of it among its key's, which take turns with other keys); null when not known, e.g. while it waits behind a job of its sequence."),
    positionAtLeast: z.literal(true).optional().describe("Present when the job is at least `position` in line (far back, the count is a bound)."),
    reason: z.enum(QUEUE_REASONS),
    ahead: z.string().optional().describe("The job of its sequence it waits for (reason sequenced_behind)."),
    lastError: z.string().optional().describe("The last push error, while a dispatch is retried (reason dispatch_retrying)."),
    runAt: z.string().optional().describe("When a scheduled job (a delay, runAt, a retry's backoff) becomes ready (reason scheduled)."),
    availableAt: z.string().optional().describe("When the job's rate-limited flow key may start jobs again (reason key_rate_limited)."),
    tags: z.array(z.string()).optional().describe("The tags the job requires, none of the live workers having declared them all (reason no_matching_workers)."),
  })
  .meta({ id: "JobQueueInfo", description: "Why a waiting job (IN_QUEUE or SEQUENCED) waits." });

/** The delivery state of a job's latest webhook event (webhooks/delivery WebhookSummary). */
export const JobWebhookSummary = z
  .object({
    state: z.enum(["pending", "delivered", "failed", "gone"]),
    attempts: count(),
    lastStatus: int().nullable().describe("The HTTP status of the last attempt (null: none yet, or no answer)."),
    nextAttemptAt: IsoTime.nullable(),
  })
  .meta({ id: "JobWebhookSummary", description: "The delivery state of the job's latest webhook event." });

/** RunPod's status body with edge-jobs' extensions (jobs/view statusFields + render.renderWithOutput). */
/** A job of tasks' tasks by Flamenco's task states (issue 15, item 1). */
export const TaskCounts = z
  .object({
    total: count(),
    queued: count().describe("Waiting: for a worker, or for tasks it depends on."),
    "soft-failed": count().describe("Waiting again after a failed attempt (offered to other workers first)."),
    paused: count(),
    active: count().describe("Running (or being stopped)."),
    completed: count(),
    failed: count(),
    canceled: count(),
  })
  .meta({ id: "TaskCounts" });

export const JobStatusBody = z
  .object({
    id: z.string(),
    status: JobStatus,
    delayTime: int().optional().describe("ms from entering the queue to the start of the attempt (once started)."),
    executionTime: int().optional().describe("ms the attempt ran, so far or in all (once started)."),
    error: z.string().optional().describe("The error the job failed with; on a COMPLETED job with outcome \"error\", the error it ended with."),
    workerId: z.string().optional().describe("The worker that holds or held the job."),
    retries: count().optional().describe("Times the job went back to the queue after its first attempt (absent for a job of tasks)."),
    attempt: count().optional().describe("Attempts started so far (0 until the first; absent for a job of tasks)."),
    reason: z
      .enum(["ttl", "execution_timeout", "heartbeat_lost", "purged", "cancelled", "endpoint_deleted", "blocklisted"])
      .optional()
      .describe("Why the job ended where it did, when the state alone does not say."),
    createdAt: IsoTime,
    startedAt: IsoTime.optional(),
    completedAt: IsoTime.optional(),
    outcome: z.literal("error").optional().describe("The job ran and ended with errors (internal state ERROR: a result with a non-zero exitCode); status reads COMPLETED, output kept, never retried."),
    exitCode: int().optional().describe("The exit code its result carried (a finished job whose worker sent one)."),
    phase: z.literal("initializing").optional().describe("IN_PROGRESS, and its worker said it is still preparing the job ({\"status\": \"INITIALIZING\"} on job-done)."),
    paused: z.literal(true).optional().describe("Paused by POST /pause/{id}: waiting, it is handed to no worker (status IN_QUEUE, queue.reason job_paused); running, it finishes its attempt."),
    tags: z.array(z.string()).optional().describe("The tags a worker must have declared (`?tags=` on job-take) to be handed the job, sorted; absent: none."),
    blocklisted: z
      .array(
        z.object({
          workerId: z.string(),
          failures: count().optional().describe("Attempts of this job it failed (errors it reported, leases it lost)."),
          failedTasks: count().optional().describe("A job of tasks: tasks of it this worker failed."),
        }),
      )
      .optional()
      .describe("Workers blocklisted from this job (they failed blocklistThreshold of its attempts): never handed it again. When every live worker that may take it is blocklisted, the job fails (reason blocklisted)."),
    queue: JobQueueInfo.optional().describe("Only for a waiting job (IN_QUEUE, SEQUENCED)."),
    tasks: TaskCounts.optional().describe("A job of tasks or of replicas (id tasks_…): its tasks by state."),
    replicas: z
      .object({
        requested: count(),
        started: count(),
        completed: count(),
        exitCodes: z.array(int().nullable()).optional().describe("Each replica's exit code, in order (null: none yet)."),
      })
      .optional()
      .describe("A job of replicas: how many were asked for, started and completed."),
    outputs: z.string().optional().describe("A COMPLETED job of tasks whose outputs are too large for /status: where to read them."),
    parentJobId: z.string().optional().describe("A task's job: the job of tasks it is a task of."),
    taskName: z.string().optional().describe("A task's job: the task's name."),
    webhook: JobWebhookSummary.optional().describe("Only for a job with a webhook whose event exists (once terminal)."),
    output: z.unknown().optional().describe("The worker's output (any JSON), once it reported one."),
  })
  .meta({ id: "JobStatusBody", description: "A job as RunPod's /status shows it, with edge-jobs' extensions." });

/** /run, /cancel, /retry, /requeue: the job and its state. */
export const JobRef = z
  .object({
    id: z.string().describe("The job's id."),
    status: JobStatus,
    paused: z.literal(true).optional().describe("The job is paused (see /pause/{id})."),
    tasks: TaskCounts.optional().describe("A job of tasks: its tasks by state."),
    replicas: z.object({ requested: count(), started: count(), completed: count() }).optional().describe("A job of replicas: how many were asked for, started and completed."),
  })
  .meta({ id: "JobRef" });

// ---- history and webhooks ----

export const JobHistory = z.object({
  id: z.string(),
  history: z.array(
    z.object({
      at: IsoTime,
      command: z.string().describe("What changed the job (submit, claim, complete, cancel, expire, …), a user's command that kept its state (promote, reschedule, pause or resume of a running job: from equals to), or the refused report."),
      from: JobState,
      to: JobState,
      attempt: count(),
      workerId: z.string().nullable(),
      detail: z.string().nullable(),
    }),
  ).describe("The newest lines of the job's history, oldest first."),
});

export const JobWebhookLog = z.object({
  id: z.string(),
  events: z.array(
    z.object({
      seq: int(),
      webhookId: z.string().describe("The `webhook-id` header: stable across every attempt and redelivery of the event."),
      status: JobStatus,
      state: z.enum(["pending", "delivered", "failed", "gone"]),
      attempts: count(),
      createdAt: IsoTime,
      deliveredAt: IsoTime.nullable(),
      nextAttemptAt: IsoTime.nullable(),
      lastStatus: int().nullable(),
      lastError: z.string().nullable(),
      log: z.array(z.object({ at: IsoTime, status: int().nullable(), latencyMs: z.number(), error: z.string().nullable() })),
    }),
  ),
});

export const WebhookRedelivery = z.object({
  id: z.string(),
  seq: int().describe("The event sent again."),
  webhookId: z.string(),
  state: z.literal("pending"),
});

// ---- endpoint ----

export const PurgeResult = z.object({
  removed: count().describe("Waiting jobs removed (they end CANCELLED, reason purged)."),
  status: z.literal("completed"),
});

/** RunPod's /health body (endpoints/health). */
export const EndpointHealth = z
  .object({
    jobs: z.object({
      completed: count().describe("Jobs that completed, those that ended with errors (ERROR, read COMPLETED) included."),
      failed: count(),
      inProgress: count(),
      inQueue: count().describe("Waiting jobs: IN_QUEUE, SEQUENCED, SCHEDULED and PAUSED (clients read those IN_QUEUE; edge_jobs_jobs{state=\"SCHEDULED\"} in /metrics counts the ones waiting for their time)."),
      retried: count(),
    }),
    workers: z.object({ idle: count(), initializing: count(), ready: count(), running: count(), throttled: count(), unhealthy: count() }),
  })
  .meta({ id: "EndpointHealth", description: "RunPod's /health body: jobs by state, workers by state (`ready` = idle + running)." });

// ---- metrics ----

const Percentiles = z
  .object({ p70: int().nullable(), p90: int().nullable(), p98: int().nullable(), count: count() })
  .meta({ id: "LatencyPercentiles", description: "Percentiles in ms (null: no sample) and the sample count." });

export const METRIC_WINDOWS = ["1h", "6h", "24h", "7d"] as const;
export const METRIC_BUCKETS = ["1m", "5m", "15m", "1h", "2h", "6h", "1d"] as const;

/** One bucket, or the whole window (metrics/buckets MetricsView). */
const MetricsPeriod = z
  .object({
    start: IsoTime,
    requests: z.object({ total: count(), completed: count(), errored: count().describe("Ended ERROR: a result with a non-zero exitCode (not in completed)."), failed: count(), retried: count(), cancelled: count(), timedOut: count() }),
    executionTime: Percentiles,
    delayTime: Percentiles,
    coldStartTime: Percentiles,
    coldStarts: count(),
    webhooks: z.object({ sent: count(), succeeded: count(), failed: count() }),
    workers: z
      .record(z.string(), count())
      .nullable()
      .describe("Workers by state (initializing, idle, running, throttled, unhealthy): the last sample in the period (now, for the total and the current bucket); null: none."),
  })
  .meta({ id: "MetricsPeriod" });

export const EndpointMetrics = z.object({
  endpointId: z.string(),
  window: z.enum(METRIC_WINDOWS),
  bucket: z.enum(METRIC_BUCKETS),
  from: IsoTime,
  to: IsoTime,
  percentileRelativeError: z.number().describe("The relative error of every percentile (0.02: within 2 %)."),
  total: MetricsPeriod,
  buckets: z.array(MetricsPeriod).describe("Oldest first; `start` of each is its bucket's start."),
});

// ---- stream ----

export const StreamBody = z.object({
  status: JobStatus,
  stream: z
    .array(z.record(z.string(), z.unknown()))
    .describe("The chunks not read before, as the worker posted them (e.g. `{\"output\": …}`); each is handed out once."),
});

// ---- load (admin) ----

const ObjectLoad = z
  .object({
    kind: z.enum(["endpoint", "shard", "liveness"]),
    name: z.string(),
    since: int().describe("When its counts start (ms since the epoch): a reset, or the object's start."),
    at: int().describe("When the snapshot was taken (ms since the epoch)."),
    calls: z.object({ total: count(), byMethod: z.record(z.string(), count()) }),
    rowsWritten: count(),
    callsPerSecond: z.number().describe("Calls per second since `since` (over at least 1 s)."),
  })
  .meta({ id: "ObjectLoad", description: "One Durable Object's calls and SQLite rows written since `since` (in memory)." });

export const LoadReport = z
  .object({
    id: z.string().describe("The endpoint's id."),
    since: int().nullable().describe("The latest `since` of the objects: the window every listed object's counts cover."),
    objects: z.array(ObjectLoad).describe("The endpoint object first, then its index shards and worker-liveness shards."),
    busiest: ObjectLoad.nullable().describe("The object with the most calls per second."),
  })
  .meta({ id: "LoadReport" });
