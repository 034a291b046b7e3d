/**
 * RunPod's worker protocol (RUNPOD-WIRE §2): job-take and job-take-batch (long-poll), job-stop
 * (long-poll), job-done, job-stream and ping. Worker requests carry the raw key; bodies are JSON
 * whatever the content type says; query strings arrive appended with `&`.
 */
import type { Context, Hono } from "hono";
import type { Fence } from "../../jobs/commands";
import type { JobChange, WorkerReport } from "../../jobs/job-object";
import { ID_PATTERN, PAYLOAD, WORKER_BOUNDS } from "../../shared/limits";
import { handlerError } from "../../jobs/errors";
import { checkReportToken, signingSecrets } from "../../shared/signing";
import { foundOn, requireEndpoint } from "../auth";
import { cachedConfig, rememberConfig } from "../auth-cache";
import { jsonBytes, readJson } from "../body";
import { ApiError, badRequest, conflict } from "../errors";
import { arrayPieces, joinPieces, objectPieces, type Piece } from "../../shared/pieces";
import { jsonResponse } from "../render";
import { endpointParam, endpointStub, jobNotFound, jobStub } from "../stubs";
import type { EndpointConfig } from "../../endpoints/config";
import { refOf } from "../params";
import type { AppEnv } from "../types";
import { route } from "./route";
import { livenessOf } from "../liveness";

const utf8 = (s: string) => new TextEncoder().encode(s);

function workerIdParam(c: Context<AppEnv>): string {
  const id = c.req.param("w")!;
  if (!ID_PATTERN.test(id)) throw badRequest(`'${id}' is not a valid worker id: use 1-64 letters, digits, '-' or '_'`);
  return id;
}

function intParam(c: Context<AppEnv>, name: string, min: number, max: number): number | null {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return null;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  return n;
}

function jobInProgressParam(c: Context<AppEnv>): boolean | null {
  const raw = c.req.query("job_in_progress");
  if (raw === undefined) return null;
  if (raw !== "0" && raw !== "1") throw badRequest(`job_in_progress must be 0 or 1, got '${raw}'`);
  return raw === "1";
}

function fenceOf(c: Context<AppEnv>, workerId: string): Fence {
  return { workerId, attempt: intParam(c, "attempt", 1, 1_000_000) };
}

/**
 * The jobs a ping says its worker runs: the `job_id` list; none when a RunPod SDK (it sends
 * `runpod_version`) omits it, as it does when it runs nothing; unknown (null) otherwise.
 */
function listedJobs(raw: string | undefined, sdkVersion: string | null): string[] | null {
  if (raw !== undefined) return raw.split(",").filter((s) => s.length > 0);
  return sdkVersion !== null ? [] : null;
}

/** The claims of one take: those under way, and the jobs claimed. */
interface Claims {
  inFlight: Promise<unknown>;
  ids: Set<string>;
}

/**
 * Offers jobs to the worker and claims them, waiting up to the long-poll limit for at least one.
 * The worker's liveness object learns of the take at the same time (a sign of life while the
 * poll lasts); a take saying the worker runs nothing releases the jobs it holds there as soon as
 * that answer is in.
 */
async function takeJobs(c: Context<AppEnv>, max: number, waitMs = Number(c.env.TAKE_WAIT_MS)): Promise<Piece[][]> {
  const endpointId = endpointParam(c);
  const workerId = workerIdParam(c);
  const jobInProgress = jobInProgressParam(c);
  const config = await requireEndpoint(c, endpointId, "worker");
  const ref = refOf(config);
  const deadline = Date.now() + waitMs;
  const liveness = livenessOf(c.env, config, workerId);
  const claims: Claims = { inFlight: Promise.resolve(), ids: new Set() };
  const released = liveness.stub.taking(liveness.ref, config.heartbeatTimeout, workerId, jobInProgress, deadline).then((held) => {
    // A claim of this very take that was under way when the answer came may have been told to
    // the shard first: its job is not lost. Claims started later were told after it.
    const before = claims.inFlight;
    return before.then(async () => {
      const lost = held.filter((id) => !claims.ids.has(id));
      await Promise.all(lost.map((id) => c.env.JOB.get(c.env.JOB.idFromString(id)).loseLease(ref, workerId, "the worker asked for work saying it runs none")));
    });
  });
  try {
    return await claimOffers(c, config, workerId, max, deadline, claims);
  } finally {
    await released;
  }
}

/** Takes from the endpoint and claims what it offers, until a job is claimed or the poll is over. */
async function claimOffers(c: Context<AppEnv>, config: EndpointConfig, workerId: string, max: number, deadline: number, claims: Claims): Promise<Piece[][]> {
  const ref = refOf(config);
  const endpoint = endpointStub(c.env, config.id);
  for (;;) {
    const offer = await endpoint.take(workerId, max, Math.max(0, deadline - Date.now()), config.generation);
    if (offer.ids.length === 0) return [];
    // Each offered job (within the batch's byte budget: see offerReady) is claimed in its own
    // object, all at once; answered in offer order.
    const round = Promise.all(offer.ids.map((id) => c.env.JOB.get(c.env.JOB.idFromString(id)).claim(ref, workerId)));
    claims.inFlight = round.then((rs) => rs.forEach((r) => r.ok && claims.ids.add(r.job.id))).catch(() => undefined);
    const results = await round;
    const claimed: Piece[][] = [];
    for (const r of results) {
      if (r.ok) claimed.push(objectPieces({ id: r.job.id, attempt: r.job.attempt }, [["input", r.input]]));
      // The index was behind the job (cancelled, expired, taken): repair it.
      else if (r.code !== "NOT_FOUND") await endpoint.sync(r.entry);
    }
    if (claimed.length > 0 || Date.now() >= deadline) return claimed;
  }
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
  if (b.status === "IN_PROGRESS") return { report: { kind: "progress" }, output, stopPod };
  if ("error" in b && b.error !== undefined && b.error !== null) {
    const error = handlerError(b.error);
    return { report: { kind: "fail", error }, output, stopPod };
  }
  return { report: { kind: "complete" }, output, stopPod };
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
  throw conflict(r.message, { id, status: r.job.state, code: r.code, stop: true });
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
  const now = Date.now();
  const cached = cachedConfig(endpointId, now);
  if (cached) return cached;
  const config = foundOn(endpointId, await endpointStub(c.env, endpointId).getConfig());
  rememberConfig(endpointId, config, now);
  return config;
}

