/**
 * What the endpoint object keeps of its worker shards (liveness objects): each shard's last
 * summary (worker counts, latest sign of life), in the worker_shard table (endpoint migration 6).
 */
import { recordColdStarts } from "./endpoint-metrics";
import type { ShardSummary } from "./liveness-object";
import { countStates, UNKNOWN_TAGS, type LiveWorkers, type TagSetSign, type WorkerCounts } from "./workers";
import { tagsMatch } from "../shared/tags";
import { allLivenessRefs, livenessName } from "../shared/liveness";
import { BLOCKLIST } from "../shared/limits";

/** Stores a worker shard's summary; its cold starts count for metrics. */
export function storeSummary(sql: SqlStorage, shard: number, summary: ShardSummary, now: number): void {
  sql.exec(
    "INSERT OR REPLACE INTO worker_shard (shard, counts, last_sign, at, tag_sets, live) VALUES (?, ?, ?, ?, ?, ?)",
    shard,
    JSON.stringify(summary.counts),
    summary.lastSign,
    now,
    JSON.stringify(summary.tagSets ?? []),
    JSON.stringify(summary.live ?? { workers: [], more: true }),
  );
  recordColdStarts(sql, summary.coldStarts, now);
}

/**
 * Workers by state from the shards' last summaries (they lag by up to LIVENESS.flushMs); the
 * `throttled` workers held back by the concurrency limit count throttled, taken from the idle ones.
 */
export function summedCounts(sql: SqlStorage, throttled: number): WorkerCounts {
  const counts = countStates([]);
  for (const r of sql.exec<{ counts: string }>("SELECT counts FROM worker_shard")) {
    for (const [state, n] of Object.entries(JSON.parse(r.counts) as WorkerCounts)) counts[state as keyof WorkerCounts] += n;
  }
  const held = Math.min(counts.idle, throttled);
  counts.idle -= held;
  counts.throttled += held;
  return counts;
}

/** The worker shards that have told a summary (a shard does on its first sign of life; the others have no workers). */
export function summarisedShards(sql: SqlStorage): number[] {
  return sql.exec<{ shard: number }>("SELECT shard FROM worker_shard ORDER BY shard").toArray().map((r) => r.shard);
}

/**
 * Has a worker shard told of a sign of life since `since`? With `tags` (canonical, not ''): of a
 * worker that declared all of them (each shard tells at most WORKER_TAGS.setsPerSummary tag sets).
 */
export function signSince(sql: SqlStorage, since: number, tags?: string): boolean {
  if (tags === undefined || tags === "") return sql.exec("SELECT 1 FROM worker_shard WHERE last_sign >= ? LIMIT 1", since).toArray().length > 0;
  for (const r of sql.exec<{ tag_sets: string }>("SELECT tag_sets FROM worker_shard WHERE last_sign >= ?", since)) {
    const sets = JSON.parse(r.tag_sets) as TagSetSign[];
    if (sets.some((s) => s.lastSign >= since && (s.tags === UNKNOWN_TAGS || tagsMatch(tags, s.tags)))) return true;
  }
  return false;
}

/**
 * The workers with a sign of life since `since` that may take a job requiring `tags` (canonical;
 * '' for none), by id, from every worker shard's last summary; `complete` is false when a shard
 * named only some of its live workers (or none, being older), so the list may lack some.
 */
export function liveMatching(sql: SqlStorage, since: number, tags: string): LiveMatching {
  const lists = sql.exec<{ live: string }>("SELECT live FROM worker_shard WHERE last_sign >= ?", since).toArray().map((r) => JSON.parse(r.live) as LiveWorkers);
  return matchingOf(lists, since, tags);
}

/** Live workers by id that may take a job requiring some tags; `complete`: every live worker is known. */
export interface LiveMatching {
  ids: string[];
  complete: boolean;
}

/** The workers of `lists` with a sign since `since` that may take a job requiring `tags`. */
function matchingOf(lists: readonly LiveWorkers[], since: number, tags: string): LiveMatching {
  const ids = new Set<string>();
  for (const l of lists) for (const w of l.workers) if (w.lastSign >= since && tagsMatch(tags, w.tags)) ids.add(w.workerId);
  return { ids: [...ids], complete: lists.every((l) => !l.more) };
}

/**
 * As liveMatching, asked of the endpoint generation's worker shards themselves (one call each):
 * the summaries lag them by up to a flush interval. Only a job about to fail on a blocklist asks.
 */
export async function liveNow(env: Env, endpointId: string, generation: string, since: number, tags: string): Promise<LiveMatching> {
  const refs = allLivenessRefs(endpointId, generation);
  const lists = await Promise.all(refs.map((ref) => env.LIVENESS.get(env.LIVENESS.idFromName(livenessName(ref))).live(ref, since, BLOCKLIST.liveIdsPerSummary)));
  return matchingOf(lists, since, tags);
}
