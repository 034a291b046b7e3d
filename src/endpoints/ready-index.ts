/**
 * The endpoint's view of its jobs, derived from the entries jobs send (IndexEntry): the ready
 * index that takes draw from, and the counters behind /health and metrics.
 *
 * Offers: a take marks the jobs it hands out as offered for OFFER_MS, so two takes never get the
 * same job while the first caller claims it; if the caller never claims (it crashed), the offer
 * lapses and the job is offered again. The job object decides who really wins (claim).
 *
 * Cost: every query here on a request path is an index search or walks an index for at most a
 * LIMIT (endpoint migration 7), so a request costs the same with 200 or 100,000 jobs queued.
 */
import { isRunning, TERMINAL_STATES, type JobState } from "../jobs/states";
import { bumpCounter, counterFor, type CounterName } from "./index-counters";
import { QUEUE_POSITION } from "../shared/limits";
import type { IndexEntry } from "../jobs/index-entry";
import { anyKeyReady, offerByTurns, openDepth, reopenKeys, type ReadyRow } from "./flow-keys";
import { ANY_TAGS, anyTagReady, classRows, matchingClasses } from "./tag-classes";
import type { Taker } from "./shards";

const OFFER_MS = 10_000;
/**
 * Terminal rows are kept this long (after their last change) so stale, reordered entries cannot
 * resurrect a job; GET /requests lists them until then (job-listing.ts).
 */
export const TOMBSTONE_MS = 60 * 60 * 1000;
/** A job a worker failed is offered to that worker again only after waiting this long for others. */
const AVOID_GRACE_MS = 30_000;

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
       updated_at, avoid_workers, ready_since, dispatch_pending, dispatch_error, attempt, input_bytes,
       batch_id, sequence_key, delay_ms, execution_ms, flow_key, tags, blocked_workers)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (job_id) DO UPDATE SET version = excluded.version, state = excluded.state, created_at = excluded.created_at,
       attempt = excluded.attempt, input_bytes = excluded.input_bytes,
       batch_id = excluded.batch_id, sequence_key = excluded.sequence_key, delay_ms = excluded.delay_ms, execution_ms = excluded.execution_ms,
       flow_key = excluded.flow_key, tags = excluded.tags, blocked_workers = excluded.blocked_workers,
       priority = excluded.priority, low_priority = excluded.low_priority, worker_id = excluded.worker_id,
       offered_until = 0, updated_at = excluded.updated_at, avoid_workers = excluded.avoid_workers,
       ready_since = CASE WHEN job_index.state = 'SCHEDULED' AND excluded.state = 'IN_QUEUE' AND job_index.ready_since > 0
         THEN job_index.ready_since ELSE excluded.ready_since END, dispatch_pending = excluded.dispatch_pending,
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
    // A SCHEDULED job's wait counts as waiting for other workers (AVOID_GRACE_MS): its time
    // since it went back, not since it became ready, so a retry backoff and the grace overlap.
    ready || e.state === "SCHEDULED" ? now : 0,
    e.dispatchPending ? 1 : 0,
    e.dispatchError,
    e.attempt,
    e.inputBytes ?? 0,
    e.batchId ?? null,
    e.sequenceKey ?? null,
    e.delayMs ?? null,
    e.executionMs ?? null,
    e.flowKey ?? "",
    e.tags ?? "",
    JSON.stringify(e.blockedWorkers ?? []),
  );
  const previous = sameJob ? (prev.state as JobState) : null;
  const counted: CounterName[] = [];
  if (previous !== e.state) {
    if (previous === null) counted.push("submitted");
    const c = counterFor(e.state);
    if (c) counted.push(c);
    // A job back in the queue after an attempt or an end is retried; a SCHEDULED or SEQUENCED job
    // becoming ready was counted when it went back. A retried job of a sequence re-enters it SEQUENCED.
    const wentBack = previous !== null && (isRunning(previous) || (TERMINAL_STATES as readonly JobState[]).includes(previous));
    if ((e.state === "IN_QUEUE" || e.state === "SCHEDULED" || e.state === "SEQUENCED" || e.state === "PAUSED") && wentBack) counted.push("retried");
  }
  for (const c of counted) bumpCounter(sql, c);
  return { applied: true, counted, ready, previous };
}

