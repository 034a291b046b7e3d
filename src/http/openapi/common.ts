/**
 * Schemas and parameters several operations share: the error body, path parameters, ISO times.
 */
import { z } from "zod";
import { clientStatus, JOB_STATES } from "../../jobs/states";
import { ID_PATTERN } from "../../shared/limits";

/** Every refusal and error: `{"error": "...", ...detail}` (http/errors.ts). */
export const ErrorBody = z
  .looseObject({
    error: z.string().describe("What went wrong and, where it can, how to fix it."),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe("The offending fields of an invalid body."),
  })
  .meta({ id: "Error" });

/** A client over its rate limit (http/rate-limit.ts): the error body with the limit it hit. */
export const RateLimitedBody = z
  .looseObject({
    error: z.string().describe("Names the routes, the limit and the endpoint."),
    group: z.enum(["run", "runsync", "status", "cancel", "purge-queue", "openai", "requests"]).describe("The routes counted together."),
    limit: z.number().int().describe("Requests allowed per period per key and endpoint."),
    periodSeconds: z.number().int().describe("The period, seconds."),
    retryAfterSeconds: z.number().int().describe("As the Retry-After header."),
  })
  .meta({ id: "RateLimited" });

/** What a client reads as a job's status (jobs/states clientStatus): RunPod's names, no internal state. */
const CLIENT_STATUSES = [...new Set(JOB_STATES.map(clientStatus))] as [ReturnType<typeof clientStatus>, ...Array<ReturnType<typeof clientStatus>>];

/** A job's status as clients read it (every answer but /history's transitions). */
export const JobStatus = z
  .enum(CLIENT_STATUSES)
  .meta({
    id: "JobStatus",
    description: "A job's status in RunPod's vocabulary: a SCHEDULED or PAUSED job reads IN_QUEUE (queue.reason says which), an ERROR job COMPLETED (outcome: error). GET /v2/{ep}/states lists every state.",
  });

/** A job's own state, as /history's transitions name it (GET /v2/{ep}/states maps each to what clients read). */
export const JobState = z
  .enum(JOB_STATES)
  .meta({ id: "JobState", description: "A job's internal state (SCHEDULED, PAUSED and ERROR included), as /history names it." });

export const IsoTime = z.string().describe("An ISO 8601 time (UTC).");

/** Path parameters by their name in the route (`:ep` → `{ep}`): description and JSON Schema. */
const ID = { type: "string", pattern: ID_PATTERN.source };
export const PATH_PARAMS: Record<string, { description: string; schema: Record<string, unknown> }> = {
  ep: { description: "The endpoint's id: 1-64 letters, digits, '-' or '_', starting with a letter or digit.", schema: ID },
  id: { description: "The job's id.", schema: { type: "string" } },
  w: { description: "The worker's id, chosen by the worker: 1-64 letters, digits, '-' or '_', starting with a letter or digit.", schema: ID },
  keyId: { description: "The key's id (from the key list, never the key itself).", schema: { type: "string" } },
};
