/**
 * The endpoint's view of its jobs, derived from the entries jobs send (IndexEntry): the ready
 * index that takes draw from, and the counters behind /health and metrics.
 *
 * Offers: a take marks the jobs it hands out as offered for OFFER_MS, so two takes never get the
 * same job while the first caller claims it; if the caller never claims (it crashed), the offer
 * lapses and the job is offered again. The job object decides who really wins (claim).
 */
import { TERMINAL_STATES, type JobState } from "../jobs/states";
import type { IndexEntry } from "./index-entry";

const OFFER_MS = 10_000;
/** Terminal rows are kept this long so stale, reordered entries cannot resurrect a job. */
const TOMBSTONE_MS = 60 * 60 * 1000;
/** A job a worker failed is offered to that worker again only after waiting this long for others. */
const AVOID_GRACE_MS = 30_000;

const COUNTERS = [
  "submitted",
  "completed",
  "failed",
  "cancelled",
  "timedOut",
  "retried",
  "webhookSent",
  "webhookSucceeded",
  "webhookFailed",
] as const;
export type CounterName = (typeof COUNTERS)[number];

export function bumpCounter(sql: SqlStorage, name: CounterName): void {
  sql.exec(
    "INSERT INTO counter (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
    name,
  );
}

function counterFor(to: JobState): CounterName | null {
  switch (to) {
    case "COMPLETED":
      return "completed";
    case "FAILED":
      return "failed";
    case "CANCELLED":
      return "cancelled";
    case "TIMED_OUT":
      return "timedOut";
    default:
      return null;
  }
}

interface Applied {
  applied: boolean;
  /** The counters this entry moved (for the metrics buckets too). */
  counted: CounterName[];
  /** The job is ready to be taken (wake waiting takes). */
  ready: boolean;
  /** The state it had in the index before, if any. */
  previous: JobState | null;
}

/**
 * Is `e` newer than the row the index holds? Versions order the changes of one job; a job object
 * re-created under the same id (an idempotency key reused after its window) starts again at
 * version 1 with a later creation time, and replaces the old job's row.
 */
function isNewer(e: IndexEntry, prev: { version: number; created_at: number }): boolean {
  if (e.createdAt !== prev.created_at) return e.createdAt > prev.created_at;
  return e.version > prev.version;
}

/** Applies an entry if it is newer than what the index holds. */
export function applyEntry(sql: SqlStorage, e: IndexEntry, now: number): Applied {
  const prev = sql
    .exec<{ version: number; state: string; created_at: number }>("SELECT version, state, created_at FROM job_index WHERE job_id = ?", e.jobId)
    .toArray()[0];
  if (prev && !isNewer(e, prev)) return { applied: false, counted: [], ready: false, previous: prev.state as JobState };
  // A new incarnation of the id counts as a new job.
  const sameJob = prev !== undefined && prev.created_at === e.createdAt;
  const ready = e.state === "IN_QUEUE" && !e.dispatchPending;
  sql.exec(
    `INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, worker_id, offered_until,
       updated_at, avoid_workers, ready_since, dispatch_pending, dispatch_error, attempt, input_bytes)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (job_id) DO UPDATE SET version = excluded.version, state = excluded.state, created_at = excluded.created_at,
       attempt = excluded.attempt, input_bytes = excluded.input_bytes,
       priority = excluded.priority, low_priority = excluded.low_priority, worker_id = excluded.worker_id,
       offered_until = 0, updated_at = excluded.updated_at, avoid_workers = excluded.avoid_workers,
       ready_since = excluded.ready_since, dispatch_pending = excluded.dispatch_pending,
       dispatch_error = excluded.dispatch_error`,
    e.jobId,
    e.version,
    e.state,
    e.priority,
    e.lowPriority ? 1 : 0,
    e.createdAt,
    e.workerId,
    now,
    JSON.stringify(e.avoidWorkers),
    ready ? now : 0,
    e.dispatchPending ? 1 : 0,
    e.dispatchError,
    e.attempt,
    e.inputBytes ?? 0,
  );
  const previous = sameJob ? (prev.state as JobState) : null;
  const counted: CounterName[] = [];
  if (previous !== e.state) {
    if (previous === null) counted.push("submitted");
    const c = counterFor(e.state);
    if (c) counted.push(c);
    if (e.state === "IN_QUEUE" && previous !== null && previous !== "SEQUENCED") counted.push("retried");
    // A retried job of a sequence re-enters it SEQUENCED.
    if (e.state === "SEQUENCED" && previous !== null && (TERMINAL_STATES as readonly JobState[]).includes(previous)) counted.push("retried");
  }
  for (const c of counted) bumpCounter(sql, c);
  return { applied: true, counted, ready, previous };
}

