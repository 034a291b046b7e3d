/**
 * The descriptions of the Batch API (RUNPOD-WIRE-2 §1) under /v2/{endpointId}/batch, with the
 * schemas its handlers build and validate (http/routes/batch.ts).
 */
import { z } from "zod";
import { BATCH_STATES } from "../../batches/record";
import { SubmitBody } from "../../jobs/policy";
import { BATCH } from "../../shared/limits";
import { IsoTime, JobStatus } from "./common";
import type { OperationDoc } from "./operation";

const count = () => z.number().int().nonnegative();
const TAGS = ["Jobs"] as const;

/** A batch's webhook: an http(s) URL, as a job's (checked against the endpoint's URL rule too). */
export const BatchWebhook = SubmitBody.shape.webhook;
const BatchName = z.string().min(1).max(BATCH.nameChars);

export const BatchStatusEnum = z.enum(BATCH_STATES).meta({ id: "BatchStatus", description: "DRAFT → FINALIZED → CANCELLED or FAILED. A FINALIZED batch stays FINALIZED once all its requests finished." });

/** The object form of create (RunPod's superseded draft, still accepted), with our webhook. */
export const CreateBatchObject = z
  .object({
    name: BatchName.optional(),
    requests: z.array(z.unknown()).optional().describe("The first requests: /run bodies."),
    webhook: BatchWebhook.describe("Signed POST of the batch summary when the batch finishes (edge-jobs' extension)."),
  })
  .strict();

const BatchRequest = z.looseObject({ input: z.unknown() }).describe("A /run body (RunRequest): `input` required; `webhook`, `policy`, `priority`, `sequenceKey`, `s3Config`, `webhookV2` as on /run; no `idempotencyKey`.");

const CreateBody = z
  .union([z.array(BatchRequest), CreateBatchObject])
  .meta({ id: "CreateBatchBody", description: "RunPod's bare array of /run bodies (`[]` for none yet), or the object form `{\"name\", \"requests\", \"webhook\"}`." });

export const AppendBody = z.object({ requests: z.array(z.unknown()).describe("/run bodies to add.") }).strict().meta({ id: "AppendBatchBody" });

export const UpdateBody = z
  .object({ name: BatchName.optional(), webhook: BatchWebhook })
  .strict()
  .meta({ id: "UpdateBatchBody", description: "At least one of `name` and `webhook`." });

export const BatchCreated = z.object({ id: z.string(), status: z.literal("DRAFT") }).meta({ id: "BatchCreated" });

export const BatchSummarySchema = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    status: BatchStatusEnum,
    requestTotal: count(),
    requestInProgress: count().describe("Children IN_PROGRESS or CANCELLING."),
    requestCompleted: count().describe("Children COMPLETED."),
    requestFailed: count().describe("Children FAILED or TIMED_OUT. Cancelled children count in none of the three."),
    createdAt: count().describe("Epoch milliseconds."),
  })
  .meta({ id: "BatchSummary", description: "RunPod's batch summary. All requests finished when requestCompleted + requestFailed = requestTotal (cancelled children aside)." });

const RenamedSummary = BatchSummarySchema.extend({ name: BatchName.nullable() }).meta({ id: "BatchRenamed" });

const BatchListBody = z
  .object({ batches: z.array(BatchSummarySchema), total: count(), offset: count(), limit: count(), hasMore: z.boolean() })
  .meta({ id: "BatchList" });

const ChildRequest = z
  .object({
    id: z.string().describe("The child's job id: /status/{id}, /cancel/{id}, /retry/{id} work on it once it is a job."),
    status: JobStatus,
    output: z.unknown().optional(),
    error: z.string().optional(),
    startedAt: IsoTime.optional(),
    completedAt: IsoTime.optional(),
  })
  .meta({ id: "BatchChild" });

const ChildListBody = z
  .object({ requests: z.array(ChildRequest), total: count(), offset: count(), limit: count().describe("The page size applied."), hasMore: z.boolean() })
  .meta({ id: "BatchChildList" });

const paging = (d: { default: number; max: number }) =>
  z.object({
    offset: z.number().int().min(0).optional().describe("Items to skip (default 0)."),
    limit: z.number().int().min(1).max(d.max).optional().describe(`Items per page, 1-${d.max} (default ${d.default}).`),
  });

const notFound = { description: "Unknown endpoint or batch (or a batch of another endpoint)." };
const badInput = { description: "A malformed body, a request without `input`, a body over 10 MiB, too many requests, or a batch not in a state that allows it." };

