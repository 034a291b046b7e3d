/**
 * A job of tasks' rows in its object's SQLite: the one place rows become records. Every change
 * of a task's bucket goes through moveTask, which keeps `task_count` exact (tests recount).
 */
import type { JobState } from "../jobs/states";
import type { TaskNote } from "../jobs/task-tell";
import { readBlob, writeBlob } from "../shared/blobs";
import { GRAPH } from "../shared/limits";
import { bucketOfJob, bucketUncreated, type Bucket, type GraphRecord, type TaskRow, type Want } from "./record";

type Row = {
  idx: number;
  name: string;
  bucket: string;
  tags: string | null;
  max_attempts: number | null;
  deps_left: number;
  job_id: string;
  created: number;
  job_state: string | null;
  version: number;
  attempt: number;
  worker_id: string | null;
  started_at: number | null;
  completed_at: number | null;
  error: string | null;
  output_bytes: number;
  failed_workers: string;
  told: string;
  blocked_told: number;
  busy_told: number;
  exit_code: number | null;
  tries: number;
};

const COLUMNS = "idx, name, bucket, tags, max_attempts, deps_left, job_id, created, job_state, version, attempt, worker_id, started_at, completed_at, error, output_bytes, failed_workers, told, blocked_told, busy_told, exit_code, tries";

function toTask(r: Row): TaskRow {
  return {
    idx: r.idx,
    name: r.name,
    bucket: r.bucket as Bucket,
    tags: r.tags === null ? null : (JSON.parse(r.tags) as string[]),
    maxAttempts: r.max_attempts,
    depsLeft: r.deps_left,
    jobId: r.job_id,
    created: r.created === 1,
    jobState: r.job_state as JobState | null,
    version: r.version,
    attempt: r.attempt,
    workerId: r.worker_id,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    error: r.error,
    outputBytes: r.output_bytes,
    failedWorkers: JSON.parse(r.failed_workers) as string[],
    told: r.told as Want,
    blockedTold: r.blocked_told,
    busyTold: r.busy_told,
    exitCode: r.exit_code,
    tries: r.tries,
  };
}

export function loadGraph(sql: SqlStorage): GraphRecord | null {
  const row = sql.exec<{ data: string }>("SELECT data FROM graph LIMIT 1").toArray()[0];
  return row ? (JSON.parse(row.data) as GraphRecord) : null;
}

export function saveGraph(sql: SqlStorage, g: GraphRecord): void {
  sql.exec("INSERT OR REPLACE INTO graph (id, data) VALUES (?, ?)", g.id, JSON.stringify(g));
}

/** A task as submitted: its place, name, dependencies (places), own tags and attempts, input bytes. */
export interface NewTask {
  idx: number;
  name: string;
  deps: number[];
  tags: string[] | null;
  maxAttempts: number | null;
  /** Null: the input of task 0 (replicas share one). */
  input: Uint8Array | null;
}

/** Stores the submitted tasks, blocked or ready, with their dependencies and inputs. */
export function insertTasks(sql: SqlStorage, tasks: readonly NewTask[], jobIdOf: (idx: number) => string): void {
  for (const t of tasks) {
    const bucket = bucketUncreated(t.deps.length);
    sql.exec(
      "INSERT INTO task (idx, name, bucket, tags, max_attempts, deps_left, job_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      t.idx,
      t.name,
      bucket,
      t.tags === null ? null : JSON.stringify(t.tags),
      t.maxAttempts,
      t.deps.length,
      jobIdOf(t.idx),
    );
    for (const d of t.deps) sql.exec("INSERT INTO edge (to_idx, from_idx) VALUES (?, ?)", t.idx, d);
    if (t.input !== null) writeBlob(sql, `input:${t.idx}`, t.input);
    addCount(sql, bucket, 1);
  }
}

function addCount(sql: SqlStorage, bucket: Bucket, n: number): void {
  if (n === 0) return;
  sql.exec("INSERT INTO task_count (bucket, n) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET n = n + excluded.n", bucket, n);
}

