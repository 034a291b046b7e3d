/**
 * The OpenAPI description of the admin routes (routes/admin.ts): endpoints, their keys, workers,
 * counters and recent jobs. Admin key only.
 */
import { z } from "zod";
import { EndpointConfigInput as ConfigInput } from "../../endpoints/config";
import { RetryBackoff } from "../../jobs/backoff";
import { KEY_SCOPES } from "../../endpoints/keys";
import { KeyRateLimit } from "../../endpoints/flow-rules";
import { IsoTime, JobState } from "./common";
import { JobQueueInfo } from "./docs-client-schemas";
import type { OperationDoc } from "./operation";

const TAGS = ["Admin"] as const;
const ms = (what: string) => z.number().int().describe(`${what}, ms.`);

/** The body of `PUT /admin/endpoints/{ep}`, as validated (every field optional). */
export const EndpointConfigBody = ConfigInput.meta({
  id: "EndpointConfigInput",
  description: "An endpoint's config: every field optional, an omitted one takes its default (a PUT states the whole config); unknown fields are a 400.",
});

/** The stored config with the endpoint's run state, as every admin endpoint answer shows it. */
export const EndpointConfig = z
  .object({
    id: z.string().describe("The endpoint's id."),
    mode: z.enum(["pull", "push"]).describe('"pull": workers take jobs; "push": jobs are pushed to `workerUrls`.'),
    workerUrls: z.array(z.string()).describe("Push workers' URLs."),
    executionTimeout: ms("Default `policy.executionTimeout`"),
    ttl: ms("Default `policy.ttl`"),
    ttlMode: z
      .enum(["queue", "lifespan"])
      .optional()
      .describe('Default `policy.ttlMode`: what ttl bounds, the wait in the queue ("queue") or the whole life of the job ("lifespan", RunPod since 2026). Absent on endpoints stored before it existed: "queue".'),
    maxAttempts: z.number().int().describe("Attempts per job."),
    heartbeatTimeout: ms("Worker silence before its lease is lost"),
    retentionMs: ms("How long a finished /run job stays readable"),
    syncRetentionMs: ms("How long a finished /runsync job stays readable"),
    cancelGraceMs: ms("How long a CANCELLING job waits for its worker"),
    retryOnError: z.boolean().describe("A job whose handler failed goes back in the queue while attempts are left."),
    blocklistThreshold: z.number().int().optional().describe("Failed attempts of one job (errors a worker reported, leases it lost) after which that worker is blocklisted from the job: never handed it again. 1-20, default 3."),
    retryBackoff: RetryBackoff.nullable()
      .optional()
      .describe("Default `policy.retryBackoff`: how long a job waits (SCHEDULED) before its next attempt after an error or a lost lease; null: at once. Absent on endpoints stored before it existed."),
    concurrency: z.number().int().nullable().describe("Most jobs in progress at once; null for no limit."),
    keyConcurrency: z.number().int().nullable().optional().describe("Most jobs of one flow key (concurrencyKey or rateLimitKey) in progress or handed out at once; null: no cap. Per-key overrides: …/flow-keys/{key}."),
    keyRateLimit: KeyRateLimit.nullable().optional().describe("Most starts of one flow key per period (a fixed window); null: none. Per-key overrides: …/flow-keys/{key}."),
    webhookSecret: z.string().describe("The current secret signing webhooks and pushes (`whsec_` + base64)."),
    previousWebhookSecret: z.string().nullable().describe("The secret before the last rotation, still signed with until `previousSecretUntil`; null when none."),
    previousSecretUntil: IsoTime.nullable().describe("Until when the previous secret is still signed with; null when there is none."),
    allowPrivateUrls: z.boolean().describe("Webhook and worker URLs may be private or loopback addresses."),
    rateLimit: z.boolean().describe("Client rate limits apply to this endpoint's keys (RunPod's, per key: /run 1000 per 10 s, …); false turns them off."),
    shards: z.number().int().describe("Objects the ready index is spread over (grows, never shrinks)."),
    sequenceShards: z.number().int().describe("Shards jobs with a sequenceKey are placed over (fixed at creation)."),
    flowShards: z.number().int().describe("Shards jobs with a flow key are placed over by the key's hash (fixed at creation; default 1: turns between keys are exact endpoint-wide, keyed jobs go at one shard's pace)."),
    firstShard: z.union([z.literal(0), z.literal(1)]).describe("Read-only: 1 when shard objects 1..shards index the jobs, 0 when the endpoint object (shard 0) does."),
    generation: z.string().describe("This incarnation of the endpoint, new each time it is created."),
    createdAt: IsoTime,
    updatedAt: IsoTime,
    paused: z.boolean().describe("Dispatch is paused (submits are still accepted)."),
  })
  .meta({ id: "EndpointConfig", description: "An endpoint's stored config and run state." });

