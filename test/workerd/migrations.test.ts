/**
 * The migration runner: numbered steps applied once, in order, atomically; a database at an
 * older version reaches the newest; gaps and failures are refused without half-applied steps.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { applyMigrations, type Migration } from "../../src/shared/migrations";
import { JOB_BASELINE, JOB_MIGRATIONS } from "../../src/jobs/schema";
import { ENDPOINT_MIGRATIONS } from "../../src/endpoints/schema";

const V1: Migration = { version: 1, sql: "CREATE TABLE t (a INTEGER)" };
const V2: Migration = { version: 2, sql: "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x'" };
const V3: Migration = { version: 3, sql: "CREATE INDEX t_b ON t (b)" };

/** Runs `fn` against the storage of a fresh directory object (a scratch database). */
async function withStorage<T>(fn: (storage: DurableObjectStorage) => T): Promise<T> {
  const stub = env.DIRECTORY.get(env.DIRECTORY.newUniqueId());
  return runInDurableObject(stub, (_i, state) => fn(state.storage));
}

describe("migrations", () => {
  it("apply in order, once; an old database reaches the newest version with its rows", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, [V1], "_m")).toBe(1);
      storage.sql.exec("INSERT INTO t (a) VALUES (7)");
      expect(applyMigrations(storage, [V1, V2, V3], "_m")).toBe(3);
      expect(applyMigrations(storage, [V1, V2, V3], "_m")).toBe(3);
      expect(storage.sql.exec("SELECT a, b FROM t").toArray()).toEqual([{ a: 7, b: "x" }]);
      expect(storage.sql.exec("SELECT version FROM _m ORDER BY version").toArray().map((r) => r.version)).toEqual([1, 2, 3]);
    });
  });

  it("refuse a gap", async () => {
    await withStorage((storage) => {
      expect(() => applyMigrations(storage, [V1, V3], "_m")).toThrow(/out of order/);
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM _m").one().n).toBe(0);
    });
  });

  it("a failing step leaves nothing half-applied", async () => {
    await withStorage((storage) => {
      const broken: Migration = { version: 2, sql: "ALTER TABLE nope ADD COLUMN c INTEGER" };
      expect(() => applyMigrations(storage, [V1, broken], "_m")).toThrow();
      expect(storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 't'").toArray()).toEqual([]);
      expect(applyMigrations(storage, [V1], "_m")).toBe(1);
    });
  });

  it("an endpoint at schema 2 keeps its stop signals and index rows through schema 3 (stops per attempt)", async () => {
    await withStorage((storage) => {
      applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 2), "_endpoint");
      storage.sql.exec("INSERT INTO stop_signal (worker_id, job_id, reason, created_at, delivered_at) VALUES ('w1', 'j1', 'CANCELLING', 5, NULL)");
      storage.sql.exec("INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, updated_at) VALUES ('j1', 3, 'CANCELLING', 0, 0, 1, 5)");
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS, "_endpoint")).toBe(ENDPOINT_MIGRATIONS.length);
      expect(storage.sql.exec("SELECT worker_id, job_id, attempt, delivered_at FROM stop_signal").toArray()).toEqual([
        { worker_id: "w1", job_id: "j1", attempt: 0, delivered_at: null },
      ]);
      // A later attempt of the same job on the same worker is a new signal.
      storage.sql.exec("INSERT OR IGNORE INTO stop_signal (worker_id, job_id, attempt, reason, created_at) VALUES ('w1', 'j1', 2, 'CANCELLING', 9)");
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM stop_signal").one().n).toBe(2);
      expect(storage.sql.exec("SELECT attempt FROM job_index").one().attempt).toBe(0);
    });
  });

  it("a job at schema 1 reaches schema 2 with its row (no endpoint incarnation: matches any)", async () => {
    await withStorage((storage) => {
      applyMigrations(storage, JOB_MIGRATIONS.slice(0, 1), "_job");
      storage.sql.exec(
        `INSERT INTO job (id, endpoint_id, kind, state, version, policy, attempt, retries, has_output, created_at, queued_at, ttl_at)
         VALUES ('j1', 'ep', 'run', 'IN_QUEUE', 1, '{}', 0, 0, 0, 1, 1, 100)`,
      );
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_job")).toBe(JOB_MIGRATIONS.length);
      expect(storage.sql.exec("SELECT id, endpoint_gen FROM job").toArray()).toEqual([{ id: "j1", endpoint_gen: null }]);
    });
  });

  it("an endpoint database at version 2 reaches version 4 (worker registry index) with its worker rows", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 2), "_endpoint")).toBe(2);
      storage.sql.exec("INSERT INTO worker (worker_id, first_seen, last_seen) VALUES ('w1', 1, 2)");
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 4), "_endpoint")).toBe(4);
      expect(storage.sql.exec("SELECT worker_id, last_seen FROM worker").toArray()).toEqual([{ worker_id: "w1", last_seen: 2 }]);
      expect(storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'worker_last_seen'").toArray()).toHaveLength(1);
    });
  });

  it("an endpoint at schema 5 reaches 7 with its counts by state backfilled and kept from then on (issue 12)", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 5), "_endpoint")).toBe(5);
      const row = "INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, updated_at) VALUES (?, 1, ?, 0, 0, 1, 1)";
      for (const [id, state] of [["a", "IN_QUEUE"], ["b", "IN_QUEUE"], ["c", "COMPLETED"]]) storage.sql.exec(row, id, state);
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 7), "_endpoint")).toBe(7);
      const counts = () => storage.sql.exec("SELECT state, n FROM job_state_count WHERE n > 0 ORDER BY state").toArray();
      expect(counts()).toEqual([{ state: "COMPLETED", n: 1 }, { state: "IN_QUEUE", n: 2 }]);
      storage.sql.exec("UPDATE job_index SET state = 'IN_PROGRESS' WHERE job_id = 'a'");
      storage.sql.exec("DELETE FROM job_index WHERE job_id = 'c'");
      expect(counts()).toEqual([{ state: "IN_PROGRESS", n: 1 }, { state: "IN_QUEUE", n: 1 }]);
      const names = storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'job_index'").toArray().map((r) => r.name);
      expect(names).toEqual(expect.arrayContaining(["job_index_offerable", "job_index_offered", "job_index_order", "job_index_recent", "job_index_tombstone", "job_index_waiting"]));
      expect(names).not.toContain("job_index_ready");
    });
  });

  it("the job and endpoint schemas apply to an empty database", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_job")).toBe(JOB_MIGRATIONS.length);
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS, "_endpoint")).toBe(ENDPOINT_MIGRATIONS.length);
    });
  });

  it("the job baseline builds what the job's steps build (tables, columns, types, defaults, keys), in one go", async () => {
    // Every table's columns as SQLite describes them, and the recorded versions.
    const schemaOf = (storage: DurableObjectStorage, versions: string) => ({
      tables: storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT IN ('endpoint') ORDER BY name")
        .toArray()
        .map(({ name }) => ({ name, columns: storage.sql.exec(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info('${name}') ORDER BY cid`).toArray() })),
      indexes: storage.sql.exec("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").toArray(),
      versions: storage.sql.exec(`SELECT version FROM ${versions} ORDER BY version`).toArray().map((r) => r.version),
    });
    const stepped = await withStorage((storage) => {
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_steps")).toBe(JOB_MIGRATIONS.at(-1)!.version);
      return schemaOf(storage, "_steps");
    });
    const based = await withStorage((storage) => {
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_steps", JOB_BASELINE)).toBe(JOB_MIGRATIONS.at(-1)!.version);
      // Applied again: nothing changes, no step runs twice.
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_steps", JOB_BASELINE)).toBe(JOB_MIGRATIONS.at(-1)!.version);
      return schemaOf(storage, "_steps");
    });
    expect(stepped.tables.map((t) => t.name)).toContain("job");
    expect(based).toEqual(stepped);
    // A baseline that leaves out a column is caught by the same comparison (a planted defect).
    const short = await withStorage((storage) => {
      applyMigrations(storage, JOB_MIGRATIONS, "_steps", { version: JOB_BASELINE.version, sql: JOB_BASELINE.sql.replace("liveness_tells TEXT,\n", "") });
      return schemaOf(storage, "_steps");
    });
    expect(short).not.toEqual(stepped);
  });

  it("a new job object is built from the baseline and records every version", async () => {
    const stub = env.JOB.get(env.JOB.newUniqueId());
    const versions = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT version FROM _migrations ORDER BY version").toArray().map((r) => r.version));
    expect(versions).toEqual(JOB_MIGRATIONS.map((m) => m.version));
  });
});
