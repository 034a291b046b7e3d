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
];
