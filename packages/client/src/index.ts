/**
 * edge-jobs' own SDK: a typed client (client.ts), a pull worker loop (worker.ts), a push worker
 * helper (push.ts) and a webhook verifier (webhooks.ts), typed from the server's OpenAPI document.
 */
export { createClient, sseEvents, TERMINAL_STATES } from "./client.ts";
export type { EdgeJobsClient, Health, JobState, JobStatus, StreamEvent, Submitted, SubmitOptions, SubmitRequest } from "./client.ts";
export { EdgeJobsError } from "./errors.ts";
export type { Connection } from "./http.ts";
export type { components, paths } from "./schema.ts";