/**
 * Hands out up to `max` ready job ids to `workerId` in order (priority, then low priority last,
 * then submit order), passing over jobs that worker failed unless they have waited
 * AVOID_GRACE_MS for anyone else, and stopping before the inputs would pass `byteBudget`
 * (always at least one job: one input alone may be larger).
 */
export function offerReady(sql: SqlStorage, workerId: string, max: number, now: number, offerMs = OFFER_MS, byteBudget = Infinity): string[] {
  const rows = sql
    .exec<{ job_id: string; avoid_workers: string; ready_since: number; input_bytes: number }>(
      `SELECT job_id, avoid_workers, ready_since, input_bytes FROM job_index
       WHERE state = 'IN_QUEUE' AND offered_until <= ? AND dispatch_pending = 0
       ORDER BY priority DESC, low_priority ASC, created_at ASC, job_id ASC LIMIT ?`,
      now,
      max * 4 + 16,
    )
    .toArray();
  const ids: string[] = [];
  let bytes = 0;
  for (const r of rows) {
    if (ids.length >= max) break;
    const avoided = r.avoid_workers !== "[]" && (JSON.parse(r.avoid_workers) as string[]).includes(workerId);
    if (avoided && now - r.ready_since < AVOID_GRACE_MS) continue;
    if (ids.length > 0 && bytes + r.input_bytes > byteBudget) break;
    bytes += r.input_bytes;
    ids.push(r.job_id);
  }
  for (const id of ids) sql.exec("UPDATE job_index SET offered_until = ? WHERE job_id = ?", now + offerMs, id);
  return ids;
}

/** Jobs holding a slot of the concurrency limit: running, cancelling, or offered and not yet claimed. */
export function slotsInUse(sql: SqlStorage, now: number): number {
  return sql
    .exec<{ n: number }>(
      `SELECT COUNT(*) AS n FROM job_index
       WHERE state IN ('IN_PROGRESS', 'CANCELLING') OR (state = 'IN_QUEUE' AND offered_until > ?)`,
      now,
    )
    .one().n;
}

/** 1 + the number of ready jobs ahead of `jobId` in take order, or null if it is not ready. */
export function queuePosition(sql: SqlStorage, jobId: string): number | null {
  const row = sql
    .exec<{ priority: number; low_priority: number; created_at: number }>(
      "SELECT priority, low_priority, created_at FROM job_index WHERE job_id = ? AND state = 'IN_QUEUE'",
      jobId,
    )
    .toArray()[0];
  if (!row) return null;
  const ahead = sql
    .exec<{ n: number }>(
      `SELECT COUNT(*) AS n FROM job_index WHERE state = 'IN_QUEUE' AND (
         priority > ?1 OR (priority = ?1 AND (low_priority < ?2 OR (low_priority = ?2 AND (
           created_at < ?3 OR (created_at = ?3 AND job_id < ?4))))))`,
      row.priority,
      row.low_priority,
      row.created_at,
      jobId,
    )
    .one().n;
  return ahead + 1;
}

/** Withdraws offers that were never sent (a failed queue send), so the jobs are offered again. */
export function withdrawOffers(sql: SqlStorage, ids: readonly string[]): void {
  for (const id of ids) sql.exec("UPDATE job_index SET offered_until = 0 WHERE job_id = ?", id);
}

/** The earliest time an outstanding offer lapses, if any. */
export function nextOfferLapse(sql: SqlStorage, now: number): number | null {
  return sql.exec<{ t: number | null }>("SELECT MIN(offered_until) AS t FROM job_index WHERE state = 'IN_QUEUE' AND offered_until > ?", now).one().t;
}

/** The last dispatch error of a waiting push job, if its dispatch is being retried. */
export function dispatchErrorOf(sql: SqlStorage, jobId: string): string | null | undefined {
  const row = sql.exec<{ dispatch_pending: number; dispatch_error: string | null }>(
    "SELECT dispatch_pending, dispatch_error FROM job_index WHERE job_id = ?",
    jobId,
  ).toArray()[0];
  return row && row.dispatch_pending === 1 ? row.dispatch_error : undefined;
}

