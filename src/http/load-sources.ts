/**
 * The objects that serve one endpoint, for its load report (GET /admin/endpoints/{id}/load).
 * Extension point: each new kind of per-endpoint object (index shards, worker-liveness shards)
 * adds its objects to the list `loadSources` returns, each with how to read and reset its meter
 * (a `load()` and `resetLoad()` RPC answering a LoadSnapshot; see shared/load).
 */
import type { LoadSnapshot, ObjectKind } from "../shared/load";
import { allLivenessRefs, livenessName } from "../shared/liveness";
import { livenessStub } from "../flows/liveness";
import { shardStub, type ShardAddr } from "../endpoints/shards";
import { endpointStub } from "./stubs";

export interface LoadSource {
  kind: ObjectKind;
  /** How the report names the object (e.g. "ep-1", "ep-1/shard-3"). */
  name: string;
  /** Its snapshot; null when the object says the endpoint does not exist. */
  read(): Promise<LoadSnapshot | null>;
  /** Resets its counts and answers the new (empty) snapshot; null as above. */
  reset(): Promise<LoadSnapshot | null>;
}

/**
 * Every object serving `endpointId`, the endpoint object first (it alone answers 404 for the
 * report), then its ready-index shards 1..shardCount-1 (shard 0 is the endpoint object), then the worker-liveness shards of the current generation that have workers (pings,
 * stop polls and lease checks no longer reach the endpoint: without them the busiest object would
 * be wrong). `plan` is the endpoint's loadPlan (null: no such endpoint).
 */
export function loadSources(env: Env, endpointId: string, plan: { generation: string; workerShards: number[]; shards: number } | null): LoadSource[] {
  const endpoint = endpointStub(env, endpointId);
  const refs = plan === null ? [] : allLivenessRefs(endpointId, plan.generation).filter((r) => plan.workerShards.includes(r.shard));
  const liveness: LoadSource[] = refs.map((ref) => {
    const stub = livenessStub(env, ref);
    return { kind: "liveness", name: livenessName(ref), read: () => stub.load(), reset: () => stub.resetLoad() };
  });
  const addrs: ShardAddr[] = plan === null ? [] : Array.from({ length: plan.shards - 1 }, (_, i) => ({ endpointId, generation: plan.generation, shard: i + 1 }));
  const shards: LoadSource[] = addrs.map((addr) => {
    const stub = shardStub(env, addr);
    return { kind: "shard", name: `${endpointId}/shard-${addr.shard}`, read: () => stub.load(), reset: () => stub.resetLoad() };
  });
  return [
    { kind: "endpoint", name: endpointId, read: () => endpoint.load(), reset: () => endpoint.resetLoad() },
    ...shards,
    ...liveness,
  ];
}
