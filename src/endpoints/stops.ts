/**
 * Stop signals: a worker whose attempt was taken away (cancel, execution timeout, lost lease)
 * is told through job-stop, RunPod's per-job stop channel. A signal is per attempt, so every
 * attempt taken away is told once, even when the same worker ran an earlier attempt of the job.
 */
const STOP_KEEP_MS = 60 * 60 * 1000;
/** Rows one prune removes at most (a periodic alarm prunes again while any are left). */
const PRUNE_LIMIT = 1000;

export function addStop(sql: SqlStorage, workerId: string, jobId: string, attempt: number, reason: string, now: number): void {
  sql.exec(
    "INSERT OR IGNORE INTO stop_signal (worker_id, job_id, attempt, reason, created_at) VALUES (?, ?, ?, ?, ?)",
    workerId,
    jobId,
    attempt,
    reason,
    now,
  );
}

/** Undelivered stops for `workerId` (job ids, each once), marked delivered. */
export function deliverStops(sql: SqlStorage, workerId: string, now: number): string[] {
  const ids = sql
    .exec<{ job_id: string }>(
      "SELECT job_id FROM stop_signal WHERE worker_id = ? AND delivered_at IS NULL GROUP BY job_id ORDER BY MIN(created_at)",
      workerId,
    )
    .toArray()
    .map((r) => r.job_id);
  if (ids.length > 0) sql.exec("UPDATE stop_signal SET delivered_at = ? WHERE worker_id = ? AND delivered_at IS NULL", now, workerId);
  return ids;
}

/** The attempts (`jobId:attempt`) whose stop `workerId` has been told about. */
export function deliveredStops(sql: SqlStorage, workerId: string): Set<string> {
  return new Set(
    sql
      .exec<{ job_id: string; attempt: number }>("SELECT job_id, attempt FROM stop_signal WHERE worker_id = ? AND delivered_at IS NOT NULL", workerId)
      .toArray()
      .map((r) => `${r.job_id}:${r.attempt}`),
  );
}

/** Drops signals older than STOP_KEEP_MS, at most PRUNE_LIMIT; returns how many went. */
export function pruneStops(sql: SqlStorage, now: number): number {
  return sql.exec(
    "DELETE FROM stop_signal WHERE rowid IN (SELECT rowid FROM stop_signal WHERE created_at < ? LIMIT ?)",
    now - STOP_KEEP_MS,
    PRUNE_LIMIT,
  ).rowsWritten;
}

/**
 * The worker now holds a newer attempt of `jobId` than a stop was queued for: that stop is moot
 * and must not go out, because job-stop names jobs, not attempts, so the worker would stop the
 * newer attempt it holds the lease on. Marked delivered (not deleted), so a late, retried tell of
 * the older attempt cannot queue it again (addStop ignores an existing row).
 */
export function supersedeStops(sql: SqlStorage, workerId: string, jobId: string, now: number): void {
  sql.exec(
    `UPDATE stop_signal SET delivered_at = ? WHERE worker_id = ? AND job_id = ? AND delivered_at IS NULL
       AND attempt < (SELECT attempt FROM held WHERE worker_id = ? AND job_id = ? AND state != 'RELEASED')`,
    now,
    workerId,
    jobId,
    workerId,
    jobId,
  );
}
