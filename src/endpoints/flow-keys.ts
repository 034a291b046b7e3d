/**
 * Per-key flow control in a shard's ready index (issue 16, item 4). A job's flow key (its
 * `concurrencyKey` or `rateLimitKey`; '' for none) is job_index.flow_key. Each key has one row
 * in flow_key_state (endpoint migration 10): its ready and held jobs (kept exact by triggers on
 * job_index), its cap and rate, its rate window and its turn.
 *
 * Offers rotate between keys: the open key (ready jobs, under its cap, not rate-limited: the
 * partial index flow_key_open) served least recently goes next and hands out its best job
 * (priority, then low priority last, then submit order: strict within a key); the jobs without a
 * key take turns as one more key. A key at its cap or limited is not in flow_key_open, so an offer
 * never steps over it: per-offer work is flat in queue depth and in the number of keys.
 *
 * Rate: `limit` starts per `periodMs` in a fixed window that opens at the key's first start after
 * the previous window closed; a key that used its window is limited until it closes (the shard's
 * alarm reopens it). A window holds at most `limit` starts, so any span of one period holds at
 * most 2 × limit − 1 (the end of one window and the start of the next).
 */
import { classRows, keyHasClass } from "./tag-classes";

/** The partial index's terms, spelt as flow_key_open's (a query must repeat them to use it). */
const OPEN = "ready > 0 AND held < cap AND limited_until = 0";
/** flow_key_open_untagged's terms: open keys with ready jobs that require no tags (endpoint migration 12). */
const OPEN_UNTAGGED = "untagged > 0 AND held < cap AND limited_until = 0";
/** job_index_flow's terms, in another order than offerJobs' (flat-cost tells the two apart by text). */
const READY_ROW = "offered_until = 0 AND dispatch_pending = 0 AND state = 'IN_QUEUE'";

type KeyRow = {
  flow_key: string;
  turn: number;
  cap: number;
  held: number;
  rate_n: number;
  rate_period: number;
  window_start: number;
  window_count: number;
};

/** A ready row as an offer reads it. */
export type ReadyRow = {
  job_id: string;
  avoid_workers: string;
  blocked_workers: string;
  ready_since: number;
  input_bytes: number;
};

export interface TurnOffer {
  ids: string[];
  passedOver: number;
  /** The earliest time a key this offer rate-limited opens again (for the shard's alarm), if any. */
  limitedUntil: number | null;
}

export interface TurnRequest {
  max: number;
  now: number;
  offerMs: number;
  byteBudget: number;
  /** Is this row passed over for this worker (blocklisted, or it failed the job within the grace)? */
  avoided: (r: ReadyRow) => boolean;
  /** With tagged jobs ready: the tag sets this worker matches (tag-classes.ts); null: none ready, any row goes. */
  sets: readonly string[] | null;
}

/** Is any keyed job ready (on offer or not aside)? One search of flow_key_waiting. */
export function anyKeyReady(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM flow_key_state INDEXED BY flow_key_waiting WHERE ready > 0 LIMIT 1").toArray().length > 0;
}

/** Keys whose rate window closed by `now` open again (through flow_key_limited); returns how many. */
export function reopenKeys(sql: SqlStorage, now: number): number {
  return sql.exec("UPDATE flow_key_state SET limited_until = 0 WHERE limited_until > 0 AND limited_until <= ? RETURNING 1", now).toArray().length;
}

/** When the next rate-limited key opens, if any. */
export function nextKeyOpening(sql: SqlStorage): number | null {
  const row = sql.exec<{ t: number }>("SELECT limited_until AS t FROM flow_key_state WHERE limited_until > 0 ORDER BY limited_until LIMIT 1").toArray()[0];
  return row ? row.t : null;
}

function flagOf(sql: SqlStorage, name: string): number {
  return sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = ?", name).toArray()[0]?.value ?? 0;
}

