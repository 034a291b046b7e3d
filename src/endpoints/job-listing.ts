/**
 * One shard's part of GET /v2/{ep}/requests (issue 14, item 3): the index rows after a position,
 * newest first by (created_at, job_id), with filters. The endpoint object (shard 0) and every
 * ShardObject answer it; flows/requests.ts merges the shards' pages.
 *
 * Order and cursor: created_at never changes for a job (a retry keeps it), so a position
 * (created_at, job_id) stays where it is while jobs change state: paging never repeats a job and
 * never skips one that exists and matches throughout.
 *
 * Cost (issue 12's rule: every query on a request path is an index search): each filter walks
 * an index from the position (endpoint migration 8): no filter or a time range job_index_listing;
 * a status one walk of job_index_listing_state per state named (merged as they go); a batch job_index_listing_batch;
 * a sequence key job_index_listing_sequence. Filters the chosen index does not cover (a status
 * with a batch or a sequence key) are checked on the rows walked, and the walk stops after
 * LISTING.scanRows rows: a page may then come back short, with `reached` saying how far it got.
 * So one call reads at most limit + 8 or scanRows rows, however many jobs the shard holds.
 */
import type { JobState } from "../jobs/states";
import { LISTING } from "../shared/limits";

/** A position in the order: jobs strictly after it (older, or as old with a smaller id) come next. */
export interface ListKey {
  createdAt: number;
  jobId: string;
}

export interface ListFilter {
  /** Any of these states (null: any state). */
  states: JobState[] | null;
  /** created_at ≥ since (ms; null: no bound). */
  since: number | null;
  /** created_at < until (ms; null: no bound). */
  until: number | null;
  batchId: string | null;
  sequenceKey: string | null;
}

export interface ListQuery {
  filter: ListFilter;
  /** Rows strictly after this position (null: from the newest). */
  after: ListKey | null;
  limit: number;
}

/** A job as the index knows it (what a listed request shows: no input, no output). */
export interface ListedJob {
  jobId: string;
  state: JobState;
  createdAt: number;
  /** When this shard last applied a change of the job. */
  updatedAt: number;
  priority: number;
  workerId: string | null;
  attempt: number;
  batchId: string | null;
  sequenceKey: string | null;
  delayMs: number | null;
  executionMs: number | null;
}

export interface ListPage {
  /** Matching rows after the position, newest first, at most `limit`. */
  jobs: ListedJob[];
  /**
   * How far this shard looked: every matching row between the query's position and this one is
   * in `jobs`. Null: it looked to the end (no more matching rows here).
   */
  reached: ListKey | null;
}

type Row = {
  job_id: string;
  state: string;
  created_at: number;
  updated_at: number;
  priority: number;
  worker_id: string | null;
  attempt: number;
  batch_id: string | null;
  sequence_key: string | null;
  delay_ms: number | null;
  execution_ms: number | null;
};

const COLUMNS = "job_id, state, created_at, updated_at, priority, worker_id, attempt, batch_id, sequence_key, delay_ms, execution_ms";

const toJob = (r: Row): ListedJob => ({
  jobId: r.job_id,
  state: r.state as JobState,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  priority: r.priority,
  workerId: r.worker_id,
  attempt: r.attempt,
  batchId: r.batch_id,
  sequenceKey: r.sequence_key,
  delayMs: r.delay_ms,
  executionMs: r.execution_ms,
});

/** Newest first: a before b? (created_at DESC, job_id DESC) */
export function keyOrder(a: ListKey, b: ListKey): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return a.jobId < b.jobId ? 1 : a.jobId > b.jobId ? -1 : 0;
}

const rowOrder = (a: Row, b: Row) => keyOrder({ createdAt: a.created_at, jobId: a.job_id }, { createdAt: b.created_at, jobId: b.job_id });

/** The access path a filter takes: the index it walks and the term that picks its rows. */
type Path =
  | { index: "job_index_listing"; term: null }
  | { index: "job_index_listing_state"; term: { sql: string; value: string } }
  | { index: "job_index_listing_batch"; term: { sql: string; value: string } }
  | { index: "job_index_listing_sequence"; term: { sql: string; value: string } };

/**
 * The SQL of one walk: `term` (an equality the index leads with), the position and the time
 * range (ranges on the index's created_at, job_id), newest first. Exported for the plan test.
 */
