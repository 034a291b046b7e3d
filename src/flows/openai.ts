/**
 * The OpenAI-compatible passthrough (RUNPOD-WIRE-2 §2): waiting for the job a request became, and
 * what its worker's output and stream chunks turn into for an OpenAI client. The route has
 * authorized the client, read the body and submitted the job (flows/submit).
 */
import type { EndpointRef, JobRecord } from "../jobs/record";
import { isTerminal } from "../jobs/states";
import type { StreamChunk } from "../jobs/stream";
import { OPENAI_ROUTE } from "../shared/limits";
import { jobAt } from "./stubs";

/** How a wait for the job ended: the job finished (with its output bytes), it is gone, or the deadline passed first. */
export type JobEnd =
  | { kind: "ended"; job: JobRecord; output: Uint8Array | null }
  | { kind: "gone" }
  | { kind: "deadline"; job: JobRecord };

/** Waits for the job to end, one job-object wait of at most OPENAI_ROUTE.waitSliceMs at a time, until `deadline` (epoch ms). */
export async function awaitEnd(env: Env, jobId: string, ref: EndpointRef, deadline: number): Promise<JobEnd> {
  const stub = jobAt(env, jobId);
  for (;;) {
    const r = await stub.waitTerminal(ref, Math.max(0, Math.min(OPENAI_ROUTE.waitSliceMs, deadline - Date.now())));
    if (!r.ok) return { kind: "gone" };
    if (isTerminal(r.job.state)) return { kind: "ended", job: r.job, output: r.output };
    if (Date.now() >= deadline) return { kind: "deadline", job: r.job };
  }
}

/** The chunks after `afterSeq`, waiting up to `waitMs` (at most a slice) for one while the job runs. */
export function chunksAfter(env: Env, jobId: string, ref: EndpointRef, afterSeq: number, waitMs: number) {
  return jobAt(env, jobId).streamFrom(ref, afterSeq, Math.max(0, Math.min(OPENAI_ROUTE.waitSliceMs, waitMs)));
}

/**
 * Every stream chunk of a finished job, in order, up to `maxBytes` of chunk data (null past it):
 * the answer of a job that completed with its result only in its stream.
 */
export async function allChunks(env: Env, jobId: string, ref: EndpointRef, maxBytes: number): Promise<StreamChunk[] | null> {
  const out: StreamChunk[] = [];
  let after = 0;
  let bytes = 0;
  for (;;) {
    const r = await chunksAfter(env, jobId, ref, after, 0);
    if (!r.ok || r.chunks.length === 0) return out;
    for (const ch of r.chunks) {
      bytes += ch.data.byteLength;
      if (bytes > maxBytes) return null;
      out.push(ch);
      after = ch.seq;
    }
  }
}

/** Cancels the job (its client went away, or its wait ran out); a job that already ended is left as it is. */
export async function cancelJob(env: Env, jobId: string, ref: EndpointRef): Promise<void> {
  await jobAt(env, jobId).cancel(ref);
}

// ---- what the client gets ----

const dec = new TextDecoder();

function parseStored(bytes: Uint8Array): unknown {
  return JSON.parse(dec.decode(bytes)) as unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** One SSE event carrying a JSON value: what a non-string stream item becomes. */
export function sseEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** A streamed item as text: a string verbatim, a list item by item, anything else one `data:` event; null writes nothing. */
function itemText(item: unknown): string {
  if (item === null || item === undefined) return "";
  if (typeof item === "string") return item;
  if (Array.isArray(item)) return item.map((x) => (typeof x === "string" ? x : x === null ? "" : sseEvent(x))).join("");
  return sseEvent(item);
}

/** The `output` of a stored stream chunk (a worker posts `{"output": <item>}`; a body without one counts whole). */
function chunkItem(data: Uint8Array): unknown {
  const chunk = parseStored(data);
  return isPlainObject(chunk) && "output" in chunk ? chunk.output : chunk;
}

/** What one stored stream chunk writes to a streaming client. */
export function chunkText(data: Uint8Array): string {
  return itemText(chunkItem(data));
}

/** What a job that completed without streaming writes to a streaming client: its output's strings. */
export function outputText(output: Uint8Array | null): string {
  return output === null ? "" : itemText(parseStored(output));
}

/**
 * The body of a non-streaming answer from the job's output (RUNPOD-WIRE-2 §2.3): a list of
 * strings → their concatenation; a list of one object → that object; anything else → itself, as
 * JSON. A job that completed with no output (or an empty list) answers from its stream chunks'
 * items the same way. Null: there is nothing to answer with.
 */
export function unwrapOutput(output: Uint8Array | null, chunks: readonly StreamChunk[] = []): string | null {
  let value = output === null ? null : parseStored(output);
  if ((value === null || (Array.isArray(value) && value.length === 0)) && chunks.length > 0) value = chunks.map((ch) => chunkItem(ch.data));
  if (value === null) return null;
  if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "string")) return value.join("");
  if (Array.isArray(value) && value.length === 1 && isPlainObject(value[0])) return JSON.stringify(value[0]);
  return JSON.stringify(value);
}

