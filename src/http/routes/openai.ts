/**
 * RunPod's OpenAI-compatible route (RUNPOD-WIRE-2 §2): `GET|POST /v2/{ep}/openai/<route>` becomes
 * a sync job whose input is `{"openai_route": "/<route>", "openai_input": <body or {}>}`; the
 * answer is the worker's output unwrapped (JSON), or with `"stream": true` its stream chunks'
 * strings written as they come (text/event-stream). A client that goes away cancels the job.
 * Every refusal is an OpenAI error object, `{"error": {"message", "type", "param", "code"}}`.
 */
import type { Context, Hono } from "hono";
import { stream } from "hono/streaming";
import type { EndpointRef } from "../../jobs/record";
import { isTerminal, isWaiting } from "../../jobs/states";
import { OPENAI_ROUTE } from "../../shared/limits";
import { publicOrigin } from "../../shared/urls";
import { requireEndpoint } from "../auth";
import { jsonBytes, parseJson, readBodyBytes } from "../body";
import { ApiError, badRequest, notFound } from "../errors";
import { endpointParam } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import { OPENAI_GET_DOC, OPENAI_POST_DOC } from "../openapi/docs-openai";
import { jobAt, refOf } from "../../flows/stubs";
import { submitJob } from "../../flows/submit";
import {
  allChunks,
  awaitEnd,
  cancelJob,
  chunksAfter,
  chunkText,
  endFailure,
  failureOf,
  outputIsEmpty,
  outputText,
  sseEvent,
  unwrapOutput,
  type OpenAiFailure,
} from "../../flows/openai";

/** OpenAI's error `type` for a refusal of ours, by status. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

function errorObject(f: OpenAiFailure) {
  return { error: { message: f.message, type: f.type, param: null, code: f.code } };
}

function failureResponse(f: OpenAiFailure, jobId: string | null, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(errorObject(f)), {
    status: f.status,
    headers: { "content-type": "application/json; charset=utf-8", ...(jobId === null ? {} : { "x-request-id": jobId }), ...headers },
  });
}

/** An ApiError of the shared checks (auth, body, limits) in OpenAI's error shape. */
function fromApiError(e: ApiError): Response {
  return failureResponse({ status: e.status, message: e.message, type: errorType(e.status), code: null }, null, e.headers);
}

/** The route the client named: the URL path after `/v2/{ep}/openai`, as sent (the query is not passed on). */
function openAiRoute(c: Context<AppEnv>): string {
  const path = new URL(c.req.url).pathname;
  const route = /^\/v2\/[^/]+\/openai(\/.*)?$/.exec(path)?.[1] ?? "";
  if (route === "" || route === "/") throw notFound("name an OpenAI route after /openai, e.g. /openai/v1/chat/completions");
  if (route.length > OPENAI_ROUTE.routeChars) throw badRequest(`the route after /openai is ${route.length} characters; the limit is ${OPENAI_ROUTE.routeChars}`);
  return route;
}

