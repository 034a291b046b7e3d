/**
 * Request listing and bulk actions (issue 14, item 3): GET /v2/{ep}/requests and the admin's
 * bulk cancel and retry. Every shard of the endpoint's index is asked in parallel for its newest
 * matching rows after the cursor (endpoints/job-listing.ts); the pages merge newest first by
 * (createdAt, id), and the page ends at the least advanced shard, so the next page starts exactly
 * where this one ended on every shard: no job is listed twice, none is skipped, whatever their
 * states do meanwhile.
 *
 * The cursor is opaque to clients: the position, the endpoint incarnation and a digest of the
 * filters, signed with the endpoint's webhook secret (HMAC-SHA256, its own message prefix), so a
 * cursor from another endpoint, for other filters, or altered is refused, never misread.
 */
import type { EndpointConfig } from "../endpoints/config";
import { keyOf, keyOrder, type ListedJob, type ListFilter, type ListKey, type ListPage, type ListQuery } from "../endpoints/job-listing";
import { shardCount, shardStub } from "../endpoints/shards";
import type { JobChange } from "../jobs/job-object";
import { clientStatus, isTerminal, type JobState } from "../jobs/states";
import { base64url, equalConstantTime } from "../shared/bytes";
import { LISTING } from "../shared/limits";
import { signingSecrets } from "../shared/signing";
import { endpointStub, jobAt, refOf } from "./stubs";

export interface ListRequest {
  filter: ListFilter;
  limit: number;
  /** The cursor of the previous page, as the client sent it (null: the first page). */
  cursor: string | null;
}

export interface ListResult {
  jobs: ListedJob[];
  /** Where the next page starts (null: there is none). */
  cursor: string | null;
  hasMore: boolean;
}

export type ListFailure =
  | { ok: false; code: "BAD_CURSOR"; message: string }
  | { ok: false; code: "NO_ENDPOINT" }
  | { ok: false; code: "SHARD_DOWN"; shard: number };

export type ListOutcome = ({ ok: true } & ListResult) | ListFailure;

// ---- the cursor ----

const CURSOR_PREFIX = "edge-jobs requests cursor v1\n";
/** A cursor longer than this is no cursor of ours (ours are ~200 characters). */
const CURSOR_MAX_CHARS = 1024;

interface CursorBody {
  v: 1;
  /** Endpoint id and incarnation. */
  e: string;
  g: string;
  /** The position. */
  c: number;
  j: string;
  /** A digest of the filters. */
  f: string;
}

const enc = new TextEncoder();

/** The filters in one canonical text (states sorted), for the cursor's digest. */
function canonical(filter: ListFilter): string {
  return JSON.stringify([filter.states === null ? null : [...filter.states].sort(), filter.since, filter.until, filter.batchId, filter.sequenceKey]);
}

async function filterDigest(filter: ListFilter): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(canonical(filter))))).slice(0, 16);
}

async function mac(secret: string, payload: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(CURSOR_PREFIX + payload)))).slice(0, 22);
}

export async function encodeCursor(config: EndpointConfig, filter: ListFilter, at: ListKey): Promise<string> {
  const body: CursorBody = { v: 1, e: config.id, g: config.generation, c: at.createdAt, j: at.jobId, f: await filterDigest(filter) };
  const payload = base64url(enc.encode(JSON.stringify(body)));
  return `${payload}.${await mac(config.webhookSecret, payload)}`;
}

function parseBody(payload: string): CursorBody | null {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(payload.replace(/-/g, "+").replace(/_/g, "/")), (ch) => ch.charCodeAt(0)));
    const b = JSON.parse(text) as Partial<CursorBody> | null;
    if (b === null || typeof b !== "object" || b.v !== 1) return null;
    if (typeof b.e !== "string" || typeof b.g !== "string" || typeof b.j !== "string" || typeof b.f !== "string") return null;
    if (typeof b.c !== "number" || !Number.isSafeInteger(b.c)) return null;
    return b as CursorBody;
  } catch {
    return null;
  }
}

/** The position a cursor names, or why it is refused. */
export async function decodeCursor(config: EndpointConfig, filter: ListFilter, cursor: string, now = Date.now()): Promise<{ ok: true; at: ListKey } | { ok: false; code: "BAD_CURSOR"; message: string }> {
  const bad = (message: string) => ({ ok: false as const, code: "BAD_CURSOR" as const, message });
  const parts = cursor.length <= CURSOR_MAX_CHARS && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(cursor) ? cursor.split(".") : null;
  const body = parts ? parseBody(parts[0]!) : null;
  if (!parts || !body) return bad("cursor is not a cursor of this API: pass the `cursor` of the previous page unchanged");
  if (body.e !== config.id) return bad(`cursor was issued for another endpoint ('${body.e.slice(0, 64)}'), not '${config.id}'`);
  if (body.g !== config.generation) return bad(`cursor was issued for an earlier incarnation of endpoint '${config.id}' (it was deleted and re-created)`);
  let signed = false;
  for (const secret of signingSecrets(config, now)) if (equalConstantTime(await mac(secret, parts[0]!), parts[1]!)) signed = true;
  if (!signed) return bad("cursor was altered (or the endpoint's webhook secret was rotated more than a day ago): start again without a cursor");
  if (body.f !== (await filterDigest(filter))) return bad("cursor was issued for other filters: send the same status, createdSince, createdUntil, batchId and sequenceKey as for its first page");
  return { ok: true, at: { createdAt: body.c, jobId: body.j } };
}

// ---- listing ----

