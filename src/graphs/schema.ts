import type { Migration } from "../shared/migrations";
import { WEBHOOK_TABLES } from "../webhooks/tables";

/**
 * A job of tasks' schema (never edit a deployed step: add the next): its record (`graph`, one
 * row of JSON), its `task`s with a count per bucket (`task_count`), the dependencies (`edge`:
 * `from_idx` must complete before `to_idx`), task inputs in `blob` (named `input:<idx>`), and
 * its webhook outbox as a job keeps it.
 */
export const GRAPH_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE graph (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL
      );
      CREATE TABLE task (
        idx INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        bucket TEXT NOT NULL,
        tags TEXT,
        max_attempts INTEGER,
        deps_left INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        created INTEGER NOT NULL DEFAULT 0,
        job_state TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        started_at INTEGER,
        completed_at INTEGER,
        error TEXT,
        output BLOB,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        failed_workers TEXT NOT NULL DEFAULT '[]',
        told TEXT NOT NULL DEFAULT 'run',
        blocked_told INTEGER NOT NULL DEFAULT 0,
        busy_told INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER,
        tries INTEGER NOT NULL DEFAULT 0,
        tell_due INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX task_bucket ON task (bucket, idx);
      CREATE INDEX task_tell ON task (idx) WHERE tell_due = 1;
      CREATE INDEX task_job ON task (job_id);
      CREATE TABLE task_count (
        bucket TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      );
      CREATE TABLE edge (
        to_idx INTEGER NOT NULL,
        from_idx INTEGER NOT NULL,
        PRIMARY KEY (to_idx, from_idx)
      ) WITHOUT ROWID;
      CREATE INDEX edge_from ON edge (from_idx, to_idx);
      CREATE TABLE orphan (
        job_id TEXT PRIMARY KEY
      );
      CREATE TABLE worker_failure (
        worker_id TEXT PRIMARY KEY,
        failures INTEGER NOT NULL
      );
      CREATE TABLE blob (
        name TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (name, idx)
      );
      ${WEBHOOK_TABLES}
    `,
  },
];