/** The request body as a JSON object; GET, and an empty body, are `{}`. */
async function openAiBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  if (c.req.method === "GET") return {};
  const value = parseJson(await readBodyBytes(c.req.raw, OPENAI_ROUTE.bodyBytes), false);
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw badRequest(`the body must be a JSON object (an OpenAI request), not ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Record<string, unknown>;
}

/** A submitted job and how to follow it. */
interface Submitted {
  id: string;
  ref: EndpointRef;
  /** Epoch ms: the call waits for the job until then (its execution timeout after submission). */
  deadline: number;
}

async function submitOpenAi(c: Context<AppEnv>): Promise<{ job: Submitted; streaming: boolean }> {
  const endpointId = endpointParam(c);
  const config = await requireEndpoint(c, endpointId, "client");
  const pub = publicOrigin(c.env);
  if (config.mode === "push" && !pub.ok) throw new ApiError(503, pub.reason);
  const openaiRoute = openAiRoute(c);
  const body = await openAiBody(c);
  const input = { openai_route: openaiRoute, openai_input: body };
  const r = await submitJob(c.env, config, { kind: "sync", body: { input }, input: jsonBytes(input, "body"), key: null, origin: pub.ok ? pub.origin : null });
  if (!r.ok) throw new ApiError(500, "the job could not be created; the request may be retried");
  return { job: { id: r.job.id, ref: refOf(config), deadline: r.job.createdAt + r.job.policy.executionTimeout }, streaming: body.stream === true };
}

/**
 * Cancels the job once, when the client goes away before it ended: on the request's abort signal
 * (the `enable_request_signal` flag) or the response stream's cancel. The cancel outlives the
 * request through waitUntil.
 */
function cancelOnDisconnect(c: Context<AppEnv>, job: Submitted) {
  let settled = false;
  const cancel = () => {
    if (settled) return;
    settled = true;
    c.executionCtx.waitUntil(cancelJob(c.env, job.id, job.ref).catch((e: unknown) => console.error("openai: cancel after disconnect failed", e)));
  };
  const signal = c.req.raw.signal as AbortSignal | undefined;
  signal?.addEventListener("abort", cancel, { once: true });
  return {
    cancel,
    /** The job ended, or the call cancels it itself: a disconnect from now on changes nothing. */
    settle() {
      settled = true;
      signal?.removeEventListener("abort", cancel);
    },
  };
}

async function answer(c: Context<AppEnv>, job: Submitted): Promise<Response> {
  const watch = cancelOnDisconnect(c, job);
  try {
    const end = await awaitEnd(c.env, job.id, job.ref, job.deadline);
    if (end.kind === "deadline") await cancelJob(c.env, job.id, job.ref);
    if (end.kind !== "ended") return failureResponse(endFailure(end), job.id);
    if (end.job.state !== "COMPLETED") return failureResponse(failureOf(end.job), job.id);
    const chunks = outputIsEmpty(end.output) ? await allChunks(c.env, job.id, job.ref, OPENAI_ROUTE.chunkedOutputBytes) : [];
    if (chunks === null) {
      return failureResponse({ status: 502, message: `the job's stream is larger than ${OPENAI_ROUTE.chunkedOutputBytes} bytes; ask with "stream": true`, type: "server_error", code: "output_too_large" }, job.id);
    }
    const body = unwrapOutput(end.output, chunks);
    if (body === null) return failureResponse({ status: 502, message: "the job completed without an output", type: "worker_error", code: "no_output" }, job.id);
    return new Response(body, { headers: { "content-type": "application/json; charset=utf-8", "x-request-id": job.id } });
  } finally {
    watch.settle();
  }
}

/** A read of the job's stream that found chunks. */
type FirstRead = Extract<Awaited<ReturnType<typeof chunksAfter>>, { ok: true }>;

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" } as const;

/**
 * A streaming answer. Its status is decided by the first chunk or the job's end, whichever comes
 * first: a job that fails before any output answers with an error status like a non-streaming
 * call; once chunks flow, an error is a last `data: {"error": …}` event. A chunk of a later
 * attempt (the worker was lost mid-stream and the job retried) cannot continue the stream: it
 * ends with an error and the job is cancelled.
 */
async function answerStream(c: Context<AppEnv>, job: Submitted): Promise<Response> {
  const watch = cancelOnDisconnect(c, job);
  const failAndCancel = async (f: OpenAiFailure) => {
    watch.settle();
    await cancelJob(c.env, job.id, job.ref);
    return f;
  };
  let first: FirstRead;
  for (;;) {
    const r = await chunksAfter(c.env, job.id, job.ref, 0, job.deadline - Date.now());
    if (!r.ok) {
      watch.settle();
      return failureResponse(endFailure({ kind: "gone" }), job.id);
    }
    if (r.chunks.length > 0) {
      first = r;
      break;
    }
    if (isTerminal(r.job.state)) {
      watch.settle();
      if (r.job.state !== "COMPLETED") return failureResponse(failureOf(r.job), job.id);
      const read = await jobAt(c.env, job.id).read(job.ref);
      if (!read.ok) return failureResponse(endFailure({ kind: "gone" }), job.id);
      return new Response(outputText(read.output), { headers: { ...SSE_HEADERS, "x-request-id": job.id } });
    }
    if (Date.now() >= job.deadline) return failureResponse(await failAndCancel(endFailure({ kind: "deadline", job: r.job })), job.id);
  }

  for (const [k, v] of Object.entries({ ...SSE_HEADERS, "x-request-id": job.id })) c.header(k, v);
  return stream(c, async (s) => {
    s.onAbort(watch.cancel);
    try {
      await pipeChunks(c, job, first, s, watch, failAndCancel);
    } catch (e) {
      console.error("openai: the stream failed", e);
      await s.write(sseEvent(errorObject({ status: 500, message: "internal error: the stream ended early", type: "server_error", code: null })));
    }
  });
}

