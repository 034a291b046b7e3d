import type { Migration } from "../shared/migrations";

/** The endpoint object's schema, one numbered step at a time. Never edit a released step: add one. */
export const ENDPOINT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE config (one INTEGER PRIMARY KEY CHECK (one = 1), body TEXT NOT NULL);
      CREATE TABLE api_key (
        id TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        digest TEXT NOT NULL,
        prefix TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE job_index (
        job_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        low_priority INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        worker_id TEXT,
        offered_until INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX job_index_ready ON job_index (state, priority DESC, low_priority, created_at);
      CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE worker (worker_id TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
    `,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE job_index ADD COLUMN avoid_workers TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE job_index ADD COLUMN ready_since INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE stop_signal (
        worker_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        PRIMARY KEY (worker_id, job_id)
      );
      ALTER TABLE worker ADD COLUMN first_take_at INTEGER;
      ALTER TABLE worker ADD COLUMN jobs_taken INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE worker ADD COLUMN recycle INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE worker ADD COLUMN unhealthy_reason TEXT;
      ALTER TABLE worker ADD COLUMN sdk_version TEXT;
      ALTER TABLE worker ADD COLUMN recent_failures TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE flag (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `,
  },
  {
    version: 4,
    sql: `
      CREATE TABLE sequence_member (
        job_id TEXT PRIMARY KEY,
        sequence_key TEXT NOT NULL,
        position INTEGER NOT NULL,
        state TEXT NOT NULL
      );
      CREATE INDEX sequence_member_order ON sequence_member (sequence_key, position);
    `,
  },
  {
    version: 5,
    sql: `
      ALTER TABLE job_index ADD COLUMN dispatch_pending INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE job_index ADD COLUMN dispatch_error TEXT;
    `,
  },
];
