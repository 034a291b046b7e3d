/**
 * The migration runner: numbered steps applied once, in order, atomically; a database at an
 * older version reaches the newest; gaps and failures are refused without half-applied steps.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { applyMigrations, type Migration } from "../../src/shared/migrations";
import { JOB_MIGRATIONS } from "../../src/jobs/schema";
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

  it("an endpoint database at version 2 reaches version 3 (worker registry index) with its worker rows", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 2), "_endpoint")).toBe(2);
      storage.sql.exec("INSERT INTO worker (worker_id, first_seen, last_seen) VALUES ('w1', 1, 2)");
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS.slice(0, 3), "_endpoint")).toBe(3);
      expect(storage.sql.exec("SELECT worker_id, last_seen FROM worker").toArray()).toEqual([{ worker_id: "w1", last_seen: 2 }]);
      expect(storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'worker_last_seen'").toArray()).toHaveLength(1);
    });
  });

  it("the job and endpoint schemas apply to an empty database", async () => {
    await withStorage((storage) => {
      expect(applyMigrations(storage, JOB_MIGRATIONS, "_job")).toBe(JOB_MIGRATIONS.length);
      expect(applyMigrations(storage, ENDPOINT_MIGRATIONS, "_endpoint")).toBe(ENDPOINT_MIGRATIONS.length);
    });
  });
});
