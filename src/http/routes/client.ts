/**
 * The RunPod client API under /v2/{endpointId}: run, runsync, status, status-sync, cancel, retry,
 * purge-queue, health (RUNPOD-WIRE §1). Every success is HTTP 200.
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { JobChange, JobRead } from "../../jobs/job-object";
import type { JobKind } from "../../jobs/record";
import type { EndpointConfig } from "../../endpoints/config";
import { RescheduleByDelay, RescheduleByTime, SubmitBody } from "../../jobs/policy";
import { LIMITS, PAYLOAD } from "../../shared/limits";
import { checkOutboundUrl, publicOrigin } from "../../shared/urls";
import { requireEndpoint } from "../auth";
import { jsonBytes, readJson, validate } from "../body";
import { ApiError, badRequest, conflict } from "../errors";
import { clientStatus, isWaiting } from "../../jobs/states";
import { jsonResponse, renderWithOutput, scheduledInfo, statusFields } from "../render";
import { endpointParam, endpointStub, jobNotFound, isoTime } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import * as docs from "../openapi/docs-client";
import { mergedWorkerCounts } from "../../flows/liveness";
import { purgeQueue } from "../../flows/purge";
import { jobAt, jobQueue } from "../../flows/stubs";
import { flowKeyRefusal, submitJob, submitTagsRefusal } from "../../flows/submit";
import { jobFor, refOf, waitParam } from "../params";
import { asksFor, graphAction, graphFor, graphStatus, isGraphId, redeliverGraph, submitReplicas, submitTasks } from "./tasks";
import type { Redelivery } from "../../webhooks/outbox";

/** The idempotency key from the body or the `Idempotency-Key` header (they must agree). */
function idempotencyKeyOf(c: Context<AppEnv>, body: Pick<SubmitBody, "idempotencyKey">): string | null {
  const header = c.req.header("idempotency-key")?.trim() || null;
  // Header values travel as bytes, not UTF-8 text: only printable ASCII means the same key as in a body.
  if (header !== null && (header.length > 255 || /[^\x20-\x7e]/.test(header))) {
    throw badRequest("the Idempotency-Key header must be 1-255 printable ASCII characters (use the idempotencyKey field for others)");
  }
  if (header !== null && body.idempotencyKey !== undefined && header !== body.idempotencyKey) {
    throw badRequest("the Idempotency-Key header and the idempotencyKey field differ");
  }
  return header ?? body.idempotencyKey ?? null;
}

/**
 * The checks of a validated submit body beyond its schema (input size, s3Config size, webhook
 * URL); returns the input's bytes. Also every request of a batch (`where`: `requests[3].`).
 */
export function checkSubmitBody(body: SubmitBody, config: EndpointConfig, inputLimit: number, route: string, where = ""): Uint8Array {
  const input = jsonBytes(body.input, `${where}input`);
  if (input.byteLength > inputLimit) {
    throw badRequest(`${where}input is ${input.byteLength} bytes; the limit on ${route} is ${inputLimit}`);
  }
  if (body.s3Config !== undefined) {
    const bytes = jsonBytes(body.s3Config, `${where}s3Config`).byteLength;
    if (bytes > PAYLOAD.s3ConfigBytes) throw badRequest(`${where}s3Config is ${bytes} bytes of JSON; the limit is ${PAYLOAD.s3ConfigBytes}`);
  }
  checkWhen(body, config, where);
  const flowKey = flowKeyRefusal(body, where);
  if (flowKey !== null) throw badRequest(flowKey);
  const tags = submitTagsRefusal(body, config, where);
  if (tags !== null) throw badRequest(tags);
  if (body.webhook !== undefined) {
    const check = checkOutboundUrl(body.webhook, config.allowPrivateUrls);
    if (!check.ok) throw badRequest(`${where}webhook: ${check.reason}`, { issues: [{ path: `${where}webhook`, message: check.reason }] });
  }
  return input;
}

/** A valid `runAt` as epoch ms; more than LIMITS.delay.max ahead is a 400 (a delay's schema bounds it already). */
function runAtWithin(runAt: string, where = ""): number {
  const at = Date.parse(runAt);
  if (at - Date.now() > LIMITS.delay.max) throw badRequest(`${where}runAt is more than ${LIMITS.delay.max} ms (7 days) ahead`);
  return at;
}