/** What one offer found: the ids handed out, and how many jobs it passed over for this worker. */
export interface Offer {
  ids: string[];
  /** Ready jobs passed over only because this worker failed them (another worker may take them). */
  passedOver: number;
  /** A key this offer rate-limited opens again then (the shard's alarm wakes takes; flow-keys.ts). */
  limitedUntil?: number | null;
}

/**
 * Hands out up to `max` ready job ids to a worker in order (priority, then low priority last,
 * then submit order), passing over jobs that worker failed unless they have waited
 * AVOID_GRACE_MS for anyone else, and jobs requiring tags it lacks, and stopping before the
 * inputs would pass `byteBudget` (always at least one job: one input alone may be larger).
 * A bare worker id declares no tags.
 */
export function offerReady(sql: SqlStorage, worker: string | Taker, max: number, now: number, offerMs = OFFER_MS, byteBudget = Infinity): string[] {
  return offerJobs(sql, worker, max, now, offerMs, byteBudget).ids;
}

/** offerReady, also telling how many jobs it passed over for this worker (see Offer). */
export function offerJobs(sql: SqlStorage, worker: string | Taker, max: number, now: number, offerMs = OFFER_MS, byteBudget = Infinity): Offer {
  const { workerId, tags } = typeof worker === "string" ? { workerId: worker, tags: "" } : worker;
  resetLapsedOffers(sql, now);
  reopenKeys(sql, now);
  // Tagged jobs ready: only the tag sets this worker matches are walked (tag-classes.ts); jobs
  // needing tags it lacks count as passed over (another worker may take them).
  const classes = tags !== ANY_TAGS && anyTagReady(sql) ? matchingClasses(sql, tags) : null;
  const sets = classes?.sets ?? null;
  const unmatched = classes?.unmatched ? 1 : 0;
  const avoided = (r: ReadyRow) => passesOver(r, workerId, now);
  // Keyed jobs ready: keys take turns (flow-keys.ts). Otherwise the order below, as before keys.
  if (anyKeyReady(sql)) {
    const turns = offerByTurns(sql, { max, now, offerMs, byteBudget, avoided, sets });
    return { ...turns, passedOver: turns.passedOver + unmatched };
  }
  // Offered and pending-dispatch rows are outside job_index_offerable: the walk never steps over
  // them. INDEXED BY: without statistics the planner prefers job_index_order's state term.
  const rows: Iterable<ReadyRow> =
    sets !== null
      ? classRows(sql, "", sets, max * 4 + 16)
      : sql
          .exec<ReadyRow>(
            `SELECT job_id, avoid_workers, blocked_workers, ready_since, input_bytes FROM job_index INDEXED BY job_index_offerable
             WHERE state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0
             ORDER BY priority DESC, low_priority ASC, created_at ASC, job_id ASC LIMIT ?`,
            max * 4 + 16,
          )
          .toArray();
  const ids: string[] = [];
  let bytes = 0;
  let passedOver = unmatched;
  for (const r of rows) {
    if (ids.length >= max) break;
    if (avoided(r)) {
      passedOver++;
      continue;
    }
    if (ids.length > 0 && bytes + r.input_bytes > byteBudget) break;
    bytes += r.input_bytes;
    ids.push(r.job_id);
  }
  for (const id of ids) sql.exec("UPDATE job_index SET offered_until = ? WHERE job_id = ?", now + offerMs, id);
  return { ids, passedOver };
}

/**
 * Is a ready row passed over for `workerId`: it is blocklisted from the job (jobs/blocklist), or
 * failed it and the job has waited less than AVOID_GRACE_MS for any other worker?
 */
function passesOver(r: ReadyRow, workerId: string, now: number): boolean {
  if (r.blocked_workers !== "[]" && (JSON.parse(r.blocked_workers) as string[]).includes(workerId)) return true;
  return r.avoid_workers !== "[]" && (JSON.parse(r.avoid_workers) as string[]).includes(workerId) && now - r.ready_since < AVOID_GRACE_MS;
}

/**
 * Offers that lapsed unclaimed go back to offered_until = 0 (into job_index_offerable), found
 * through job_index_offered: as many rows as lapsed, however deep the queue.
 */
