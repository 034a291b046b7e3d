/**
 * The descriptions of the client API under /v2/{endpointId} (RunPod's, with edge-jobs'
 * extensions), the job stream, the endpoint's metrics and its load report (admin).
 */
import { z } from "zod";
import { LIMITS } from "../../shared/limits";
import { RescheduleBody } from "../../jobs/policy";
import type { OperationDoc } from "./operation";
import {
  EndpointHealth,
  EndpointMetrics,
  JobHistory,
  JobRef,
  JobStatusBody,
  JobWebhookLog,
  LoadReport,
  METRIC_BUCKETS,
  METRIC_WINDOWS,
  PurgeResult,
  RunRequest,
  StreamBody,
  TasksRequest,
  ReplicasRequest,
  WebhookRedelivery,
} from "./docs-client-schemas";

const JOBS = ["Jobs"] as const;
const s = (ms: number) => `${ms / 1000} s`;

const NOT_FOUND = { description: "No such job on this endpoint (unknown, submitted to another endpoint, or deleted after its retention), or no such endpoint." };

const waitQuery = (range: { min: number; max: number; default: number }, what: string) =>
  z.object({
    wait: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(`How long to wait ${what}, in ms (default ${range.default}; clamped to ${range.min}-${range.max}).`),
  });

/** RunPod's `?ttl=` on /status: shortens a finished job's retention. */
const ttlQuery = z
  .number()
  .int()
  .min(0)
  .max(LIMITS.retentionMs.max)
  .optional()
  .describe("RunPod's ?ttl=: a finished job stays readable at most this many ms more (retention only ever shortens; a job not yet finished is left as it is).");

const IDEMPOTENCY_HEADER = {
  "Idempotency-Key": "An idempotency key (1-255 printable ASCII characters); the same as the body's idempotencyKey, which it must match if both are sent.",
};

const SUBMIT_DESCRIPTION =
  "A repeat with the same idempotency key and the same body answers with the first job (for 24 h); " +
  "with a `sequenceKey`, jobs of the same key run one at a time in submit order (SEQUENCED until their turn).";

// ---- submit ----

export const RUN_DOC: OperationDoc = {
  operationId: "run",
  summary: "Submit a job (RunPod /run)",
  description: `Queues a job and answers at once with its id. ${SUBMIT_DESCRIPTION}`,
  tags: JOBS,
  auth: "client",
  headers: IDEMPOTENCY_HEADER,
  body: { schema: z.union([RunRequest, TasksRequest, ReplicasRequest]) },
  responses: {
    200: { description: "The job, IN_QUEUE or SEQUENCED (for an idempotent repeat: the first job in its current state); a job of tasks with its `tasks` counts.", schema: JobRef },
    413: { description: "The body is larger than the input limit plus its envelope." },
    422: { description: "The idempotency key was already used with a different body (or on /runsync)." },
  },
};

export const RUNSYNC_DOC: OperationDoc = {
  operationId: "runSync",
  summary: "Submit a job and wait for its result (RunPod /runsync)",
  description:
    `Queues a job and waits up to \`wait\` for it to finish; answers with its status either way (not finished yet: ` +
    `its current state; poll /status-sync or /status). Sync jobs are kept a shorter time than /run's. ${SUBMIT_DESCRIPTION}`,
  tags: JOBS,
  auth: "client",
  query: waitQuery(LIMITS.syncWait, "for the job to finish"),
  headers: IDEMPOTENCY_HEADER,
  body: { schema: RunRequest },
  responses: {
    200: { description: "The job's status, with its output if it finished with one.", schema: JobStatusBody },
    413: { description: "The body is larger than the input limit plus its envelope." },
    422: { description: "The idempotency key was already used with a different body (or on /run)." },
  },
};

// ---- status ----

const STATUS_DESCRIPTION =
  "RunPod's status body, plus `attempt`, `retries`, `reason`, the times, `queue` (why a waiting job waits) and `webhook` (delivery state). POST is accepted as RunPod's clients send it.";

const statusDoc = (operationId: string): OperationDoc => ({
  operationId,
  summary: "A job's status and output (RunPod /status)",
  description: STATUS_DESCRIPTION,
  tags: JOBS,
  auth: "client",
  query: z.object({ ttl: ttlQuery }),
  responses: { 200: { description: "The job's status, with its output once it has one.", schema: JobStatusBody }, 400: { description: "A malformed ttl." }, 404: NOT_FOUND },
});
export const GET_STATUS_DOC = statusDoc("getStatus");
export const POST_STATUS_DOC = statusDoc("postStatus");

