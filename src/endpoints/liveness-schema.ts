import type { Migration } from "../shared/migrations";

/**
 * The liveness object's schema (one object per endpoint generation and worker shard). Never edit
 * a step once deployed: add the next one. `worker` and `stop_signal` are the endpoint's tables as
 * they were at its schema 4, so workers.ts and stops.ts serve both.
 */
export const LIVENESS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE worker (
        worker_id TEXT PRIMARY KEY,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        first_take_at INTEGER,
        jobs_taken INTEGER NOT NULL DEFAULT 0,
        recycle INTEGER NOT NULL DEFAULT 0,
        unhealthy_reason TEXT,
        sdk_version TEXT,
        recent_failures TEXT NOT NULL DEFAULT '[]',
        poll_until INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX worker_last_seen ON worker (last_seen);
      CREATE TABLE stop_signal (
        worker_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        PRIMARY KEY (worker_id, job_id, attempt)
      );
      CREATE INDEX stop_signal_created ON stop_signal (created_at);
      CREATE TABLE held (
        worker_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL,
        since INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (worker_id, job_id)
      ) WITHOUT ROWID;
      CREATE INDEX held_state ON held (state, updated_at);
      CREATE TABLE cold_start (id INTEGER PRIMARY KEY AUTOINCREMENT, ms INTEGER NOT NULL);
      CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    // Issue 12: the take that claimed a held attempt, so that take's release passes over it.
    version: 2,
    sql: `ALTER TABLE held ADD COLUMN take_id TEXT;`,
  },
  {
    // Issue 15, item 3: the tags a worker declared on its latest take or ping (canonical; '' none).
    version: 3,
    sql: `ALTER TABLE worker ADD COLUMN tags TEXT NOT NULL DEFAULT '';`,
  },
];
