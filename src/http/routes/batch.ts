/**
 * RunPod's Batch API under /v2/{endpointId}/batch (RUNPOD-WIRE-2 §1), client key: create (a bare
 * array of /run bodies, or the object form), append, finalize, rename, remove a request, list,
 * summary, cancel, child list. Every request of a batch is checked as /run checks its body
 * (SubmitBody and client.ts's checkSubmitBody) and stored with `lowPriority`; see batches/flow.
 */
import type { Context, Hono } from "hono";
import type { z } from "zod";
import type { BatchAnswer } from "../../batches/batch-object";
import type { EndpointConfig } from "../../endpoints/config";
import { batchRef, batchStub, childList, createBatch, listBatches } from "../../batches/flow";
import { SubmitBody } from "../../jobs/policy";
import { BATCH, PAYLOAD } from "../../shared/limits";
import { checkOutboundUrl, publicOrigin } from "../../shared/urls";
import { requireEndpoint } from "../auth";
import { parseJson, readBodyBytes } from "../body";
import { ApiError, badRequest, notFound } from "../errors";
import * as docs from "../openapi/docs-batch";
import { intParam } from "../params";
import { endpointParam } from "../stubs";
import type { AppEnv } from "../types";
import { checkSubmitBody } from "./client";
import { route } from "./route";

const enc = new TextEncoder();

/** The body, at most BATCH.bodyBytes (a 400 past it: RunPod's documented codes have no 413). */
async function readBatchJson(c: Context<AppEnv>, required: boolean): Promise<unknown> {
  try {
    return parseJson(await readBodyBytes(c.req.raw, BATCH.bodyBytes), required);
  } catch (e) {
    if (e instanceof ApiError && e.status === 413) throw badRequest(`the body is larger than ${BATCH.bodyBytes} bytes (10 MiB), the limit per create or append call: append the rest in further calls`, { limitBytes: BATCH.bodyBytes });
    throw e;
  }
}

function checked<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message }));
  throw badRequest(`invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues });
}

/**
 * Each request as /run checks its body; returns the bodies to store (JSON, `lowPriority` set:
 * a batch never delays /run jobs of the same priority).
 */
function requestBodies(raw: readonly unknown[], config: EndpointConfig, field: string): Uint8Array[] {
  return raw.map((el, i) => {
    const where = `${field}[${i}]`;
    if (el === null || typeof el !== "object" || Array.isArray(el)) throw badRequest(`${where} must be a JSON object with an \`input\` (a /run body)`);
    const r = SubmitBody.safeParse(el);
    if (!r.success) {
      const issues = r.error.issues.map((x) => ({ path: [field, i, ...x.path].join("."), message: x.message }));
      throw badRequest(`invalid ${where}: ${issues.map((x) => `${x.path}: ${x.message}`).join("; ")}`, { issues });
    }
    if (r.data.idempotencyKey !== undefined) {
      throw badRequest(`${where}.idempotencyKey is not accepted in a batch: a batch request's id is fixed by its batch and place, so creating it twice makes one job`);
    }
    checkSubmitBody(r.data, config, PAYLOAD.runInputBytes, "/run", `${where}.`);
    return enc.encode(JSON.stringify({ ...r.data, policy: { ...r.data.policy, lowPriority: true } }));
  });
}

function checkWebhook(url: string | undefined, config: EndpointConfig): string | null {
  if (url === undefined) return null;
  const check = checkOutboundUrl(url, config.allowPrivateUrls);
  if (!check.ok) throw badRequest(`webhook: ${check.reason}`, { issues: [{ path: "webhook", message: check.reason }] });
  return url;
}

const batchNotFound = (id: string) => notFound(`batch '${id}' not found (unknown, of another endpoint, or deleted 7 days after it finished)`, { id });

/** The caller authorized for the endpoint, and the batch in the path (404 for an id that is not ours). */
async function batchFor(c: Context<AppEnv>) {
  const config = await requireEndpoint(c, endpointParam(c), "client");
  const id = c.req.param("batchId")!;
  const stub = batchStub(c.env, id);
  if (!stub) throw batchNotFound(id);
  return { config, id, stub, ref: batchRef(config) };
}

/** An answer's value, or its refusal as an HTTP error. */
function valueOf<T>(r: BatchAnswer<T>, id: string): T {
  if (r.ok) return r.value;
  switch (r.code) {
    case "NOT_FOUND":
      throw batchNotFound(id);
    case "NO_REQUEST":
      throw notFound(r.message, { id });
    case "WRONG_STATE":
    case "TOO_MANY":
      throw badRequest(r.message, { id, status: r.status });
  }
}

function paging(c: Context<AppEnv>, d: { default: number; max: number }) {
  return { offset: intParam(c, "offset", 0, 1_000_000_000) ?? 0, limit: intParam(c, "limit", 1, d.max) ?? d.default };
}