/**
 * `delay` or `runAt` (not both): at most LIMITS.delay.max ahead, and before the end of a lifespan
 * TTL (the job would end before it could run).
 */
function checkWhen(body: SubmitBody, config: EndpointConfig, where: string): void {
  if (body.delay !== undefined && body.runAt !== undefined) throw badRequest(`${where}delay and ${where}runAt: give one of them, not both`);
  const ahead = body.runAt !== undefined ? runAtWithin(body.runAt, where) - Date.now() : (body.delay ?? 0);
  const ttl = body.policy?.ttl ?? config.ttl;
  if ((body.policy?.ttlMode ?? config.ttlMode ?? "queue") === "lifespan" && ahead >= ttl) {
    throw badRequest(`${where}${body.runAt !== undefined ? "runAt" : "delay"} is at or past the end of the job's lifespan (ttlMode "lifespan", ttl ${ttl} ms): it could never run`);
  }
}

/**
 * /run and /runsync: authorizes the client, reads and checks the body (input size, webhook URL,
 * idempotency key), then runs the submit flow (flows/submit).
 */
async function submit(c: Context<AppEnv>, kind: JobKind) {
  const endpointId = endpointParam(c);
  const config = await requireEndpoint(c, endpointId, "client");
  // Push workers report under PUBLIC_URL; without it a push job could never be dispatched.
  const pub = publicOrigin(c.env);
  if (config.mode === "push" && !pub.ok) throw new ApiError(503, pub.reason);
  const inputLimit = kind === "sync" ? PAYLOAD.syncInputBytes : PAYLOAD.runInputBytes;
  const raw = await readJson(c.req.raw, inputLimit + PAYLOAD.envelopeBytes);
  // A body with `tasks` is a job of tasks (issue 15, item 1): ./tasks.
  if (asksFor(raw, "tasks") || asksFor(raw, "replicas")) {
    const key = idempotencyKeyOf(c, validate(SubmitBody.pick({ idempotencyKey: true }), { idempotencyKey: (raw as { idempotencyKey?: unknown }).idempotencyKey }));
    const made = asksFor(raw, "tasks") ? submitTasks(c, config, raw, key, kind === "sync") : submitReplicas(c, config, raw, key, kind === "sync");
    return { tasks: await made } as const;
  }
  const body = validate(SubmitBody, raw);
  const input = checkSubmitBody(body, config, inputLimit, kind === "sync" ? "/runsync" : "/run");
  const key = idempotencyKeyOf(c, body);
  const r = await submitJob(c.env, config, { kind, body, input, key, origin: pub.ok ? pub.origin : null });
  if (!r.ok) {
    throw new ApiError(422, `idempotency key '${r.key}' was already used with a different request body (or on the other of /run and /runsync)`, { idempotencyKey: r.key });
  }
  return { tasks: null, endpointId, ref: refOf(config), stub: jobAt(c.env, r.job.id), job: r.job };
}

/**
 * The job body; a waiting job also says why it waits (`queue`: position and reason), which costs
 * one call to the job's shard of the endpoint, made only for waiting jobs.
 */
async function readOrNotFound(c: Context<AppEnv>, endpointId: string, r: JobRead, id: string): Promise<Response> {
  if (!r.ok) throw jobNotFound(id);
  const fields = statusFields(r.job, Date.now());
  if (r.job.state === "SCHEDULED" || r.job.state === "PAUSED") fields.queue = scheduledInfo(r.job);
  else if (isWaiting(r.job.state)) fields.queue = await jobQueue(c.env, r.job).queueInfo(r.job.id);
  if (r.webhook) fields.webhook = r.webhook;
  return jsonResponse(renderWithOutput(fields, r.output));
}

/**
 * RunPod's `?ttl=<ms>` on /status: how much longer a finished job stays readable (0 up to the
 * longest retention; it only ever shortens). Null when absent.
 */
function keepForParam(c: Context<AppEnv>): number | null {
  const raw = c.req.query("ttl");
  if (raw === undefined) return null;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > LIMITS.retentionMs.max) {
    throw badRequest(`ttl must be a whole number of ms from 0 to ${LIMITS.retentionMs.max} (how much longer a finished job stays readable), got '${raw.slice(0, 40)}'`);
  }
  return Number(raw);
}

