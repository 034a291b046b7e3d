import type { Migration } from "../shared/migrations";
import { WEBHOOK_TABLES } from "../webhooks/tables";

/**
 * The batch object's schema, one numbered step at a time (never edit a deployed step: add the
 * next). One class plays two roles, each with its own tables: a batch (`batch`, its `child`ren,
 * their `child_count` by state, request bodies in `blob` until they are jobs, and the batch's
 * webhook outbox `webhook_event`/`webhook_attempt` as a job keeps it) and an endpoint's batch
 * registry (`registry_entry`, see ./registry).
 */
export const BATCH_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE batch (
        id TEXT PRIMARY KEY,
        endpoint_id TEXT NOT NULL,
        endpoint_gen TEXT NOT NULL,
        name TEXT,
        webhook TEXT,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finalized_at INTEGER,
        cancel_requested_at INTEGER,
        finished_at INTEGER,
        failure TEXT,
        next_idx INTEGER NOT NULL DEFAULT 0,
        work_due_at INTEGER,
        create_failing_since INTEGER,
        registry_told INTEGER
      );
      CREATE TABLE child (
        idx INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        rank INTEGER NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER,
        completed_at INTEGER,
        error TEXT,
        output BLOB,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        body_bytes INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX child_order ON child (rank, idx);
      CREATE INDEX child_pending ON child (created, idx);
      CREATE TABLE child_count (
        state TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      );
      CREATE TABLE blob (
        name TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (name, idx)
      );
      ${WEBHOOK_TABLES}
      CREATE TABLE registry_entry (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        active INTEGER NOT NULL
      );
      CREATE INDEX registry_newest ON registry_entry (created_at DESC, id DESC);
    `,
  },
];
