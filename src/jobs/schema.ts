import type { Migration } from "../shared/migrations";
import { WEBHOOK_TABLES } from "../webhooks/tables";

/** A job's log lines (issue 14): appended by its lease holder, read by clients in order. */
const LOG_TABLE = `CREATE TABLE log_line (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        level TEXT NOT NULL,
        line TEXT NOT NULL
      );`;

/**
 * The job object's schema, one numbered step at a time. Never edit a step once it has been
 * deployed: add the next one (ALTER TABLE …), and a test that a database at the previous
 * version reaches it.
 */
export const JOB_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE job (
        id TEXT PRIMARY KEY,
        endpoint_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        policy TEXT NOT NULL,
        webhook TEXT,
        attempt INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        worker_id TEXT,
        failed_workers TEXT NOT NULL DEFAULT '[]',
        stop_for TEXT,
        last_report TEXT,
        error TEXT,
        reason TEXT,
        has_output INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        ttl_at INTEGER NOT NULL,
        exec_deadline INTEGER,
        lease_check_at INTEGER,
        cancel_deadline INTEGER,
        purge_at INTEGER,
        index_due_at INTEGER,
        idempotency TEXT,
        gone INTEGER NOT NULL DEFAULT 0,
        sequence_key TEXT,
        sequence_check_at INTEGER,
        origin TEXT,
        dispatch TEXT,
        stream_read INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE blob (
        name TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (name, idx)
      );
      CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        command TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        detail TEXT
      );
      CREATE TABLE stream_chunk (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt INTEGER NOT NULL,
        at INTEGER NOT NULL,
        data BLOB NOT NULL
      );
      ${WEBHOOK_TABLES}
    `,
  },
  {
    // The incarnation of the endpoint the job was submitted to (null for jobs from before it was
    // kept): a deleted and re-created endpoint is another incarnation and does not see old jobs.
    version: 2,
    sql: `ALTER TABLE job ADD COLUMN endpoint_gen TEXT;`,
  },
  {
    // Issue 12: tells for the workers' liveness objects not yet confirmed (JSON, see liveness-tells).
    version: 3,
    sql: `ALTER TABLE job ADD COLUMN liveness_tells TEXT;`,
  },
  {
    // Issue 12: the shard of its endpoint's ready index the job was placed on (0 for older jobs,
    // which stay on the endpoint object).
    version: 4,
    sql: `ALTER TABLE job ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    // Issue 14: the batch a job belongs to; what the client sent that workers are handed as is
    // (s3Config) or that is only kept (webhookV2), as JSON; and the job's log lines.
    version: 5,
    sql: `
      ALTER TABLE job ADD COLUMN batch_id TEXT;
      ALTER TABLE job ADD COLUMN extras TEXT;
      ${LOG_TABLE}
    `,
  },
  {
    // Issue 14, job logs: the worker's own time of a line (ms, null when it sent none; `at` is
    // when it arrived), and the job's log bytes up to and including the line, so an append reads
    // the job's totals from its last line instead of summing every line.
    version: 6,
    sql: `
      ALTER TABLE log_line ADD COLUMN ts INTEGER;
      ALTER TABLE log_line ADD COLUMN total_bytes INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    // Issue 16: when a SCHEDULED job becomes ready (a delay, a run-at time, a retry's backoff), and
    // the job's flow-control key (its concurrencyKey or rateLimitKey; null: none). Issue 15: a job
    // paused by its user (per-job pause).
    version: 7,
    sql: `
      ALTER TABLE job ADD COLUMN ready_at INTEGER;
      ALTER TABLE job ADD COLUMN flow_key TEXT;
      ALTER TABLE job ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    // Issue 15, item 5: what the lease holder said it is doing ("initializing"; null: running).
    version: 8,
    sql: `
      ALTER TABLE job ADD COLUMN phase TEXT;
    `,
  },
  {
    // Issue 15, item 1: the job of tasks this job is a task of (JSON TaskLink; null: none).
    version: 9,
    sql: `
      ALTER TABLE job ADD COLUMN task TEXT;
    `,
  },
];

/**
 * What the steps above build, in one script, for a job object that has no schema yet (every new
 * job: ALTER TABLEs cost more than creating the table with its columns). Steps 2-5 and 7-9 add columns to
 * `job`, at its end, in this order, step 5 the log table and step 6 two columns at the end of that;
 * a test checks that both ways give the same schema. A later step updates this too, or leaves the
 * baseline where it is.
 */
export const JOB_BASELINE: Migration = {
  version: 9,
  sql: (() => {
    const anchor = "stream_read INTEGER NOT NULL DEFAULT 0\n";
    const v1 = JOB_MIGRATIONS[0]!.sql;
    if (!v1.includes(anchor)) throw new Error("JOB_BASELINE: the job table's last column moved");
    const columns = ["endpoint_gen TEXT", "liveness_tells TEXT", "shard INTEGER NOT NULL DEFAULT 0", "batch_id TEXT", "extras TEXT", "ready_at INTEGER", "flow_key TEXT", "paused INTEGER NOT NULL DEFAULT 0", "phase TEXT", "task TEXT"];
    const logAnchor = "line TEXT NOT NULL\n";
    if (!LOG_TABLE.includes(logAnchor)) throw new Error("JOB_BASELINE: the log table's last column moved");
    const logTable = LOG_TABLE.replace(logAnchor, "line TEXT NOT NULL,\n        ts INTEGER,\n        total_bytes INTEGER NOT NULL DEFAULT 0\n");
    return `${v1.replace(anchor, `stream_read INTEGER NOT NULL DEFAULT 0,\n        ${columns.join(",\n        ")}\n`)}\n      ${logTable}\n`;
  })(),
};
