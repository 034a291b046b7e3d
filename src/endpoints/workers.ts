/**
 * The worker registry: every worker a liveness object has heard from (takes, pings, stop polls),
 * when, what it ran and how it failed, and the state RunPod shows for it.
 */
import { WORKER_BOUNDS } from "../shared/limits";
import { tagsOf } from "../shared/tags";

export const WORKER_STATES = ["initializing", "idle", "running", "throttled", "unhealthy"] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

interface WorkerFailure {
  jobId: string;
  at: number;
  reason: string;
}

export interface WorkerRow {
  workerId: string;
  firstSeen: number;
  lastSeen: number;
  firstTakeAt: number | null;
  jobsTaken: number;
  recycle: boolean;
  unhealthyReason: string | null;
  sdkVersion: string | null;
  recentFailures: WorkerFailure[];
  /** The tags it declared on its latest take or ping (none: []). */
  tags: string[];
}

/** A live worker as a liveness shard's summary names it (for blocklists: jobs/blocklist). */
export interface LiveWorker {
  workerId: string;
  /** Its tags (canonical; '' for none). */
  tags: string;
  lastSign: number;
}

/** The live workers of a shard, most recent first, at most `limit`; `more`: there were more. */
export interface LiveWorkers {
  workers: LiveWorker[];
  more: boolean;
}

/**
 * The healthy workers with a sign of life since `since` (an open take counts to its end), the
 * most recent first, at most `limit`.
 */
export function liveWorkers(sql: SqlStorage, since: number, limit: number): LiveWorkers {
  const rows = sql
    .exec<{ worker_id: string; tags: string; s: number }>(
      `SELECT worker_id, tags, MAX(last_seen, poll_until) AS s FROM worker WHERE unhealthy_reason IS NULL AND MAX(last_seen, poll_until) >= ?
       ORDER BY s DESC LIMIT ?`,
      since,
      limit + 1,
    )
    .toArray();
  return { workers: rows.slice(0, limit).map((r) => ({ workerId: r.worker_id, tags: r.tags, lastSign: r.s })), more: rows.length > limit };
}

/** A tag set of live workers, with the latest sign of life of one that declared it. */
export interface TagSetSign {
  tags: string;
  lastSign: number;
}

const RECENT_FAILURES = 10;

/**
 * Notes a sign of life; true when the worker is new here. Any worker id with the worker key creates a row, so the registry is
 * bounded (WORKER_BOUNDS): a new worker first makes room by forgetting silent workers, and the
 * longest-silent beyond `registryRows`.
 */
export function seeWorker(sql: SqlStorage, workerId: string, now: number, sdkVersion: string | null = null, cap: number = WORKER_BOUNDS.registryRows): boolean {
  const version = sdkVersion === null ? null : sdkVersion.slice(0, WORKER_BOUNDS.sdkVersionChars);
  // A known worker (nearly every sign of life) costs one statement; a new one is inserted.
  const known = sql
    .exec("UPDATE worker SET last_seen = MAX(last_seen, ?), sdk_version = COALESCE(?, sdk_version) WHERE worker_id = ? RETURNING 1", now, version, workerId)
    .toArray().length > 0;
  if (known) return false;
  sql.exec("INSERT INTO worker (worker_id, first_seen, last_seen, sdk_version) VALUES (?, ?, ?, ?)", workerId, now, now, version);
  forgetSilentWorkers(sql, now);
  evictBeyondCap(sql, workerId, cap);
  return true;
}

/**
 * A take's sign of life: seen now, polling until `pollUntil` (0: the poll window as it is), with
 * the tags it declared (null: not said). One statement for a known worker whose tags are
 * unchanged. Returns whether it is new and whether its tags changed.
 */