function setFlag(sql: SqlStorage, name: string, value: number): void {
  sql.exec("INSERT INTO flag (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value);
}

/**
 * The open keys with the smallest turns, not in `skip` (a walk of flow_key_open over at most
 * skip + limit rows). With tag sets, only keys with ready jobs in them: for a worker that may take
 * untagged jobs only, a walk of flow_key_open_untagged as bounded; for one with matching tag sets
 * ready, the walk also steps over the open keys whose ready jobs it may not take (one search per
 * set each: a cost that grows with such keys, README "Worker tags").
 */
function openKeys(sql: SqlStorage, skip: readonly string[], limit: number, sets: readonly string[] | null, from: Pick<KeyRow, "turn" | "flow_key"> | null = null): KeyRow[] {
  const not = skip.length > 0 ? ` AND flow_key NOT IN (${skip.map(() => "?").join(", ")})` : "";
  // A worker that may take untagged jobs only walks the keys that have some (flow_key_open_untagged).
  const untaggedOnly = sets !== null && sets.length === 1 && sets[0] === "";
  const [index, terms] = untaggedOnly ? ["flow_key_open_untagged", OPEN_UNTAGGED] : ["flow_key_open", OPEN];
  const bounded = sets === null || untaggedOnly;
  // A walk that steps over keys this worker may not take resumes where the last round found one.
  const after = !bounded && from !== null ? " AND (turn > ? OR (turn = ? AND flow_key >= ?))" : "";
  const cursor = sql.exec<KeyRow>(
    `SELECT flow_key, turn, cap, held, rate_n, rate_period, window_start, window_count FROM flow_key_state INDEXED BY ${index}
     WHERE ${terms}${not}${after} ORDER BY turn, flow_key${bounded ? " LIMIT ?" : ""}`,
    ...skip,
    ...(after ? [from!.turn, from!.turn, from!.flow_key] : []),
    ...(bounded ? [limit] : []),
  );
  if (bounded) return cursor.toArray();
  const keys: KeyRow[] = [];
  for (const k of cursor) {
    if (keyHasClass(sql, k.flow_key, sets)) keys.push(k);
    if (keys.length >= limit) break;
  }
  return keys;
}

/** Are there ready jobs without a key (in one of `sets`, if given)? One search of job_index_flow (or per set). */
function unkeyedReady(sql: SqlStorage, sets: readonly string[] | null): boolean {
  if (sets !== null) return keyHasClass(sql, "", sets);
  return sql.exec(`SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = '' LIMIT 1`).toArray().length > 0;
}

/**
 * Up to `want` ready jobs of `key` this worker may take, in take order, within the byte budget
 * (`bytes` already used). Reads the cursor only as far as it needs (at most want × 4 + 16 rows).
 */
function pickJobs(sql: SqlStorage, key: string, want: number, req: TurnRequest, bytes: number, first: boolean): { ids: string[]; bytes: number; passedOver: number; full: boolean } {
  const ids: string[] = [];
  let passedOver = 0;
  let full = false;
  const cursor: Iterable<ReadyRow> =
    req.sets !== null
      ? classRows(sql, key, req.sets, want * 4 + 16)
      : sql.exec<ReadyRow>(
          `SELECT job_id, avoid_workers, blocked_workers, ready_since, input_bytes FROM job_index INDEXED BY job_index_flow
           WHERE ${READY_ROW} AND flow_key = ? ORDER BY priority DESC, low_priority ASC, created_at ASC, job_id ASC LIMIT ?`,
          key,
          want * 4 + 16,
        );
  for (const r of cursor) {
    if (ids.length >= want) break;
    if (req.avoided(r)) {
      passedOver++;
      continue;
    }
    if ((!first || ids.length > 0) && bytes + r.input_bytes > req.byteBudget) {
      full = true;
      break;
    }
    bytes += r.input_bytes;
    ids.push(r.job_id);
  }
  return { ids, bytes, passedOver, full };
}

/** How many more starts the key's rate window allows at `now` (Infinity without a rate), and the window then. */
function rateRoom(k: KeyRow, now: number): { room: number; start: number; count: number } {
  if (k.rate_n <= 0) return { room: Infinity, start: k.window_start, count: k.window_count };
  const closed = k.window_start + k.rate_period <= now;
  const start = closed ? now : k.window_start;
  const count = closed ? 0 : k.window_count;
  return { room: k.rate_n - count, start, count };
}

/**
 * Hands out up to `max` ready jobs by turns (see the header): the least recently served open key
 * (the jobs without a key count as one) hands out its best job and goes to the back; a key that
 * is the only one open hands out what it may at once. Offered rows leave the ready index and
 * count as held (triggers); a key that reaches its rate leaves the open set until its window
 * closes. Bounded: at most max + 16 rounds, each a few index searches.
 */
export function offerByTurns(sql: SqlStorage, req: TurnRequest): TurnOffer {
  const { max, now } = req;
  const ids: string[] = [];
  const skip: string[] = [];
  let bytes = 0;
  let passedOver = 0;
  let limitedUntil: number | null = null;
  let unkeyedOpen = unkeyedReady(sql, req.sets);
  let counter = flagOf(sql, "flow_turn");
  let unkeyedTurn = flagOf(sql, "flow_turn_none");
  const startCounter = counter;
  /**
   * With tag sets: where the first key this worker may take stood. Keys before it stay ones it
   * may not take for this whole offer, and only a served key moves (to the back), so the next
   * round's walk starts there instead of stepping over them again.
   */
  let from: Pick<KeyRow, "turn" | "flow_key"> | null = null;
  for (let round = 0; ids.length < max && round < max + 16; round++) {
    const open = openKeys(sql, skip, 2, req.sets, from);
    const head = open[0];
    if (head !== undefined) from = { turn: head.turn, flow_key: head.flow_key };
    const unkeyed = unkeyedOpen && (head === undefined || unkeyedTurn <= head.turn);
    if (!unkeyed && head === undefined) break;
    const others = unkeyed ? open.length > 0 : unkeyedOpen || open.length > 1;
    let want = others ? 1 : max - ids.length;
    let window = { room: Infinity, start: 0, count: 0 };
    if (!unkeyed) {
      window = rateRoom(head!, now);
      want = Math.min(want, head!.cap - head!.held, window.room);
      if (want <= 0) {
        // A lowered rate left this window overdrawn: the key waits for its window to close.
        if (window.room <= 0) {
          const until = window.start + head!.rate_period;
          sql.exec("UPDATE flow_key_state SET limited_until = ? WHERE flow_key = ?", until, head!.flow_key);
          limitedUntil = limitedUntil === null ? until : Math.min(limitedUntil, until);
        }
        skip.push(head!.flow_key);
        continue;
      }
    }
    const key = unkeyed ? "" : head!.flow_key;
    const got = pickJobs(sql, key, want, req, bytes, ids.length === 0);
    passedOver += got.passedOver;
    if (got.ids.length === 0) {
      if (unkeyed) unkeyedOpen = false;
      else skip.push(key);
      if (got.full) break;
      continue;
    }
    bytes = got.bytes;
    for (const id of got.ids) sql.exec("UPDATE job_index SET offered_until = ? WHERE job_id = ?", now + req.offerMs, id);
    ids.push(...got.ids);
    counter += 1;
    if (unkeyed) unkeyedTurn = counter;
    else {
      const k = head!;
      const count = window.count + got.ids.length;
      const until = k.rate_n > 0 && count >= k.rate_n ? window.start + k.rate_period : 0;
      if (until > 0) limitedUntil = limitedUntil === null ? until : Math.min(limitedUntil, until);
      sql.exec(
        "UPDATE flow_key_state SET turn = ?, window_start = ?, window_count = ?, limited_until = ? WHERE flow_key = ?",
        counter,
        k.rate_n > 0 ? window.start : k.window_start,
        k.rate_n > 0 ? count : k.window_count,
        until,
        k.flow_key,
      );
    }
    if (got.full) break;
  }
  if (counter !== startCounter) {
    setFlag(sql, "flow_turn", counter);
    setFlag(sql, "flow_turn_none", unkeyedTurn);
  }
  return { ids, passedOver, limitedUntil };
}

/**
 * Ready jobs an offer could hand out now, up to `bound`: those without a key (job_index_flow)
 * plus the ready jobs of open keys (a walk of flow_key_open of at most `bound` keys).
 */
export function openDepth(sql: SqlStorage, bound: number): number {
  return sql
    .exec<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = '' LIMIT ?1))
            + (SELECT COALESCE(SUM(ready), 0) FROM (SELECT ready FROM flow_key_state INDEXED BY flow_key_open WHERE ${OPEN} LIMIT ?1)) AS n`,
      bound,
    )
    .one().n;
}

/** Why a keyed waiting job waits on its key, if it does. */
export type KeyWait = { reason: "key_concurrency" } | { reason: "key_rate_limited"; availableAt: number } | null;

/** The key of a job in the index ('' for none or an unknown job). */
export function flowKeyOf(sql: SqlStorage, jobId: string): string {
  return sql.exec<{ flow_key: string }>("SELECT flow_key FROM job_index WHERE job_id = ?", jobId).toArray()[0]?.flow_key ?? "";
}

/** Is `key` at its cap, or rate-limited at `now`? */
export function keyWait(sql: SqlStorage, key: string, now: number): KeyWait {
  if (key === "") return null;
  const k = sql.exec<{ held: number; cap: number; limited_until: number }>("SELECT held, cap, limited_until FROM flow_key_state WHERE flow_key = ?", key).toArray()[0];
  if (!k) return null;
  if (k.held >= k.cap) return { reason: "key_concurrency" };
  if (k.limited_until > now) return { reason: "key_rate_limited", availableAt: k.limited_until };
  return null;
}

/**
 * 1 + the ready jobs of the job's key ahead of it in take order (its key's turns are what it
 * waits for), counted below `bound` (then `bound`); 1 for a job on offer; null when not ready.
 * Four searches of job_index_flow, as queuePosition's of job_index_order.
 */
export function keyPosition(sql: SqlStorage, jobId: string, key: string, bound: number): number | null {
  const row = sql
    .exec<{ priority: number; low_priority: number; created_at: number; offered_until: number; dispatch_pending: number }>(
      "SELECT priority, low_priority, created_at, offered_until, dispatch_pending FROM job_index WHERE job_id = ? AND state = 'IN_QUEUE'",
      jobId,
    )
    .toArray()[0];
  if (!row) return null;
  if (row.offered_until > 0 || row.dispatch_pending === 1) return 1;
  const ahead = sql
    .exec<{ n: number }>(
      `SELECT COUNT(*) AS n FROM (
         SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = ?5 AND priority > ?1
         UNION ALL SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = ?5 AND priority = ?1 AND low_priority < ?2
         UNION ALL SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = ?5 AND priority = ?1 AND low_priority = ?2 AND created_at < ?3
         UNION ALL SELECT 1 FROM job_index INDEXED BY job_index_flow WHERE ${READY_ROW} AND flow_key = ?5 AND priority = ?1 AND low_priority = ?2 AND created_at = ?3 AND job_id < ?4
         LIMIT ?6)`,
      row.priority,
      row.low_priority,
      row.created_at,
      jobId,
      key,
      bound - 1,
    )
    .one().n;
  return ahead + 1;
}

/** Rows one prune of idle keys removes at most. */
const PRUNE_KEYS = 1000;

/**
 * Drops keys with nothing ready or held whose rate window is over (through flow_key_idle, at
 * most PRUNE_KEYS): a key that comes back starts with the first turn. Returns how many went.
 */
export function pruneIdleKeys(sql: SqlStorage, now: number): number {
  return sql
    .exec(
      `DELETE FROM flow_key_state WHERE rowid IN (SELECT rowid FROM flow_key_state INDEXED BY flow_key_idle WHERE ready = 0 AND held = 0
         AND limited_until = 0 AND (rate_n = 0 OR window_start + rate_period <= ?) LIMIT ?) RETURNING 1`,
      now,
      PRUNE_KEYS,
    )
    .toArray().length;
}
