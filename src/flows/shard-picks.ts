/**
 * The edge's choices between an endpoint's shards (issue 12, item 3), from what this isolate has
 * seen. A new job goes where a take of this isolate waits (Temporal's "sync match": the job meets
 * its worker at once, and no shard has to announce it through the endpoint object), else
 * round-robin (a sequence's jobs by their key's hash). A take first tries the shard this isolate
 * last saw deepest (from take answers and its own placements), then waits on its home shard;
 * with nothing known deep it goes home at once (the relay sends it where jobs wait).
 */
import type { EndpointConfig } from "../endpoints/config";
import { flowShard, placementShards, sequenceShard } from "../endpoints/shards";

/** Endpoints this isolate keeps placement state for; past it, the state starts over (it is only a hint). */
const KEEP = 10_000;
const nextShard = new Map<string, number>();
const depths = new Map<string, Map<number, number>>();

/** A take of this isolate waiting at a shard; a placement may promise it the job it places there. */
export interface Ticket {
  shard: number;
  promised: boolean;
}
const parked = new Map<string, Ticket[]>();

const keyOf = (c: Pick<EndpointConfig, "id" | "generation">) => `${c.id}:${c.generation}`;

function remember<T>(m: Map<string, T>, key: string, v: T): T {
  if (m.size >= KEEP && !m.has(key)) m.clear();
  m.set(key, v);
  return v;
}

function depthsOf(config: EndpointConfig): Map<number, number> {
  const key = keyOf(config);
  return depths.get(key) ?? remember(depths, key, new Map());
}

/** The shard a new job is placed on (a sequence's jobs together by its key's hash; flow keys' on their shard, see flowShard). */
export function placeJob(config: EndpointConfig, sequenceKey: string | null, flowKey: string | null = null): number {
  if (sequenceKey !== null) return sequenceShard(config, sequenceKey);
  if (flowKey !== null) {
    // Its key's shard, which may hold nothing else ready: this isolate's takes learn of it (see sampleShard).
    const shard = flowShard(config, flowKey);
    if (placementShards(config).count > 1) depthsOf(config).set(shard, (depthsOf(config).get(shard) ?? 0) + 1);
    return shard;
  }
  const { first, count } = placementShards(config);
  if (count <= 1) return first;
  const key = keyOf(config);
  // The oldest take of this isolate waiting on a placement shard, not yet promised a job.
  const ticket = parked.get(key)?.find((t) => !t.promised && t.shard >= first && t.shard < first + count);
  if (ticket) {
    ticket.promised = true;
    return ticket.shard;
  }
  const i = nextShard.get(key) ?? Math.floor(Math.random() * count);
  remember(nextShard, key, (i + 1) % count);
  const shard = first + (i % count);
  // Nobody of this isolate waits there: its next take tries that shard first.
  const d = depthsOf(config);
  d.set(shard, (d.get(shard) ?? 0) + 1);
  return shard;
}

/** A take answer's report of a shard's ready jobs. */
export function noteDepth(config: EndpointConfig, shard: number, depth: number): void {
  depthsOf(config).set(shard, depth);
}

/** Per endpoint, the shard this isolate's last take tried first (sampleShard's rotation). */
const lastProbe = new Map<string, number>();

/**
 * Per endpoint and worker, the shards where a take of that worker found ready jobs but none it may
 * take (a replica of a job it took one of, a task of a job that blocklisted it, tags it lacks),
 * with the depth seen then. Its probes pass such a shard over until more jobs are known there, or
 * for VAIN_MS (found by the endpoint model, seed 1004: without it, jobs barred to a worker drew
 * its probes one shard a poll, and an eligible job elsewhere came with its 4th poll).
 */
const vain = new Map<string, Map<number, { depth: number; at: number }>>();
const VAIN_MS = 60_000;
const vainKey = (c: Pick<EndpointConfig, "id" | "generation">, workerId: string) => `${keyOf(c)}:${workerId}`;

/** A take of `workerId` at `shard` was offered nothing beside `depth` ready jobs there. */
export function noteVain(config: EndpointConfig, workerId: string, shard: number, depth: number, now = Date.now()): void {
  if (depth <= 0) return;
  const key = vainKey(config, workerId);
  const shards = vain.get(key) ?? remember(vain, key, new Map());
  shards.set(shard, { depth, at: now });
}

/** Whether the worker's probes pass `shard` over (see vain). */
function passedOver(config: EndpointConfig, workerId: string | null, shard: number, depth: number, now: number): boolean {
  if (workerId === null) return false;
  const shards = vain.get(vainKey(config, workerId));
  const seen = shards?.get(shard);
  if (!shards || !seen) return false;
  if (depth <= seen.depth && now - seen.at < VAIN_MS) return true;
  shards.delete(shard);
  return false;
}

/**
 * Another shard than `home` to try first: the next, after the one the last take tried, of the
 * placement shards this isolate knows hold ready jobs (home's turn: none, the take goes home).
 * A rotation, not the deepest: a key's jobs all sit on its shard (flow keys), and a deep shard
 * must not starve a shallow one. A shard where `workerId` lately found nothing it may take is
 * passed over (see vain). None when it knows of no ready job elsewhere, with one shard,
 * or with a cap (new jobs are all on shard 0, the home).
 */
export function sampleShard(config: EndpointConfig, home: number, workerId: string | null = null, now = Date.now()): number | null {
  const { first, count } = placementShards(config);
  if (count <= 1) return null;
  const depths = depthsOf(config);
  const key = keyOf(config);
  const after = lastProbe.get(key) ?? first + count - 1;
  for (let i = 1; i <= count; i++) {
    const shard = first + ((after - first + i) % count);
    const depth = depths.get(shard) ?? 0;
    if (depth <= 0 || passedOver(config, workerId, shard, depth, now)) continue;
    remember(lastProbe, key, shard);
    if (shard === home) return null;
    // Spoken for: a take that starts meanwhile tries another shard (the answer resets the count).
    depths.set(shard, depth - 1);
    return shard;
  }
  return null;
}

/** A take of this isolate starts waiting at `shard` (see placeJob). */
export function parkAt(config: EndpointConfig, shard: number): Ticket {
  const key = keyOf(config);
  const list = parked.get(key) ?? remember(parked, key, []);
  const ticket = { shard, promised: false };
  list.push(ticket);
  return ticket;
}

/** The take's wait there ended (served or not). */
export function unpark(config: EndpointConfig, ticket: Ticket): void {
  const key = keyOf(config);
  const list = parked.get(key);
  if (!list) return;
  const i = list.indexOf(ticket);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) parked.delete(key);
}
