/**
 * The endpoint object's calls to its other shards (1..shardCount-1; issue 12, item 3): the config fan-out
 * and the reads it merges (counts and counters add, metric rows merge, recent jobs interleave).
 * A shard that fails is left out of a read (logged), so one shard down spoils no read.
 */
import type { JobState } from "../jobs/states";
import type { MetricRows } from "../metrics/buckets";
import type { EndpointConfig } from "./config";
import type { FlowKeyRule } from "./flow-rules";
import type { CounterName } from "./index-counters";
import type { RecentJob } from "./ready-index";
import type { QueueStats } from "./ready-queue";
import type { ShardState } from "./shard-object";
import { shardCount, shardStub, type QueueInfo, type ShardAddr } from "./shards";

type Stub = ReturnType<typeof shardStub>;

/** Shards 1..shardCount-1 of the endpoint's current incarnation. */
export function shardAddrs(config: EndpointConfig | null): ShardAddr[] {
  if (!config) return [];
  return Array.from({ length: shardCount(config) - 1 }, (_, i) => ({ endpointId: config.id, generation: config.generation, shard: i + 1 }));
}

/** Calls every other shard; a shard that fails answers null here. */
export async function eachShard<T>(env: Env, config: EndpointConfig | null, f: (stub: Stub, addr: ShardAddr) => Promise<T>): Promise<Array<T | null>> {
  const addrs = shardAddrs(config);
  const results = await Promise.allSettled(addrs.map((a) => f(shardStub(env, a), a)));
  return results.map((r, i) => {
    if (r.status === "fulfilled") return r.value;
    console.warn(`endpoint ${config?.id}: shard ${addrs[i]!.shard} did not answer`, r.reason);
    return null;
  });
}

/** Tells every shard the config, run state and flow-key overrides; answers whether one missed it (the caller's alarm repeats it). */
export async function fanOutState(env: Env, config: EndpointConfig, paused: boolean, flowRules?: FlowKeyRule[]): Promise<boolean> {
  const state: ShardState = { config, paused, ...(flowRules === undefined ? {} : { flowRules }) };
  const answers = await eachShard(env, config, (s, a) => s.setState(a, state).then(() => true));
  return answers.some((x) => x === null);
}

/** `own` plus every other shard's index figures. */
export async function mergedStats(env: Env, config: EndpointConfig, own: QueueStats): Promise<QueueStats> {
  const byState = { ...own.byState };
  const counters = { ...own.counters };
  for (const s of await eachShard(env, config, (stub, a) => stub.stats(a))) {
    if (!s) continue;
    for (const [k, n] of Object.entries(s.byState)) byState[k as JobState] = (byState[k as JobState] ?? 0) + (n ?? 0);
    for (const [k, n] of Object.entries(s.counters)) counters[k as CounterName] += n;
  }
  return { byState, counters };
}

/** Every other shard's metric rows for the window. */
export async function shardMetricRows(env: Env, config: EndpointConfig, from: number, to: number, bucketMs: number): Promise<MetricRows[]> {
  const rows = await eachShard(env, config, async (s, a): Promise<MetricRows | null> => s.metricRows(a, from, to, bucketMs));
  return rows.filter((r): r is MetricRows => r !== null);
}

/**
 * The most recently changed jobs over every shard (`own`: shard 0's, `ownInfo` why one of them
 * waits), newest first, with why the waiting ones wait (for the dashboard).
 */
export async function mergedJobs(
  env: Env,
  config: EndpointConfig,
  own: RecentJob[],
  limit: number,
  ownInfo: (jobId: string) => Promise<QueueInfo>,
): Promise<Array<RecentJob & { queue: QueueInfo | null }>> {
  const fromShards = await eachShard(env, config, (s, a) => s.recent(a, limit).then((list) => list.map((j) => ({ ...j, shard: a.shard }))));
  const merged = [...own.map((j) => ({ ...j, shard: 0 })), ...fromShards.flatMap((l) => l ?? [])]
    .sort((x, y) => y.updatedAt - x.updatedAt || (x.jobId < y.jobId ? -1 : 1))
    .slice(0, limit);
  return Promise.all(
    merged.map(async ({ shard, ...j }) => {
      if (j.state === "SCHEDULED") return { ...j, queue: { position: null, reason: "scheduled" as const } };
      if (j.state === "PAUSED") return { ...j, queue: { position: null, reason: "job_paused" as const } };
      if (j.state !== "IN_QUEUE" && j.state !== "SEQUENCED") return { ...j, queue: null };
      return { ...j, queue: shard === 0 ? await ownInfo(j.jobId) : await queueInfoOn(env, config, shard, j.jobId) };
    }),
  );
}

/** Why a job of shard `shard` (≥ 1) waits; null when that shard does not answer. */
async function queueInfoOn(env: Env, config: EndpointConfig, shard: number, jobId: string): Promise<QueueInfo | null> {
  const addr = { endpointId: config.id, generation: config.generation, shard };
  try {
    return await shardStub(env, addr).queueInfo(addr, jobId);
  } catch {
    return null;
  }
}

/** Waiting jobs of every shard (`own`: shard 0's), up to `limit`. */
export async function mergedWaiting(env: Env, config: EndpointConfig, own: string[], limit: number): Promise<string[]> {
  const fromShards = await eachShard(env, config, (s, a) => s.waitingJobs(a, limit));
  return [...own, ...fromShards.flatMap((l) => l ?? [])].slice(0, limit);
}

/** Deletes every other shard's rows; returns their unfinished jobs (up to `limit` each). */
export async function deleteShards(env: Env, config: EndpointConfig, limit: number): Promise<string[]> {
  return (await eachShard(env, config, (s, a) => s.deleteShard(a, limit))).flatMap((l) => l ?? []);
}
