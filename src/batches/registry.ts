/**
 * An endpoint's batch registry (one batch object per endpoint generation plays it, named
 * `registry:<endpointId>:<generation>`): which batches the endpoint has, newest first, for
 * GET /batch, and which are active, for the limit on creates (BATCH.activePerEndpoint). The
 * registry is never on a job's path: batches tell it when they stop or start being active
 * (hints, retried by their alarm), and a create that finds the limit reached has the batches it
 * counts confirm first (see batches/flow), so a lost hint never locks an endpoint.
 */
export const registryName = (endpointId: string, generation: string) => `registry:${endpointId}:${generation}`;

export type Reservation = { ok: true } | { ok: false; active: string[] };

/** A batch whose own state was asked: active, inactive, or gone (null). */
export interface Confirmed {
  id: string;
  active: boolean | null;
}

/**
 * Applies confirmed states, then adds `id` as active unless `limit` active batches are there
 * already (then answers those, for the caller to confirm). One transaction: no two creates pass
 * the limit together.
 */
export function reserve(sql: SqlStorage, id: string, createdAt: number, limit: number, confirmed: readonly Confirmed[]): Reservation {
  for (const c of confirmed) {
    if (c.active === null) sql.exec("DELETE FROM registry_entry WHERE id = ?", c.id);
    else sql.exec("UPDATE registry_entry SET active = ? WHERE id = ?", c.active ? 1 : 0, c.id);
  }
  const active = sql.exec<{ id: string }>("SELECT id FROM registry_entry WHERE active = 1 AND id != ? ORDER BY created_at LIMIT ?", id, limit).toArray();
  if (active.length >= limit) return { ok: false, active: active.map((r) => r.id) };
  sql.exec("INSERT INTO registry_entry (id, created_at, active) VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET active = 1", id, createdAt);
  return { ok: true };
}

export function setActive(sql: SqlStorage, id: string, active: boolean): void {
  sql.exec("UPDATE registry_entry SET active = ? WHERE id = ?", active ? 1 : 0, id);
}

export function forget(sql: SqlStorage, ids: readonly string[]): void {
  for (const id of ids) sql.exec("DELETE FROM registry_entry WHERE id = ?", id);
}

/** A page of batch ids, newest first, and how many the endpoint has. */
export function page(sql: SqlStorage, offset: number, limit: number): { ids: string[]; total: number } {
  const total = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM registry_entry").one().n;
  const ids = sql
    .exec<{ id: string }>("SELECT id FROM registry_entry ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", limit, offset)
    .toArray()
    .map((r) => r.id);
  return { ids, total };
}
