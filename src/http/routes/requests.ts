/**
 * Request listing (GET /v2/{ep}/requests, client key) and the admin's bulk cancel and retry by
 * the same filters (POST /admin/endpoints/{ep}/requests/{cancel,retry}); see flows/requests.ts.
 */
import type { Context, Hono } from "hono";
import type { ListFilter, ListedJob } from "../../endpoints/job-listing";
import { bulkAct, listRequests, type BulkAction, type ListFailure } from "../../flows/requests";
import { clientStatus, JOB_STATES, type JobState } from "../../jobs/states";
import { LISTING, PAYLOAD } from "../../shared/limits";
import { foundOn, requireEndpoint, unknownEndpoint } from "../auth";
import { readJson, validate } from "../body";
import { ApiError, badRequest } from "../errors";
import { BULK_CANCEL_DOC, BULK_RETRY_DOC, BulkBody, LIST_REQUESTS_DOC } from "../openapi/docs-requests";
import { endpointParam, endpointStub, isoTime } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

/** The filters, as a query or a body gives them (validated here). */
interface RawFilter {
  status?: string | string[];
  createdSince?: string | number;
  createdUntil?: string | number;
  batchId?: string;
  sequenceKey?: string;
  limit?: string | number;
  cursor?: string;
}

const QUERY_NAMES = ["status", "createdSince", "createdUntil", "batchId", "sequenceKey", "limit", "cursor"] as const;
/** Longest batch id or sequence key accepted (a sequence key is at most 255 characters at submit). */
const MAX_KEY_CHARS = 255;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const show = (v: unknown) => JSON.stringify(v).slice(0, 80);

function statesOf(raw: string | string[] | undefined): JobState[] | null {
  if (raw === undefined) return null;
  const names = (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(",")).map((s) => s.trim().toUpperCase());
  if (names.length === 0 || names.some((n) => n === "")) throw badRequest(`status must name one or more job states, comma-separated (${JOB_STATES.join(", ")})`);
  const bad = names.filter((n) => !(JOB_STATES as readonly string[]).includes(n));
  if (bad.length > 0) throw badRequest(`status names unknown states ${show(bad)}; use ${JOB_STATES.join(", ")}`);
  // A state as clients read it finds the internal states read so too (IN_QUEUE: SCHEDULED and
  // PAUSED; COMPLETED: ERROR); an internal state alone finds only its jobs.
  return JOB_STATES.filter((s) => names.includes(s) || names.includes(clientStatus(s)));
}

function timeOf(name: string, raw: string | number | undefined): number | null {
  if (raw === undefined) return null;
  let ms = Number.NaN;
  if (typeof raw === "number") ms = raw;
  else if (/^\d{1,15}$/.test(raw)) ms = Number(raw);
  else if (RFC3339.test(raw)) ms = Date.parse(raw.replace(" ", "T"));
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > 8.64e15) throw badRequest(`${name} must be an RFC 3339 time (2026-11-30T12:00:00Z) or epoch milliseconds, got ${show(raw)}`);
  return ms;
}

function keyOf(name: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw.length === 0 || raw.length > MAX_KEY_CHARS) throw badRequest(`${name} must be 1-${MAX_KEY_CHARS} characters`);
  return raw;
}

function limitOf(raw: string | number | undefined): number {
  if (raw === undefined) return LISTING.defaultLimit;
  const n = typeof raw === "number" ? raw : /^\d{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > LISTING.maxLimit) throw badRequest(`limit must be a whole number from 1 to ${LISTING.maxLimit}, got ${show(raw)}`);
  return n;
}

