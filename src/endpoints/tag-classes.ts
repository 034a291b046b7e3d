/**
 * Worker tags in a shard's ready index (issue 15, item 3). A job's required tags are its row's
 * `tags` (canonical: shared/tags); tag_class counts each set's ready rows (triggers, endpoint
 * migration 12). While no tagged job is ready, takes use the plain walks, unchanged. While some
 * are, a take walks only the tag sets its worker matches ('' and the ready sets that are subsets
 * of its own), each a range of job_index_class in take order, merged: an offer never steps over
 * a job its worker may not take, however many wait.
 */
import { tagsMatch, tagsOf } from "../shared/tags";

/** A ready row as an offer reads it, with its take-order terms. */
export type ClassRow = {
  job_id: string;
  avoid_workers: string;
  blocked_workers: string;
  ready_since: number;
  input_bytes: number;
  priority: number;
  low_priority: number;
  created_at: number;
};

/** job_index_class's terms (a query must repeat them to use the partial index), in an order of their own (flat-cost tells the walks apart by text). */
const READY_ROW = "offered_until = 0 AND state = 'IN_QUEUE' AND dispatch_pending = 0";

/**
 * The tags push dispatch offers with: every job goes (push workers are URLs that declare no tags;
 * an endpoint refuses tagged submits while it pushes, but jobs from before a switch to push go).
 */
export const ANY_TAGS = "*";

/** Is any job that requires tags ready (on offer or not aside)? One search of tag_class_ready. */
export function anyTagReady(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM tag_class INDEXED BY tag_class_ready WHERE ready > 0 AND tags > '' LIMIT 1").toArray().length > 0;
}

/** The tag sets a worker may take from now, '' first; `unmatched`: ready jobs need tags it lacks. */
export interface Classes {
  sets: string[];
  unmatched: boolean;
}

/**
 * The ready tag sets a worker with tags `have` matches. A set is sorted, so its first tag is one
 * of the worker's: per worker tag t (at most WORKER_TAGS.perWorker), one range of tag_class_ready, [t,
 * t + '-'), which holds t and the sets "t,…" (',' sorts just before '-', and no tag character
 * between). Reads the ready sets that start with one of the worker's tags, and one more row.
 */
export function matchingClasses(sql: SqlStorage, have: string): Classes {
  const sets: string[] = [];
  for (const t of tagsOf(have)) {
    for (const r of sql.exec<{ tags: string }>("SELECT tags FROM tag_class INDEXED BY tag_class_ready WHERE ready > 0 AND tags >= ? AND tags < ?", t, `${t}-`)) {
      if ((r.tags === t || r.tags.startsWith(`${t},`)) && tagsMatch(r.tags, have)) sets.push(r.tags);
    }
  }
  // More tagged sets ready than it matches: some need tags it lacks.
  const tagged = sql.exec("SELECT 1 FROM tag_class INDEXED BY tag_class_ready WHERE ready > 0 AND tags > '' LIMIT ?", sets.length + 1).toArray().length;
  return { sets: ["", ...sets], unmatched: tagged > sets.length };
}

/** Ready sets a hint names at most; past that it names none (anyone may go). */
const HINT_SETS = 16;

