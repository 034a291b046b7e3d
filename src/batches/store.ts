/**
 * The batch object's rows: the batch record, its children and their counts by state. Every
 * change of a child's state goes through setChildState, which moves the counts with it in the
 * caller's transaction, so the counts are exact (a test recounts them).
 */
import { deleteBlob, readBlob, writeBlob } from "../shared/blobs";
import type { JobState } from "../jobs/states";
import type { BatchRecord, BatchStatus, ChildCounts, ChildNote, ChildRow } from "./record";

type BatchRow = {
  id: string;
  endpoint_id: string;
  endpoint_gen: string;
  name: string | null;
  webhook: string | null;
  status: string;
  created_at: number;
  updated_at: number;
  finalized_at: number | null;
  cancel_requested_at: number | null;
  finished_at: number | null;
  failure: string | null;
  next_idx: number;
  work_due_at: number | null;
  create_failing_since: number | null;
  registry_told: number | null;
};

export function loadBatch(sql: SqlStorage): BatchRecord | null {
  const r = sql.exec<BatchRow>("SELECT * FROM batch LIMIT 1").toArray()[0];
  if (!r) return null;
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    endpointGen: r.endpoint_gen,
    name: r.name,
    webhook: r.webhook,
    status: r.status as BatchStatus,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finalizedAt: r.finalized_at,
    cancelRequestedAt: r.cancel_requested_at,
    finishedAt: r.finished_at,
    failure: r.failure,
    nextIdx: r.next_idx,
    workDueAt: r.work_due_at,
    createFailingSince: r.create_failing_since,
    registryTold: r.registry_told === null ? null : r.registry_told === 1,
  };
}