const RetryBody = z.object({ delay: z.number().int().min(LIMITS.retryDelay.min).max(LIMITS.retryDelay.max).optional() }).strict();

/**
 * A retry's or requeue's wait before the job is ready (ms; 0: at once), from `?delay=` or a JSON
 * body `{"delay": ms}` (RunPod's /retry sends neither). Both given: they must agree.
 */
async function retryDelayOf(c: Context<AppEnv>): Promise<number> {
  if ((c.req.queries("delay") ?? []).length > 1) throw badRequest("delay is given more than once");
  const raw = c.req.query("delay");
  if (raw !== undefined && (!/^\d{1,9}$/.test(raw) || Number(raw) > LIMITS.retryDelay.max)) {
    throw badRequest(`delay must be a whole number of ms from 0 to ${LIMITS.retryDelay.max}, got '${raw.slice(0, 40)}'`);
  }
  const body = validate(RetryBody, (await readJson(c.req.raw, 1024, false)) ?? {});
  if (raw !== undefined && body.delay !== undefined && Number(raw) !== body.delay) throw badRequest("the delay query parameter and the body's delay differ");
  return body.delay ?? (raw === undefined ? 0 : Number(raw));
}

/** POST /reschedule/{id}'s new time: `delay` from now or `runAt`, exactly one, at most LIMITS.delay.max ahead. */
async function rescheduleTimeOf(c: Context<AppEnv>): Promise<{ delayMs: number } | { at: number }> {
  const raw = await readJson(c.req.raw, 1024);
  const has = (name: string) => raw !== null && typeof raw === "object" && Object.hasOwn(raw, name);
  if (has("delay") === has("runAt")) throw badRequest('give the job\'s new time as one of delay (ms from now) or runAt (RFC 3339), e.g. {"delay": 60000}');
  if (has("delay")) return { delayMs: validate(RescheduleByDelay, raw).delay };
  return { at: runAtWithin(validate(RescheduleByTime, raw).runAt) };
}

function changeOrError(r: JobChange, id: string): Response {
  if (r.ok) return Response.json({ id: r.job.id, status: clientStatus(r.job.state), ...(r.job.paused ? { paused: true } : {}) });
  if (r.code === "NOT_FOUND") throw jobNotFound(id);
  throw conflict(r.message, { id, status: clientStatus(r.job.state) });
}

