/**
 * The job row and its history in the job object's SQLite: the one place rows become records.
 */
import type { AcceptedReport, Dispatch, EndReason, HistoryEvent, Idempotency, JobExtras, JobKind, JobPolicy, JobRecord, TaskLink } from "./record";
import type { JobState } from "./states";
import { WORKER_BOUNDS } from "../shared/limits";

type JobRow = {
  id: string;
  endpoint_id: string;
  endpoint_gen: string | null;
  kind: string;
  state: string;
  version: number;
  policy: string;
  webhook: string | null;
  idempotency: string | null;
  gone: number;
  sequence_key: string | null;
  sequence_check_at: number | null;
  origin: string | null;
  dispatch: string | null;
  attempt: number;
  retries: number;
  worker_id: string | null;
  failed_workers: string;
  stop_for: string | null;
  last_report: string | null;
  error: string | null;
  reason: string | null;
  has_output: number;
  created_at: number;
  queued_at: number;
  started_at: number | null;
  completed_at: number | null;
  ttl_at: number;
  exec_deadline: number | null;
  lease_check_at: number | null;
  cancel_deadline: number | null;
  purge_at: number | null;
  index_due_at: number | null;
  shard: number;
  batch_id: string | null;
  extras: string | null;
  ready_at: number | null;
  flow_key: string | null;
  paused: number | null;
  phase: string | null;
  task: string | null;
};

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    endpointGen: row.endpoint_gen,
    shard: row.shard,
    kind: row.kind as JobKind,
    state: row.state as JobState,
    version: row.version,
    policy: { retryOnError: false, ...(JSON.parse(row.policy) as Partial<JobPolicy>) } as JobPolicy,
    webhook: row.webhook,
    idempotency: row.idempotency === null ? null : (JSON.parse(row.idempotency) as Idempotency),
    gone: row.gone === 1,
    sequenceKey: row.sequence_key,
    sequenceCheckAt: row.sequence_check_at,
    batchId: row.batch_id,
    task: row.task ? (JSON.parse(row.task) as TaskLink) : null,
    extras: row.extras === null ? null : (JSON.parse(row.extras) as JobExtras),
    readyAt: row.ready_at ?? null,
    flowKey: row.flow_key ?? null,
    paused: row.paused === 1,
    phase: row.phase === "initializing" ? "initializing" : null,
    origin: row.origin,
    dispatch: row.dispatch === null ? null : (JSON.parse(row.dispatch) as Dispatch),
    attempt: row.attempt,
    retries: row.retries,
    workerId: row.worker_id,
    failedWorkers: JSON.parse(row.failed_workers) as string[],
    stopFor: row.stop_for,
    lastReport: row.last_report === null ? null : (JSON.parse(row.last_report) as AcceptedReport),
    error: row.error,
    reason: row.reason as EndReason | null,
    hasOutput: row.has_output === 1,
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    ttlAt: row.ttl_at,
    execDeadline: row.exec_deadline,
    leaseCheckAt: row.lease_check_at,
    cancelDeadline: row.cancel_deadline,
    purgeAt: row.purge_at,
  };
}

export interface StoredJob {
  job: JobRecord;
  /** When the endpoint's index must next be told of this job's state (null: it is up to date). */
  indexDueAt: number | null;
}

/**
 * The job row as last read, per job object's storage (issue 12: a command read it three times,
 * each a query and a parse). Only the object itself writes its row: saveJob forgets it,
 * setIndexDue keeps it up to date, and a rolled-back transaction (inJobTransaction) and deleteAll
 * forget it (forgetJob). Records are never changed in place (commands return new ones).
 */
const rows = new WeakMap<SqlStorage, StoredJob | null>();

export function loadJob(sql: SqlStorage): StoredJob | null {
  const cached = rows.get(sql);
  if (cached !== undefined) return cached;
  const row = sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0];
  const stored = row ? { job: toRecord(row), indexDueAt: row.index_due_at } : null;
  rows.set(sql, stored);
  return stored;
}

/** Forgets what this storage's job row and tells were (its storage was deleted, or a write rolled back). */
export function forgetJob(sql: SqlStorage): void {
  rows.delete(sql);
  forgetCached(sql);
}

/** Runs `fn` in one storage transaction; a failed one rolls back, and what was read of the row is forgotten. */
export function inJobTransaction<T>(storage: DurableObjectStorage, sql: SqlStorage, fn: () => T): T {
  try {
    return storage.transactionSync(fn);
  } catch (e) {
    forgetJob(sql);
    throw e;
  }
}

/** Per storage, other values of the job row read through `cachedField` (the liveness tells); forgotten with the row. */
const fields = new WeakMap<SqlStorage, Map<string, unknown>>();

/** `read()` once per storage until `setCachedField` or `forgetJob`. */
export function cachedField<T>(sql: SqlStorage, name: string, read: () => T): T {
  const m = fields.get(sql);
  if (m?.has(name)) return m.get(name) as T;
  const v = read();
  setCachedField(sql, name, v);
  return v;
}

export function setCachedField(sql: SqlStorage, name: string, value: unknown): void {
  const m = fields.get(sql) ?? new Map<string, unknown>();
  m.set(name, value);
  fields.set(sql, m);
}