async function reportTarget(c: Context<AppEnv>) {
  const endpointId = endpointParam(c);
  const workerId = workerIdParam(c);
  const fence = fenceOf(c, workerId);
  const id = c.req.param("id")!;
  const token = c.req.query("token");
  const config =
    token !== undefined && !c.req.header("authorization")
      ? await requireReportToken(c, endpointId, id, fence, token)
      : await requireEndpoint(c, endpointId, "worker");
  const stub = jobStub(c.env, id);
  if (!stub) throw jobNotFound(id);
  return { endpointId, config, ref: refOf(config), workerId, fence, id, stub, token: c.req.header("authorization") ? undefined : token };
}

export function workerRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/job-take/:w", {
    GET: async (c) => {
      const [job] = await takeJobs(c, 1);
      return job ? jsonResponse(joinPieces(job)) : c.body(null, 204);
    },
  });

  route(app, "/v2/:ep/job-take-batch/:w", {
    GET: async (c) => {
      const jobs = await takeJobs(c, intParam(c, "batch_size", 1, 100) ?? 1);
      return jobs.length > 0 ? jsonResponse(joinPieces(arrayPieces(jobs))) : c.body(null, 204);
    },
  });

  route(app, "/v2/:ep/job-stop/:w", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const workerId = workerIdParam(c);
      const config = await requireEndpoint(c, endpointId, "worker");
      const { ref, stub } = livenessOf(c.env, config, workerId);
      const ids = await stub.takeStops(ref, config.heartbeatTimeout, workerId, Number(c.env.TAKE_WAIT_MS));
      return ids.length > 0 ? c.json({ jobsToStop: ids }) : c.body(null, 204);
    },
  });

  route(app, "/v2/:ep/job-done/:w/:id", {
    POST: async (c) => {
      const t = await reportTarget(c);
      const { report, output, stopPod } = toReport(await readJson(c.req.raw, PAYLOAD.outputBytes + PAYLOAD.envelopeBytes));
      const next = nextParam(c, report, t.token);
      if (stopPod) {
        const { ref, stub } = livenessOf(c.env, t.config, t.workerId);
        await stub.recycle(ref, t.workerId);
      }
      const result = await t.stub.report(t.ref, t.fence, report, output);
      const answer = reportAnswer(result, t.id);
      // A worker about to be recycled takes nothing more. A repeat of an accepted report (its
      // answer was lost) takes nothing either: the first answer already handed out a job, and
      // one report hands out at most one (the lost one is released like any lost take answer).
      if (!next || stopPod || (result.ok && result.repeat)) return next ? jsonResponse('{"next":null}') : answer;
      const [job] = await takeJobs(c, 1, 0);
      return jsonResponse(joinPieces(job ? [utf8('{"next":'), ...job, utf8("}")] : [utf8('{"next":null}')]));
    },
  });

  route(app, "/v2/:ep/job-stream/:w/:id", {
    POST: async (c) => {
      const t = await reportTarget(c);
      const body = await readJson(c.req.raw, PAYLOAD.streamChunkBytes + PAYLOAD.envelopeBytes);
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw badRequest('job-stream body must be a JSON object such as {"output": ...}');
      }
      const chunk = jsonBytes(body, "stream chunk");
      if (chunk.byteLength > PAYLOAD.streamChunkBytes) {
        throw new ApiError(413, `stream chunk is ${chunk.byteLength} bytes; the limit is ${PAYLOAD.streamChunkBytes}`);
      }
      return reportAnswer(await t.stub.stream(t.ref, t.fence, chunk), t.id);
    },
  });

  route(app, "/v2/:ep/ping/:w", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const workerId = workerIdParam(c);
      const config = await requireEndpoint(c, endpointId, "worker");
      const ref = refOf(config);
      const sdkVersion = c.req.query("runpod_version") ?? null;
      const jobIds = listedJobs(c.req.query("job_id"), sdkVersion);
      // Worker-supplied text is cut to its bound rather than refused: refusing the ping would
      // lose the heartbeat (and with it the worker's leases) over a label.
      const text = (name: string, fallback: string) => (c.req.query(name) ?? fallback).slice(0, WORKER_BOUNDS.unhealthyTextChars);
      const unhealthy = c.req.query("status") === "unhealthy" ? `${text("check", "check")}: ${text("reason", "failed")}` : null;
      // One call, to the worker's liveness shard: the endpoint object is not on a ping's path.
      const liveness = livenessOf(c.env, config, workerId);
      const { quiet, unlisted } = await liveness.stub.ping(liveness.ref, config.heartbeatTimeout, workerId, jobIds, sdkVersion, unhealthy);
      const job = (id: string) => c.env.JOB.get(c.env.JOB.idFromString(id));
      await Promise.all([
        ...quiet.map((q) => job(q.jobId).workerQuiet(ref, workerId, q.told)),
        ...unlisted.map((id) => job(id).notListed(ref, workerId)),
      ]);
      return c.json({});
    },
  });
}
