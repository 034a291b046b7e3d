/**
 * The edge's choices between an endpoint's shards (issue 12, item 3), from what this isolate has
 * seen: new jobs go round-robin (a sequence's jobs by their key's hash), and a take samples the
 * deeper of two other shards by the depths that earlier take answers reported.
 */
import type { EndpointConfig } from "../endpoints/config";
import { placementShards, sequenceShard, shardCount } from "../endpoints/shards";

/** Endpoints this isolate keeps placement state for; past it, the state starts over (it is only a hint). */
const KEEP = 10_000;
const nextShard = new Map<string, number>();
const depths = new Map<string, number[]>();

const keyOf = (c: Pick<EndpointConfig, "id" | "generation">) => `${c.id}:${c.generation}`;

function remember<T>(m: Map<string, T>, key: string, v: T): void {
  if (m.size >= KEEP && !m.has(key)) m.clear();
  m.set(key, v);
}

/** The shard a new job is placed on. */
export function placeJob(config: EndpointConfig, sequenceKey: string | null): number {
  if (sequenceKey !== null) return sequenceShard(config, sequenceKey);
  const n = placementShards(config);
  if (n <= 1) return 0;
  const key = keyOf(config);
  const i = nextShard.get(key) ?? Math.floor(Math.random() * n);
  remember(nextShard, key, (i + 1) % n);
  return i % n;
}

/** A take answer's report of a shard's ready jobs. */
export function noteDepth(config: EndpointConfig, shard: number, depth: number): void {
  const key = keyOf(config);
  const list = depths.get(key) ?? new Array<number>(shardCount(config)).fill(0);
  list[shard] = depth;
  remember(depths, key, list);
}

/**
 * Another shard than `home` to try first: of two picked at random, the one last seen deeper.
 * None with one shard, or with a concurrency cap (new jobs are all on shard 0, the home).
 */
export function sampleShard(config: EndpointConfig, home: number): number | null {
  const n = shardCount(config);
  if (n <= 1 || config.concurrency !== null) return null;
  const pick = () => (home + 1 + Math.floor(Math.random() * (n - 1))) % n;
  const a = pick();
  const b = pick();
  const d = depths.get(keyOf(config)) ?? [];
  return (d[b] ?? 0) > (d[a] ?? 0) ? b : a;
}
