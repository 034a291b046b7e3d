/**
 * Numbered schema migrations for Durable Object SQLite. `PRAGMA user_version` is not allowed
 * there, so the applied versions are kept in a table of our own. Each step runs once, in order,
 * inside one synchronous transaction with the version it records.
 */
export interface Migration {
  version: number;
  sql: string;
}

export function applyMigrations(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const row = sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM _migrations").one();
  let current = row.v ?? 0;
  for (const m of migrations) {
    if (m.version <= current) continue;
    if (m.version !== current + 1) throw new Error(`migration ${m.version} does not follow ${current}`);
    storage.transactionSync(() => {
      sql.exec(m.sql);
      sql.exec("INSERT INTO _migrations (version, applied_at) VALUES (?, ?)", m.version, Date.now());
    });
    current = m.version;
  }
  return current;
}
