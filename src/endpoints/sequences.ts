/**
 * FIFO sequences: jobs with the same sequenceKey run one at a time, in submit order. The
 * endpoint keeps each key's members that have not ended; the first of them runs (or waits in the
 * queue), the rest are SEQUENCED. When a member ends, the next one is released.
 */
import { isTerminal, type JobState } from "../jobs/states";

/**
 * A job joins its sequence (idempotent). Returns the job just ahead of it that has not ended,
 * or null when it is first in line.
 */
export function enterSequence(sql: SqlStorage, key: string, jobId: string): string | null {
  const existing = sql.exec<{ position: number }>("SELECT position FROM sequence_member WHERE job_id = ?", jobId).toArray()[0];
  let position = existing?.position;
  if (position === undefined) {
    const last = sql.exec<{ p: number | null }>("SELECT MAX(position) AS p FROM sequence_member WHERE sequence_key = ?", key).one().p;
    position = (last ?? 0) + 1;
    sql.exec("INSERT INTO sequence_member (job_id, sequence_key, position, state) VALUES (?, ?, ?, 'SEQUENCED')", jobId, key, position);
  }
  return aheadOf(sql, key, position);
}

function aheadOf(sql: SqlStorage, key: string, position: number): string | null {
  return (
    sql
      .exec<{ job_id: string }>(
        "SELECT job_id FROM sequence_member WHERE sequence_key = ? AND position < ? ORDER BY position DESC LIMIT 1",
        key,
        position,
      )
      .toArray()[0]?.job_id ?? null
  );
}

/** The job ahead of `jobId` in its sequence, or null when it is first (or not a member). */
export function jobAhead(sql: SqlStorage, jobId: string): string | null {
  const row = sql.exec<{ sequence_key: string; position: number }>("SELECT sequence_key, position FROM sequence_member WHERE job_id = ?", jobId).toArray()[0];
  return row ? aheadOf(sql, row.sequence_key, row.position) : null;
}

/**
 * A member's state changed. When it ends it leaves the sequence; returns the job to release
 * (the new first member, if it is still SEQUENCED).
 */
export function memberChanged(sql: SqlStorage, key: string, jobId: string, state: JobState): string | null {
  if (!isTerminal(state)) {
    sql.exec("UPDATE sequence_member SET state = ? WHERE job_id = ?", state, jobId);
    return null;
  }
  const removed = sql.exec("DELETE FROM sequence_member WHERE job_id = ?", jobId).rowsWritten;
  if (removed === 0) return null;
  const first = sql
    .exec<{ job_id: string; state: string }>("SELECT job_id, state FROM sequence_member WHERE sequence_key = ? ORDER BY position LIMIT 1", key)
    .toArray()[0];
  return first && first.state === "SEQUENCED" ? first.job_id : null;
}
