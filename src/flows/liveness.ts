/**
 * The edge's side of worker liveness: the liveness object of a worker (by the endpoint
 * generation the caller was authorized against), and the worker view merged over every shard of
 * an endpoint (for /health, /metrics and the admin worker list: reads, not per-job paths).
 */
import type { EndpointConfig } from "../endpoints/config";
import type { WorkerView } from "../endpoints/liveness-object";
import { countStates, type WorkerCounts } from "../endpoints/workers";
import { allLivenessRefs, livenessName, livenessRef, type LivenessRef } from "../shared/liveness";
import { endpointStub } from "./stubs";

export function livenessStub(env: Env, ref: LivenessRef) {
  return env.LIVENESS.get(env.LIVENESS.idFromName(livenessName(ref)));
}

/** The worker's liveness object and the ref it is called with. */
export function livenessOf(env: Env, config: EndpointConfig, workerId: string) {
  const ref = livenessRef(config.id, config.generation, workerId);
  return { ref, stub: livenessStub(env, ref) };
}

/** The shards that have workers (those that told the endpoint a summary), and the throttled workers. */
async function readPlan(env: Env, config: EndpointConfig): Promise<{ refs: LivenessRef[]; throttled: string[] }> {
  const { shards, throttled } = await endpointStub(env, config.id).workerShards();
  const active = new Set(shards);
  return { refs: allLivenessRefs(config.id, config.generation).filter((r) => active.has(r.shard)), throttled };
}

/** Workers by state now: 1 endpoint call, then 1 call per shard that has workers. */
export async function mergedWorkerCounts(env: Env, config: EndpointConfig): Promise<WorkerCounts> {
  const { refs, throttled } = await readPlan(env, config);
  const all = await Promise.all(refs.map((ref) => livenessStub(env, ref).counts(ref, config.heartbeatTimeout, throttled)));
  const sum = countStates([]);
  for (const counts of all) for (const [state, n] of Object.entries(counts)) sum[state as keyof WorkerCounts] += n;
  return sum;
}

/** Every worker the shards remember, by worker id. */
export async function mergedWorkers(env: Env, config: EndpointConfig): Promise<WorkerView[]> {
  const { refs, throttled } = await readPlan(env, config);
  const all = await Promise.all(refs.map((ref) => livenessStub(env, ref).list(ref, config.heartbeatTimeout, throttled)));
  return all.flat().sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0));
}

/** Drops every shard of a deleted endpoint generation: their job-stop polls end now. */
export async function dropLiveness(env: Env, endpointId: string, generation: string): Promise<void> {
  await Promise.all(
    allLivenessRefs(endpointId, generation).map(async (ref) => {
      try {
        await livenessStub(env, ref).drop(ref);
      } catch (e) {
        // Left for the shard itself: its next summary is refused (not current) and it drops then.
        console.warn(`liveness shard ${livenessName(ref)} not dropped`, e);
      }
    }),
  );
}