/** Moves every task in `from` matching `where` to `to`, keeping the counts; returns how many moved. */
function moveAll(sql: SqlStorage, from: Bucket, to: Bucket, where = "1", ...args: (string | number)[]): number {
  // Counted from the rows returned: rowsWritten counts index writes too.
  const moved = sql.exec(`UPDATE task SET bucket = ? WHERE bucket = ? AND ${where} RETURNING idx`, to, from, ...args).toArray().length;
  addCount(sql, from, -moved);
  addCount(sql, to, moved);
  return moved;
}

export function countsByBucket(sql: SqlStorage): Map<Bucket, number> {
  return new Map(sql.exec<{ bucket: string; n: number }>("SELECT bucket, n FROM task_count").toArray().map((r) => [r.bucket as Bucket, r.n]));
}

/** The counts recounted from the rows (tests check they agree with countsByBucket). */
export function recount(sql: SqlStorage): Map<Bucket, number> {
  return new Map(sql.exec<{ bucket: string; n: number }>("SELECT bucket, COUNT(*) AS n FROM task GROUP BY bucket").toArray().map((r) => [r.bucket as Bucket, r.n]));
}

export function taskByName(sql: SqlStorage, name: string): TaskRow | null {
  const r = sql.exec<Row>(`SELECT ${COLUMNS} FROM task WHERE name = ?`, name).toArray()[0];
  return r ? toTask(r) : null;
}

/** A task's input (a replica's: the one input of its job, stored with replica 0). */
export function taskInput(sql: SqlStorage, idx: number): Uint8Array {
  return readBlob(sql, `input:${idx}`) ?? readBlob(sql, "input:0") ?? new Uint8Array();
}

export function taskOutput(sql: SqlStorage, idx: number): Uint8Array | null {
  const r = sql.exec<{ output: ArrayBuffer | null }>("SELECT output FROM task WHERE idx = ?", idx).toArray()[0];
  return r?.output ? new Uint8Array(r.output) : null;
}

/** Ready tasks, in submit order, at most `limit`. */
export function readyTasks(sql: SqlStorage, limit: number): TaskRow[] {
  return sql.exec<Row>(`SELECT ${COLUMNS} FROM task WHERE bucket = 'ready' ORDER BY idx LIMIT ?`, limit).toArray().map(toTask);
}

const UNFINISHED_CREATED = "bucket IN ('queued', 'soft-failed', 'paused', 'active')";

/**
 * Tasks whose job may not have been told the job's want, blocklist or busy workers yet (marked by
 * dueToTell, cleared by markTold once it has heard all), after place `after`: a partial index, so
 * the alarm's look costs nothing while nothing is due, however many tasks wait.
 */
export function tasksToTell(sql: SqlStorage, after: number, limit: number): TaskRow[] {
  return sql.exec<Row>(`SELECT ${COLUMNS} FROM task INDEXED BY task_tell WHERE tell_due = 1 AND idx > ? ORDER BY idx LIMIT ?`, after, limit).toArray().map(toTask);
}

/** The job's want, blocklist or busy workers changed: every unfinished task's job is to be told. */
export function dueToTell(sql: SqlStorage): void {
  sql.exec(`UPDATE task SET tell_due = 1 WHERE created = 1 AND ${UNFINISHED_CREATED} AND tell_due = 0`);
}

/** What a task's job heard; it stays due while that is not all the job has to tell (`complete` false). */
export function markTold(sql: SqlStorage, t: Pick<TaskRow, "idx" | "jobId">, told: { want: Want; blocked: number; busy: number }, complete: boolean): void {
  // By job too: a row renamed meanwhile (a requeue, a replica's fresh job) has not heard this.
  sql.exec("UPDATE task SET told = ?, blocked_told = ?, busy_told = ?, tell_due = ? WHERE idx = ? AND job_id = ?", told.want, told.blocked, told.busy, complete ? 0 : 1, t.idx, t.jobId);
}

/** Tasks whose job was created and waits (not yet started): a job of replicas creates the next replica only when none does. */
export function waitingCreated(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COALESCE(SUM(n), 0) AS n FROM task_count WHERE bucket IN ('queued', 'soft-failed', 'paused')").one().n;
}

/** Tasks that started in this run (a job of replicas is IN_PROGRESS once all did). */
export function startedCount(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM task WHERE started_at IS NOT NULL").one().n;
}

