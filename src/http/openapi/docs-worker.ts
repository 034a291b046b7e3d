/**
 * The OpenAPI description of the worker routes (routes/worker.ts): RunPod's worker protocol
 * (job-take, job-take-batch, job-stop, job-done, job-stream, ping) and edge-jobs' extensions.
 */
import { z } from "zod";
import { PAYLOAD, WORKER_TAGS } from "../../shared/limits";
import { EXIT_CODE } from "../../jobs/report-body";
import type { OperationDoc } from "./operation";

const TAGS = ["Workers"] as const;

/** A job as a worker is handed it: RunPod's `{id, input}`, with the attempt it was granted. */
export const WorkerJob = z
  .object({
    id: z.string().describe("The job's id."),
    attempt: z.number().int().min(1).describe("The attempt this take granted (1 for the first); name it in reports as `&attempt=N` to fence them."),
    input: z.unknown().describe("The job's input, exactly as submitted."),
    batchId: z.string().optional().describe("The batch the job is a request of (RunPod's Batch API)."),
    parentJobId: z.string().optional().describe("A task's job: the job of tasks (or replicas) it belongs to (issue 15)."),
    taskName: z.string().optional().describe("A task's job: the task's name (replica-0… for replicas)."),
    s3Config: z.record(z.string(), z.unknown()).optional().describe("The client's s3Config, as it sent it."),
  })
  .meta({ id: "WorkerJob", description: "A job handed to a worker (RunPod's `{id, input}`, plus `attempt`)." });

/** A report that was accepted: `{}`. */
const Accepted = z.object({}).describe("The report was accepted (or was the exact repeat of an accepted one).");

/** What job-done answers: `{}`, or with `?next=1` the worker's next job. */
export const JobDoneAnswer = z
  .object({
    next: WorkerJob.nullable()
      .optional()
      .describe("Only with `?next=1`: the worker's next job, already claimed, or null when none is ready (take it with job-take then)."),
  })
  .describe("`{}` for an accepted report; with `?next=1`, `{\"next\": job | null}`.");

export const JobStopAnswer = z.object({
  jobsToStop: z.array(z.string()).min(1).describe("Jobs this worker must stop (cancelled, timed out, or lease lost); each stop is delivered once per attempt."),
});

/** The job-done body (parsed by hand: JSON whatever the content type says). */
export const JobDoneBody = z
  .looseObject({
    output: z.unknown().optional().describe(`The job's output (any JSON, at most ${PAYLOAD.outputBytes / (1024 * 1024)} MB); completes the job.`),
    error: z
      .unknown()
      .optional()
      .describe("A handler error (a string, or any JSON, kept as its JSON text, cut to 64 KiB): fails the job, or retries it under retryOnError."),
    status: z
      .string()
      .optional()
      .describe('"IN_PROGRESS" makes the report a progress update (its `output` shown by /status); the job keeps running. "INITIALIZING" (an extension): a progress update saying the worker still prepares the job (/status shows `phase: "initializing"`).'),
    exitCode: z
      .number()
      .int()
      .min(EXIT_CODE.min)
      .max(EXIT_CODE.max)
      .optional()
      .describe("An extension: the exit code of the program the job ran. 0 without an error completes; any other code (or an error beside it) ends the job ERROR, read as COMPLETED with `error` and `outcome: \"error\"`, never retried. Without exitCode an error fails the job, as on RunPod."),
    stopPod: z.boolean().optional().describe("true: marks the worker for recycling; it is handed no more jobs."),
  })
  .describe('RunPod\'s job-done body: `{"output": x}` completes, `{"error": "..."}` fails, `{"status": "IN_PROGRESS", "output": x}` reports progress; extensions: `exitCode`, `{"status": "INITIALIZING"}`. Other fields are ignored.');

/** The job-stream body: one chunk, any JSON object. */
export const JobStreamBody = z
  .looseObject({
    output: z.unknown().optional().describe("The chunk's output, as RunPod's SDK sends it."),
  })
  .describe(`One stream chunk: any JSON object (at most ${PAYLOAD.streamChunkBytes / (1024 * 1024)} MB), kept as sent and handed to /stream readers in order.`);

