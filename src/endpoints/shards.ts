/**
 * Where an endpoint's jobs are indexed (issue 12, item 3). Shard 0 is the endpoint object itself
 * (jobs from before sharding carry no shard and stay there); shards 1.. are ShardObjects named
 * by (endpoint, generation, shard), so a re-created endpoint never meets an old incarnation's
 * shards. An endpoint created with several shards indexes new jobs on ShardObjects only
 * (firstShard 1), keeping the endpoint object off every job's path. A job stores the shard it was
 * placed on: growing the count never moves an existing job.
 */
import type { EndpointConfig } from "./config";
import type { IndexEntry } from "../jobs/index-entry";
import type { Handed } from "../jobs/handed";
import { shardName, type ShardAddr } from "../shared/shards";
import type { TakeRide } from "../shared/liveness";
import { fnv1a as hashOf } from "../shared/hash";

export { shardName, type ShardAddr } from "../shared/shards";

/** A stable hash for placement (sequence and flow keys, worker homes): shared/hash's FNV-1a. */
export { fnv1a as hashOf } from "../shared/hash";

type Placement = Pick<EndpointConfig, "shards" | "concurrency" | "generation"> & { firstShard?: 0 | 1 };

/**
 * Shard numbers an endpoint reads and takes from: 0..shardCount-1 (1 for an endpoint from before
 * generations were kept). Shard 0, the endpoint object, is always among them: it indexes the jobs
 * of an endpoint with one shard or a cap, and of one from before firstShard.
 */
export function shardCount(config: Pick<EndpointConfig, "shards" | "generation"> & { firstShard?: 0 | 1 }): number {
  return config.generation === "" ? 1 : Math.max(1, config.shards ?? 1) + (config.firstShard ?? 0);
}

/** The shards new jobs are placed on: [first, first + count). Shard 0 alone for a capped endpoint (its cap is counted there). */
export function placementShards(config: Placement): { first: number; count: number } {
  if (config.concurrency !== null || config.generation === "") return { first: 0, count: 1 };
  return { first: config.firstShard ?? 0, count: Math.max(1, config.shards ?? 1) };
}

/** A sequence's shard: its key's hash over the shard count fixed at creation (FIFO per key stays exact). */
export function sequenceShard(config: Placement & Pick<EndpointConfig, "sequenceShards">, key: string): number {
  if (config.concurrency !== null || config.generation === "") return 0;
  return (config.firstShard ?? 0) + (hashOf(key) % Math.max(1, config.sequenceShards ?? 1));
}

/**
 * A flow key's shard: its hash over `flowShards` (fixed at creation; 1 by default, so every key
 * shares one shard and turns between keys are exact). Its caps, rate and turns are counted there.
 */
export function flowShard(config: Placement & Pick<EndpointConfig, "flowShards">, key: string): number {
  if (config.concurrency !== null || config.generation === "") return 0;
  return (config.firstShard ?? 0) + (hashOf(key) % Math.max(1, config.flowShards));
}

/** The shard a worker parks its long-poll on: one of the placement shards (0 for a capped endpoint). */
export function homeShard(config: Placement, workerId: string): number {
  const { first, count } = placementShards(config);
  return first + (hashOf(workerId) % count);
}

/** A job a shard's take claimed for the worker: its input, unless too large to pass through the shard (see MEMORY_BOUNDS.inlineClaimBytes). */
export interface ClaimedJob {
  id: string;
  attempt: number;
  input: Uint8Array | null;
  /** What the worker is handed besides (jobs/handed). */
  handed?: Handed;
}

/** A take's answer from one shard. */
export interface TakeAnswer {
  /** Jobs offered to the caller, which claims them (jobs that came while the take waited). */
  ids: string[];
  /** Jobs the shard claimed for the worker (ready at once: one hop). */
  jobs?: ClaimedJob[];
  /** Offers whose claim by the shard failed (the index was behind the job; repaired): worth taking again. */
  stale?: number;
  /** Another shard has ready jobs nobody waits for there: take from it (wait 0). */
  redirect?: number;
  /** Ready jobs left here (at most a small bound): the edge's cached depth for sampling. */
  depth: number;
}

