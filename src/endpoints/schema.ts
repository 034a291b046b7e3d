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
  {
    // Issue 12: every index query on a request path is an index search, however deep the queue.
    // - job_index_offerable holds only the rows a take may be offered now (an offer takes its row
    //   out; a lapsed offer is reset to 0 through job_index_offered, which holds outstanding offers).
    // - job_index_order (take order, ties by id) replaces job_index_ready: queue positions count
    //   ahead through it, and rows by state are searched through it.
    // - job_index_recent (newest first, ties by id) replaces job_index_updated; pruning finds old
    //   terminal rows through job_index_tombstone, and purge the oldest waiting ones through
    //   job_index_waiting.
    // - job_state_count: rows per state, kept exact by triggers on every insert, update and delete
    //   of job_index (applyEntry, pruning, anything else), so /health counts without a scan.
    version: 7,
    sql: `
      CREATE INDEX job_index_offerable ON job_index (priority DESC, low_priority, created_at, job_id)
        WHERE state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0;
      CREATE INDEX job_index_offered ON job_index (offered_until) WHERE offered_until > 0;
      DROP INDEX job_index_ready;
      CREATE INDEX job_index_order ON job_index (state, priority DESC, low_priority, created_at, job_id);
      DROP INDEX job_index_updated;
      CREATE INDEX job_index_recent ON job_index (updated_at DESC, job_id);
      CREATE INDEX job_index_tombstone ON job_index (updated_at)
        WHERE state IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT');
      CREATE INDEX job_index_waiting ON job_index (created_at) WHERE state IN ('IN_QUEUE', 'SEQUENCED');
      CREATE TABLE job_state_count (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO job_state_count (state, n) SELECT state, COUNT(*) FROM job_index GROUP BY state;
      CREATE TRIGGER job_index_count_insert AFTER INSERT ON job_index BEGIN
        INSERT INTO job_state_count (state, n) VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
      END;
      CREATE TRIGGER job_index_count_delete AFTER DELETE ON job_index BEGIN
        UPDATE job_state_count SET n = n - 1 WHERE state = OLD.state;
      END;
      CREATE TRIGGER job_index_count_update AFTER UPDATE OF state ON job_index WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE job_state_count SET n = n - 1 WHERE state = OLD.state;
        INSERT INTO job_state_count (state, n) VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
      END;
    `,
  },
  {
    // Issue 14, item 3: GET /v2/{ep}/requests lists the index, newest first, by (created_at,
    // job_id) — immutable, so a cursor there neither repeats nor skips a job that changes state.
    // Each filter is an index search (job-listing.ts): job_index_listing (no filter, or a time
    // range), job_index_listing_state (a status), job_index_listing_batch (a batch) and
    // job_index_listing_sequence (a sequence key). The index also keeps what a listed job shows.
    version: 8,
    sql: `
      ALTER TABLE job_index ADD COLUMN batch_id TEXT;
      ALTER TABLE job_index ADD COLUMN sequence_key TEXT;
      ALTER TABLE job_index ADD COLUMN delay_ms INTEGER;
      ALTER TABLE job_index ADD COLUMN execution_ms INTEGER;
      UPDATE job_index SET sequence_key = (SELECT sequence_key FROM sequence_member m WHERE m.job_id = job_index.job_id)
        WHERE job_id IN (SELECT job_id FROM sequence_member);
      CREATE INDEX job_index_listing ON job_index (created_at, job_id);
      CREATE INDEX job_index_listing_state ON job_index (state, created_at, job_id);
      CREATE INDEX job_index_listing_batch ON job_index (batch_id, created_at, job_id) WHERE batch_id IS NOT NULL;
      CREATE INDEX job_index_listing_sequence ON job_index (sequence_key, created_at, job_id) WHERE sequence_key IS NOT NULL;
    `,
  },
  {
    // Issue 16: SCHEDULED jobs (delayed, or backing off before a retry) wait too, and (issue 15)
    // PAUSED ones: purge-queue finds them through job_index_waiting with the others.
    version: 9,
    sql: `
      DROP INDEX job_index_waiting;
      CREATE INDEX job_index_waiting ON job_index (created_at) WHERE state IN ('IN_QUEUE', 'SEQUENCED', 'SCHEDULED', 'PAUSED');
    `,
  },
  {
    // Issue 16, item 4: per-key flow control (flow-keys.ts). job_index.flow_key is the job's
    // concurrencyKey or rateLimitKey ('' for none); job_index_flow holds each key's ready rows in
    // take order. flow_key_state has one row per key with ready rows (as job_index_offerable counts
    // them) and held ones (running, cancelling or on offer), kept exact by triggers on job_index
    // like job_state_count; flow_key_open holds the keys that may be offered now, by turn (least
    // recently served first), so an offer never steps over a key at its cap or rate-limited.
    // flow_key_rule: per-key overrides (cap NULL: the endpoint's; 1e9: none; rate_n NULL: the
    // endpoint's, 0: none); flow_key_default: the endpoint's keyConcurrency and keyRateLimit.
    version: 10,
    sql: `
      ALTER TABLE job_index ADD COLUMN flow_key TEXT NOT NULL DEFAULT '';
      CREATE INDEX job_index_flow ON job_index (flow_key, priority DESC, low_priority, created_at, job_id)
        WHERE state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0;
      CREATE TABLE flow_key_rule (flow_key TEXT PRIMARY KEY, cap INTEGER, rate_n INTEGER, rate_period INTEGER, updated_at INTEGER NOT NULL);
      CREATE TABLE flow_key_default (one INTEGER PRIMARY KEY CHECK (one = 1), cap INTEGER, rate_n INTEGER NOT NULL, rate_period INTEGER NOT NULL);
      CREATE TABLE flow_key_state (
        flow_key TEXT PRIMARY KEY,
        ready INTEGER NOT NULL DEFAULT 0,
        held INTEGER NOT NULL DEFAULT 0,
        turn INTEGER NOT NULL DEFAULT 0,
        cap INTEGER NOT NULL,
        rate_n INTEGER NOT NULL DEFAULT 0,
        rate_period INTEGER NOT NULL DEFAULT 0,
        window_start INTEGER NOT NULL DEFAULT 0,
        window_count INTEGER NOT NULL DEFAULT 0,
        limited_until INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX flow_key_open ON flow_key_state (turn, flow_key) WHERE ready > 0 AND held < cap AND limited_until = 0;
      CREATE INDEX flow_key_waiting ON flow_key_state (flow_key) WHERE ready > 0;
      CREATE INDEX flow_key_limited ON flow_key_state (limited_until) WHERE limited_until > 0;
      CREATE INDEX flow_key_idle ON flow_key_state (flow_key) WHERE ready = 0 AND held = 0;
      CREATE TRIGGER flow_key_insert AFTER INSERT ON job_index WHEN NEW.flow_key != '' BEGIN
        INSERT INTO flow_key_state (flow_key, ready, held, cap, rate_n, rate_period) VALUES (NEW.flow_key,
          NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0,
          NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0,
          COALESCE((SELECT cap FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT cap FROM flow_key_default), 1000000000),
          COALESCE((SELECT rate_n FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_n FROM flow_key_default), 0),
          COALESCE((SELECT rate_period FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_period FROM flow_key_default), 0))
          ON CONFLICT (flow_key) DO UPDATE SET ready = ready + excluded.ready, held = held + excluded.held;
      END;
      CREATE TRIGGER flow_key_delete AFTER DELETE ON job_index WHEN OLD.flow_key != '' BEGIN
        UPDATE flow_key_state SET
          ready = ready - (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0),
          held = held - (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0)
          WHERE flow_key = OLD.flow_key;
      END;
      CREATE TRIGGER flow_key_update_old AFTER UPDATE OF state, dispatch_pending, offered_until, flow_key ON job_index
        WHEN OLD.flow_key != '' AND (OLD.flow_key IS NOT NEW.flow_key
          OR (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) IS NOT (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0)
          OR (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0) IS NOT (NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0)) BEGIN
        UPDATE flow_key_state SET
          ready = ready - (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0),
          held = held - (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0)
          WHERE flow_key = OLD.flow_key;
      END;
      CREATE TRIGGER flow_key_update_new AFTER UPDATE OF state, dispatch_pending, offered_until, flow_key ON job_index
        WHEN NEW.flow_key != '' AND (OLD.flow_key IS NOT NEW.flow_key
          OR (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) IS NOT (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0)
          OR (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0) IS NOT (NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0)) BEGIN
        INSERT INTO flow_key_state (flow_key, ready, held, cap, rate_n, rate_period) VALUES (NEW.flow_key,
          NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0,
          NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0,
          COALESCE((SELECT cap FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT cap FROM flow_key_default), 1000000000),
          COALESCE((SELECT rate_n FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_n FROM flow_key_default), 0),
          COALESCE((SELECT rate_period FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_period FROM flow_key_default), 0))
          ON CONFLICT (flow_key) DO UPDATE SET ready = ready + excluded.ready, held = held + excluded.held;
      END;
    `,
  },
  {
    // Issue 15, item 5: ERROR (a result with a non-zero exit code) is terminal too; pruning finds
    // its rows through the tombstone index, whose terms must match ready-index's TERMINAL_LIST.
    version: 11,
    sql: `
      DROP INDEX job_index_tombstone;
      CREATE INDEX job_index_tombstone ON job_index (updated_at)
        WHERE state IN ('COMPLETED', 'ERROR', 'FAILED', 'CANCELLED', 'TIMED_OUT');
    `,
  },
  {
    // Issue 15, item 3: worker tags (tag-classes.ts). job_index.tags is the job's required tags
    // (canonical: sorted, ','-joined; '' for none). job_index_class holds the ready rows by flow
    // key and tag set, in take order: a take walks the sets its worker matches, each a range.
    // tag_class counts each required set's ready rows (kept exact by triggers, as flow_key_state;
    // not '': an untagged job costs no writes here), so a take knows at once whether any tagged job
    // is ready, and a hint which sets its shard's ready jobs need. worker_shard.tag_sets: the tag sets
    // of a liveness shard's live workers, with their latest signs (queue.reason no_matching_workers);
    // worker_shard.live: its live workers by id (at most BLOCKLIST.liveIdsPerSummary; more: not all).
    // The flow-key triggers are those of step 10, counting a key's untagged ready rows too.
    // job_index.blocked_workers: the workers blocklisted from the job (jobs/blocklist), never offered it.
    version: 12,
    sql: `
      ALTER TABLE job_index ADD COLUMN tags TEXT NOT NULL DEFAULT '';
      ALTER TABLE job_index ADD COLUMN blocked_workers TEXT NOT NULL DEFAULT '[]';
      CREATE INDEX job_index_class ON job_index (flow_key, tags, priority DESC, low_priority, created_at, job_id)
        WHERE state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0;
      CREATE TABLE tag_class (tags TEXT PRIMARY KEY, ready INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE INDEX tag_class_ready ON tag_class (tags) WHERE ready > 0;
      CREATE TRIGGER tag_class_insert AFTER INSERT ON job_index
        WHEN NEW.tags != '' AND NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0 BEGIN
        INSERT INTO tag_class (tags, ready) VALUES (NEW.tags, 1) ON CONFLICT (tags) DO UPDATE SET ready = ready + 1;
      END;
      CREATE TRIGGER tag_class_delete AFTER DELETE ON job_index
        WHEN OLD.tags != '' AND OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0 BEGIN
        UPDATE tag_class SET ready = ready - 1 WHERE tags = OLD.tags;
      END;
      CREATE TRIGGER tag_class_update_old AFTER UPDATE OF state, dispatch_pending, offered_until, tags ON job_index
        WHEN OLD.tags != '' AND OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0
          AND NOT (NEW.tags IS OLD.tags AND NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0) BEGIN
        UPDATE tag_class SET ready = ready - 1 WHERE tags = OLD.tags;
      END;
      CREATE TRIGGER tag_class_update_new AFTER UPDATE OF state, dispatch_pending, offered_until, tags ON job_index
        WHEN NEW.tags != '' AND NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0
          AND NOT (NEW.tags IS OLD.tags AND OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) BEGIN
        INSERT INTO tag_class (tags, ready) VALUES (NEW.tags, 1) ON CONFLICT (tags) DO UPDATE SET ready = ready + 1;
      END;
      ALTER TABLE worker_shard ADD COLUMN tag_sets TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE worker_shard ADD COLUMN live TEXT NOT NULL DEFAULT '{"workers":[],"more":true}';
      -- flow_key_state.untagged: a key's ready rows that require no tags (so far all of them), so a
      -- worker without tags walks only the open keys it may take from (flow_key_open_untagged).
      ALTER TABLE flow_key_state ADD COLUMN untagged INTEGER NOT NULL DEFAULT 0;
      UPDATE flow_key_state SET untagged = ready;
      CREATE INDEX flow_key_open_untagged ON flow_key_state (turn, flow_key) WHERE untagged > 0 AND held < cap AND limited_until = 0;
      CREATE INDEX flow_key_untagged ON flow_key_state (flow_key) WHERE untagged > 0;
      DROP TRIGGER flow_key_insert;
      DROP TRIGGER flow_key_delete;
      DROP TRIGGER flow_key_update_old;
      DROP TRIGGER flow_key_update_new;
      CREATE TRIGGER flow_key_insert AFTER INSERT ON job_index WHEN NEW.flow_key != '' BEGIN
        INSERT INTO flow_key_state (flow_key, ready, untagged, held, cap, rate_n, rate_period) VALUES (NEW.flow_key,
          NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0, (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0) AND NEW.tags = '',
          NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0,
          COALESCE((SELECT cap FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT cap FROM flow_key_default), 1000000000),
          COALESCE((SELECT rate_n FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_n FROM flow_key_default), 0),
          COALESCE((SELECT rate_period FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_period FROM flow_key_default), 0))
          ON CONFLICT (flow_key) DO UPDATE SET ready = ready + excluded.ready, untagged = untagged + excluded.untagged, held = held + excluded.held;
      END;
      CREATE TRIGGER flow_key_delete AFTER DELETE ON job_index WHEN OLD.flow_key != '' BEGIN
        UPDATE flow_key_state SET
          ready = ready - (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0),
          untagged = untagged - ((OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) AND OLD.tags = ''),
          held = held - (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0)
          WHERE flow_key = OLD.flow_key;
      END;
      CREATE TRIGGER flow_key_update_old AFTER UPDATE OF state, dispatch_pending, offered_until, flow_key, tags ON job_index
        WHEN OLD.flow_key != '' AND (OLD.flow_key IS NOT NEW.flow_key OR OLD.tags IS NOT NEW.tags
          OR (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) IS NOT (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0)
          OR (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0) IS NOT (NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0)) BEGIN
        UPDATE flow_key_state SET
          ready = ready - (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0),
          untagged = untagged - ((OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) AND OLD.tags = ''),
          held = held - (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0)
          WHERE flow_key = OLD.flow_key;
      END;
      CREATE TRIGGER flow_key_update_new AFTER UPDATE OF state, dispatch_pending, offered_until, flow_key, tags ON job_index
        WHEN NEW.flow_key != '' AND (OLD.flow_key IS NOT NEW.flow_key OR OLD.tags IS NOT NEW.tags
          OR (OLD.state = 'IN_QUEUE' AND OLD.dispatch_pending = 0 AND OLD.offered_until = 0) IS NOT (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0)
          OR (OLD.state IN ('IN_PROGRESS', 'CANCELLING') OR OLD.offered_until > 0) IS NOT (NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0)) BEGIN
        INSERT INTO flow_key_state (flow_key, ready, untagged, held, cap, rate_n, rate_period) VALUES (NEW.flow_key,
          NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0, (NEW.state = 'IN_QUEUE' AND NEW.dispatch_pending = 0 AND NEW.offered_until = 0) AND NEW.tags = '',
          NEW.state IN ('IN_PROGRESS', 'CANCELLING') OR NEW.offered_until > 0,
          COALESCE((SELECT cap FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT cap FROM flow_key_default), 1000000000),
          COALESCE((SELECT rate_n FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_n FROM flow_key_default), 0),
          COALESCE((SELECT rate_period FROM flow_key_rule WHERE flow_key = NEW.flow_key), (SELECT rate_period FROM flow_key_default), 0))
          ON CONFLICT (flow_key) DO UPDATE SET ready = ready + excluded.ready, untagged = untagged + excluded.untagged, held = held + excluded.held;
      END;
    `,
  },
];
