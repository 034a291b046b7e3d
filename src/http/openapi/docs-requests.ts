/**
 * The descriptions of request listing (GET /v2/{ep}/requests) and the admin's bulk cancel and
 * retry (issue 14, item 3), with the schemas their handlers build and validate.
 */
import { z } from "zod";
import { LISTING } from "../../shared/limits";
import { IsoTime, JobStatus } from "./common";
import type { OperationDoc } from "./operation";

const count = () => z.number().int().nonnegative();

const FILTERS =
  "Filters: `status` (one state or a comma list, e.g. `FAILED,TIMED_OUT`), `createdSince` (inclusive) and `createdUntil` (exclusive), each RFC 3339 " +
  "(`2026-11-30T12:00:00Z`) or epoch ms, `batchId`, `sequenceKey`; all given must hold.";

const PAGING =
  `Newest first by creation time (ties by id). \`limit\` 1-${LISTING.maxLimit} (default ${LISTING.defaultLimit}). Pass \`cursor\` from the previous ` +
  "answer, with the same filters, for the next page: paging neither repeats nor skips a job while jobs change state (creation time never changes). " +
  "A page may hold fewer than `limit` jobs while `hasMore` is true (a status filter together with a batch or sequence key walks a bounded number of rows per call); go on until `hasMore` is false.";

/** One listed job: what the index knows (no input or output: /status has them). */
export const RequestSummary = z
  .object({
    id: z.string(),
    status: JobStatus,
    outcome: z.literal("error").optional().describe("A COMPLETED job that ended with errors (a result with a non-zero exitCode), as on /status."),
    createdAt: IsoTime,
    updatedAt: IsoTime.describe("When the endpoint last learnt of a change of the job."),
    delayTime: count().optional().describe("ms the job waited before its (last) start, once started."),
    executionTime: count().optional().describe("ms its last attempt ran, once finished."),
    workerId: z.string().nullable().describe("The worker holding it, or the last one that ran it."),
    attempt: count(),
    priority: z.number().int(),
    batchId: z.string().nullable(),
    sequenceKey: z.string().nullable(),
  })
  .meta({ id: "RequestSummary", description: "A job as the listing shows it: no input and no output (GET /status/{id} has them)." });

export const RequestList = z
  .object({
    requests: z.array(RequestSummary),
    limit: z.number().int().positive().describe("The page size applied."),
    hasMore: z.boolean().describe("More pages may follow: ask again with `cursor`."),
    cursor: z.string().nullable().describe("Where the next page starts (opaque; null when hasMore is false)."),
  })
  .meta({ id: "RequestList", description: "One page of an endpoint's requests. No total: it would cost a count over every shard." });

/** The query of GET /requests (documented; parsed by routes/requests.ts). */
const ListQueryDoc = z.object({
  status: z.string().optional().describe("One job state or a comma list (SEQUENCED, IN_QUEUE, IN_PROGRESS, CANCELLING, COMPLETED, FAILED, CANCELLED, TIMED_OUT; SCHEDULED or PAUSED alone pick those waiting jobs, which IN_QUEUE includes; ERROR alone the jobs that ended with a non-zero exitCode, which COMPLETED includes); case-insensitive."),
  createdSince: z.string().optional().describe("Jobs created at or after this time: RFC 3339 or epoch ms."),
  createdUntil: z.string().optional().describe("Jobs created before this time: RFC 3339 or epoch ms."),
  batchId: z.string().optional().describe("Jobs of this batch."),
  sequenceKey: z.string().optional().describe("Jobs of this sequence key."),
  limit: z.number().int().min(1).max(LISTING.maxLimit).optional().describe(`Jobs per page, 1-${LISTING.maxLimit} (default ${LISTING.defaultLimit}).`),
  cursor: z.string().optional().describe("The previous page's `cursor`."),
});

const timeValue = z.union([z.string(), z.number().int().nonnegative()]);