export function waitingJobIds(sql: SqlStorage, limit: number): string[] {
  return sql
    .exec<{ job_id: string }>(
      "SELECT job_id FROM job_index WHERE state IN ('IN_QUEUE', 'SEQUENCED') ORDER BY created_at LIMIT ?",
      limit,
    )
    .toArray()
    .map((r) => r.job_id);
}

export interface HeldJob {
  jobId: string;
  state: JobState;
  attempt: number;
  /** When the index last changed the row: for a running job, when its attempt started. */
  updatedAt: number;
}

/** Jobs the index believes `workerId` holds (IN_PROGRESS or CANCELLING). */
export function heldBy(sql: SqlStorage, workerId: string): HeldJob[] {
  return sql
    .exec<{ job_id: string; state: string; attempt: number; updated_at: number }>(
      "SELECT job_id, state, attempt, updated_at FROM job_index WHERE worker_id = ? AND state IN ('IN_PROGRESS', 'CANCELLING')",
      workerId,
    )
    .toArray()
    .map((r) => ({ jobId: r.job_id, state: r.state as JobState, attempt: r.attempt, updatedAt: r.updated_at }));
}

export function countByState(sql: SqlStorage): Partial<Record<JobState, number>> {
  const out: Partial<Record<JobState, number>> = {};
  for (const r of sql.exec<{ state: string; n: number }>("SELECT state, COUNT(*) AS n FROM job_index GROUP BY state")) {
    out[r.state as JobState] = r.n;
  }
  return out;
}

export function readCounters(sql: SqlStorage): Record<CounterName, number> {
  const out = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  for (const r of sql.exec<{ name: string; value: number }>("SELECT name, value FROM counter")) {
    if ((COUNTERS as readonly string[]).includes(r.name)) out[r.name as CounterName] = r.value;
  }
  return out;
}

/** Rows one prune removes at most; a periodic alarm prunes again while any are left. */
const PRUNE_LIMIT = 1000;

/**
 * Drops terminal rows older than the tombstone period, oldest first through the updated_at
 * index, at most PRUNE_LIMIT; returns how many went.
 */
export function pruneTombstones(sql: SqlStorage, now: number): number {
  return sql.exec(
    `DELETE FROM job_index WHERE rowid IN (SELECT rowid FROM job_index WHERE updated_at < ?
       AND state IN (${TERMINAL_STATES.map(() => "?").join(",")}) ORDER BY updated_at LIMIT ?)`,
    now - TOMBSTONE_MS,
    ...TERMINAL_STATES,
    PRUNE_LIMIT,
  ).rowsWritten;
}

/** Non-terminal jobs in the index (for an endpoint's deletion), at most `limit`. */
export function unfinishedJobIds(sql: SqlStorage, limit: number): string[] {
  return sql
    .exec<{ job_id: string }>(
      `SELECT job_id FROM job_index WHERE state NOT IN (${TERMINAL_STATES.map(() => "?").join(",")}) LIMIT ?`,
      ...TERMINAL_STATES,
      limit,
    )
    .toArray()
    .map((r) => r.job_id);
}

/** Running jobs per worker (IN_PROGRESS or CANCELLING). */
export function runningByWorker(sql: SqlStorage): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of sql.exec<{ worker_id: string; job_id: string }>(
    "SELECT worker_id, job_id FROM job_index WHERE state IN ('IN_PROGRESS', 'CANCELLING') AND worker_id IS NOT NULL",
  )) {
    out.set(r.worker_id, [...(out.get(r.worker_id) ?? []), r.job_id]);
  }
  return out;
}

export interface RecentJob {
  jobId: string;
  state: JobState;
  workerId: string | null;
  updatedAt: number;
  createdAt: number;
  priority: number;
}

/** The most recently changed jobs, newest first (what the index knows; the jobs are the truth). */
export function recentJobs(sql: SqlStorage, limit: number): RecentJob[] {
  return sql
    .exec<{ job_id: string; state: string; worker_id: string | null; updated_at: number; created_at: number; priority: number }>(
      "SELECT job_id, state, worker_id, updated_at, created_at, priority FROM job_index ORDER BY updated_at DESC, job_id LIMIT ?",
      limit,
    )
    .toArray()
    .map((r) => ({ jobId: r.job_id, state: r.state as JobState, workerId: r.worker_id, updatedAt: r.updated_at, createdAt: r.created_at, priority: r.priority }));
}