export function seeTaker(sql: SqlStorage, workerId: string, now: number, pollUntil: number, tags: string | null, cap: number): { fresh: boolean; retagged: boolean } {
  const row = sql
    .exec<{ tags: string | null }>("UPDATE worker SET last_seen = MAX(last_seen, ?), poll_until = MAX(poll_until, ?) WHERE worker_id = ? RETURNING tags", now, pollUntil, workerId)
    .toArray()[0];
  if (row) return { fresh: false, retagged: tags !== null && row.tags !== tags && setTags(sql, workerId, tags) };
  const fresh = seeWorker(sql, workerId, now, null, cap);
  sql.exec("UPDATE worker SET poll_until = MAX(poll_until, ?) WHERE worker_id = ?", pollUntil, workerId);
  return { fresh, retagged: tags !== null && setTags(sql, workerId, tags) };
}

/**
 * Forgets workers silent for a day, and those that never took a job after an hour's silence, at
 * most 1000 a call (the endpoint's periodic prune comes back for more); returns how many.
 */
export function forgetSilentWorkers(sql: SqlStorage, now: number): number {
  return sql.exec(
    `DELETE FROM worker WHERE rowid IN (SELECT rowid FROM worker WHERE last_seen < ? AND (jobs_taken = 0 OR last_seen < ?)
       ORDER BY last_seen LIMIT 1000)`,
    now - WORKER_BOUNDS.forgetNeverTookMs,
    now - WORKER_BOUNDS.forgetMs,
  ).rowsWritten;
}

/**
 * Keeps the registry within its cap by forgetting the longest-silent workers (never `keep`, and
 * never one that holds a job: its job's lease check would find no sign of life and lose the job
 * although the worker pings, so new ids of one shard could take running jobs away). Those rows
 * are bounded by the running jobs, beside the cap.
 */
function evictBeyondCap(sql: SqlStorage, keep: string, cap: number): void {
  const excess = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM worker").one().n - cap;
  if (excess <= 0) return;
  sql.exec(
    `DELETE FROM worker WHERE worker_id IN (SELECT worker_id FROM worker WHERE worker_id != ?
       AND worker_id NOT IN (SELECT worker_id FROM held WHERE state != 'RELEASED') ORDER BY last_seen, worker_id LIMIT ?)`,
    keep,
    excess,
  );
}

/** Counts a worker's takes; returns its cold start (first seen → first take) on its first one. */
export function recordTakes(sql: SqlStorage, workerId: string, count: number, now: number, tookNow = false): number | null {
  const row = sql.exec<{ first_seen: number; first_take_at: number | null }>("SELECT first_seen, first_take_at FROM worker WHERE worker_id = ?", workerId).toArray()[0];
  // `tookNow`: the take is over, so it is a sign of life now and its poll ends (one statement with the count).
  sql.exec(
    `UPDATE worker SET jobs_taken = jobs_taken + ?, first_take_at = COALESCE(first_take_at, ?), unhealthy_reason = NULL${tookNow ? ", last_seen = MAX(last_seen, ?), poll_until = MIN(poll_until, ?)" : ""} WHERE worker_id = ?`,
    ...(tookNow ? [count, now, now, now, workerId] : [count, now, workerId]),
  );
  return row && row.first_take_at === null ? now - row.first_seen : null;
}

export function recordFailure(sql: SqlStorage, workerId: string, failure: WorkerFailure): void {
  const row = sql.exec<{ recent_failures: string }>("SELECT recent_failures FROM worker WHERE worker_id = ?", workerId).toArray()[0];
  if (!row) return;
  const list = [...(JSON.parse(row.recent_failures) as WorkerFailure[]), failure].slice(-RECENT_FAILURES);
  sql.exec("UPDATE worker SET recent_failures = ? WHERE worker_id = ?", JSON.stringify(list), workerId);
}

/** Notes the tags a worker declared (canonical); true when they changed. */
export function setTags(sql: SqlStorage, workerId: string, tags: string): boolean {
  const update = sql.exec("UPDATE worker SET tags = ? WHERE worker_id = ? AND tags IS NOT ?", tags, workerId, tags);
  update.toArray(); // run it to the end, so rowsWritten is final
  return update.rowsWritten > 0;
}