const statusSyncDoc = (operationId: string): OperationDoc => ({
  operationId,
  summary: "A job's status, after waiting for it to finish (RunPod /status-sync)",
  description: `Waits up to \`wait\` for the job to reach a terminal state, then answers as /status does. ${STATUS_DESCRIPTION}`,
  tags: JOBS,
  auth: "client",
  query: waitQuery(LIMITS.syncWait, "for the job to finish").extend({ ttl: ttlQuery }),
  responses: { 200: { description: "The job's status: terminal, or as it is when the wait ran out.", schema: JobStatusBody }, 400: { description: "A malformed ttl." }, 404: NOT_FOUND },
});
export const GET_STATUS_SYNC_DOC = statusSyncDoc("getStatusSync");
export const POST_STATUS_SYNC_DOC = statusSyncDoc("postStatusSync");

// ---- changes ----

/** POST /cancel, /retry, /requeue by action. */
const RetryDelayQuery = z.object({
  delay: z.string().regex(/^\d{1,9}$/).optional().describe(`ms to wait before the job is ready again (0 to ${LIMITS.retryDelay.max}); default 0.`),
});
const RetryDelayBody = z
  .object({ delay: z.number().int().min(LIMITS.retryDelay.min).max(LIMITS.retryDelay.max).optional().describe("ms to wait before the job is ready again (as the query parameter).") })
  .strict()
  .meta({ id: "RetryDelay" });

export const RESCHEDULE_DOC: OperationDoc = {
  operationId: "reschedule",
  summary: "Move a delayed job's time (BullMQ's changeDelay)",
  description:
    "A job waiting for its time (a delay, runAt, a retry's delay or backoff: status IN_QUEUE with queue.reason `scheduled`) becomes ready at the new time instead: " +
    "`delay` ms from now or `runAt`, exactly one, at most 7 days ahead (a past time: at once, as /promote). Its queue TTL then counts from the new time; " +
    "a lifespan TTL still counts from submission, and a time at or past its end is a 409. An edge-jobs extension.",
  tags: JOBS,
  auth: "client",
  body: { schema: RescheduleBody, required: true },
  responses: {
    200: { description: "The job and its state (IN_QUEUE; SEQUENCED when a past time let it enter its sequence behind an unfinished job).", schema: JobRef },
    400: { description: "Neither or both of delay and runAt, a malformed one, or a time more than 7 days ahead." },
    404: NOT_FOUND,
    409: { description: "The job is not waiting for its time (ready, running, paused or finished), or the time is at or past the end of its lifespan; the body has its `id` and `status`." },
  },
};

export const JOB_ACTION_DOCS: Record<"cancel" | "retry" | "requeue" | "pause" | "resume" | "promote", OperationDoc> = {
  promote: {
    operationId: "promote",
    summary: "Run a delayed job now (BullMQ's promote)",
    description:
      "A job waiting for its time (a delay, runAt, a retry's delay or backoff: status IN_QUEUE with queue.reason `scheduled`) becomes ready at once, or enters its sequence; its queue TTL then ends at most `ttl` from now (sooner if it already did: a retry's backoff keeps the TTL it had). An edge-jobs extension.",
    tags: JOBS,
    auth: "client",
    responses: {
      200: { description: "The job and its state (IN_QUEUE, or SEQUENCED behind an unfinished job of its sequence).", schema: JobRef },
      404: NOT_FOUND,
      409: { description: "The job is not waiting for its time (ready, running, paused or finished); the body has its `id` and `status`." },
    },
  },
  pause: {
    operationId: "pause",
    summary: "Pause one job (Flamenco's pause)",
    description:
      "A waiting job is handed to no worker until resumed (status IN_QUEUE with `paused: true`, queue.reason `job_paused`; a job of a sequence keeps its place, and the jobs behind it wait); its TTL keeps running. " +
      "A running job finishes its attempt (its result counts); should it go back for another, it waits paused. Pausing a paused job changes nothing. An edge-jobs extension.",
    tags: JOBS,
    auth: "client",
    responses: {
      200: { description: "The job, its state and `paused: true`.", schema: JobRef },
      404: NOT_FOUND,
      409: { description: "The job finished or is being cancelled; the body has its `id` and `status`." },
    },
  },
  resume: {
    operationId: "resume",
    summary: "Resume a paused job",
    description: "The job waits for a worker again (or for its time, if it had a delay or backoff left; a job of a sequence re-enters its place). Resuming a job that is not paused changes nothing. An edge-jobs extension.",
    tags: JOBS,
    auth: "client",
    responses: {
      200: { description: "The job and its state.", schema: JobRef },
      404: NOT_FOUND,
    },
  },
  cancel: {
    operationId: "cancel",
    summary: "Cancel a job (RunPod /cancel)",
    description:
      "A waiting job ends CANCELLED at once; a running one goes CANCELLING (its worker is told to stop) and ends CANCELLED when the worker stops or the grace period runs out. Cancelling a CANCELLING or CANCELLED job again changes nothing.",
    tags: JOBS,
    auth: "client",
    responses: {
      200: { description: "The job and its new state (CANCELLED or CANCELLING).", schema: JobRef },
      404: NOT_FOUND,
      409: { description: "The job already finished (COMPLETED, FAILED or TIMED_OUT); the body has its `id` and `status`." },
    },
  },
  retry: {
    operationId: "retry",
    summary: "Retry a failed or timed-out job (RunPod /retry)",
    description:
      "Puts a FAILED or TIMED_OUT job back in the queue under the same id, its output cleared (SEQUENCED if a job of its sequence is unfinished). " +
      "With a `delay` (query or body, ms) it waits that long first (status IN_QUEUE, queue.reason `scheduled`), and its queue TTL counts from then.",
    tags: JOBS,
    auth: "client",
    query: RetryDelayQuery,
    body: { schema: RetryDelayBody, required: false },
    responses: {
      200: { description: "The job and its new state (IN_QUEUE or SEQUENCED; IN_QUEUE too while a delay runs).", schema: JobRef },
      404: NOT_FOUND,
      409: { description: "The job is not FAILED or TIMED_OUT; the body has its `id` and `status`." },
    },
  },
  requeue: {
    operationId: "requeue",
    summary: "Put any finished job back in the queue",
    description: "As /retry, for a job in any terminal state (COMPLETED and CANCELLED too), keeping its id and history, with the same optional `delay`. An edge-jobs extension.",
    tags: JOBS,
    auth: "client",
    query: RetryDelayQuery,
    body: { schema: RetryDelayBody, required: false },
    responses: {
      200: { description: "The job and its new state (IN_QUEUE or SEQUENCED; IN_QUEUE too while a delay runs).", schema: JobRef },
      404: NOT_FOUND,
      409: { description: "The job has not finished; the body has its `id` and `status`." },
    },
  },
};

