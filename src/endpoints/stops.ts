/**
 * Stop signals: a worker whose attempt was taken away (cancel, execution timeout, lost lease)
 * is told through job-stop, RunPod's per-job stop channel. Each signal is delivered once.
 */
const STOP_KEEP_MS = 60 * 60 * 1000;

export function addStop(sql: SqlStorage, workerId: string, jobId: string, reason: string, now: number): void {
  sql.exec(
    "INSERT OR IGNORE INTO stop_signal (worker_id, job_id, reason, created_at) VALUES (?, ?, ?, ?)",
    workerId,
    jobId,
    reason,
    now,
  );
}

/** Undelivered stops for `workerId`, marked delivered. */
export function deliverStops(sql: SqlStorage, workerId: string, now: number): string[] {
  const ids = sql
    .exec<{ job_id: string }>(
      "SELECT job_id FROM stop_signal WHERE worker_id = ? AND delivered_at IS NULL ORDER BY created_at",
      workerId,
    )
    .toArray()
    .map((r) => r.job_id);
  if (ids.length > 0) sql.exec("UPDATE stop_signal SET delivered_at = ? WHERE worker_id = ? AND delivered_at IS NULL", now, workerId);
  return ids;
}


/** Jobs whose stop `workerId` has been told about. */
export function deliveredStops(sql: SqlStorage, workerId: string): Set<string> {
  return new Set(
    sql
      .exec<{ job_id: string }>("SELECT job_id FROM stop_signal WHERE worker_id = ? AND delivered_at IS NOT NULL", workerId)
      .toArray()
      .map((r) => r.job_id),
  );
}

export function pruneStops(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM stop_signal WHERE created_at < ?", now - STOP_KEEP_MS);
}
