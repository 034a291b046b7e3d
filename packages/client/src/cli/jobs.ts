/**
 * Job commands (an endpoint's client key): submit (optionally waiting for the end), status,
 * watch (the live SSE stream), cancel, retry and requeue.
 */
import { readFileSync } from "node:fs";
import { TERMINAL_STATES, type JobStatus, type SubmitOptions, type Submitted } from "../client.ts";
import { must } from "../http.ts";
import { intFlag, stringFlag, type Ctx, type Handler } from "./context.ts";
import { UsageError } from "./failures.ts";
import { block, line, ms, printJson, Spinner, text, warn } from "./output.ts";

/** How long one status-sync poll may hold: it answers at once when the job ends; between, the progress line is refreshed. */
const POLL_MS = 5_000;

/** A job id short enough for a progress line. */
const short = (id: string) => (id.length > 16 ? `${id.slice(0, 12)}…` : id);

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

/** The job's input: --input JSON, --file f, or `-` (stdin), all JSON; `{}` when none is given. */
async function inputOf(ctx: Ctx): Promise<unknown> {
  const inline = stringFlag(ctx, "input");
  const file = stringFlag(ctx, "file");
  const stdin = ctx.args[1] === "-";
  if ([inline !== undefined, file !== undefined, stdin].filter(Boolean).length > 1) {
    throw new UsageError("give the input once: --input JSON, --file f or - (stdin)", ctx.command);
  }
  let source: string;
  let from: string;
  if (inline !== undefined) [source, from] = [inline, "--input"];
  else if (file !== undefined) {
    try {
      source = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`, ctx.command);
    }
    from = file;
  } else if (stdin) [source, from] = [await readStdin(), "stdin"];
  else return {};
  try {
    return JSON.parse(source) as unknown;
  } catch (e) {
    throw new UsageError(`the input (${from}) is not JSON: ${(e as Error).message}`, ctx.command);
  }
}

function submitOptions(ctx: Ctx): SubmitOptions {
  const options: SubmitOptions = {};
  const webhook = stringFlag(ctx, "webhook");
  const idempotencyKey = stringFlag(ctx, "idempotency-key");
  const sequenceKey = stringFlag(ctx, "sequence-key");
  const priority = intFlag(ctx, "priority");
  if (webhook !== undefined) options.webhook = webhook;
  if (idempotencyKey !== undefined) options.idempotencyKey = idempotencyKey;
  if (sequenceKey !== undefined) options.sequenceKey = sequenceKey;
  if (priority !== undefined) options.priority = priority;
  return options;
}

/** Why a job is where it is, in a few words (for the progress line). */
function stateLine(job: JobStatus): string {
  const q = job.queue;
  const where = q ? ` (${q.reason.replaceAll("_", " ")}${q.position !== null ? `, position ${q.position}${q.positionAtLeast ? "+" : ""}` : ""})` : "";
  return `${job.status}${where}${job.status === "IN_PROGRESS" && job.workerId ? ` on ${job.workerId}` : ""}`;
}

/** A job's status as `key  value` lines. */
export function showJob(job: JobStatus): void {
  const q = job.queue;
  block([
    ["id", job.id],
    ["status", job.outcome === "error" ? `${job.status} (with errors)` : job.phase ? `${job.status} (${job.phase})` : job.status],
    ["exit code", job.exitCode === undefined ? undefined : String(job.exitCode)],
    ["reason", job.reason],
    ["queue", q ? `${q.reason}${q.position !== null ? `, position ${q.position}${q.positionAtLeast ? " or later" : ""}` : ""}${q.ahead ? `, behind ${q.ahead}` : ""}${q.lastError ? `: ${q.lastError}` : ""}` : undefined],
    ["worker", job.workerId],
    ["attempt", (job.attempt ?? 0) > 0 || (job.retries ?? 0) > 0 ? `${job.attempt ?? 0} (retries ${job.retries ?? 0})` : undefined],
    ["tasks", job.tasks ? `${job.tasks.completed}/${job.tasks.total} completed, ${job.tasks.active} active, ${job.tasks.failed} failed` : undefined],
    ["delay", job.delayTime === undefined ? undefined : ms(job.delayTime)],
    ["execution", job.executionTime === undefined ? undefined : ms(job.executionTime)],
    ["created", job.createdAt],
    ["started", job.startedAt],
    ["completed", job.completedAt],
    ["webhook", job.webhook ? `${job.webhook.state}, ${job.webhook.attempts} attempt(s), last HTTP ${text(job.webhook.lastStatus)}` : undefined],
    ["error", job.error],
    ["output", job.output],
  ]);
}

/**
 * The exit code of a finished job: 0 when it completed, 1 when it failed, was cancelled or timed
 * out, or completed with errors (outcome "error": its program exited non-zero).
 */
function endCode(job: JobStatus): number {
  if (job.status === "COMPLETED" && job.outcome !== "error") return 0;
  if (job.status === "COMPLETED") {
    const code = job.exitCode === undefined ? "" : ` (exit code ${job.exitCode})`;
    // The error a worker left out reads "exit code n": said once.
    const why = job.error && job.error !== `exit code ${job.exitCode}` ? `: ${job.error}` : "";
    warn(`job ${job.id} completed with errors${code}${why}`);
    return 1;
  }
  warn(`job ${job.id} ended ${job.status}${job.error ? `: ${job.error}` : job.reason ? ` (${job.reason})` : ""}`);
  return 1;
}

/** Status-sync polls until the job is terminal. */
async function waitForEnd(ctx: Ctx, id: string, spinner: Spinner): Promise<JobStatus> {
  for (;;) {
    const job = await must(ctx.api.GET("/v2/{ep}/status-sync/{id}", { params: { path: { ep: ctx.ep, id }, query: { wait: POLL_MS } } }), `wait for ${id}`);
    spinner.update(`job ${short(id)}: ${stateLine(job)}`);
    if (TERMINAL_STATES.includes(job.status)) return job;
  }
}

export const submit: Handler = async (ctx) => {
  if (ctx.args.length > 1 && ctx.args[1] !== "-") throw new UsageError(`unexpected argument ${JSON.stringify(ctx.args[1])}`, ctx.command);
  const input = await inputOf(ctx);
  const submitted = await ctx.client.submit(input, submitOptions(ctx));
  if (ctx.flags.wait !== true) {
    if (ctx.json) printJson(submitted);
    else block([["id", submitted.id], ["status", submitted.status]]);
    return 0;
  }
  const spinner = new Spinner().start(`job ${short(submitted.id)}: ${submitted.status}`);
  try {
    const job = await waitForEnd(ctx, submitted.id, spinner);
    spinner.stop();
    if (ctx.json) printJson(job);
    else showJob(job);
    return endCode(job);
  } finally {
    spinner.stop();
  }
};

export const status: Handler = async (ctx) => {
  const job = await ctx.client.status(ctx.args[1] as string);
  if (ctx.json) printJson(job);
  else showJob(job);
  return 0;
};

/** A chunk as one line: its `output` when it is text, else JSON. */
function chunkLine(chunk: unknown): string {
  const output = typeof chunk === "object" && chunk !== null && "output" in chunk ? (chunk as { output: unknown }).output : chunk;
  return typeof output === "string" ? output : JSON.stringify(output);
}

export const watch: Handler = async (ctx) => {
  const id = ctx.args[1] as string;
  const chunks: Array<{ seq: number; chunk: unknown }> = [];
  const spinner = new Spinner().start(`job ${short(id)}: waiting for its stream`);
  try {
    for await (const event of ctx.client.stream(id)) {
      if (event.type === "chunk") {
        chunks.push({ seq: event.seq, chunk: event.chunk });
        spinner.update(`job ${short(id)}: ${chunks.length} chunk(s)`);
        if (!ctx.json) line(chunkLine(event.chunk));
      } else if (event.type === "status") {
        spinner.stop();
        if (ctx.json) printJson({ chunks, status: event.job });
        else {
          if (chunks.length > 0) line();
          showJob(event.job);
        }
        return endCode(event.job);
      } else {
        spinner.stop();
        if (ctx.json) printJson({ chunks, error: event.error });
        warn(`the stream of ${id} ended: ${event.error}`);
        return 1;
      }
    }
    throw new Error(`the stream of ${id} ended without the job's final status`);
  } finally {
    spinner.stop();
  }
};

const action =
  (call: (ctx: Ctx, id: string) => Promise<Submitted>): Handler =>
  async (ctx) => {
    const answer = await call(ctx, ctx.args[1] as string);
    if (ctx.json) printJson(answer);
    else block([["id", answer.id], ["status", answer.status]]);
    return 0;
  };

export const cancel = action((ctx, id) => ctx.client.cancel(id));
export const retry = action((ctx, id) => ctx.client.retry(id));
export const requeue = action((ctx, id) => ctx.client.requeue(id));
