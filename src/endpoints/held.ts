/**
 * Which jobs each worker of a liveness shard holds, as its jobs told it (HoldTell). One row per
 * (worker, job), ordered by the job's version: a tell older than the row changes nothing, so a
 * retried or reordered tell cannot undo a newer one. A released row stays a while as the version
 * it was released at, for the same reason.
 */
import type { JobState } from "../jobs/states";
import { LIVENESS } from "../shared/limits";
import type { HoldTell } from "../shared/liveness";
import { takeStartOf } from "../shared/take-ids";

export interface HeldJob {
  jobId: string;
  state: JobState;
  attempt: number;
  /** When this object learned the worker holds this attempt. */
  since: number;
}

export type TellOutcome =
  /** Older than (or the same as) what the row says: nothing changed. */
  | { applied: false }
  /** Applied; `took` when it grants the worker an attempt it did not hold before. */
  | { applied: true; took: boolean };

export function applyTell(sql: SqlStorage, t: HoldTell, now: number): TellOutcome {
  const row = sql
    .exec<{ version: number; attempt: number; state: string; since: number; take_id: string | null }>(
      "SELECT version, attempt, state, since, take_id FROM held WHERE worker_id = ? AND job_id = ?",
      t.workerId,
      t.jobId,
    )
    .toArray()[0];
  if (row && row.version >= t.version) return { applied: false };
  const took = t.state === "IN_PROGRESS" && (!row || row.attempt !== t.attempt || row.state === "RELEASED");
  const since = took || !row ? now : row.since;
  // The claiming take stays with its attempt through later tells of it (CANCELLING).
  const takeId = t.takeId ?? (row && row.attempt === t.attempt ? row.take_id : null);
  sql.exec(
    "INSERT OR REPLACE INTO held (worker_id, job_id, version, attempt, state, since, updated_at, take_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    t.workerId,
    t.jobId,
    t.version,
    t.attempt,
    t.state,
    since,
    now,
    takeId,
  );
  return { applied: true, took };
}

/** The jobs `workerId` holds (IN_PROGRESS or CANCELLING), as told. */
export function heldBy(sql: SqlStorage, workerId: string): HeldJob[] {
  return heldRows(sql, workerId, null).map(({ takeId: _, ...j }) => j);
}

/**
 * What a take (`takeId`) saying its worker runs nothing shows lost: every job the worker holds
 * but those claimed by this take or by one that started at the same time or later (another
 * request of the worker's, sent after this one, may be handed a job before this one is read
 * here). A claim without a take's time (a plain UUID, a push) counts as older; without a take
 * id, every held job is lost.
 */
export function lostBy(sql: SqlStorage, workerId: string, takeId: string | null): string[] {
  const startedAt = takeStartOf(takeId);
  return heldRows(sql, workerId, takeId)
    .filter((j) => {
      const claimedBy = takeStartOf(j.takeId);
      return startedAt === null || claimedBy === null || claimedBy < startedAt;
    })
    .map((j) => j.jobId);
}

function heldRows(sql: SqlStorage, workerId: string, exceptTake: string | null): Array<HeldJob & { takeId: string | null }> {
  return sql
    .exec<{ job_id: string; state: string; attempt: number; since: number; take_id: string | null }>(
      "SELECT job_id, state, attempt, since, take_id FROM held WHERE worker_id = ? AND state != 'RELEASED' AND (take_id IS NULL OR take_id IS NOT ?)",
      workerId,
      exceptTake,
    )
    .toArray()
    .map((r) => ({ jobId: r.job_id, state: r.state as JobState, attempt: r.attempt, since: r.since, takeId: r.take_id }));
}

/** Every held job by worker (for the worker view). */
export function heldByWorker(sql: SqlStorage): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of sql.exec<{ worker_id: string; job_id: string }>("SELECT worker_id, job_id FROM held WHERE state != 'RELEASED' ORDER BY worker_id, job_id")) {
    out.set(r.worker_id, [...(out.get(r.worker_id) ?? []), r.job_id]);
  }
  return out;
}

/** Drops released rows older than LIVENESS.releasedKeepMs, at most 1000; returns how many went. */
export function pruneReleased(sql: SqlStorage, now: number): number {
  return sql.exec(
    "DELETE FROM held WHERE (worker_id, job_id) IN (SELECT worker_id, job_id FROM held WHERE state = 'RELEASED' AND updated_at < ? LIMIT 1000)",
    now - LIVENESS.releasedKeepMs,
  ).rowsWritten;
}