/** Writes the chunks as they come, from the first read on, until the job ends (or the deadline, or a new attempt). */
async function pipeChunks(
  c: Context<AppEnv>,
  job: Submitted,
  first: FirstRead,
  s: { write(text: string): Promise<unknown>; aborted: boolean },
  watch: { settle(): void },
  failAndCancel: (f: OpenAiFailure) => Promise<OpenAiFailure>,
): Promise<void> {
  const attempt = first.job.attempt;
  let after = 0;
  let chunks = first.chunks;
  let state = first.job;
  /** Whether what was written so far ends between two SSE events (a comment may go there). */
  let atBoundary = true;
  for (;;) {
    for (const ch of chunks) {
      const text = chunkText(ch.data);
      await s.write(text);
      if (text.length > 0) atBoundary = text.endsWith("\n\n");
      after = ch.seq;
    }
    if (s.aborted) return;
    if (chunks.length === 0 && isTerminal(state.state)) {
      watch.settle();
      if (state.state !== "COMPLETED") await s.write(sseEvent(errorObject(failureOf(state))));
      return;
    }
    if (chunks.length === 0 && Date.now() >= job.deadline) {
      await s.write(sseEvent(errorObject(await failAndCancel(endFailure({ kind: "deadline", job: state })))));
      return;
    }
    // Short reads, so a lost worker (the job back in the queue) and a gone client are noticed
    // within a slice, not only when chunks come again.
    const r = await chunksAfter(c.env, job.id, job.ref, after, Math.min(OPENAI_ROUTE.watchSliceMs, job.deadline - Date.now()));
    if (!r.ok) {
      watch.settle();
      await s.write(sseEvent(errorObject(endFailure({ kind: "gone" }))));
      return;
    }
    if (r.job.attempt !== attempt || isWaiting(r.job.state)) {
      const f = { status: 502, message: "the worker was lost mid-stream and the job went back to the queue; the stream cannot continue, and the job was cancelled", type: "server_error", code: "worker_lost" };
      await s.write(sseEvent(errorObject(await failAndCancel(f))));
      return;
    }
    // Nothing new: an SSE comment (OpenAI's SDKs skip them) finds out whether the client is
    // still there; only between events, as workers' chunks may split one.
    if (r.chunks.length === 0 && !isTerminal(r.job.state) && atBoundary) await s.write(": keep-alive\n\n");
    chunks = r.chunks;
    state = r.job;
  }
}

export function openAiRoutes(app: Hono<AppEnv>): void {
  const handler = async (c: Context<AppEnv>) => {
    try {
      // Hono answers HEAD with the GET handler: here that would start a job.
      if (c.req.raw.method === "HEAD") throw new ApiError(405, "HEAD is not served on /openai/*: it would start a job; use GET or POST", {}, { allow: "GET, POST" });
      const { job, streaming } = await submitOpenAi(c);
      return await (streaming ? answerStream(c, job) : answer(c, job));
    } catch (e) {
      if (e instanceof ApiError) return fromApiError(e);
      console.error("openai: unhandled error", e);
      return failureResponse({ status: 500, message: "internal error; the request may be retried", type: "server_error", code: null }, null);
    }
  };
  route(app, "/v2/:ep/openai/*", { GET: handler, POST: handler }, { GET: OPENAI_GET_DOC, POST: OPENAI_POST_DOC });
}
