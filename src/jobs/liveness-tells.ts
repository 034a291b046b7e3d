/**
 * What a job tells its workers' liveness objects (HoldTell), and the tells it keeps pending until
 * they are confirmed. A transition that grants an attempt to a worker, changes it (CANCELLING) or
 * takes it away (a result, a lost lease, a requeue, a cancel) yields one tell per worker touched.
 * The pending list is written in the transition's own transaction, so a crash right after the
 * commit loses nothing: the job's alarm sends it again (index_due_at).
 */
import { LIVENESS } from "../shared/limits";
import type { HoldTell } from "../shared/liveness";
import type { JobRecord } from "./record";
import { isRunning } from "./states";
import { cachedField, setCachedField } from "./store";

function holder(job: JobRecord): { workerId: string; attempt: number } | null {
  return isRunning(job.state) && job.workerId !== null ? { workerId: job.workerId, attempt: job.attempt } : null;
}

/** Why a worker's attempt counts as its failure (as the endpoint recorded it before issue 12). */
function failureOf(after: JobRecord, workerId: string): string | null {
  if (after.state === "FAILED") return "error";
  if (after.stopFor === workerId && (after.state === "IN_QUEUE" || after.state === "SCHEDULED" || after.state === "PAUSED" || after.state === "TIMED_OUT")) return after.reason ?? "lease_lost";
  return null;
}

/** The tells a transition from `before` to `after` owes. */
export function tellsFor(before: JobRecord, after: JobRecord): HoldTell[] {
  const tells: HoldTell[] = [];
  const was = holder(before);
  const now = holder(after);
  if (now !== null) {
    tells.push({ jobId: after.id, workerId: now.workerId, version: after.version, attempt: now.attempt, state: after.state as HoldTell["state"], stop: after.stopFor === now.workerId, failure: null });
  }
  if (was !== null && (now === null || now.workerId !== was.workerId || now.attempt !== was.attempt)) {
    tells.push({
      jobId: after.id,
      workerId: was.workerId,
      version: after.version,
      attempt: was.attempt,
      state: "RELEASED",
      stop: after.stopFor === was.workerId,
      failure: failureOf(after, was.workerId),
    });
  }
  return tells;
}

/**
 * Adds tells to the pending ones. A newer tell for the same worker and attempt replaces the older
 * (keeping its stop and failure, which the newer state would not repeat); past LIVENESS.pendingTells
 * the oldest go (their worker's object has been unreachable all that while).
 */
export function mergeTells(pending: HoldTell[], added: HoldTell[]): HoldTell[] {
  let out = [...pending];
  for (const t of added) {
    const old = out.find((p) => p.workerId === t.workerId && p.attempt === t.attempt);
    out = out.filter((p) => p !== old);
    const takeId = t.takeId ?? old?.takeId;
    // The claiming take's sign too: a newer tell of the same attempt must not drop its release.
    const take = t.take ?? old?.take;
    out.push(old ? { ...t, stop: t.stop || old.stop, failure: t.failure ?? old.failure, ...(takeId !== undefined ? { takeId } : {}), ...(take !== undefined ? { take } : {}) } : t);
  }
  return out.slice(-LIVENESS.pendingTells);
}

/** The pending tells (read once per object and kept beside the row: see store's cachedField). */
export function readTells(sql: SqlStorage): HoldTell[] {
  return cachedField(sql, "liveness_tells", () => {
    const raw = sql.exec<{ liveness_tells: string | null }>("SELECT liveness_tells FROM job LIMIT 1").toArray()[0]?.liveness_tells ?? null;
    return raw === null ? [] : (JSON.parse(raw) as HoldTell[]);
  });
}

export function writeTells(sql: SqlStorage, tells: HoldTell[]): void {
  sql.exec("UPDATE job SET liveness_tells = ?", tells.length === 0 ? null : JSON.stringify(tells));
  setCachedField(sql, "liveness_tells", tells);
}

/** Removes the tells that were confirmed, unless a newer transition replaced them meanwhile. */
export function confirmTells(sql: SqlStorage, sent: HoldTell[]): void {
  const done = new Set(sent.map((t) => JSON.stringify(t)));
  writeTells(sql, readTells(sql).filter((t) => !done.has(JSON.stringify(t))));
}