function forgetCached(sql: SqlStorage): void {
  fields.delete(sql);
}

export function saveJob(sql: SqlStorage, job: JobRecord, indexDueAt: number | null): void {
  // Forgotten, not kept: the next read gives the record as a read does (its defaults filled in).
  rows.delete(sql);
  sql.exec(
    `INSERT OR REPLACE INTO job (id, endpoint_id, kind, state, version, policy, webhook, attempt, retries,
       worker_id, failed_workers, stop_for, last_report, error, reason, has_output, created_at, queued_at,
       started_at, completed_at, ttl_at, exec_deadline, lease_check_at, cancel_deadline, purge_at, index_due_at,
       idempotency, gone, sequence_key, sequence_check_at, origin, dispatch, endpoint_gen, shard, batch_id, extras, ready_at, flow_key, paused, phase, task, stream_read, liveness_tells)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
       COALESCE((SELECT stream_read FROM job), 0), (SELECT liveness_tells FROM job))`,
    job.id,
    job.endpointId,
    job.kind,
    job.state,
    job.version,
    JSON.stringify(job.policy),
    job.webhook,
    job.attempt,
    job.retries,
    job.workerId,
    JSON.stringify(job.failedWorkers),
    job.stopFor,
    job.lastReport === null ? null : JSON.stringify(job.lastReport),
    job.error,
    job.reason,
    job.hasOutput ? 1 : 0,
    job.createdAt,
    job.queuedAt,
    job.startedAt,
    job.completedAt,
    job.ttlAt,
    job.execDeadline,
    job.leaseCheckAt,
    job.cancelDeadline,
    job.purgeAt,
    indexDueAt,
    job.idempotency === null ? null : JSON.stringify(job.idempotency),
    job.gone ? 1 : 0,
    job.sequenceKey,
    job.sequenceCheckAt,
    job.origin,
    job.dispatch === null ? null : JSON.stringify(job.dispatch),
    job.endpointGen,
    job.shard,
    job.batchId,
    job.extras === null ? null : JSON.stringify(job.extras),
    job.readyAt ?? null,
    job.flowKey ?? null,
    job.paused ? 1 : 0,
    job.phase,
    job.task === null ? null : JSON.stringify(job.task),
  );
}

export function setIndexDue(sql: SqlStorage, indexDueAt: number | null, version: number): void {
  const before = rows.get(sql);
  rows.delete(sql);
  sql.exec("UPDATE job SET index_due_at = ? WHERE version = ?", indexDueAt, version);
  if (before) rows.set(sql, before.job.version === version ? { job: before.job, indexDueAt } : before);
}

export function appendHistory(sql: SqlStorage, e: HistoryEvent): void {
  sql.exec(
    "INSERT INTO history (at, command, from_state, to_state, attempt, worker_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
    e.at,
    e.command,
    e.from,
    e.to,
    e.attempt,
    e.workerId,
    e.detail === null ? null : e.detail.slice(0, 2000),
  );
}

/** The one line that counts the refused reports past the ones kept line by line. */
const MORE_REFUSALS = "refused (more)";

/**
 * A refused worker report, kept for inspection. Anyone with the worker key can send them without
 * end, so a job keeps the first `refusalLinesPerJob` line by line and then one line that counts
 * the rest (moved to the end each time, naming the latest); its transitions are never pushed out.
 */
export function appendRefusal(sql: SqlStorage, e: HistoryEvent): void {
  const kept = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM history WHERE command LIKE 'refused %' AND command != ?", MORE_REFUSALS).one().n;
  if (kept < WORKER_BOUNDS.refusalLinesPerJob) {
    appendHistory(sql, e);
    return;
  }
  const previous = sql.exec<{ detail: string | null }>("SELECT detail FROM history WHERE command = ?", MORE_REFUSALS).toArray()[0];
  const more = Number(/^(\d+) /.exec(previous?.detail ?? "")?.[1] ?? 0) + 1;
  sql.exec("DELETE FROM history WHERE command = ?", MORE_REFUSALS);
  const latest = `${e.command.slice("refused ".length)}${e.workerId === null ? "" : ` from ${e.workerId}`}: ${e.detail ?? ""}`;
  appendHistory(sql, { ...e, command: MORE_REFUSALS, detail: `${more} more refused reports not kept line by line; the latest: ${latest}` });
}

/**
 * The history, oldest first: every transition and the refused reports as kept above, up to the
 * latest HISTORY_READ_LINES (a job requeued without end would otherwise answer without bound).
 */
const HISTORY_READ_LINES = 1000;

export function readHistory(sql: SqlStorage): HistoryEvent[] {
  return sql
    .exec<{
      at: number;
      command: string;
      from_state: string;
      to_state: string;
      attempt: number;
      worker_id: string | null;
      detail: string | null;
    }>("SELECT * FROM (SELECT * FROM history ORDER BY seq DESC LIMIT ?) ORDER BY seq", HISTORY_READ_LINES)
    .toArray()
    .map((r) => ({
      at: r.at,
      command: r.command,
      from: r.from_state as JobState,
      to: r.to_state as JobState,
      attempt: r.attempt,
      workerId: r.worker_id,
      detail: r.detail,
    }));
}