export function resetLapsedOffers(sql: SqlStorage, now: number): void {
  sql.exec("UPDATE job_index SET offered_until = 0 WHERE offered_until > 0 AND offered_until <= ?", now);
}

/**
 * Jobs holding a slot of the concurrency limit: running, cancelling (maintained counts), or
 * offered and not yet claimed (outstanding offers, through job_index_offered). Only IN_QUEUE rows
 * are ever offered, and every entry resets offered_until to 0: a row with offered_until > 0 is a
 * waiting job's offer, so the queries on offers need no state term (which would tempt the
 * planner to job_index_order).
 */
export function slotsInUse(sql: SqlStorage, now: number): number {
  return sql
    .exec<{ n: number }>(
      `SELECT (SELECT COALESCE(SUM(n), 0) FROM job_state_count WHERE state IN ('IN_PROGRESS', 'CANCELLING'))
         + (SELECT COUNT(*) FROM job_index WHERE offered_until > 0 AND offered_until > ?) AS n`,
      now,
    )
    .one().n;
}

/**
 * 1 + the number of waiting (IN_QUEUE) jobs ahead of `jobId` in take order, or null if it is not
 * waiting. Counted exactly below `bound`; a job further back gets `bound` itself (read: at least
 * `bound`). Each of the four ranges below is a search of job_index_order, and the count stops at
 * the LIMIT, so a read steps over fewer than `bound` rows however deep the queue.
 */
export function queuePosition(sql: SqlStorage, jobId: string, bound: number = QUEUE_POSITION.exactBelow): number | null {
  const row = sql
    .exec<{ priority: number; low_priority: number; created_at: number }>(
      "SELECT priority, low_priority, created_at FROM job_index WHERE job_id = ? AND state = 'IN_QUEUE'",
      jobId,
    )
    .toArray()[0];
  if (!row) return null;
  const ahead = sql
    .exec<{ n: number }>(
      `SELECT COUNT(*) AS n FROM (
         SELECT 1 FROM job_index WHERE state = 'IN_QUEUE' AND priority > ?1
         UNION ALL SELECT 1 FROM job_index WHERE state = 'IN_QUEUE' AND priority = ?1 AND low_priority < ?2
         UNION ALL SELECT 1 FROM job_index WHERE state = 'IN_QUEUE' AND priority = ?1 AND low_priority = ?2 AND created_at < ?3
         UNION ALL SELECT 1 FROM job_index WHERE state = 'IN_QUEUE' AND priority = ?1 AND low_priority = ?2 AND created_at = ?3 AND job_id < ?4
         LIMIT ?5)`,
      row.priority,
      row.low_priority,
      row.created_at,
      jobId,
      bound - 1,
    )
    .one().n;
  return ahead + 1;
}

/**
 * Ready jobs nobody holds an offer for, counted up to `bound` (a shard's depth for forwarding and
 * sampling): rows of job_index_offerable plus lapsed offers (job_index_offered), two bounded walks.
 */