export function batchRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/batch", {
    POST: async (c) => {
      const config = await requireEndpoint(c, endpointParam(c), "client");
      // Push workers report under PUBLIC_URL; without it no request of the batch could be dispatched.
      const pub = publicOrigin(c.env);
      if (config.mode === "push" && !pub.ok) throw new ApiError(503, pub.reason);
      const raw = (await readBatchJson(c, false)) ?? [];
      const form: z.infer<typeof docs.CreateBatchObject> = Array.isArray(raw) ? { requests: raw as unknown[] } : checked(docs.CreateBatchObject, typeof raw === "object" && raw !== null ? raw : null, "body (a JSON array of /run bodies, or {\"name\", \"requests\", \"webhook\"})");
      const queryHook = c.req.query("webhook");
      if (queryHook !== undefined && form.webhook !== undefined && queryHook !== form.webhook) throw badRequest("the webhook query parameter and the body's webhook differ");
      const webhook = checkWebhook(queryHook === undefined ? form.webhook : checked(docs.BatchWebhook, queryHook, "webhook query parameter"), config);
      const bodies = requestBodies(form.requests ?? [], config, "requests");
      const r = await createBatch(c.env, config, { name: form.name ?? null, webhook }, bodies);
      if (!r.ok && r.code === "LIMIT") {
        throw new ApiError(429, `endpoint '${config.id}' has ${BATCH.activePerEndpoint} active batches (DRAFT, or FINALIZED with unfinished requests), its limit: finish or cancel one first`, { limit: BATCH.activePerEndpoint }, { "retry-after": "60" });
      }
      const summary = valueOf(r as BatchAnswer<{ id: string }>, "");
      return c.json({ id: summary.id, status: "DRAFT" as const });
    },
    GET: async (c) => {
      const config = await requireEndpoint(c, endpointParam(c), "client");
      const { offset, limit } = paging(c, BATCH.listPage);
      return c.json(await listBatches(c.env, config, offset, limit));
    },
  }, { POST: docs.CREATE_BATCH_DOC, GET: docs.LIST_BATCHES_DOC });

  route(app, "/v2/:ep/batch/:batchId", {
    GET: async (c) => {
      const { id, stub, ref } = await batchFor(c);
      const s = await stub.summary(ref);
      if (!s) throw batchNotFound(id);
      return c.json(s);
    },
    PUT: async (c) => {
      const { config, id, stub, ref } = await batchFor(c);
      const body = checked(docs.UpdateBody, await readBatchJson(c, true), "body");
      if (body.name === undefined && body.webhook === undefined) throw badRequest("send {\"name\": \"...\"} and/or {\"webhook\": \"https://...\"}");
      const webhook = checkWebhook(body.webhook, config);
      const patch = { ...(body.name === undefined ? {} : { name: body.name }), ...(webhook === null ? {} : { webhook }) };
      const s = valueOf(await stub.update(ref, patch), id);
      return c.json({ ...s, name: (await stub.nameOf(ref)) ?? null });
    },
  }, { GET: docs.GET_BATCH_DOC, PUT: docs.UPDATE_BATCH_DOC });

  route(app, "/v2/:ep/batch/:batchId/requests", {
    POST: async (c) => {
      const { config, id, stub, ref } = await batchFor(c);
      const body = checked(docs.AppendBody, await readBatchJson(c, true), "body (send {\"requests\": [...]})");
      return c.json(valueOf(await stub.append(ref, requestBodies(body.requests, config, "requests")), id));
    },
    GET: async (c) => {
      const { offset, limit } = paging(c, BATCH.page);
      const { id, stub, ref } = await batchFor(c);
      const page = await childList(c.env, ref, stub, offset, limit);
      if (!page) throw batchNotFound(id);
      return c.json(page);
    },
  }, { POST: docs.APPEND_BATCH_DOC, GET: docs.LIST_BATCH_REQUESTS_DOC });

  route(app, "/v2/:ep/batch/:batchId/requests/:requestId", {
    DELETE: async (c) => {
      const { id, stub, ref } = await batchFor(c);
      return c.json(valueOf(await stub.removeRequest(ref, c.req.param("requestId")!), id));
    },
  }, { DELETE: docs.DELETE_BATCH_REQUEST_DOC });

  for (const action of ["finalize", "cancel"] as const) {
    route(app, `/v2/:ep/batch/:batchId/${action}`, {
      POST: async (c) => {
        const { id, stub, ref } = await batchFor(c);
        return c.json(valueOf(await stub[action](ref), id));
      },
    }, { POST: action === "finalize" ? docs.FINALIZE_BATCH_DOC : docs.CANCEL_BATCH_DOC });
  }
}