/**
 * A task's job was created (in `state` at `version`), told `want` and `blocked` workers. A note of
 * that job that came first (a worker took it at once) made the task created already: then nothing
 * changes. "orphan": the job must be cancelled at once, nobody tracking it: the row names another
 * job (a requeue renamed it meanwhile), or the task was canceled while its job was being created.
 */
export function markCreated(sql: SqlStorage, t: TaskRow, state: JobState, version: number, told: { want: Want; blocked: number; busy: number }, due: boolean): "created" | "orphan" {
  const row = sql.exec<{ bucket: string; created: number; job_id: string }>("SELECT bucket, created, job_id FROM task WHERE idx = ?", t.idx).toArray()[0];
  if (!row || row.job_id !== t.jobId) return "orphan";
  if (row.bucket === "canceled") {
    sql.exec("UPDATE task SET created = 1 WHERE idx = ?", t.idx);
    return "orphan";
  }
  if (row.created === 1) return "created";
  const bucket = bucketOfJob(state, 0);
  sql.exec("UPDATE task SET created = 1, bucket = ?, job_state = ?, version = ?, told = ?, blocked_told = ?, busy_told = ?, tell_due = ? WHERE idx = ?", bucket, state, version, told.want, told.blocked, told.busy, due ? 1 : 0, t.idx);
  addCount(sql, row.bucket as Bucket, -1);
  addCount(sql, bucket, 1);
  return "created";
}

/** What a task's note changed: whether anything, the workers that just reached the blocklist threshold. */
export interface NoteEffect {
  changed: boolean;
  blockedNow: string[];
}

/**
 * A task's job told its state (JobCore.tellAll). A note from another run's job, or no newer than
 * the last, changes nothing. A task that completes makes the tasks waiting on it one dependency
 * closer to ready; a worker that failed an attempt counts once per task against the threshold.
 */
export function applyNote(sql: SqlStorage, name: string, note: TaskNote, threshold: number): NoteEffect {
  const t = taskByName(sql, name);
  // A note can come before the alarm marks its job created (a worker took it at once): it is created.
  if (!t || t.jobId !== note.jobId || note.version <= t.version) return { changed: false, blockedNow: [] };
  // A completed task stays completed (its job cannot run again on its own: commands.requeue refuses).
  // A completed task stays completed; one canceled before its job was created stays canceled (that job is cancelled: markCreated).
  const bucket = t.bucket === "completed" ? "completed" : t.bucket === "canceled" && !t.created ? "canceled" : bucketOfJob(note.state, note.attempt);
  // A job's failedWorkers lists the attempts that went back to the queue; its final failed attempt's
  // worker (no attempt left) failed the task too (found from outside).
  const reported = note.failedWorkers.length >= t.failedWorkers.length ? note.failedWorkers : t.failedWorkers;
  const lastFailed = bucket === "failed" && note.workerId !== null && note.attempt > 0 && reported.length < note.attempt;
  const failed = lastFailed ? [...reported, note.workerId!] : reported;
  sql.exec(
    `UPDATE task SET created = 1, tell_due = CASE WHEN created = 0 THEN 1 ELSE tell_due END, bucket = ?, job_state = ?, version = ?, attempt = ?,
       worker_id = ?, started_at = ?, completed_at = ?, error = ?, output = ?, output_bytes = ?, failed_workers = ?, exit_code = ? WHERE idx = ?`,
    bucket,
    note.state,
    note.version,
    note.attempt,
    note.workerId,
    note.startedAt,
    note.completedAt,
    note.error,
    note.output === null ? null : note.output.slice().buffer,
    note.outputBytes,
    JSON.stringify(failed),
    note.exitCode ?? null,
    t.idx,
  );
  if (bucket !== t.bucket) {
    addCount(sql, t.bucket, -1);
    addCount(sql, bucket, 1);
  }
  if (bucket === "completed" && t.bucket !== "completed") {
    sql.exec("UPDATE task SET deps_left = deps_left - 1 WHERE idx IN (SELECT to_idx FROM edge WHERE from_idx = ?)", t.idx);
    moveAll(sql, "blocked", "ready", "deps_left = 0 AND idx IN (SELECT to_idx FROM edge WHERE from_idx = ?)", t.idx);
  }
  const blockedNow: string[] = [];
  const before = new Set(t.failedWorkers);
  for (const w of new Set(failed)) {
    if (before.has(w)) continue;
    const n = sql.exec<{ failures: number }>("INSERT INTO worker_failure (worker_id, failures) VALUES (?, 1) ON CONFLICT (worker_id) DO UPDATE SET failures = failures + 1 RETURNING failures", w).one().failures;
    if (n === threshold) blockedNow.push(w);
  }
  return { changed: true, blockedNow };
}