export function clientRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/run", {
    POST: async (c) => {
      const s = await submit(c, "run");
      if (s.tasks !== null) return s.tasks;
      return c.json({ id: s.job.id, status: clientStatus(s.job.state) });
    },
  }, { POST: docs.RUN_DOC });

  route(app, "/v2/:ep/runsync", {
    POST: async (c) => {
      const wait = waitParam(c, LIMITS.syncWait);
      const s = await submit(c, "sync");
      if (s.tasks !== null) return s.tasks;
      const { endpointId, ref, stub, job } = s;
      return readOrNotFound(c, endpointId, await stub.waitTerminal(ref, wait), job.id);
    },
  }, { POST: docs.RUNSYNC_DOC });

  const status = async (c: Context<AppEnv>) => {
    const keepFor = keepForParam(c);
    if (isGraphId(c.req.param("id"))) return graphStatus(c, 0, keepFor);
    const { endpointId, ref, id, stub } = await jobFor(c);
    return readOrNotFound(c, endpointId, await (keepFor === null ? stub.read(ref) : stub.readThenKeep(ref, keepFor)), id);
  };
  route(app, "/v2/:ep/status/:id", { GET: status, POST: status }, { GET: docs.GET_STATUS_DOC, POST: docs.POST_STATUS_DOC });

  const statusSync = async (c: Context<AppEnv>) => {
    const wait = waitParam(c, LIMITS.syncWait);
    const keepFor = keepForParam(c);
    if (isGraphId(c.req.param("id"))) return graphStatus(c, wait, keepFor);
    const { endpointId, ref, id, stub } = await jobFor(c);
    return readOrNotFound(c, endpointId, await (keepFor === null ? stub.waitTerminal(ref, wait) : stub.readThenKeep(ref, keepFor, wait)), id);
  };
  route(app, "/v2/:ep/status-sync/:id", { GET: statusSync, POST: statusSync }, { GET: docs.GET_STATUS_SYNC_DOC, POST: docs.POST_STATUS_SYNC_DOC });

  for (const action of ["cancel", "pause", "resume", "promote"] as const) {
    route(app, `/v2/:ep/${action}/:id`, {
      POST: async (c) => {
        if (isGraphId(c.req.param("id")) && action !== "promote") return graphAction(c, action);
        const { ref, id, stub } = await jobFor(c);
        return changeOrError(await stub[action](ref), id);
      },
    }, { POST: docs.JOB_ACTION_DOCS[action] });
  }
  route(app, "/v2/:ep/reschedule/:id", {
    POST: async (c) => {
      const { ref, id, stub } = await jobFor(c);
      return changeOrError(await stub.reschedule(ref, await rescheduleTimeOf(c)), id);
    },
  }, { POST: docs.RESCHEDULE_DOC });
  for (const action of ["retry", "requeue"] as const) {
    route(app, `/v2/:ep/${action}/:id`, {
      POST: async (c) => {
        const delay = await retryDelayOf(c);
        if (isGraphId(c.req.param("id"))) {
          if (delay > 0) throw badRequest("a job of tasks is requeued at once (no delay)");
          return graphAction(c, action);
        }
        const { ref, id, stub } = await jobFor(c);
        return changeOrError(await stub[action](ref, delay), id);
      },
    }, { POST: docs.JOB_ACTION_DOCS[action] });
  }

  route(app, "/v2/:ep/history/:id", {
    GET: async (c) => {
      const { ref, id, stub } = await jobFor(c);
      const history = await stub.history(ref);
      if (!history) throw jobNotFound(id);
      return c.json({ id, history: history.map((e) => ({ ...e, at: isoTime(e.at) })) });
    },
  }, { GET: docs.HISTORY_DOC });

  route(app, "/v2/:ep/webhooks/:id", {
    GET: async (c) => {
      const id = c.req.param("id")!;
      const events = isGraphId(id) ? await graphFor(c).then((g) => g.stub.webhookLog(g.ref)) : await jobFor(c).then((j) => j.stub.webhookLog(j.ref));
      if (!events) throw jobNotFound(id);
      return c.json({
        id,
        events: events.map((e) => ({
          seq: e.seq,
          webhookId: e.eventId,
          status: e.jobStatus,
          state: e.state,
          attempts: e.attempts,
          createdAt: isoTime(e.createdAt),
          deliveredAt: isoTime(e.deliveredAt),
          nextAttemptAt: isoTime(e.nextAttemptAt),
          lastStatus: e.lastStatus,
          lastError: e.lastError,
          log: e.log.map((a) => ({ ...a, at: isoTime(a.at) })),
        })),
      });
    },
  }, { GET: docs.WEBHOOKS_DOC });

  route(app, "/v2/:ep/webhooks/:id/redeliver", {
    POST: async (c) => {
      const id = c.req.param("id")!;
      const r: Redelivery | null = isGraphId(id) ? await redeliverGraph(c) : await (async () => {
        const j = await jobFor(c);
        return j.stub.redeliverWebhook(j.ref);
      })();
      if (r === null) throw jobNotFound(id);
      if (!r.ok && r.code === "NO_EVENT") throw conflict("this job has no webhook event to redeliver (no webhook, or it has not finished)", { id });
      if (!r.ok) {
        const seconds = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
        throw new ApiError(429, `too soon to redeliver: ${r.message}`, { id, retryAfterMs: r.retryAfterMs }, { "retry-after": String(seconds) });
      }
      return c.json({ id, seq: r.seq, webhookId: r.eventId, state: "pending" });
    },
  }, { POST: docs.REDELIVER_DOC });

  route(app, "/v2/:ep/purge-queue", {
    POST: async (c) => {
      const endpointId = endpointParam(c);
      const removed = await purgeQueue(c.env, await requireEndpoint(c, endpointId, "client"));
      return c.json({ removed, status: "completed" });
    },
  }, { POST: docs.PURGE_QUEUE_DOC });

  route(app, "/v2/:ep/health", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const config = await requireEndpoint(c, endpointId, "client");
      // Worker states are merged from the liveness shards now; the jobs come from the endpoint.
      return c.json(await endpointStub(c.env, endpointId).health(await mergedWorkerCounts(c.env, config)));
    },
  }, { GET: docs.HEALTH_DOC });
}
