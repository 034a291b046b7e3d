/**
 * The webhook outbox's tables (see ./outbox), in every object that sends webhooks: job objects
 * and batch objects. Part of their first schema step: never change this text (add a step).
 */
export const WEBHOOK_TABLES = `CREATE TABLE webhook_event (
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
      );`;
