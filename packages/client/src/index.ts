/**
 * edge-jobs' own SDK: a typed client (client.ts), a pull worker loop (worker.ts), a push worker
 * helper (push.ts) and a webhook verifier (webhooks.ts), typed from the server's OpenAPI document.
 */
export { createClient, sseEvents, TERMINAL_STATES } from "./client.ts";
export type { EdgeJobsClient, Health, JobState, JobStatus, LogEvent, LogLine, LogPage, StreamEvent, Submitted, SubmitOptions, SubmitRequest, ReplicasOptions, TaskPage, TaskSpec, TasksOptions, TasksRequest } from "./client.ts";
export { EdgeJobsError } from "./errors.ts";
export type { Connection } from "./http.ts";
export type { components, paths } from "./schema.ts";
export { runWorker, WORKER_STOPPED_ERROR, JOB_STOPPED_REASON } from "./worker.ts";
export type { WorkerOptions, RunningWorker, WorkerJob, JobContext, JobHandler } from "./worker.ts";
export type { LogLevel } from "./job-log.ts";
export { pushHandler } from "./push.ts";
export type { PushHandlerOptions, PushJob, PushContext, PushJobHandler } from "./push.ts";
export { verifyWebhook, WebhookVerificationError } from "./webhooks.ts";
export type { WebhookEvent, VerifyOptions, TerminalState, HeadersLike } from "./webhooks.ts";