const gpu = z.string().optional().describe("Ignored (RunPod's worker URL templates carry it).");
const jobInProgress = z
  .enum(["0", "1"])
  .optional()
  .describe("What the worker runs: 0 says none, which releases any job the coordinator believes it holds (lost on a restart), but those claimed by this worker's takes that arrived no earlier than this one.");

const workerTags = z
  .string()
  .optional()
  .describe(
    `The tags this worker has, comma-separated (e.g. \`gpu,a100\`; at most ${WORKER_TAGS.perWorker}, each 1-${WORKER_TAGS.chars} letters, digits, '_', '-', '.', ':' or '/'): it is handed untagged jobs and those whose tags it all has. Given twice, both count; repeats count once. Absent: none (the worker then declares no tags). A RunPod worker declares them in its take URL (RUNPOD_WEBHOOK_GET_JOB=…/job-take/$RUNPOD_POD_ID?tags=gpu).`,
  );

const reportQuery = z.object({
  attempt: z.number().int().min(1).max(1_000_000).optional().describe("The attempt the report is for (from the take); a report for an older attempt is refused (409). RunPod's SDK does not send it."),
  token: z.string().optional().describe("A push worker's report token, from the URLs it was pushed with; used only without an Authorization header."),
  isStream: z.string().optional().describe("Ignored (RunPod's SDK sends it)."),
  gpu,
});

const noJob = { description: "No job became ready within the long-poll (TAKE_WAIT_MS, 30 s); take again." };
const unknownJob = { description: "Unknown endpoint or job (or a job of another endpoint)." };
const refused = {
  description:
    "The report was refused and changed nothing: the worker does not hold the job's lease, the attempt is over, or the job left IN_PROGRESS. The body names the job's `status` and a `code`, with `stop: true`; RunPod's workers drop it rather than retry.",
};
const badToken = { description: "The report token is not valid for this job, attempt and worker." };

export const jobTakeDoc: OperationDoc = {
  operationId: "jobTake",
  summary: "Take the next job (long-poll)",
  description:
    "RunPod's job-take: waits up to TAKE_WAIT_MS (30 s) for a ready job, claims it for this worker and answers it; 204 when none came. Jobs are handed out in priority, then submit order (per shard); a job that requires tags only to a worker that declared them all (`tags`).",
  tags: TAGS,
  auth: "worker",
  query: z.object({ job_in_progress: jobInProgress, tags: workerTags, gpu }),
  responses: {
    200: { description: "The job, claimed for this worker (its attempt started).", schema: WorkerJob },
    204: noJob,
    400: { description: "A bad `job_in_progress` or `tags` (a bad tag, or more than 8)." },
    404: { description: "Unknown endpoint." },
  },
};

export const jobTakeBatchDoc: OperationDoc = {
  operationId: "jobTakeBatch",
  summary: "Take up to batch_size jobs (long-poll)",
  description:
    "RunPod's job-take-batch: like job-take, for up to `batch_size` jobs of one shard, answered as an array of at most 16 MiB of inputs (always at least one job; the rest stay queued).",
  tags: TAGS,
  auth: "worker",
  query: z.object({
    batch_size: z.number().int().min(1).max(100).optional().describe("Most jobs to take, 1-100 (default 1)."),
    job_in_progress: jobInProgress,
    tags: workerTags,
    gpu,
  }),
  responses: {
    200: { description: "The jobs, each claimed for this worker.", schema: z.array(WorkerJob).min(1) },
    204: noJob,
    400: { description: "A bad `batch_size`, `job_in_progress` or `tags`." },
    404: { description: "Unknown endpoint." },
  },
};

