/**
 * Numbered schema migrations for Durable Object SQLite. `PRAGMA user_version` is not allowed
 * there, so the applied versions are kept in a table of our own. The pending steps run once, in
 * order, in one synchronous transaction together with the versions they record: a failing step
 * leaves the database as it was.
 */
export interface Migration {
  version: number;
  sql: string;
}

/**
 * `baseline`: the schema the steps up to its version build, in one script, for a database that
 * has none yet (an object created since: one statement per table instead of every step, which
 * matters for objects made per job). A test checks it builds exactly what the steps build.
 */
export function applyMigrations(storage: DurableObjectStorage, migrations: readonly Migration[], table = "_migrations", baseline?: Migration): number {
  const sql = storage.sql;
  sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`);
  let current = sql.exec<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${table}`).one().v ?? 0;
  if (current === 0 && baseline && baseline.version <= (migrations.at(-1)?.version ?? 0)) {
    const now = Date.now();
    storage.transactionSync(() => {
      sql.exec(baseline.sql);
      const versions = Array.from({ length: baseline.version }, (_, i) => `(${i + 1}, ${now})`).join(", ");
      sql.exec(`INSERT INTO ${table} (version, applied_at) VALUES ${versions}`);
    });
    current = baseline.version;
  }
  const pending = migrations.filter((m) => m.version > current);
  pending.forEach((m, i) => {
    const expected = current + i + 1;
    if (m.version !== expected) throw new Error(`migration ${m.version} is out of order: expected ${expected}`);
  });
  if (pending.length === 0) return current;
  storage.transactionSync(() => {
    for (const m of pending) {
      sql.exec(m.sql);
      sql.exec(`INSERT INTO ${table} (version, applied_at) VALUES (?, ?)`, m.version, Date.now());
    }
  });
  return pending.at(-1)!.version;
}