// ---- history and webhooks ----

export const TASKS_DOC: OperationDoc = {
  operationId: "getJobTasks",
  summary: "The tasks of a job of tasks",
  description:
    "Each task of a job submitted with `tasks` (its id starts `tasks_`), in submit order: its state (Flamenco's: queued, soft-failed, paused, active, completed, failed, canceled), " +
    "its job's id once handed out, attempts, worker, dependencies (`dependsOn`, and `waiting_for`: those not completed yet), error and output. " +
    "`?state=failed,active` lists only those; `offset`/`limit` page (at most 1,000). An edge-jobs extension (issue 15).",
  tags: JOBS,
  auth: "client",
  query: z.object({
    offset: z.number().int().min(0).optional().describe("Tasks to skip."),
    limit: z.number().int().min(1).max(1000).optional().describe("Tasks per page (default 100, at most 1,000; fewer when their outputs pass 16 MiB)."),
    state: z.string().optional().describe("Comma-separated task states to list."),
  }),
  responses: { 200: { description: "A page of tasks with `total` and `hasMore`.", schema: z.object({ id: z.string(), tasks: z.array(z.record(z.string(), z.unknown())), total: z.number().int(), offset: z.number().int(), limit: z.number().int(), hasMore: z.boolean() }) }, 404: NOT_FOUND },
};

export const HISTORY_DOC: OperationDoc = {
  operationId: "getJobHistory",
  summary: "A job's history",
  description: "Every state change of the job and every worker report that was refused, oldest first (the newest lines when there are many). An edge-jobs extension.",
  tags: JOBS,
  auth: "client",
  responses: { 200: { description: "The job's history.", schema: JobHistory }, 404: NOT_FOUND },
};

export const WEBHOOKS_DOC: OperationDoc = {
  operationId: "getJobWebhooks",
  summary: "A job's webhook deliveries",
  description: "Each webhook event of the job (one per terminal state it reached) with every delivery attempt. An edge-jobs extension.",
  tags: JOBS,
  auth: "client",
  responses: { 200: { description: "The job's webhook events, oldest first (none for a job without a webhook).", schema: JobWebhookLog }, 404: NOT_FOUND },
};

export const REDELIVER_DOC: OperationDoc = {
  operationId: "redeliverJobWebhook",
  summary: "Send a job's latest webhook event again",
  description: "Sends the latest event again at once, with the same webhook-id, at most once per rate-limit interval. An edge-jobs extension.",
  tags: JOBS,
  auth: "client",
  responses: {
    200: { description: "The event is pending delivery again.", schema: WebhookRedelivery },
    404: NOT_FOUND,
    409: { description: "The job has no webhook event to send (no webhook, or it has not finished)." },
    429: { description: "Too soon: a send of the event is due or was made within the interval; the body has `retryAfterMs`, the Retry-After header the seconds." },
  },
};