const LIMITS_TEXT =
  `Limits: ${BATCH.activePerEndpoint} active batches per endpoint (DRAFT, or FINALIZED with unfinished requests: 429), ` +
  `${BATCH.requestsPerBatch} requests per batch (RunPod: 5,000), ${BATCH.bodyBytes / 1024 / 1024} MiB per create or append body (400).`;

export const CREATE_BATCH_DOC: OperationDoc = {
  operationId: "createBatch",
  summary: "Create a batch (DRAFT), optionally with its first requests",
  description:
    "RunPod's Batch API (beta). The body is a bare JSON array of /run bodies, or the object form with a `name` and a batch `webhook` " +
    "(also accepted as the `webhook` query parameter). Nothing runs until /finalize. " + LIMITS_TEXT,
  tags: TAGS,
  auth: "client",
  query: z.object({ webhook: z.string().optional().describe("The batch webhook URL (signed POST of the summary when the batch finishes).") }),
  body: { schema: CreateBody, required: false },
  responses: { 200: { description: "The new batch.", schema: BatchCreated }, 400: badInput, 404: notFound, 429: { description: "The endpoint has its maximum of active batches." } },
};

export const APPEND_BATCH_DOC: OperationDoc = {
  operationId: "appendBatchRequests",
  summary: "Append requests to a DRAFT batch",
  description: `Body \`{"requests": [...]}\`, at most ${BATCH.bodyBytes / 1024 / 1024} MiB per call; call again to add more. ${LIMITS_TEXT}`,
  tags: TAGS,
  auth: "client",
  body: { schema: AppendBody },
  responses: { 200: { description: "The batch.", schema: BatchSummarySchema }, 400: badInput, 404: notFound },
};

export const FINALIZE_BATCH_DOC: OperationDoc = {
  operationId: "finalizeBatch",
  summary: "Finalize a batch: lock it and start its requests",
  description:
    "Answers at once; the batch turns its requests into jobs in the background (low priority: a batch never delays /run jobs of the same priority). " +
    "Finalizing a FINALIZED batch again changes nothing.",
  tags: TAGS,
  auth: "client",
  responses: { 200: { description: "The batch, FINALIZED.", schema: BatchSummarySchema }, 400: badInput, 404: notFound },
};

export const UPDATE_BATCH_DOC: OperationDoc = {
  operationId: "updateBatch",
  summary: "Rename a batch or set its webhook",
  tags: TAGS,
  auth: "client",
  body: { schema: UpdateBody },
  responses: { 200: { description: "The batch, with its name.", schema: RenamedSummary }, 400: badInput, 404: notFound },
};

export const GET_BATCH_DOC: OperationDoc = {
  operationId: "getBatch",
  summary: "A batch's summary with request counts",
  tags: TAGS,
  auth: "client",
  responses: { 200: { description: "The batch.", schema: BatchSummarySchema }, 404: notFound },
};

export const CANCEL_BATCH_DOC: OperationDoc = {
  operationId: "cancelBatch",
  summary: "Cancel a batch",
  description:
    "A DRAFT is CANCELLED at once. A FINALIZED batch's waiting requests are cancelled at once, running ones finish; the batch becomes CANCELLED once none runs. Cancelling again changes nothing.",
  tags: TAGS,
  auth: "client",
  responses: { 200: { description: "The batch.", schema: BatchSummarySchema }, 400: badInput, 404: notFound },
};

export const LIST_BATCHES_DOC: OperationDoc = {
  operationId: "listBatches",
  summary: "List an endpoint's batches, newest first",
  tags: TAGS,
  auth: "client",
  query: paging(BATCH.listPage),
  responses: { 200: { description: "A page of batches.", schema: BatchListBody }, 400: badInput, 404: notFound },
};

export const DELETE_BATCH_REQUEST_DOC: OperationDoc = {
  operationId: "deleteBatchRequest",
  summary: "Remove one request from a DRAFT batch",
  tags: TAGS,
  auth: "client",
  responses: { 200: { description: "The batch.", schema: BatchSummarySchema }, 400: badInput, 404: notFound },
};

export const LIST_BATCH_REQUESTS_DOC: OperationDoc = {
  operationId: "listBatchRequests",
  summary: "A page of a batch's requests",
  description:
    "Failures first, then running, then waiting, then completed, then cancelled; within each, in the order they were added. " +
    `A page carries at most ${BATCH.pageOutputBytes / 1024 / 1024} MiB of outputs (then \`limit\` says how many came).`,
  tags: TAGS,
  auth: "client",
  query: paging(BATCH.page),
  responses: { 200: { description: "A page of requests.", schema: ChildListBody }, 400: badInput, 404: notFound },
};