export const EndpointList = z.object({ endpoints: z.array(EndpointConfig) });

export const EndpointDeleted = z.object({
  id: z.string(),
  deleted: z.literal(true),
  jobsEnded: z.number().int().describe("Unfinished jobs ended at once (waiting ones CANCELLED, running ones cancelled)."),
});

const n = z.number().int();
export const EndpointCounters = z.object({
  id: z.string(),
  counters: z
    .object({
      submitted: n,
      completed: n,
      errored: n.describe("Jobs that ended ERROR (a result with a non-zero exitCode)."),
      failed: n,
      cancelled: n,
      timedOut: n,
      retried: n,
      webhookSent: n,
      webhookSucceeded: n,
      webhookFailed: n,
    })
    .describe("Jobs by outcome and webhook deliveries since creation, over every shard."),
});


export const EndpointJobList = z.object({
  jobs: z.array(
    z.object({
      jobId: z.string(),
      state: JobState,
      workerId: z.string().nullable().describe("The worker that holds or last held it."),
      updatedAt: IsoTime,
      createdAt: IsoTime,
      priority: z.number().int(),
      queue: JobQueueInfo.nullable().describe("For a waiting job (IN_QUEUE, SEQUENCED): why it waits; null otherwise, or when its shard did not answer."),
    }),
  ),
});

export const EndpointWorkerList = z.object({
  workers: z.array(
    z.object({
      workerId: z.string(),
      state: z.enum(["initializing", "idle", "running", "throttled", "unhealthy"]),
      firstSeen: IsoTime,
      lastSeen: IsoTime,
      firstTakeAt: IsoTime.nullable().describe("Its first take; null when it never took a job."),
      jobsTaken: z.number().int(),
      currentJobs: z.array(z.string()).describe("The jobs it holds now."),
      recycle: z.boolean().describe("Marked for recycling (`stopPod`): it is handed no more jobs."),
      unhealthyReason: z.string().nullable().describe('"check: reason" of its unhealthy ping; null when healthy.'),
      sdkVersion: z.string().nullable().describe("The `runpod_version` its pings sent."),
      tags: z.array(z.string()).describe("The tags it declared on its latest take or ping (`?tags=`), sorted; [] for none."),
      recentFailures: z
        .array(z.object({ jobId: z.string(), at: IsoTime, reason: z.string() }))
        .describe("Its latest failures (at most 10), oldest first."),
    }),
  ),
});

/** The body of `POST /admin/endpoints/{ep}/keys` (as routes/admin.ts validates it). */
export const NewKeyBody = z.object({ scope: z.enum(KEY_SCOPES).describe("client: submit and read jobs; worker: take and report them.") }).strict();

const KeyScope = z.enum(KEY_SCOPES);

export const NewKey = z.object({
  id: z.string().describe("The key's id (`key_…`), to list and revoke it."),
  key: z.string().describe("The key itself (`ej_c_…` or `ej_w_…`): shown this once, stored only as a SHA-256 digest."),
  scope: KeyScope,
  createdAt: IsoTime,
  note: z.string(),
});

export const KeyList = z.object({
  keys: z.array(
    z.object({
      id: z.string(),
      scope: KeyScope,
      prefix: z.string().describe("The key's first 8 characters, to tell keys apart."),
      createdAt: IsoTime,
    }),
  ),
});

export const KeyDeleted = z.object({ id: z.string(), deleted: z.literal(true) });

const unknownEndpoint = { 404: { description: "Unknown endpoint (the message says how to create it)." } };
const configAnswer = (description: string) => ({ description, schema: EndpointConfig });

export const listEndpointsDoc: OperationDoc = {
  operationId: "listEndpoints",
  summary: "List endpoints",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Every endpoint's config.", schema: EndpointList } },
};

