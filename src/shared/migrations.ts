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

export function applyMigrations(storage: DurableObjectStorage, migrations: readonly Migration[], table = "_migrations"): number {
  const sql = storage.sql;
  sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`);
  const current = sql.exec<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${table}`).one().v ?? 0;
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