export function readyDepth(sql: SqlStorage, now: number, bound: number): number {
  // With keyed jobs ready, only those of open keys count (a capped key's backlog is not takeable).
  if (anyKeyReady(sql)) return Math.min(bound, openDepth(sql, bound) + lapsedOffers(sql, now, bound));
  return sql
    .exec<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM job_index INDEXED BY job_index_offerable
                WHERE state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0 LIMIT ?1))
            + (SELECT COUNT(*) FROM (SELECT 1 FROM job_index INDEXED BY job_index_offered
                WHERE offered_until > 0 AND offered_until <= ?2 LIMIT ?1)) AS n`,
      bound,
      now,
    )
    .one().n;
}

/** Offers that lapsed unclaimed and are not yet reset, up to `bound` (job_index_offered). */
function lapsedOffers(sql: SqlStorage, now: number, bound: number): number {
  return sql
    .exec<{ n: number }>("SELECT COUNT(*) AS n FROM (SELECT 1 FROM job_index INDEXED BY job_index_offered WHERE offered_until > 0 AND offered_until <= ? LIMIT ?)", now, bound)
    .one().n;
}

/** Withdraws offers that were never sent (a failed queue send), so the jobs are offered again. */
export function withdrawOffers(sql: SqlStorage, ids: readonly string[]): void {
  for (const id of ids) sql.exec("UPDATE job_index SET offered_until = 0 WHERE job_id = ?", id);
}

/** The earliest time an outstanding offer lapses, if any. */
export function nextOfferLapse(sql: SqlStorage, now: number): number | null {
  const row = sql
    .exec<{ t: number }>(
      "SELECT offered_until AS t FROM job_index WHERE offered_until > 0 AND offered_until > ? ORDER BY offered_until LIMIT 1",
      now,
    )
    .toArray()[0];
  return row ? row.t : null;
}

/** The last dispatch error of a waiting push job, if its dispatch is being retried. */
export function dispatchErrorOf(sql: SqlStorage, jobId: string): string | null | undefined {
  const row = sql.exec<{ dispatch_pending: number; dispatch_error: string | null }>(
    "SELECT dispatch_pending, dispatch_error FROM job_index WHERE job_id = ?",
    jobId,
  ).toArray()[0];
  return row && row.dispatch_pending === 1 ? row.dispatch_error : undefined;
}

/** The oldest waiting jobs (through job_index_waiting), at most `limit`. */
export function waitingJobIds(sql: SqlStorage, limit: number): string[] {
  return sql
    .exec<{ job_id: string }>(
      // INDEXED BY: without statistics the planner prefers job_index_order's state term and sorts.
      "SELECT job_id FROM job_index INDEXED BY job_index_waiting WHERE state IN ('IN_QUEUE', 'SEQUENCED', 'SCHEDULED', 'PAUSED') ORDER BY created_at LIMIT ?",
      limit,
    )
    .toArray()
    .map((r) => r.job_id);
}

/** Rows one prune removes at most; a periodic alarm prunes again while any are left. */
const PRUNE_LIMIT = 1000;

/** The terminal states as a literal SQL list, spelt as job_index_tombstone's (a partial index needs the same terms). */
const TERMINAL_LIST = "('COMPLETED', 'ERROR', 'FAILED', 'CANCELLED', 'TIMED_OUT')";
const UNFINISHED_LIST = "('PAUSED', 'SCHEDULED', 'SEQUENCED', 'IN_QUEUE', 'IN_PROGRESS', 'CANCELLING')";

/**
 * Drops terminal rows older than the tombstone period, oldest first through job_index_tombstone
 * (terminal rows only: old waiting or running rows are never stepped over; INDEXED BY, as the
 * planner would otherwise take job_index_order's state term and sort), at most PRUNE_LIMIT;
 * returns how many went (rows, not the count updates their triggers write).
 */
export function pruneTombstones(sql: SqlStorage, now: number): number {
  return sql
    .exec(
      `DELETE FROM job_index WHERE rowid IN (SELECT rowid FROM job_index INDEXED BY job_index_tombstone WHERE state IN ${TERMINAL_LIST}
         AND updated_at < ? ORDER BY updated_at LIMIT ?) RETURNING 1`,
      now - TOMBSTONE_MS,
      PRUNE_LIMIT,
    )
    .toArray().length;
}

/** Non-terminal jobs in the index (for an endpoint's deletion), at most `limit`. */
export function unfinishedJobIds(sql: SqlStorage, limit: number): string[] {
  return sql
    .exec<{ job_id: string }>(`SELECT job_id FROM job_index WHERE state IN ${UNFINISHED_LIST} LIMIT ?`, limit)
    .toArray()
    .map((r) => r.job_id);
}

export interface RecentJob {
  jobId: string;
  state: JobState;
  workerId: string | null;
  updatedAt: number;
  createdAt: number;
  priority: number;
}

/** The most recently changed jobs, newest first, ties by id: a walk of job_index_recent that stops at `limit`. */
export function recentJobs(sql: SqlStorage, limit: number): RecentJob[] {
  return sql
    .exec<{ job_id: string; state: string; worker_id: string | null; updated_at: number; created_at: number; priority: number }>(
      "SELECT job_id, state, worker_id, updated_at, created_at, priority FROM job_index ORDER BY updated_at DESC, job_id LIMIT ?",
      limit,
    )
    .toArray()
    .map((r) => ({ jobId: r.job_id, state: r.state as JobState, workerId: r.worker_id, updatedAt: r.updated_at, createdAt: r.created_at, priority: r.priority }));
}