// ---- endpoint ----

export const PURGE_QUEUE_DOC: OperationDoc = {
  operationId: "purgeQueue",
  summary: "Remove every waiting job (RunPod /purge-queue)",
  description: "Waiting jobs (IN_QUEUE, SEQUENCED) end CANCELLED with reason `purged`, oldest first and at most 1000 per call (call again for more); running jobs are left alone.",
  tags: ["Endpoint"],
  auth: "client",
  responses: { 200: { description: "How many jobs were removed.", schema: PurgeResult }, 404: { description: "No such endpoint." } },
};

export const HEALTH_DOC: OperationDoc = {
  operationId: "health",
  summary: "Jobs and workers by state (RunPod /health)",
  tags: ["Endpoint"],
  auth: "client",
  responses: { 200: { description: "RunPod's health body.", schema: EndpointHealth }, 404: { description: "No such endpoint." } },
};

export const METRICS_DOC: OperationDoc = {
  operationId: "getMetrics",
  summary: "The endpoint's metrics (RunPod's metrics tab as an API)",
  description:
    "Requests by outcome; execution, delay and cold start times at p70/p90/p98; cold starts; webhook deliveries; and workers by state; " +
    "per time bucket and for the whole window. At most 500 buckets. An edge-jobs extension.",
  tags: ["Endpoint"],
  auth: "client",
  query: z.object({
    window: z.enum(METRIC_WINDOWS).optional().describe("The time window up to now (default 1h)."),
    bucket: z
      .enum(METRIC_BUCKETS)
      .optional()
      .describe("The bucket size (default by window: 1h → 1m, 6h → 5m, 24h → 15m, 7d → 2h)."),
  }),
  responses: {
    200: { description: "The metrics of the window.", schema: EndpointMetrics },
    400: { description: "An unknown window or bucket, or more than 500 buckets." },
    404: { description: "No such endpoint." },
  },
};

// ---- stream ----

const streamDoc = (operationId: string): OperationDoc => ({
  operationId,
  summary: "A job's stream (RunPod /stream), or a live SSE stream of it",
  description:
    "Without `Accept: text/event-stream`: RunPod's /stream, answering JSON with the chunks not read before (each handed out once), " +
    "waiting up to `wait` for one while the job runs. With `Accept: text/event-stream`: a live Server-Sent Events stream that consumes nothing: " +
    "`chunk` events (id = the chunk's number, data = the chunk as JSON) from after `Last-Event-ID`, `: keep-alive` comments, " +
    "then one `status` event with the final status body (as /status) when the job ends, or an `error` event if the job is deleted meanwhile.",
  tags: ["Streams"],
  auth: "client",
  query: z.object({
    wait: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(`JSON only: how long to wait for a new chunk, in ms (default ${LIMITS.streamWait.default}; at most ${s(LIMITS.streamWait.max)}).`),
    lastEventId: z.string().regex(/^\d+$/).optional().describe("SSE only: resume after this chunk number, as the Last-Event-ID header does (the header wins)."),
  }),
  headers: { "Last-Event-ID": "SSE only: resume after this chunk number (default 0: from the start)." },
  responses: {
    200: {
      description:
        "JSON `{status, stream}` (RunPod's /stream). With `Accept: text/event-stream` the answer is instead a text/event-stream of `chunk`, `status` and `error` events as described above.",
      schema: StreamBody,
      alsoAs: ["text/event-stream"],
    },
    404: NOT_FOUND,
  },
});
export const GET_STREAM_DOC = streamDoc("getStream");
export const POST_STREAM_DOC = streamDoc("postStream");

// ---- load (admin) ----

export const LOAD_DOC: OperationDoc = {
  operationId: "getEndpointLoad",
  summary: "Calls and rows written by each object serving the endpoint",
  description:
    "For each Durable Object serving the endpoint (the endpoint object, its index shards, its worker-liveness shards): calls by method and SQLite rows written since a reset or the object's start (counted in memory), and the busiest.",
  tags: ["Load"],
  auth: "admin",
  responses: { 200: { description: "The load report.", schema: LoadReport }, 404: { description: "No such endpoint." } },
};

export const LOAD_RESET_DOC: OperationDoc = {
  operationId: "resetEndpointLoad",
  summary: "Start the endpoint's load counts again from zero",
  description: "Resets every object's counts and answers the new (empty) report.",
  tags: ["Load"],
  auth: "admin",
  responses: { 200: { description: "The load report after the reset.", schema: LoadReport }, 404: { description: "No such endpoint." } },
};
