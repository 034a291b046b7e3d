/**
 * RunPod's worker protocol (RUNPOD-WIRE §2): job-take and job-take-batch (long-poll), job-stop
 * (long-poll), job-done, job-stream and ping. Worker requests carry the raw key; bodies are JSON
 * whatever the content type says; query strings arrive appended with `&`.
 */
import type { Context, Hono } from "hono";
import type { Fence } from "../../jobs/commands";
import type { JobChange, WorkerReport } from "../../jobs/job-object";
import { PAYLOAD, WORKER_BOUNDS } from "../../shared/limits";
import { readReport, ReportBodyError } from "../../jobs/report-body";
import { clientStatus } from "../../jobs/states";
import { checkReportToken, signingSecrets } from "../../shared/signing";
import { foundOn, requireEndpoint } from "../auth";
import { endpointConfig } from "../../flows/endpoint-configs";
import { jsonBytes, readJson } from "../body";
import { ApiError, badRequest, conflict } from "../errors";
import { arrayPieces, joinPieces, type Piece } from "../../shared/pieces";
import { jsonResponse } from "../render";
import { endpointParam, jobNotFound, jobStub } from "../stubs";
import type { EndpointConfig } from "../../endpoints/config";
import { fenceOf, intParam, jobInProgressParam, tagsParam, workerIdParam } from "../params";
import { takeJobs } from "../../flows/take";
import { reportChunk, reportDone } from "../../flows/report";
import { ping, takeStops } from "../../flows/ping";
import type { AppEnv } from "../types";
import { route } from "./route";
import { jobDoneDoc, jobStopDoc, jobStreamDoc, jobTakeBatchDoc, jobTakeDoc, pingDoc } from "../openapi/docs-worker";

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * The jobs a ping says its worker runs: the `job_id` list; none when a RunPod SDK (it sends
 * `runpod_version`) omits it, as it does when it runs nothing; unknown (null) otherwise.
 */
function listedJobs(raw: string | undefined, sdkVersion: string | null): string[] | null {
  if (raw !== undefined) return raw.split(",").filter((s) => s.length > 0);
  return sdkVersion !== null ? [] : null;
}

/** The take the URL asks for, the caller authorized as a worker; waits up to `waitMs`. */
async function take(c: Context<AppEnv>, max: number, waitMs = Number(c.env.TAKE_WAIT_MS)): Promise<Piece[][]> {
  const endpointId = endpointParam(c);
  const workerId = workerIdParam(c);
  const jobInProgress = jobInProgressParam(c);
  const tags = tagsParam(c);
  const config = await requireEndpoint(c, endpointId, "worker");
  return takeJobs(c.env, config, { workerId, max, waitMs, jobInProgress, tags });
}

/** Reads a job-done body into a report and the output bytes it carries. */
function toReport(body: unknown): { report: WorkerReport; output: Uint8Array | null; stopPod: boolean } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest('job-done body must be a JSON object such as {"output": ...} or {"error": "..."}');
  }
  const b = body as Record<string, unknown>;
  const output = "output" in b ? jsonBytes(b.output, "output") : null;
  if (output !== null && output.byteLength > PAYLOAD.outputBytes) {
    throw new ApiError(413, `output is ${output.byteLength} bytes; the limit is ${PAYLOAD.outputBytes}`);
  }
  const stopPod = b.stopPod === true;
  try {
    return { report: readReport(b), output, stopPod };
  } catch (e) {
    if (e instanceof ReportBodyError) throw badRequest(e.message);
    throw e;
  }
}

/**
 * `?next=1` on job-done (an extension for our own workers; RunPod workers never send it): with
 * an accepted final report, the answer carries the worker's next job, offered and claimed at once
 * without waiting (`{"next": {id, input, attempt}}`, or `{"next": null}` when none is ready), so a
 * busy worker needs one request per job instead of two. BullMQ's moveToFinished(…, fetchNext).
 */
function nextParam(c: Context<AppEnv>, report: WorkerReport, token: string | undefined): boolean {
  const raw = c.req.query("next");
  if (raw === undefined || raw === "0") return false;
  if (raw !== "1") throw badRequest(`next must be 0 or 1, got '${raw}'`);
  if (report.kind === "progress") throw badRequest("next=1 needs a final report (output or error), not a progress update");
  if (token !== undefined) throw badRequest("next=1 needs the worker key: push workers are handed jobs by the dispatcher");
  return true;
}

/** 200 `{}` for an accepted report; a 4xx (which RunPod workers drop, not retry) for a refused one. */
function reportAnswer(r: JobChange, id: string): Response {
  if (r.ok) return jsonResponse("{}");
  if (r.code === "NOT_FOUND") throw jobNotFound(id);
  throw conflict(r.message, { id, status: clientStatus(r.job.state), code: r.code, stop: true });
}

/**
 * A push worker reports with the token from the URLs it was given instead of a key: the token
 * covers this job, attempt and worker only. Tokens minted before a secret rotation stay valid
 * while the previous secret still signs (the same window as webhooks and pushes).
 */