/** Workers with their failed tasks, most first (at most `limit`). */
export function workerFailures(sql: SqlStorage, limit: number): { workerId: string; failedTasks: number }[] {
  return sql.exec<{ worker_id: string; failures: number }>("SELECT worker_id, failures FROM worker_failure ORDER BY failures DESC, worker_id LIMIT ?", limit).toArray().map((r) => ({ workerId: r.worker_id, failedTasks: r.failures }));
}

/** A cancel: tasks whose job was never created are canceled at once; returns how many. */
export function cancelUncreated(sql: SqlStorage): number {
  return moveAll(sql, "blocked", "canceled") + moveAll(sql, "ready", "canceled");
}

/**
 * A requeue: each failed or canceled task gets a fresh job (named for the new run) and waits again,
 * ready or blocked by what it still waits on; completed tasks stay. The workers' failures are
 * forgotten (the graph's blocklist starts over, as a plain job's does). Returns how many.
 */
export function requeueUnfinished(sql: SqlStorage, jobIdOf: (idx: number) => string, all = false): number {
  // A job of replicas runs all of them again (they run together), a job of tasks those that did not complete.
  const which = all ? "bucket IN ('failed', 'canceled', 'completed')" : "bucket IN ('failed', 'canceled')";
  const rows = sql.exec<{ idx: number; bucket: string; deps_left: number }>(`SELECT idx, bucket, deps_left FROM task WHERE ${which}`).toArray();
  for (const r of rows) {
    const bucket = bucketUncreated(r.deps_left);
    sql.exec(
      `UPDATE task SET bucket = ?, job_id = ?, created = 0, job_state = NULL, version = 0, attempt = 0, worker_id = NULL, started_at = NULL,
         completed_at = NULL, error = NULL, output = NULL, output_bytes = 0, failed_workers = '[]', told = 'run', blocked_told = 0, busy_told = 0, exit_code = NULL, tries = 0, tell_due = 0 WHERE idx = ?`,
      bucket,
      jobIdOf(r.idx),
      r.idx,
    );
    addCount(sql, r.bucket as Bucket, -1);
    addCount(sql, bucket, 1);
  }
  // Tasks not yet handed out are named for the new run too (their job is created under its name).
  for (const r of sql.exec<{ idx: number }>("SELECT idx FROM task WHERE created = 0 AND bucket IN ('blocked', 'ready')").toArray()) {
    sql.exec("UPDATE task SET job_id = ?, tries = 0, error = NULL WHERE idx = ?", jobIdOf(r.idx), r.idx);
  }
  sql.exec("DELETE FROM worker_failure");
  return rows.length;
}

/** The first failed task (by place), for the job's error. */
export function firstFailed(sql: SqlStorage): { name: string; error: string | null; jobState: string | null } | null {
  const r = sql.exec<{ name: string; error: string | null; job_state: string | null }>("SELECT name, error, job_state FROM task WHERE bucket = 'failed' ORDER BY idx LIMIT 1").toArray()[0];
  return r ? { name: r.name, error: r.error, jobState: r.job_state } : null;
}