/** The validated filters, page size and cursor. */
export function parseFilter(raw: RawFilter): { filter: ListFilter; limit: number; cursor: string | null } {
  const filter: ListFilter = {
    states: statesOf(raw.status),
    since: timeOf("createdSince", raw.createdSince),
    until: timeOf("createdUntil", raw.createdUntil),
    batchId: keyOf("batchId", raw.batchId),
    sequenceKey: keyOf("sequenceKey", raw.sequenceKey),
  };
  if (filter.since !== null && filter.until !== null && filter.since >= filter.until) {
    throw badRequest("createdSince must be before createdUntil (createdSince is inclusive, createdUntil exclusive)");
  }
  if (raw.cursor !== undefined && raw.cursor.length === 0) throw badRequest("cursor is empty: leave it out for the first page");
  return { filter, limit: limitOf(raw.limit), cursor: raw.cursor ?? null };
}

/** The query string's filters: unknown names and repeats (but of `status`) are refused, so a typo never widens a listing. */
function queryFilter(c: Context<AppEnv>): RawFilter {
  const url = new URL(c.req.url);
  const raw: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    if (!(QUERY_NAMES as readonly string[]).includes(name)) {
      const hint = name === "offset" ? " (pages go by `cursor`, not offset)" : "";
      throw badRequest(`unknown query parameter ${show(name)}${hint}; use ${QUERY_NAMES.join(", ")}`);
    }
    const values = url.searchParams.getAll(name);
    if (values.length > 1 && name !== "status") throw badRequest(`query parameter ${name} is given ${values.length} times; give it once`);
    raw[name] = name === "status" ? values : values[0]!;
  }
  return raw as RawFilter;
}

function failed(r: ListFailure, endpointId: string): ApiError {
  switch (r.code) {
    case "BAD_CURSOR":
      return badRequest(r.message);
    case "NO_ENDPOINT":
      return unknownEndpoint(endpointId);
    case "SHARD_DOWN":
      return new ApiError(503, `shard ${r.shard} of endpoint '${endpointId}' did not answer; nothing was listed or changed past the cursor, ask again`, { shard: r.shard });
  }
}

function summary(j: ListedJob): Record<string, unknown> {
  return {
    id: j.jobId,
    status: clientStatus(j.state),
    // An ERROR job reads COMPLETED: the listing says it ended with errors, as /status does.
    ...(j.state === "ERROR" ? { outcome: "error" } : {}),
    createdAt: isoTime(j.createdAt),
    updatedAt: isoTime(j.updatedAt),
    ...(j.delayMs === null ? {} : { delayTime: j.delayMs }),
    ...(j.executionMs === null ? {} : { executionTime: j.executionMs }),
    workerId: j.workerId,
    attempt: j.attempt,
    priority: j.priority,
    batchId: j.batchId,
    sequenceKey: j.sequenceKey,
  };
}

export function requestRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/requests", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const config = await requireEndpoint(c, endpointId, "client");
      const req = parseFilter(queryFilter(c));
      const r = await listRequests(c.env, config, req);
      if (!r.ok) throw failed(r, endpointId);
      return c.json({ requests: r.jobs.map(summary), limit: req.limit, hasMore: r.hasMore, cursor: r.cursor });
    },
  }, { GET: LIST_REQUESTS_DOC });

  const bulk = (action: BulkAction) => async (c: Context<AppEnv>) => {
    const endpointId = endpointParam(c);
    const body = validate(BulkBody, await readJson(c.req.raw, PAYLOAD.smallBodyBytes));
    const config = foundOn(endpointId, await endpointStub(c.env, endpointId).getConfig());
    const r = await bulkAct(c.env, config, action, parseFilter(body));
    if (!r.ok) throw failed(r, endpointId);
    const { acted, ...rest } = r;
    return c.json({ matched: rest.matched, [action === "cancel" ? "cancelled" : "retried"]: acted, skipped: rest.skipped, skippedCount: rest.skippedCount, cursor: rest.cursor, hasMore: rest.hasMore });
  };
  // Admin key: the /admin/* middleware (routes/admin.ts) checks it before any handler here.
  route(app, "/admin/endpoints/:ep/requests/cancel", { POST: bulk("cancel") }, { POST: BULK_CANCEL_DOC });
  route(app, "/admin/endpoints/:ep/requests/retry", { POST: bulk("retry") }, { POST: BULK_RETRY_DOC });
}