/** Why a waiting job waits (SPEC §5 "why it waits"). */
export const QUEUE_REASONS = [
  "no_workers",
  "all_workers_busy",
  "concurrency_limit",
  "endpoint_paused",
  "sequenced_behind",
  "dispatch_retrying",
  "scheduled",
  "job_paused",
  "key_concurrency",
  "key_rate_limited",
  "no_matching_workers",
  // A job of replicas (issue 15, item 4): fewer than its replicas started yet.
  "replicas_starting",
] as const;
export type QueueReason = (typeof QUEUE_REASONS)[number];

export interface QueueInfo {
  /** 1 + ready jobs ahead in take order on the job's shard; approximate, as the index trails the jobs by a moment. */
  position: number | null;
  /** The job is at least `position` in line (counted exactly only below QUEUE_POSITION.exactBelow). */
  positionAtLeast?: true;
  reason: QueueReason;
  ahead?: string;
  /** The last push error, while a dispatch is being retried. */
  lastError?: string;
  /** A SCHEDULED job (reason "scheduled"): when it becomes ready (RFC 3339; absent where only the index answers). */
  runAt?: string;
  /** A job of a rate-limited key (reason "key_rate_limited"): when its key may start jobs again (RFC 3339). */
  availableAt?: string;
  /** A job no live worker matches (reason "no_matching_workers"): the tags it requires. */
  tags?: string[];
}

/** The answer to a job's sync: jobs the caller should release (next in a sequence). */
export interface SyncReply {
  release: string[];
  /** Every live worker that may take the job is blocklisted from it: the job should fail (commands.blocklisted). */
  blocklisted?: true;
  /** The job's endpoint incarnation is gone (deleted, perhaps re-created): the job must end. */
  orphaned?: true;
}

/** Who an offer is for: a worker and the tags it declared (canonical, shared/tags; '' for none). */
export interface Taker {
  workerId: string;
  tags: string;
}

/** A take as a shard serves it. */
export interface TakeAsk {
  workerId: string;
  max: number;
  /** How long to wait here for a job (0: answer at once). */
  waitMs: number;
  /** The endpoint incarnation the worker was authorized against (null: any). */
  generation: string | null;
  /** Shards this take was already sent to in vain; a waiting take is not redirected there again. */
  skip?: number[];
  /** The endpoint object's hint sent this take here (the shard hints again). */
  redirected?: boolean;
  /** The take's id (shared/take-ids): its claims carry it to the worker's liveness object. */
  takeId?: string | null;
  /** The tags the worker declared (canonical, shared/tags; '' or absent: none). */
  tags?: string;
  /** The take's sign of life, carried by the claims it makes (HoldTell.take; absent: the take sends its own). */
  sign?: TakeRide;
}

/** What jobs and the edge ask of the shard that indexes a job. */
export interface JobQueue {
  sync(entry: IndexEntry): Promise<SyncReply>;
  enterSequence(key: string, jobId: string): Promise<string | null>;
  sequenceAhead(jobId: string): Promise<string | null>;
  queueInfo(jobId: string): Promise<QueueInfo>;
  take(ask: TakeAsk): Promise<TakeAnswer>;
}

export function shardStub(env: Env, addr: ShardAddr) {
  return env.SHARD.get(env.SHARD.idFromName(shardName(addr)));
}

/** The queue of shard `shard` of an endpoint incarnation (shard 0, or a job without generation: the endpoint object). */
export function queueOf(env: Env, endpointId: string, generation: string | null, shard: number): JobQueue {
  if (shard === 0 || generation === null || generation === "") {
    const s = env.ENDPOINT.get(env.ENDPOINT.idFromName(endpointId));
    return {
      sync: (e) => s.sync(e),
      enterSequence: (k, id) => s.enterSequence(k, id),
      sequenceAhead: (id) => s.sequenceAhead(id),
      queueInfo: (id) => s.queueInfo(id),
      take: (ask) => s.take(ask),
    };
  }
  const addr: ShardAddr = { endpointId, generation, shard };
  const s = shardStub(env, addr);
  return {
    sync: (e) => s.sync(addr, e),
    enterSequence: (k, id) => s.enterSequence(addr, k, id),
    sequenceAhead: (id) => s.sequenceAhead(addr, id),
    queueInfo: (id) => s.queueInfo(addr, id),
    take: (ask) => s.take(addr, ask),
  };
}