export function saveBatch(sql: SqlStorage, b: BatchRecord): void {
  sql.exec(
    `INSERT OR REPLACE INTO batch (id, endpoint_id, endpoint_gen, name, webhook, status, created_at, updated_at, finalized_at,
       cancel_requested_at, finished_at, failure, next_idx, work_due_at, create_failing_since, registry_told)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    b.id,
    b.endpointId,
    b.endpointGen,
    b.name,
    b.webhook,
    b.status,
    b.createdAt,
    b.updatedAt,
    b.finalizedAt,
    b.cancelRequestedAt,
    b.finishedAt,
    b.failure,
    b.nextIdx,
    b.workDueAt,
    b.createFailingSince,
    b.registryTold === null ? null : b.registryTold ? 1 : 0,
  );
}

/**
 * The child list's order (RUNPOD-WIRE-2 §1.8, the console's): failures first, then running, then
 * waiting, then completed; cancelled last. Within a group, by the order of addition.
 */
export function rankOf(state: JobState): number {
  switch (state) {
    case "FAILED":
    case "TIMED_OUT":
      return 0;
    case "IN_PROGRESS":
    case "CANCELLING":
      return 1;
    case "PAUSED":
    case "SCHEDULED":
    case "SEQUENCED":
    case "IN_QUEUE":
      return 2;
    case "COMPLETED":
    case "ERROR":
      return 3;
    case "CANCELLED":
      return 4;
  }
}

function bump(sql: SqlStorage, state: JobState, by: number): void {
  sql.exec("INSERT INTO child_count (state, n) VALUES (?, ?) ON CONFLICT (state) DO UPDATE SET n = n + excluded.n", state, by);
}

const bodyBlob = (idx: number) => `body:${idx}`;

/** Adds held (not yet created) children, each with its /run body; the caller holds the transaction. */
export function insertChildren(sql: SqlStorage, first: number, children: ReadonlyArray<{ jobId: string; body: Uint8Array }>): void {
  children.forEach((c, i) => {
    sql.exec("INSERT INTO child (idx, job_id, state, rank, body_bytes) VALUES (?, ?, 'IN_QUEUE', ?, ?)", first + i, c.jobId, rankOf("IN_QUEUE"), c.body.byteLength);
    writeBlob(sql, bodyBlob(first + i), c.body);
  });
  if (children.length > 0) bump(sql, "IN_QUEUE", children.length);
}

type ChildDbRow = {
  idx: number;
  job_id: string;
  created: number;
  state: string;
  version: number;
  started_at: number | null;
  completed_at: number | null;
  error: string | null;
  output: ArrayBuffer | null;
  output_bytes: number;
  body_bytes: number;
};

const toChild = (r: ChildDbRow): ChildRow => ({
  idx: r.idx,
  jobId: r.job_id,
  created: r.created === 1,
  state: r.state as JobState,
  version: r.version,
  startedAt: r.started_at,
  completedAt: r.completed_at,
  error: r.error,
  output: r.output === null ? null : new Uint8Array(r.output),
  outputBytes: r.output_bytes,
});

export function childByJob(sql: SqlStorage, jobId: string): ChildRow | null {
  const r = sql.exec<ChildDbRow>("SELECT * FROM child WHERE job_id = ?", jobId).toArray()[0];
  return r ? toChild(r) : null;
}

/** Removes a held child (a DRAFT's) and its body. */
export function removeChild(sql: SqlStorage, child: ChildRow): void {
  sql.exec("DELETE FROM child WHERE idx = ?", child.idx);
  deleteBlob(sql, bodyBlob(child.idx));
  bump(sql, child.state, -1);
}

/** Held children, oldest first, as many as `count` and (always at least one) `maxBytes` of bodies allow. */
export function heldChildren(sql: SqlStorage, count: number, maxBytes: number): Array<{ idx: number; jobId: string; body: Uint8Array }> {
  const rows = sql
    .exec<{ idx: number; job_id: string; body_bytes: number }>("SELECT idx, job_id, body_bytes FROM child WHERE created = 0 AND state = 'IN_QUEUE' ORDER BY idx LIMIT ?", count)
    .toArray();
  const out: Array<{ idx: number; jobId: string; body: Uint8Array }> = [];
  let bytes = 0;
  for (const r of rows) {
    if (out.length > 0 && bytes + r.body_bytes > maxBytes) break;
    bytes += r.body_bytes;
    out.push({ idx: r.idx, jobId: r.job_id, body: readBlob(sql, bodyBlob(r.idx)) ?? new Uint8Array() });
  }
  return out;
}

export function hasHeldChildren(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM child WHERE created = 0 AND state = 'IN_QUEUE' LIMIT 1").toArray().length > 0;
}

/** The child's job exists: its held body is dropped (once). */
function dropBody(sql: SqlStorage, idx: number): void {
  sql.exec("UPDATE child SET created = 1, body_bytes = 0 WHERE idx = ? AND created = 0", idx);
  deleteBlob(sql, bodyBlob(idx));
}

/**
 * The child's job now exists: its body is dropped, and `note` (what its submit answered) applied
 * if newer than a tell's. Null when the submit found the job already further along: its own tells
 * bring that state (with its output), which a note without the output must not shadow.
 */
export function markCreated(sql: SqlStorage, idx: number, note: ChildNote | null): void {
  dropBody(sql, idx);
  if (note !== null) applyNote(sql, note);
}

/** Bytes of request bodies held (not yet jobs). */
export function heldBytes(sql: SqlStorage): number {
  return sql.exec<{ b: number | null }>("SELECT SUM(body_bytes) AS b FROM child").one().b ?? 0;
}

/** Every held child is cancelled (it never becomes a job); returns how many and their body bytes. */
export function cancelHeld(sql: SqlStorage, now: number): number {
  const r = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM child WHERE created = 0 AND state = 'IN_QUEUE'").one();
  if (r.n === 0) return 0;
  sql.exec("UPDATE child SET state = 'CANCELLED', rank = ?, completed_at = ?, body_bytes = 0 WHERE created = 0 AND state = 'IN_QUEUE'", rankOf("CANCELLED"), now);
  sql.exec("DELETE FROM blob WHERE name LIKE 'body:%'");
  bump(sql, "IN_QUEUE", -r.n);
  bump(sql, "CANCELLED", r.n);
  return r.n;
}

/**
 * Applies what a child's job says of itself when it is newer than what the batch has (a repeat or
 * an older note changes nothing). Moves the counts. Returns whether it applied.
 */
export function applyNote(sql: SqlStorage, note: ChildNote): boolean {
  const r = sql.exec<{ idx: number; state: string; version: number; created: number }>("SELECT idx, state, version, created FROM child WHERE job_id = ?", note.jobId).toArray()[0];
  if (!r || note.version <= r.version) return false;
  // A note proves the job exists, even before its submit's answer was recorded.
  if (r.created === 0) dropBody(sql, r.idx);
  const terminalOutput = note.output === null ? null : note.output.slice().buffer;
  sql.exec(
    `UPDATE child SET created = 1, state = ?, rank = ?, version = ?, started_at = ?, completed_at = ?, error = ?, output = ?, output_bytes = ?
     WHERE idx = ?`,
    note.state,
    rankOf(note.state),
    note.version,
    note.startedAt,
    note.completedAt,
    note.error,
    terminalOutput,
    note.outputBytes,
    r.idx,
  );
  if (r.state !== note.state) {
    bump(sql, r.state as JobState, -1);
    bump(sql, note.state, 1);
  }
  return true;
}

/** Children known to wait for a worker (as last heard), after index `afterIdx`: a cancelled batch cancels them. */
export function waitingChildren(sql: SqlStorage, afterIdx: number, limit: number): Array<{ idx: number; jobId: string; version: number }> {
  return sql
    .exec<{ idx: number; job_id: string; version: number }>(
      "SELECT idx, job_id, version FROM child WHERE created = 1 AND rank = ? AND idx > ? ORDER BY idx LIMIT ?",
      rankOf("IN_QUEUE"),
      afterIdx,
      limit,
    )
    .toArray()
    .map((r) => ({ idx: r.idx, jobId: r.job_id, version: r.version }));
}

export function countsOf(sql: SqlStorage): ChildCounts {
  const by = new Map(sql.exec<{ state: string; n: number }>("SELECT state, n FROM child_count").toArray().map((r) => [r.state, r.n]));
  const n = (s: JobState) => by.get(s) ?? 0;
  const queued = n("IN_QUEUE") + n("SEQUENCED") + n("SCHEDULED") + n("PAUSED");
  const inProgress = n("IN_PROGRESS") + n("CANCELLING");
  // An ERROR job reads COMPLETED (it ran; its error is set).
  const completed = n("COMPLETED") + n("ERROR");
  const failed = n("FAILED") + n("TIMED_OUT");
  const cancelled = n("CANCELLED");
  return { total: queued + inProgress + completed + failed + cancelled, queued, inProgress, completed, failed, cancelled };
}

/** The counts recounted from the child rows (a check of the kept counts, for tests). */
export function recount(sql: SqlStorage): Record<string, number> {
  return Object.fromEntries(sql.exec<{ state: string; n: number }>("SELECT state, COUNT(*) AS n FROM child GROUP BY state").toArray().map((r) => [r.state, r.n]));
}

/** A page of the child list in its order (see rankOf), with `total`. */
export function childPage(sql: SqlStorage, offset: number, limit: number): { rows: ChildRow[]; total: number } {
  const total = sql.exec<{ n: number }>("SELECT COALESCE(SUM(n), 0) AS n FROM child_count").one().n;
  const rows = sql.exec<ChildDbRow>("SELECT * FROM child ORDER BY rank, idx LIMIT ? OFFSET ?", limit, offset).toArray().map(toChild);
  return { rows, total };
}