export const createEndpointDoc: OperationDoc = {
  operationId: "createEndpoint",
  summary: "Create or replace an endpoint",
  description:
    "Creates the endpoint, or replaces its config: fields the body omits take their defaults. The webhook secret (unless given), creation time and generation stay; `shards` may grow, never shrink; `flowShards` is fixed at creation (omitted later: kept).",
  tags: TAGS,
  auth: "admin",
  body: { schema: EndpointConfigBody, required: false, description: "The config; an empty body takes every default." },
  responses: {
    200: configAnswer("The stored config."),
    400: { description: "An invalid config (e.g. push mode without workerUrls, fewer shards, flowShards above shards or other than the one fixed at creation, an unknown field)." },
  },
};

export const getEndpointDoc: OperationDoc = {
  operationId: "getEndpoint",
  summary: "Read an endpoint",
  tags: TAGS,
  auth: "admin",
  responses: { 200: configAnswer("The stored config, secrets included."), ...unknownEndpoint },
};

export const deleteEndpointDoc: OperationDoc = {
  operationId: "deleteEndpoint",
  summary: "Delete an endpoint",
  description:
    "Deletes the endpoint with its keys, index and worker shards, and ends its unfinished jobs (waiting ones CANCELLED with reason endpoint_deleted, running ones cancelled). An endpoint re-created under the same id never sees the old one's jobs.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Deleted.", schema: EndpointDeleted }, ...unknownEndpoint },
};

export const pauseEndpointDoc: OperationDoc = {
  operationId: "pauseEndpoint",
  summary: "Pause an endpoint",
  description: "Stops handing out jobs on every shard; submits are still accepted and running jobs finish.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: configAnswer("The config, `paused: true`."), ...unknownEndpoint },
};

export const resumeEndpointDoc: OperationDoc = {
  operationId: "resumeEndpoint",
  summary: "Resume an endpoint",
  description: "Starts handing out jobs again.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: configAnswer("The config, `paused: false`."), ...unknownEndpoint },
};

/** The pause and resume routes by their action (they are declared in one loop). */
export const endpointActionDocs = { pause: pauseEndpointDoc, resume: resumeEndpointDoc } as const;

export const rotateSecretDoc: OperationDoc = {
  operationId: "rotateEndpointSecret",
  summary: "Rotate the webhook secret",
  description: "Generates a new `webhookSecret`; the previous one is still signed with (as a second signature) for 24 h.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: configAnswer("The config with the new secret."), ...unknownEndpoint },
};

export const endpointCountersDoc: OperationDoc = {
  operationId: "getEndpointCounters",
  summary: "Read an endpoint's counters",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "The counters.", schema: EndpointCounters }, ...unknownEndpoint },
};

export const endpointJobsDoc: OperationDoc = {
  operationId: "listEndpointJobs",
  summary: "List an endpoint's recent jobs",
  description: "The most recently changed jobs over every shard, newest first, with why the waiting ones wait (for the dashboard).",
  tags: TAGS,
  auth: "admin",
  query: z.object({ limit: z.number().int().min(1).max(500).optional().describe("How many, 1-500 (default 50).") }),
  responses: {
    200: { description: "The jobs.", schema: EndpointJobList },
    400: { description: "`limit` is not a whole number from 1 to 500." },
    ...unknownEndpoint,
  },
};

export const endpointWorkersDoc: OperationDoc = {
  operationId: "listEndpointWorkers",
  summary: "List an endpoint's workers",
  description:
    "Every worker heard from (takes, pings, stop polls), merged over the liveness shards. A worker is forgotten after 24 h of silence, one that never took a job after 1 h.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "The workers, by id.", schema: EndpointWorkerList }, ...unknownEndpoint },
};

export const createKeyDoc: OperationDoc = {
  operationId: "createKey",
  summary: "Create an endpoint key",
  tags: TAGS,
  auth: "admin",
  body: { schema: NewKeyBody },
  responses: { 200: { description: "The new key, shown this once.", schema: NewKey }, ...unknownEndpoint },
};

export const listKeysDoc: OperationDoc = {
  operationId: "listKeys",
  summary: "List an endpoint's keys",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Key ids, scopes and prefixes (never the keys).", schema: KeyList }, ...unknownEndpoint },
};

export const revokeKeyDoc: OperationDoc = {
  operationId: "revokeKey",
  summary: "Revoke an endpoint key",
  tags: TAGS,
  auth: "admin",
  responses: {
    200: { description: "Revoked: the key is refused from now on.", schema: KeyDeleted },
    404: { description: "No such key on this endpoint (or no such endpoint)." },
  },
};