/** The body of the bulk actions: the listing's filters, a page size and a cursor. */
export const BulkBody = z
  .object({
    status: z.union([z.string(), z.array(z.string()).max(16)]).optional().describe("One job state, a comma list, or an array of states."),
    createdSince: timeValue.optional().describe("RFC 3339 or epoch ms (inclusive)."),
    createdUntil: timeValue.optional().describe("RFC 3339 or epoch ms (exclusive)."),
    batchId: z.string().optional(),
    sequenceKey: z.string().optional(),
    limit: z.number().int().min(1).max(LISTING.maxLimit).optional().describe(`Jobs this call acts on at most, 1-${LISTING.maxLimit} (default ${LISTING.defaultLimit}).`),
    cursor: z.string().optional().describe("The previous call's `cursor` (same filters)."),
  })
  .strict()
  .meta({ id: "BulkRequestsBody", description: "Which jobs: the filters of GET /v2/{endpointId}/requests; every field optional ({} matches every job)." });

const Skipped = z.object({ id: z.string(), reason: z.string() });

const bulkResult = (verb: "cancelled" | "retried", id: string, what: string) =>
  z
    .object({
      matched: count().describe("Jobs of this call's page that match the filters."),
      [verb]: count().describe(what),
      skipped: z.array(Skipped).describe(`Jobs left as they were, with why (the first ${LISTING.skippedShown}).`),
      skippedCount: count().describe("All jobs skipped by this call."),
      cursor: z.string().nullable().describe("Pass it to the next call with the same filters (null: done)."),
      hasMore: z.boolean(),
    })
    .meta({ id });

export const BulkCancelResult = bulkResult("cancelled", "BulkCancelResult", "Cancelled (waiting ones) or told to stop (running ones: CANCELLING).");
export const BulkRetryResult = bulkResult("retried", "BulkRetryResult", "Put back in the queue (IN_QUEUE or SEQUENCED).");

const badInput = { description: "A malformed filter, limit or cursor; a cursor from another endpoint, for other filters, or altered." };
const unknownEndpoint = { description: "Unknown endpoint." };
const shardDown = { description: "A shard of the endpoint's index did not answer: nothing was skipped; ask again." };

export const LIST_REQUESTS_DOC: OperationDoc = {
  operationId: "listRequests",
  summary: "List an endpoint's requests (jobs)",
  description:
    `RunPod documents the route (its rate limit: 10 per 10 s) but not its shape; this is edge-jobs'. ${FILTERS} ${PAGING} ` +
    "Finished jobs stay listed for an hour after their last change (then the index forgets them), even if /status keeps them longer.",
  tags: ["Jobs"],
  auth: "client",
  query: ListQueryDoc,
  responses: { 200: { description: "A page of requests.", schema: RequestList }, 400: badInput, 404: unknownEndpoint, 503: shardDown },
};

const bulkDoc = (action: "cancel" | "retry"): OperationDoc => ({
  operationId: action === "cancel" ? "bulkCancelRequests" : "bulkRetryRequests",
  summary: action === "cancel" ? "Cancel the requests matching filters, a page at a time" : "Retry the failed requests matching filters, a page at a time",
  description:
    `${action === "cancel" ? "Cancels" : "Retries"} at most \`limit\` jobs matching the filters per call, as /${action}/{id} does each; ` +
    `call again with the answer's \`cursor\` until \`hasMore\` is false. ${FILTERS} ` +
    (action === "cancel"
      ? "Finished jobs (and ones already cancelling) are skipped with the reason, never an error."
      : "Only FAILED and TIMED_OUT jobs are retried; others are skipped with the reason, never an error."),
  tags: ["Admin"],
  auth: "admin",
  body: { schema: BulkBody, required: true },
  responses: {
    200: { description: "What this call did.", schema: action === "cancel" ? BulkCancelResult : BulkRetryResult },
    400: badInput,
    404: unknownEndpoint,
    413: { description: "The body is larger than 64 KiB." },
    503: shardDown,
  },
});

export const BULK_CANCEL_DOC = bulkDoc("cancel");
export const BULK_RETRY_DOC = bulkDoc("retry");