/** Does the output need the stream chunks to answer with (none, or an empty list)? */
export function outputIsEmpty(output: Uint8Array | null): boolean {
  if (output === null) return true;
  const value = parseStored(output);
  return value === null || (Array.isArray(value) && value.length === 0);
}

/** An OpenAI error object (`{"error": <this>}`) and the HTTP status it is answered with. */
export interface OpenAiFailure {
  status: number;
  message: string;
  type: string;
  code: string | number | null;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/**
 * The error a worker reported, read the ways workers write it: an OpenAI error object (or one
 * wrapped in `{"error": …}`), RunPod's SDK's `{error_type, error_message}`, a Python repr of a
 * dict (RunPod's SDK posts `str(dict)`), or plain text. A 4xx `code` is kept as the status.
 */
function workerFailure(error: string): OpenAiFailure {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(error);
  } catch {
    // not JSON: plain text or a Python repr
  }
  const obj = isPlainObject(parsed) && isPlainObject(parsed.error) ? parsed.error : isPlainObject(parsed) ? parsed : null;
  const rawCode = obj ? obj.code : /['"]code['"]\s*:\s*(\d{3})\b/.exec(error)?.[1];
  const code = typeof rawCode === "number" || typeof rawCode === "string" ? rawCode : null;
  const n = Number(code);
  const status = Number.isInteger(n) && n >= 400 && n <= 499 ? n : 500;
  const message = (obj && (str(obj.message) ?? str(obj.error_message) ?? str(obj.error))) ?? error;
  const type = (obj && (str(obj.type) ?? str(obj.error_type))) ?? "worker_error";
  return { status, message, type, code };
}

/** The OpenAI error for a job that ended other than COMPLETED (RUNPOD-WIRE-2 §2.5). */
export function failureOf(job: JobRecord): OpenAiFailure {
  switch (job.state) {
    case "FAILED":
      return workerFailure(job.error ?? "the job failed without an error message");
    case "ERROR":
      // It ran and exited non-zero: its error (or "exit code n") is the answer.
      return workerFailure(job.error ?? "the job ended with errors");
    case "TIMED_OUT":
      return {
        status: 504,
        message: `the job timed out (${job.reason ?? "timeout"})${job.error ? `: ${job.error}` : ""}`,
        type: "timeout",
        code: job.reason ?? "timeout",
      };
    case "CANCELLED":
      return { status: 409, message: `the job was cancelled (${job.reason ?? "cancelled"})`, type: "cancelled", code: job.reason ?? "cancelled" };
    default:
      return { status: 500, message: `the job is ${job.state}`, type: "server_error", code: null };
  }
}

/** The OpenAI error for a wait that found the job gone, or that ran past its deadline (the job is then cancelled). */
export function endFailure(end: Exclude<JobEnd, { kind: "ended" }>): OpenAiFailure {
  if (end.kind === "gone") {
    return { status: 504, message: "the job no longer exists (its TTL ended, or its endpoint was deleted)", type: "timeout", code: "job_gone" };
  }
  return {
    status: 504,
    message: `the job did not end within its execution timeout (${end.job.policy.executionTimeout} ms) after it was submitted; it was cancelled`,
    type: "timeout",
    code: "timeout",
  };
}