export function walkSql(path: Path, q: Pick<ListQuery, "after"> & { filter: Pick<ListFilter, "since" | "until"> }): { sql: string; args: Array<string | number> } {
  const where: string[] = [];
  const args: Array<string | number> = [];
  if (path.term) {
    where.push(path.term.sql);
    args.push(path.term.value);
  }
  if (q.after) {
    where.push("(created_at, job_id) < (?, ?)");
    args.push(q.after.createdAt, q.after.jobId);
  }
  if (q.filter.since !== null) {
    where.push("created_at >= ?");
    args.push(q.filter.since);
  }
  if (q.filter.until !== null) {
    where.push("created_at < ?");
    args.push(q.filter.until);
  }
  const sql =
    `SELECT ${COLUMNS} FROM job_index INDEXED BY ${path.index}` +
    (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
    " ORDER BY created_at DESC, job_id DESC LIMIT ?";
  return { sql, args };
}

/** The walks a filter needs: one per state for a status filter alone, else one. */
export function pathsOf(filter: ListFilter): Path[] {
  if (filter.sequenceKey !== null) return [{ index: "job_index_listing_sequence", term: { sql: "sequence_key = ?", value: filter.sequenceKey } }];
  if (filter.batchId !== null) return [{ index: "job_index_listing_batch", term: { sql: "batch_id = ?", value: filter.batchId } }];
  if (filter.states !== null) return filter.states.map((s) => ({ index: "job_index_listing_state", term: { sql: "state = ?", value: s } }) as const);
  return [{ index: "job_index_listing", term: null }];
}

/** Does a row walked match the filters its index did not apply? */
function matches(r: Row, filter: ListFilter): boolean {
  if (filter.states !== null && !filter.states.includes(r.state as JobState)) return false;
  if (filter.batchId !== null && r.batch_id !== filter.batchId) return false;
  if (filter.sequenceKey !== null && r.sequence_key !== filter.sequenceKey) return false;
  return true;
}

/** This shard's matching rows after the position, newest first (see the file's comment for the cost). */
export function listJobs(sql: SqlStorage, q: ListQuery, scanRows: number = LISTING.scanRows): ListPage {
  const limit = Math.max(1, Math.min(q.limit, LISTING.maxLimit));
  const paths = pathsOf(q.filter);
  if (paths.length === 0) return { jobs: [], reached: null };
  if (paths.length > 1 || paths[0]!.index === "job_index_listing_state" || paths[0]!.index === "job_index_listing") {
    // Every filter is in the index's terms: the walks (one per state) merge newest first as they
    // go, so the page reads at most limit + 1 rows per walk beyond what it returns. One row more
    // than the page tells whether a walk has more.
    const walks = paths.map((path) => {
      const { sql: text, args } = walkSql(path, q);
      return sql.exec<Row>(text, ...args, limit + 1);
    });
    const heads = walks.map((w) => w.next());
    const jobs: ListedJob[] = [];
    while (jobs.length < limit) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!;
        if (h.done) continue;
        if (best < 0 || rowOrder(h.value, (heads[best] as IteratorYieldResult<Row>).value) < 0) best = i;
      }
      if (best < 0) break;
      jobs.push(toJob((heads[best] as IteratorYieldResult<Row>).value));
      heads[best] = walks[best]!.next();
    }
    const more = heads.some((h) => !h.done);
    return { jobs, reached: more ? keyOf(jobs.at(-1)!) : null };
  }
  // A batch or sequence walk, the other filters checked on its rows, for at most scanRows rows.
  const { sql: text, args } = walkSql(paths[0]!, q);
  const jobs: ListedJob[] = [];
  let walked = 0;
  let last: Row | null = null;
  for (const r of sql.exec<Row>(text, ...args, scanRows)) {
    walked++;
    last = r;
    if (matches(r, q.filter)) {
      jobs.push(toJob(r));
      if (jobs.length >= limit) return { jobs, reached: keyOf(jobs.at(-1)!) };
    }
  }
  return { jobs, reached: walked >= scanRows && last ? { createdAt: last.created_at, jobId: last.job_id } : null };
}

export const keyOf = (j: ListKey): ListKey => ({ createdAt: j.createdAt, jobId: j.jobId });

/** The query plan of each walk a page with these filters makes (EXPLAIN QUERY PLAN; for tests). */
export function planOf(sql: SqlStorage, filter: ListFilter, after: ListKey | null): string[] {
  return pathsOf(filter).flatMap((path) => {
    const { sql: text, args } = walkSql(path, { filter, after });
    return sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, ...args, 1).toArray().map((r) => r.detail);
  });
}