/**
 * The tag sets healthy workers declared, each with its latest sign of life (an open take counts
 * to its end), the most recent first, at most `limit`.
 */
export function tagSetSigns(sql: SqlStorage, limit: number): TagSetSign[] {
  const rows = sql
    .exec<{ tags: string; s: number }>(
      `SELECT tags, MAX(MAX(last_seen, poll_until)) AS s FROM worker WHERE unhealthy_reason IS NULL AND tags != ''
       GROUP BY tags ORDER BY s DESC LIMIT ?`,
      limit + 1,
    )
    .toArray()
    .map((r) => ({ tags: r.tags, lastSign: r.s }));
  if (rows.length <= limit) return rows;
  // More sets than told: the rest are one entry of unknown tags (UNKNOWN_TAGS) with their latest
  // sign, so a job no told set matches is not said to have no matching worker (found from outside).
  return [...rows.slice(0, limit - 1), { tags: UNKNOWN_TAGS, lastSign: rows[limit - 1]!.lastSign }];
}

/** A tag set entry standing for the sets a summary did not name: it may match any job. */
export const UNKNOWN_TAGS = "*";

export function markRecycle(sql: SqlStorage, workerId: string): void {
  sql.exec("UPDATE worker SET recycle = 1 WHERE worker_id = ?", workerId);
}

export function markUnhealthy(sql: SqlStorage, workerId: string, reason: string): void {
  // "check: reason", each part already cut to its bound by the route; this guards any other caller.
  sql.exec("UPDATE worker SET unhealthy_reason = ? WHERE worker_id = ?", reason.slice(0, 2 * WORKER_BOUNDS.unhealthyTextChars + 2), workerId);
}

export function lastSeen(sql: SqlStorage, workerId: string): number | null {
  return sql.exec<{ last_seen: number }>("SELECT last_seen FROM worker WHERE worker_id = ?", workerId).toArray()[0]?.last_seen ?? null;
}

export function listWorkers(sql: SqlStorage, now: number): WorkerRow[] {
  forgetSilentWorkers(sql, now);
  return sql
    .exec<{
      worker_id: string;
      first_seen: number;
      last_seen: number;
      first_take_at: number | null;
      jobs_taken: number;
      recycle: number;
      unhealthy_reason: string | null;
      sdk_version: string | null;
      recent_failures: string;
      tags?: string;
    }>("SELECT * FROM worker ORDER BY worker_id")
    .toArray()
    .map((r) => ({
      workerId: r.worker_id,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      firstTakeAt: r.first_take_at,
      jobsTaken: r.jobs_taken,
      recycle: r.recycle === 1,
      unhealthyReason: r.unhealthy_reason,
      sdkVersion: r.sdk_version,
      recentFailures: JSON.parse(r.recent_failures) as WorkerFailure[],
      tags: tagsOf(r.tags ?? ""),
    }));
}

export type WorkerCounts = Record<WorkerState, number>;

/** Workers by state, every state present. */
export function countStates(states: Iterable<WorkerState>): WorkerCounts {
  const counts = Object.fromEntries(WORKER_STATES.map((s) => [s, 0])) as WorkerCounts;
  for (const s of states) counts[s] += 1;
  return counts;
}

/**
 * RunPod's worker states: unhealthy (silent past the heartbeat timeout, or it reported a failed
 * check), running (holds a job), throttled (asking for work while the endpoint's concurrency
 * limit holds it back), initializing (registered, never took a job), idle.
 */
export function workerState(
  w: WorkerRow,
  runningJobs: number,
  now: number,
  heartbeatMs: number,
  polling: boolean,
  throttled: boolean,
): WorkerState {
  if (w.unhealthyReason !== null) return "unhealthy";
  if (!polling && now - w.lastSeen > heartbeatMs) return "unhealthy";
  if (runningJobs > 0) return "running";
  if (throttled) return "throttled";
  if (w.firstTakeAt === null) return "initializing";
  return "idle";
}