/** A page of tasks in submit order (only `bucket`s when given), with their dependencies' names and those not completed. */
export function taskPage(sql: SqlStorage, offset: number, limit: number, buckets: readonly Bucket[] | null): { rows: TaskRow[]; total: number } {
  const where = buckets === null ? "1" : `bucket IN (${buckets.map(() => "?").join(", ")})`;
  const args = buckets ?? [];
  const rows = sql.exec<Row>(`SELECT ${COLUMNS} FROM task WHERE ${where} ORDER BY idx LIMIT ? OFFSET ?`, ...args, limit, offset).toArray().map(toTask);
  const total = sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM task WHERE ${where}`, ...args).one().n;
  return { rows, total };
}

/** The names of the tasks `idx` depends on, and of those among them not completed. */
export function dependencies(sql: SqlStorage, idx: number): { dependsOn: string[]; waitingFor: string[] } {
  const rows = sql.exec<{ name: string; bucket: string }>("SELECT t.name, t.bucket FROM edge e JOIN task t ON t.idx = e.from_idx WHERE e.to_idx = ? ORDER BY t.idx", idx).toArray();
  return { dependsOn: rows.map((r) => r.name), waitingFor: rows.filter((r) => r.bucket !== "completed").map((r) => r.name) };
}

/** Completed tasks' outputs by name when all were copied and total at most GRAPH.statusOutputBytes; null otherwise. */
export function outputsByName(sql: SqlStorage): Map<string, Uint8Array | null> | null {
  const total = sql.exec<{ n: number; big: number }>(`SELECT COALESCE(SUM(output_bytes), 0) AS n, COALESCE(MAX(output_bytes), 0) AS big FROM task WHERE bucket = 'completed'`).one();
  if (total.n > GRAPH.statusOutputBytes || total.big > GRAPH.outputCopyBytes) return null;
  const out = new Map<string, Uint8Array | null>();
  for (const r of sql.exec<{ name: string; output: ArrayBuffer | null }>("SELECT name, output FROM task WHERE bucket = 'completed' ORDER BY idx")) {
    out.set(r.name, r.output === null ? null : new Uint8Array(r.output));
  }
  return out;
}

/** Each task's exit code in place order (null: its result carried none, or it has none yet). */
export function exitCodes(sql: SqlStorage): (number | null)[] {
  return sql.exec<{ exit_code: number | null }>("SELECT exit_code FROM task ORDER BY idx").toArray().map((r) => r.exit_code);
}

/**
 * A replica's job failed and its policy allows another: the replica gets a fresh job (`jobId`,
 * created by the alarm once no other created replica waits, so it is created knowing every
 * worker that took one), and waits ready again. Its failed job's worker stays busy for it.
 */
export function renewTask(sql: SqlStorage, idx: number, jobId: string): void {
  const row = sql.exec<{ bucket: string }>("SELECT bucket FROM task WHERE idx = ?", idx).toArray()[0];
  if (!row) return;
  sql.exec(
    `UPDATE task SET bucket = 'ready', job_id = ?, created = 0, job_state = NULL, version = 0, attempt = 0, worker_id = NULL, started_at = NULL,
       completed_at = NULL, error = NULL, output = NULL, output_bytes = 0, told = 'run', blocked_told = 0, busy_told = 0, exit_code = NULL, tries = tries + 1, tell_due = 0 WHERE idx = ?`,
    jobId,
    idx,
  );
  addCount(sql, row.bucket as Bucket, -1);
  addCount(sql, "ready", 1);
}

/** The first task (by place) that ran with errors (its job ended ERROR: a result with a non-zero exit code). */
export function firstErrored(sql: SqlStorage): { name: string; error: string | null; exitCode: number | null } | null {
  const r = sql.exec<{ name: string; error: string | null; exit_code: number | null }>("SELECT name, error, exit_code FROM task WHERE job_state = 'ERROR' ORDER BY idx LIMIT 1").toArray()[0];
  return r ? { name: r.name, error: r.error, exitCode: r.exit_code } : null;
}

/** Jobs to cancel that no run of the job tracks (created for a run a requeue ended, or for a task canceled meanwhile). */
export function addOrphans(sql: SqlStorage, jobIds: readonly string[]): void {
  for (const id of jobIds) sql.exec("INSERT OR IGNORE INTO orphan (job_id) VALUES (?)", id);
}

export function orphans(sql: SqlStorage, limit: number): string[] {
  return sql.exec<{ job_id: string }>("SELECT job_id FROM orphan LIMIT ?", limit).toArray().map((r) => r.job_id);
}

export function dropOrphan(sql: SqlStorage, jobId: string): void {
  sql.exec("DELETE FROM orphan WHERE job_id = ?", jobId);
}
