/**
 * Fills an endpoint's index with rows straight through SQL (fast), for the tests and the
 * measurement that show per-request cost does not grow with queue depth.
 */

/** Inserts `n` rows in `state`, one ms apart from `from`, ids `${prefix}-0000001`…; returns the ids' prefix. */
export function fillIndex(sql: SqlStorage, n: number, state: string, from: number, prefix: string, extra: { workerId?: string; offeredUntil?: number; dispatchPending?: boolean } = {}): void {
  sql.exec(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
     INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, worker_id, offered_until, updated_at, ready_since, dispatch_pending)
     SELECT printf('%s-%07d', ?2, i), 1, ?3, 0, 0, ?4 + i, ?5, ?6, ?4 + i, ?4 + i, ?7 FROM s`,
    n,
    prefix,
    state,
    from,
    extra.workerId ?? null,
    extra.offeredUntil ?? 0,
    extra.dispatchPending ? 1 : 0,
  );
}

/** The id `fillIndex` gave the i-th row (1-based). */
export function filledId(prefix: string, i: number): string {
  return `${prefix}-${String(i).padStart(7, "0")}`;
}

/** `sql` whose statements' cursors are kept, to add up their rows read. */
export function counting(sql: SqlStorage): { sql: SqlStorage; rowsRead: () => number } {
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  const proxy = new Proxy(sql, {
    get(t, p) {
      if (p === "exec") {
        return (q: string, ...b: SqlStorageValue[]) => {
          const c = t.exec(q, ...b);
          cursors.push(c);
          return c;
        };
      }
      const v = Reflect.get(t, p) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return { sql: proxy, rowsRead: () => cursors.reduce((n, c) => n + c.rowsRead, 0) };
}
