import type { Migration } from "../shared/migrations";

/** The job object's schema, one numbered step at a time. Never edit a released step: add one. */
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
        error TEXT,
        reason TEXT,
        has_output INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        ttl_at INTEGER NOT NULL,
        exec_deadline INTEGER,
        cancel_deadline INTEGER,
        purge_at INTEGER,
        index_due_at INTEGER
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
    `,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE job ADD COLUMN failed_workers TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE job ADD COLUMN stop_for TEXT;
      ALTER TABLE job ADD COLUMN last_report TEXT;
      ALTER TABLE job ADD COLUMN lease_check_at INTEGER;
      ALTER TABLE job ADD COLUMN stream_read INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE stream_chunk (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt INTEGER NOT NULL,
        at INTEGER NOT NULL,
        data BLOB NOT NULL
      );
    `,
  },
  {
    version: 3,
    sql: `
      ALTER TABLE job ADD COLUMN idempotency TEXT;
      ALTER TABLE job ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 4,
    sql: `
      ALTER TABLE job ADD COLUMN sequence_key TEXT;
      ALTER TABLE job ADD COLUMN sequence_check_at INTEGER;
    `,
  },
  {
    version: 5,
    sql: `
      ALTER TABLE job ADD COLUMN origin TEXT;
      ALTER TABLE job ADD COLUMN dispatch TEXT;
    `,
  },
  {
    version: 6,
    sql: `
      CREATE TABLE webhook_event (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER,
        last_status INTEGER,
        last_error TEXT,
        delivered_at INTEGER,
        fields TEXT NOT NULL
      );
      CREATE TABLE webhook_attempt (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        status INTEGER,
        latency_ms INTEGER NOT NULL,
        error TEXT
      );
    `,
  },
];