export const jobStopDoc: OperationDoc = {
  operationId: "jobStop",
  summary: "Wait for jobs to stop (long-poll)",
  description:
    "RunPod's job-stop (runpod-python ≥ 1.10): waits up to TAKE_WAIT_MS for jobs this worker must stop: cancelled, timed out, or whose lease it lost. Counts as a sign of life.",
  tags: TAGS,
  auth: "worker",
  query: z.object({ gpu }),
  responses: {
    200: { description: "Jobs to stop.", schema: JobStopAnswer },
    204: { description: "Nothing to stop within the long-poll; poll again." },
    404: { description: "Unknown endpoint." },
  },
};

export const jobDoneDoc: OperationDoc = {
  operationId: "jobDone",
  summary: "Report a job's result, failure or progress",
  description:
    "RunPod's job-done, fenced by the worker's lease: a result completes the job, an error fails it, a progress update keeps it running. An exact repeat of an accepted report answers 200 again and changes nothing. The body is read as JSON whatever the Content-Type (RunPod's SDK sends application/x-www-form-urlencoded). Extension: `?next=1` with a final report also hands out the worker's next job, without waiting. Push workers report with `?token=` instead of a key.",
  tags: TAGS,
  auth: ["worker", "reportToken"],
  query: reportQuery.extend({
    next: z
      .enum(["0", "1"])
      .optional()
      .describe("1: with a final report (output or error), answer the worker's next job as well (edge-jobs' extension; not with a push token)."),
    tags: workerTags.describe("With `next=1`: the tags the next job is taken with, as on job-take (bad tags are ignored here: refusing would lose the report)."),
  }),
  body: { schema: JobDoneBody, contentType: "application/json" },
  responses: {
    200: { description: "The report was accepted: `{}`, or `{\"next\": …}` with `?next=1`.", schema: JobDoneAnswer },
    400: { description: "Not a JSON object, an `exitCode` that is not an integer from -2147483648 to 4294967295 (on any body, a progress update's too), or `next=1` with a progress update or a push token." },
    401: badToken,
    404: unknownJob,
    409: refused,
    413: { description: `The output is over ${PAYLOAD.outputBytes / (1024 * 1024)} MB.` },
  },
};

export const jobStreamDoc: OperationDoc = {
  operationId: "jobStream",
  summary: "Post a stream chunk",
  description:
    "RunPod's job-stream: one chunk of a running job's stream, fenced by the worker's lease, kept in order for /stream. The body is read as JSON whatever the Content-Type. Push workers post with `?token=` instead of a key.",
  tags: TAGS,
  auth: ["worker", "reportToken"],
  query: reportQuery,
  body: { schema: JobStreamBody, contentType: "application/json" },
  responses: {
    200: { description: "The chunk was kept.", schema: Accepted },
    401: badToken,
    404: unknownJob,
    409: refused,
    413: { description: `The chunk is over ${PAYLOAD.streamChunkBytes / (1024 * 1024)} MB.` },
  },
};

export const pingDoc: OperationDoc = {
  operationId: "ping",
  summary: "Heartbeat",
  description:
    "RunPod's ping: keeps the worker and its jobs' leases alive, and says which jobs it runs; a running job it does not list is released once its attempt is 30 s old. A ping with neither `job_id` nor `runpod_version` says nothing about jobs. Worker-supplied text is cut to its bound, never refused.",
  tags: TAGS,
  auth: "worker",
  query: z.object({
    job_id: z.string().optional().describe("The jobs the worker runs, comma-separated (RunPod's SDK omits it when it runs none)."),
    runpod_version: z.string().optional().describe("The RunPod SDK's version (kept to 64 characters)."),
    status: z.string().optional().describe('"unhealthy" reports a failed start-up check (with `check` and `reason`).'),
    check: z.string().optional().describe("With status=unhealthy: the check that failed (kept to 256 characters)."),
    reason: z.string().optional().describe("With status=unhealthy: why it failed (kept to 256 characters)."),
    tags: z.string().optional().describe("The tags this worker has, as on job-take: noted for its list and for `queue.reason` (no_matching_workers) until its next take says otherwise. Bad tags are ignored here (the take refuses them)."),
    gpu,
  }),
  responses: {
    200: { description: "Noted.", schema: z.object({}) },
    404: { description: "Unknown endpoint." },
  },
};