/** Every shard's page (shard 0: the endpoint object), in parallel; a shard that fails fails the listing (a page without it would skip its jobs). */
async function shardPages(env: Env, config: EndpointConfig, query: ListQuery): Promise<{ ok: true; pages: ListPage[] } | ListFailure> {
  const calls: Array<Promise<ListPage | null>> = [endpointStub(env, config.id).listJobs(config.generation, query)];
  for (let shard = 1; shard < shardCount(config); shard++) {
    const addr = { endpointId: config.id, generation: config.generation, shard };
    calls.push(shardStub(env, addr).listJobs(addr, query));
  }
  const settled = await Promise.allSettled(calls);
  const pages: ListPage[] = [];
  for (const [shard, r] of settled.entries()) {
    if (r.status === "rejected") {
      console.warn(`endpoint ${config.id}: shard ${shard} did not answer a listing`, r.reason);
      return { ok: false, code: "SHARD_DOWN", shard };
    }
    if (r.value === null) return { ok: false, code: "NO_ENDPOINT" };
    pages.push(r.value);
  }
  return { ok: true, pages };
}

/**
 * Merges the shards' pages: rows at or before the least advanced shard's `reached` are complete
 * (every shard looked that far), the rest wait for the next page.
 */
export function mergePages(pages: readonly ListPage[], limit: number): { jobs: ListedJob[]; next: ListKey | null; hasMore: boolean } {
  let frontier: ListKey | null = null;
  for (const p of pages) if (p.reached && (frontier === null || keyOrder(p.reached, frontier) < 0)) frontier = p.reached;
  const all = pages.flatMap((p) => p.jobs).sort(keyOrder);
  const safe = frontier === null ? all : all.filter((j) => keyOrder(j, frontier!) <= 0);
  const jobs = safe.slice(0, limit);
  if (safe.length > limit) return { jobs, next: keyOf(jobs.at(-1)!), hasMore: true };
  if (frontier === null) return { jobs, next: null, hasMore: false };
  // Some shard has not looked past `frontier`: go on from the last row here, or from the frontier.
  return { jobs, next: jobs.length === limit ? keyOf(jobs.at(-1)!) : frontier, hasMore: true };
}

/** One page of the endpoint's requests. */
export async function listRequests(env: Env, config: EndpointConfig, req: ListRequest): Promise<ListOutcome> {
  let after: ListKey | null = null;
  if (req.cursor !== null) {
    const c = await decodeCursor(config, req.filter, req.cursor);
    if (!c.ok) return c;
    after = c.at;
  }
  const got = await shardPages(env, config, { filter: req.filter, after, limit: req.limit });
  if (!got.ok) return got;
  const { jobs, next, hasMore } = mergePages(got.pages, req.limit);
  return { ok: true, jobs, hasMore, cursor: next === null ? null : await encodeCursor(config, req.filter, next) };
}

// ---- bulk actions (admin) ----

export type BulkAction = "cancel" | "retry";

export interface Skipped {
  id: string;
  reason: string;
}

export interface BulkResult {
  /** Jobs of this page that matched the filters. */
  matched: number;
  /** Of them, cancelled (or told to stop: CANCELLING) / put back in the queue. */
  acted: number;
  /** The first LISTING.skippedShown of the jobs left as they were, with why; `skippedCount` counts all. */
  skipped: Skipped[];
  skippedCount: number;
  cursor: string | null;
  hasMore: boolean;
}

/** Why the index's state rules an action out (null: ask the job). */
function refusedByState(action: BulkAction, state: JobState): string | null {
  if (action === "cancel") {
    if (state === "CANCELLING" || state === "CANCELLED") return `already ${state}`;
    return isTerminal(state) ? `already finished (${clientStatus(state)})` : null;
  }
  return state === "FAILED" || state === "TIMED_OUT" ? null : `not retryable: ${clientStatus(state)} (only FAILED and TIMED_OUT jobs are retried)`;
}

function refusalOf(r: JobChange): string | null {
  if (r.ok) return null;
  if (r.code === "NOT_FOUND") return "not found (its retention ended)";
  return r.message;
}

/**
 * Cancels or retries one page of the jobs matching the filters (at most `limit`) through their
 * job objects, LISTING.parallel at a time. A job the action does not apply to (finished, not
 * retryable, gone) is skipped with the reason; the cursor goes on after this page either way.
 */
export async function bulkAct(env: Env, config: EndpointConfig, action: BulkAction, req: ListRequest): Promise<({ ok: true } & BulkResult) | ListFailure> {
  const page = await listRequests(env, config, req);
  if (!page.ok) return page;
  const ref = refOf(config);
  const skipped: Skipped[] = [];
  let acted = 0;
  const skip = (id: string, reason: string) => skipped.push({ id, reason });
  for (let i = 0; i < page.jobs.length; i += LISTING.parallel) {
    await Promise.all(
      page.jobs.slice(i, i + LISTING.parallel).map(async (j) => {
        const refused = refusedByState(action, j.state);
        if (refused !== null) return skip(j.jobId, refused);
        try {
          const r = await jobAt(env, j.jobId)[action](ref);
          const reason = refusalOf(r);
          if (reason === null) acted++;
          else skip(j.jobId, reason);
        } catch (e) {
          console.warn(`bulk ${action} of ${j.jobId} failed`, e);
          skip(j.jobId, `the job did not answer (${e instanceof Error ? e.message.slice(0, 200) : "error"}); left as it was`);
        }
      }),
    );
  }
  return {
    ok: true,
    matched: page.jobs.length,
    acted,
    skipped: skipped.slice(0, LISTING.skippedShown),
    skippedCount: skipped.length,
    cursor: page.cursor,
    hasMore: page.hasMore,
  };
}
