/**
 * The schedule object's schema. One class serves two roles, each object using its own tables: a
 * schedule (`schedule`, one row, and its `fire` log) and an endpoint incarnation's registry of
 * schedule names (`member`). Never edit a step once deployed: add the next one.
 */
import type { Migration } from "../shared/migrations";

export const SCHEDULE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE schedule (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        endpoint_id TEXT NOT NULL,
        generation TEXT NOT NULL,
        name TEXT NOT NULL,
        incarnation TEXT NOT NULL,
        spec TEXT NOT NULL,
        paused INTEGER NOT NULL,
        last_handled INTEGER NOT NULL,
        missed_uncounted INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE fire (
        fire_time INTEGER NOT NULL,
        manual INTEGER NOT NULL,
        job_id TEXT,
        outcome TEXT NOT NULL,
        detail TEXT,
        handled_at INTEGER NOT NULL,
        PRIMARY KEY (fire_time, manual)
      ) WITHOUT ROWID;
      CREATE TABLE member (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID;
    `,
  },
];
