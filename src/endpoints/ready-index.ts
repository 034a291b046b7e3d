/**
 * The endpoint's view of its jobs, derived from the entries jobs send (IndexEntry): the ready
 * index that takes draw from, and the counters behind /health and, later, metrics.
 *
 * Offers: a take marks the jobs it hands out as offered for OFFER_MS, so two takes never get the
 * same job while the first caller claims it; if the caller never claims (it crashed), the offer
 * lapses and the job is offered again. The job object decides who really wins (claim).
 */
import { TERMINAL_STATES, type JobState } from "../jobs/states";
import type { IndexEntry } from "./index-entry";

export const OFFER_MS = 10_000;
/** Terminal rows are kept this long so stale, reordered entries cannot resurrect a job. */
export const TOMBSTONE_MS = 60 * 60 * 1000;

export const COUNTERS = ["submitted", "completed", "failed", "cancelled", "timedOut", "retried"] as const;
export type CounterName = (typeof COUNTERS)[number];

function bump(sql: SqlStorage, name: CounterName): void {
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

/**
 * Applies an entry if it is newer than what the index holds. Returns whether the job is now
 * ready (so waiting takes can be woken).
 */
export function applyEntry(sql: SqlStorage, e: IndexEntry, now: number): { applied: boolean; ready: boolean } {
  const prev = sql
    .exec<{ version: number; state: string }>("SELECT version, state FROM job_index WHERE job_id = ?", e.jobId)
    .toArray()[0];
  if (prev && prev.version >= e.version) return { applied: false, ready: false };
  sql.exec(
    `INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, worker_id, offered_until, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
     ON CONFLICT (job_id) DO UPDATE SET version = excluded.version, state = excluded.state,
       priority = excluded.priority, low_priority = excluded.low_priority, worker_id = excluded.worker_id,
       offered_until = 0, updated_at = excluded.updated_at`,
    e.jobId,
    e.version,
    e.state,
    e.priority,
    e.lowPriority ? 1 : 0,
    e.createdAt,
    e.workerId,
    now,
  );
  const prevState = prev?.state as JobState | undefined;
  if (prevState !== e.state) {
    if (!prev) bump(sql, "submitted");
    const c = counterFor(e.state);
    if (c) bump(sql, c);
    if (e.state === "IN_QUEUE" && prevState !== undefined && prevState !== "SEQUENCED") bump(sql, "retried");
  }
  return { applied: true, ready: e.state === "IN_QUEUE" };
}

/** Hands out up to `max` ready job ids in order (priority, then low priority last, then submit order). */
export function offerReady(sql: SqlStorage, max: number, now: number): string[] {
  const ids = sql
    .exec<{ job_id: string }>(
      `SELECT job_id FROM job_index WHERE state = 'IN_QUEUE' AND offered_until <= ?
       ORDER BY priority DESC, low_priority ASC, created_at ASC, job_id ASC LIMIT ?`,
      now,
      max,
    )
    .toArray()
    .map((r) => r.job_id);
  for (const id of ids) sql.exec("UPDATE job_index SET offered_until = ? WHERE job_id = ?", now + OFFER_MS, id);
  return ids;
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

/** Drops terminal rows older than the tombstone period. */
export function pruneTombstones(sql: SqlStorage, now: number): void {
  sql.exec(
    `DELETE FROM job_index WHERE updated_at < ? AND state IN (${TERMINAL_STATES.map(() => "?").join(",")})`,
    now - TOMBSTONE_MS,
    ...TERMINAL_STATES,
  );
}

/** Workers with a job in progress, by id. */
export function busyWorkers(sql: SqlStorage): Set<string> {
  return new Set(
    sql
      .exec<{ worker_id: string }>(
        "SELECT DISTINCT worker_id FROM job_index WHERE state IN ('IN_PROGRESS', 'CANCELLING') AND worker_id IS NOT NULL",
      )
      .toArray()
      .map((r) => r.worker_id),
  );
}
