import type { Migration } from "../shared/migrations";

/**
 * The endpoint object's schema, one numbered step at a time. Never edit a step once it has been
 * deployed: add the next one, and a test that a database at the previous version reaches it.
 */
export const ENDPOINT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE config (one INTEGER PRIMARY KEY CHECK (one = 1), body TEXT NOT NULL);
      CREATE TABLE flag (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
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
        updated_at INTEGER NOT NULL,
        avoid_workers TEXT NOT NULL DEFAULT '[]',
        ready_since INTEGER NOT NULL DEFAULT 0,
        dispatch_pending INTEGER NOT NULL DEFAULT 0,
        dispatch_error TEXT
      );
      CREATE INDEX job_index_ready ON job_index (state, priority DESC, low_priority, created_at);
      CREATE INDEX job_index_worker ON job_index (worker_id, state);
      CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE worker (
        worker_id TEXT PRIMARY KEY,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        first_take_at INTEGER,
        jobs_taken INTEGER NOT NULL DEFAULT 0,
        recycle INTEGER NOT NULL DEFAULT 0,
        unhealthy_reason TEXT,
        sdk_version TEXT,
        recent_failures TEXT NOT NULL DEFAULT '[]'
      );
      CREATE TABLE stop_signal (
        worker_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        PRIMARY KEY (worker_id, job_id)
      );
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
    version: 2,
    sql: `
      CREATE TABLE metric_count (
        start INTEGER NOT NULL,
        name TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (start, name)
      ) WITHOUT ROWID;
      CREATE TABLE metric_bin (
        start INTEGER NOT NULL,
        metric TEXT NOT NULL,
        bin INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (start, metric, bin)
      ) WITHOUT ROWID;
      CREATE TABLE metric_workers (start INTEGER PRIMARY KEY, counts TEXT NOT NULL);
    `,
  },
  {
    // Stops are per attempt (a second stop of the same job on the same worker is a new signal);
    // the index knows each job's attempt; pruning runs by time through indexes.
    version: 3,
    sql: `
      CREATE TABLE stop_signal_v3 (
        worker_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        PRIMARY KEY (worker_id, job_id, attempt)
      );
      INSERT INTO stop_signal_v3 (worker_id, job_id, attempt, reason, created_at, delivered_at)
        SELECT worker_id, job_id, 0, reason, created_at, delivered_at FROM stop_signal;
      DROP TABLE stop_signal;
      ALTER TABLE stop_signal_v3 RENAME TO stop_signal;
      CREATE INDEX stop_signal_created ON stop_signal (created_at);
      ALTER TABLE job_index ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX job_index_updated ON job_index (updated_at);
    `,
  },
  {
    // Issue 11, defect 7: the bounded worker registry forgets and evicts by silence.
    version: 4,
    sql: `CREATE INDEX worker_last_seen ON worker (last_seen);`,
  },
  {
    // Issue 11, defect 8: the index knows each job's input size, so a batch take is offered jobs
    // within its byte budget without asking each job first.
    version: 5,
    sql: `ALTER TABLE job_index ADD COLUMN input_bytes INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    // Issue 12: worker liveness lives in liveness objects; each worker shard tells the endpoint a
    // summary now and then. The worker and stop_signal tables above are no longer written.
    version: 6,
    sql: `CREATE TABLE worker_shard (shard INTEGER PRIMARY KEY, counts TEXT NOT NULL, last_sign INTEGER, at INTEGER NOT NULL);`,
  },
];