async function requireReportToken(c: Context<AppEnv>, endpointId: string, jobId: string, fence: Fence, token: string): Promise<EndpointConfig> {
  const config = await configOf(c, endpointId);
  const attempt = fence.attempt;
  const valid =
    attempt !== null &&
    (await Promise.all(signingSecrets(config, Date.now()).map((secret) => checkReportToken(secret, jobId, attempt, fence.workerId, token)))).some(Boolean);
  if (!valid) throw new ApiError(401, "invalid report token for this job, attempt and worker");
  return config;
}

/** The endpoint's config, from this isolate's cache (like authorizations) or the endpoint. */
async function configOf(c: Context<AppEnv>, endpointId: string): Promise<EndpointConfig> {
  return foundOn(endpointId, await endpointConfig(c.env, endpointId));
}

/**
 * The worker report a URL names, its caller authorized (the worker key, or a push worker's report
 * token). Also job-log's (routes/logs).
 */
export async function reportTarget(c: Context<AppEnv>) {
  const endpointId = endpointParam(c);
  const workerId = workerIdParam(c);
  const fence = fenceOf(c, workerId);
  const id = c.req.param("id")!;
  const token = c.req.query("token");
  const config =
    token !== undefined && !c.req.header("authorization")
      ? await requireReportToken(c, endpointId, id, fence, token)
      : await requireEndpoint(c, endpointId, "worker");
  if (!jobStub(c.env, id)) throw jobNotFound(id);
  return { target: { config, workerId, fence, jobId: id }, token: c.req.header("authorization") ? undefined : token };
}

export function workerRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/job-take/:w", {
    GET: async (c) => {
      const [job] = await take(c, 1);
      return job ? jsonResponse(joinPieces(job)) : c.body(null, 204);
    },
  }, { GET: jobTakeDoc });

  route(app, "/v2/:ep/job-take-batch/:w", {
    GET: async (c) => {
      const jobs = await take(c, intParam(c, "batch_size", 1, 100) ?? 1);
      return jobs.length > 0 ? jsonResponse(joinPieces(arrayPieces(jobs))) : c.body(null, 204);
    },
  }, { GET: jobTakeBatchDoc });

  route(app, "/v2/:ep/job-stop/:w", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const workerId = workerIdParam(c);
      const config = await requireEndpoint(c, endpointId, "worker");
      const ids = await takeStops(c.env, config, workerId, Number(c.env.TAKE_WAIT_MS));
      return ids.length > 0 ? c.json({ jobsToStop: ids }) : c.body(null, 204);
    },
  }, { GET: jobStopDoc });

  route(app, "/v2/:ep/job-done/:w/:id", {
    POST: async (c) => {
      const { target, token } = await reportTarget(c);
      const { report, output, stopPod } = toReport(await readJson(c.req.raw, PAYLOAD.outputBytes + PAYLOAD.envelopeBytes));
      const wantsNext = nextParam(c, report, token);
      // The next job is taken with the tags this URL declares (`?tags=`, as on job-take); bad tags
      // are ignored here, as on ping: refusing would lose the result (found from outside).
      const tags = wantsNext ? tagsParam(c, true) : null;
      const { change, next } = await reportDone(c.env, target, report, output, { stopPod, next: wantsNext, tags });
      const answer = reportAnswer(change, target.jobId);
      if (next === undefined) return answer;
      return jsonResponse(joinPieces(next ? [utf8('{"next":'), ...next, utf8("}")] : [utf8('{"next":null}')]));
    },
  }, { POST: jobDoneDoc });

  route(app, "/v2/:ep/job-stream/:w/:id", {
    POST: async (c) => {
      const { target } = await reportTarget(c);
      const body = await readJson(c.req.raw, PAYLOAD.streamChunkBytes + PAYLOAD.envelopeBytes);
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw badRequest('job-stream body must be a JSON object such as {"output": ...}');
      }
      const chunk = jsonBytes(body, "stream chunk");
      if (chunk.byteLength > PAYLOAD.streamChunkBytes) {
        throw new ApiError(413, `stream chunk is ${chunk.byteLength} bytes; the limit is ${PAYLOAD.streamChunkBytes}`);
      }
      return reportAnswer(await reportChunk(c.env, target, chunk), target.jobId);
    },
  }, { POST: jobStreamDoc });

  route(app, "/v2/:ep/ping/:w", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const workerId = workerIdParam(c);
      const config = await requireEndpoint(c, endpointId, "worker");
      const sdkVersion = c.req.query("runpod_version") ?? null;
      const jobIds = listedJobs(c.req.query("job_id"), sdkVersion);
      // Worker-supplied text is cut to its bound rather than refused: refusing the ping would
      // lose the heartbeat (and with it the worker's leases) over a label. Bad tags are ignored
      // here for the same reason (the take refuses them, so the worker learns).
      const text = (name: string, fallback: string) => (c.req.query(name) ?? fallback).slice(0, WORKER_BOUNDS.unhealthyTextChars);
      const unhealthy = c.req.query("status") === "unhealthy" ? `${text("check", "check")}: ${text("reason", "failed")}` : null;
      await ping(c.env, config, workerId, { jobIds, sdkVersion, unhealthy, tags: tagsParam(c, true) });
      return c.json({});
    },
  }, { GET: pingDoc });
}
