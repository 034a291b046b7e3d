/**
 * The OpenAPI description of job logs (routes/logs.ts): a worker's job-log post and a client's
 * read of a job's log, paged or followed as Server-Sent Events.
 */
import { z } from "zod";
import { JOB_LOG } from "../../shared/limits";
import { IsoTime, JobStatus } from "./common";
import type { OperationDoc } from "./operation";

const KIB = 1024;
const caps =
  `A job keeps at most ${JOB_LOG.linesPerJob} lines and ${JOB_LOG.bytesPerJob / (KIB * KIB)} MiB of messages (UTF-8) over all its attempts; ` +
  "the line that would pass either is replaced by one truncation marker line (level WARN, workerId null) and later lines are dropped.";

const LogLineIn = z
  .union([
    z.string().describe("An INFO line."),
    z.looseObject({
      level: z.string().optional().describe("DEBUG, INFO (default), WARN or ERROR, any case; RunPod's TRACE, NOTSET (→ DEBUG), TIP (→ INFO), and WARNING (→ WARN), CRITICAL, FATAL (→ ERROR) are accepted; any other is a 400."),
      message: z.string().optional().describe(`The text (or send it as \`line\`). Over ${JOB_LOG.lineChars + JOB_LOG.cutNoteRoom} characters (${JOB_LOG.lineChars} and room for a cut note, so a message RunPod's SDK cut already is kept) it is cut in the middle as RunPod's SDK cuts it: the first and last ${JOB_LOG.lineChars / 2} characters around \`\\n...TRUNCATED <n> CHARACTERS...\\n\`.`),
      line: z.string().optional().describe("The text, when `message` is absent."),
      ts: z.union([z.number(), z.string()]).optional().describe("The worker's time of the line: ms since the epoch or an RFC 3339 string (or send it as `at`). Kept beside the time the line arrived."),
    }),
  ])
  .describe("One log line.");

export const JobLogBody = z
  .object({ lines: z.array(LogLineIn).min(1).max(JOB_LOG.linesPerPost) })
  .describe(`1 to ${JOB_LOG.linesPerPost} lines, at most ${JOB_LOG.postBytes / KIB} KiB of body.`);

export const JobLogAnswer = z.object({
  accepted: z.number().int().describe("Lines kept."),
  dropped: z.number().int().describe("Lines dropped because the job's log is full."),
  truncated: z.boolean().describe("The job's log is full (it ends with the truncation marker): stop sending."),
});

export const LogLine = z
  .object({
    seq: z.number().int().describe("The line's number in the job's log (increasing; the SSE event id)."),
    at: IsoTime.describe("When the line arrived."),
    ts: IsoTime.nullable().describe("The worker's own time of the line, if it sent one."),
    attempt: z.number().int().describe("The attempt that wrote it."),
    workerId: z.string().nullable().describe("The worker that wrote it; null for the truncation marker."),
    level: z.enum(["DEBUG", "INFO", "WARN", "ERROR"]),
    message: z.string(),
  })
  .meta({ id: "LogLine", description: "A line of a job's log." });

export const LogPage = z.object({
  id: z.string(),
  status: JobStatus,
  lines: z.array(LogLine),
  next: z.number().int().nullable().describe("More lines are stored: pass this as `after` for the next page. Null: this page reached the end of the log so far."),
  truncated: z.boolean().describe("The job's log is full and ends with the truncation marker."),
}).meta({ id: "LogPage", description: "A page of a job's log." });

const reportQuery = z.object({
  attempt: z.number().int().min(1).max(1_000_000).optional().describe("The attempt the lines are from (from the take); lines of an older attempt are refused (409)."),
  token: z.string().optional().describe("A push worker's report token (from `urls.log`); used only without an Authorization header."),
});

export const JOB_LOG_DOC: OperationDoc = {
  operationId: "jobLog",
  summary: "Append log lines to a job",
  description:
    "Lines from the worker holding the job's lease, fenced like every report: another worker, an older attempt or a job that has ended gets a 409 and nothing is kept. " +
    "Accepted while the job runs or is being cancelled. Not a state change: the job's version and status stay. " +
    `${caps} The body is read as JSON whatever the Content-Type. Push workers post to the \`urls.log\` they were pushed with (\`?token=\`).`,
  tags: ["Workers"],
  auth: ["worker", "reportToken"],
  query: reportQuery,
  body: { schema: JobLogBody, contentType: "application/json" },
  responses: {
    200: { description: "The lines were appended, as far as the job's caps allow.", schema: JobLogAnswer },
    400: { description: "Not `{\"lines\": [...]}` with 1-1000 lines, a line without a string message, an unknown level or a bad time." },
    401: { description: "The report token is not valid for this job, attempt and worker." },
    404: { description: "Unknown endpoint or job (or a job of another endpoint)." },
    409: { description: "Refused: the worker does not hold the job's lease, the attempt is over, or the job has ended. The body names `status` and `code`, with `stop: true`." },
    413: { description: `The body is over ${JOB_LOG.postBytes / KIB} KiB.` },
  },
};

export const GET_LOGS_DOC: OperationDoc = {
  operationId: "getLogs",
  summary: "A job's log, paged, or followed live as Server-Sent Events",
  description:
    "The lines the job's workers logged, oldest first, kept for the job's retention. JSON: up to `limit` lines after `after`. " +
    "With `?follow=1` (or `Accept: text/event-stream`): a live SSE stream of `log` events (id = seq, data = the line) from after `Last-Event-ID` (or `after`), " +
    "`: keep-alive` comments, then one `end` event (`{id, status, truncated}`) once the job has ended and every line is sent, or an `error` event if the job is deleted meanwhile. " +
    caps,
  tags: ["Jobs"],
  auth: "client",
  query: z.object({
    after: z.number().int().nonnegative().optional().describe("Start after this line number (default 0: from the start)."),
    limit: z.number().int().min(1).max(JOB_LOG.page.max).optional().describe(`JSON only: lines per page, 1-${JOB_LOG.page.max} (default ${JOB_LOG.page.default}).`),
    follow: z.enum(["0", "1"]).optional().describe("1: follow the log as Server-Sent Events until the job ends."),
  }),
  headers: { "Last-Event-ID": "SSE only: resume after this line number (wins over `after`)." },
  responses: {
    200: {
      description: "JSON `{id, status, lines, next, truncated}`; with `follow=1` a text/event-stream of `log`, `end` and `error` events as described above.",
      schema: LogPage,
      alsoAs: ["text/event-stream"],
    },
    400: { description: "A bad `after`, `limit`, `follow` or Last-Event-ID." },
    404: { description: "No such job on this endpoint (unknown, submitted to another endpoint, or deleted after its retention), or no such endpoint." },
  },
};
