/**
 * Why a waiting job waits (its `queue` field: SPEC §5 "why it waits"), and roughly where it
 * stands on its shard, from the shard's index and what it knows of its workers.
 */
import type { EndpointConfig } from "./config";
import { dispatchErrorOf, queuePosition } from "./ready-index";
import { flowKeyOf, keyPosition, keyWait } from "./flow-keys";
import { jobAhead } from "./sequences";
import { tagsIn } from "./tag-classes";
import type { QueueInfo } from "./shards";
import { QUEUE_POSITION } from "../shared/limits";
import { tagsOf } from "../shared/tags";

/** What a shard tells the reading: its index, clock, config and run state, and its workers. */
export interface WaitContext {
  sql: SqlStorage;
  now: number;
  /** The shard clock's time as wall time (RFC 3339 answers). */
  toWall(t: number): number;
  config: EndpointConfig | null;
  paused: boolean;
  /** Is the endpoint's concurrency cap reached? */
  atCapacity(now: number): boolean;
  /** Does a take poll here now (of a worker that declared all of `tags`, when not '')? */
  polling(tags: string): boolean;
  /** Has a worker (that declared all of `tags`, if given) shown a sign of life since `since`? */
  alive(since: number, tags?: string): Promise<boolean>;
}

export async function waitOf(jobId: string, q: WaitContext): Promise<QueueInfo> {
  const { sql, now, config } = q;
  const ahead = jobAhead(sql, jobId);
  if (ahead !== null) return { position: null, reason: "sequenced_behind", ahead };
  // A keyed job waits for its key's turns: its position is among its key's ready jobs.
  const key = flowKeyOf(sql, jobId);
  const position = key === "" ? queuePosition(sql, jobId) : keyPosition(sql, jobId, key, QUEUE_POSITION.exactBelow);
  // Far back in line, the position is a bound (a status read counts fewer than exactBelow rows).
  const at = position !== null && position >= QUEUE_POSITION.exactBelow ? { position, positionAtLeast: true as const } : { position };
  if (q.paused) return { ...at, reason: "endpoint_paused" };
  const dispatchError = dispatchErrorOf(sql, jobId);
  if (dispatchError !== undefined) return { ...at, reason: "dispatch_retrying", ...(dispatchError ? { lastError: dispatchError } : {}) };
  const onKey = keyWait(sql, key, now);
  if (onKey?.reason === "key_concurrency") return { ...at, reason: "key_concurrency" };
  if (onKey?.reason === "key_rate_limited") return { ...at, reason: "key_rate_limited", availableAt: new Date(q.toWall(onKey.availableAt)).toISOString() };
  if (q.atCapacity(now)) return { ...at, reason: "concurrency_limit" };
  // The shards' latest signs of life lag by up to LIVENESS.flushMs (README "Worker liveness").
  const since = now - (config?.heartbeatTimeout ?? 0);
  if (!q.polling("") && !(await q.alive(since))) return { ...at, reason: "no_workers" };
  // A job that requires tags waits for a live worker that declared them all (issue 15, item 3).
  const tags = tagsIn(sql, jobId);
  if (tags !== "" && !q.polling(tags) && !(await q.alive(since, tags))) return { ...at, reason: "no_matching_workers", tags: tagsOf(tags) };
  return { ...at, reason: "all_workers_busy" };
}