/** Untagged ready jobs (not on offer) up to `bound`: without a key (job_index_class), and the keys' counts (flow_key_open_untagged). */
function untaggedDepth(sql: SqlStorage, bound: number): number {
  return sql
    .exec<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM job_index INDEXED BY job_index_class WHERE ${READY_ROW} AND flow_key = '' AND tags = '' LIMIT ?1))
            + (SELECT COALESCE(SUM(untagged), 0) FROM (SELECT untagged FROM flow_key_state INDEXED BY flow_key_open_untagged
                 WHERE untagged > 0 AND held < cap AND limited_until = 0 LIMIT ?1)) AS n`,
      bound,
    )
    .one().n;
}

/** Is an untagged job ready (on offer or not aside; a key's too, open or not)? Two searches. */
function anyUntaggedReady(sql: SqlStorage): boolean {
  if (sql.exec(`SELECT 1 FROM job_index INDEXED BY job_index_class WHERE ${READY_ROW} AND flow_key = '' AND tags = '' LIMIT 1`).toArray().length > 0) return true;
  return sql.exec("SELECT 1 FROM flow_key_state INDEXED BY flow_key_untagged WHERE untagged > 0 LIMIT 1").toArray().length > 0;
}

/**
 * The tag sets this shard's ready jobs need, for a hint (relay.ts): null when some need none (any
 * worker may take one) or when more than HINT_SETS sets are ready.
 */
export function readyNeeds(sql: SqlStorage): string[] | null {
  if (anyUntaggedReady(sql)) return null;
  const rows = sql
    .exec<{ tags: string }>("SELECT tags FROM tag_class INDEXED BY tag_class_ready WHERE ready > 0 LIMIT ?", HINT_SETS + 1)
    .toArray()
    .map((r) => r.tags);
  return rows.length > HINT_SETS ? null : rows;
}

/** Ready jobs (not on offer) of the sets a worker with tags `have` matches, up to `bound`. */
export function matchingDepth(sql: SqlStorage, have: string, bound: number): number {
  let n = untaggedDepth(sql, bound);
  for (const t of matchingClasses(sql, have).sets) {
    if (n >= bound) return bound;
    if (t !== "") n += sql.exec<{ ready: number }>("SELECT ready FROM tag_class WHERE tags = ?", t).toArray()[0]?.ready ?? 0;
  }
  return Math.min(n, bound);
}

/** Take order: priority first, then low priority last, then submit order, ties by id. */
function before(a: ClassRow, b: ClassRow): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.low_priority !== b.low_priority) return a.low_priority < b.low_priority;
  if (a.created_at !== b.created_at) return a.created_at < b.created_at;
  return a.job_id < b.job_id;
}

/**
 * The ready rows of flow key `key` ('' for none) in the tag sets `sets`, in take order: one range
 * of job_index_class per set (each read lazily, at most `limit` rows), merged. Rows read: what
 * the caller consumes, plus one per set.
 */
export function* classRows(sql: SqlStorage, key: string, sets: readonly string[], limit: number): Generator<ClassRow> {
  const cursors = sets.map((tags) =>
    sql
      .exec<ClassRow>(
        `SELECT job_id, avoid_workers, blocked_workers, ready_since, input_bytes, priority, low_priority, created_at FROM job_index INDEXED BY job_index_class
         WHERE ${READY_ROW} AND flow_key = ? AND tags = ? ORDER BY priority DESC, low_priority ASC, created_at ASC, job_id ASC LIMIT ?`,
        key,
        tags,
        limit,
      )
      [Symbol.iterator](),
  );
  const heads: (ClassRow | undefined)[] = cursors.map((c) => c.next().value ?? undefined);
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h !== undefined && (best < 0 || before(h, heads[best]!))) best = i;
    }
    if (best < 0) return;
    yield heads[best]!;
    heads[best] = cursors[best]!.next().value ?? undefined;
  }
}

/** Does flow key `key` ('' for none) have ready rows in one of `sets`? A search of job_index_class per set. */
export function keyHasClass(sql: SqlStorage, key: string, sets: readonly string[]): boolean {
  return sets.some(
    (tags) => sql.exec(`SELECT 1 FROM job_index INDEXED BY job_index_class WHERE ${READY_ROW} AND flow_key = ? AND tags = ? LIMIT 1`, key, tags).toArray().length > 0,
  );
}

/** The tags a job in the index requires ('' for none or an unknown job). */
export function tagsIn(sql: SqlStorage, jobId: string): string {
  return sql.exec<{ tags: string }>("SELECT tags FROM job_index WHERE job_id = ?", jobId).toArray()[0]?.tags ?? "";
}

/** Drops tag sets with nothing ready (at most `limit`); a set that comes back is counted again by its trigger. */
export function pruneIdleClasses(sql: SqlStorage, limit = 1000): number {
  return sql.exec("DELETE FROM tag_class WHERE tags IN (SELECT tags FROM tag_class WHERE ready = 0 LIMIT ?) RETURNING 1", limit).toArray().length;
}
