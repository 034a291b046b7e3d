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

/** Workers by state now: every shard asked (1 + shards calls), the throttled ones from the endpoint. */
export async function mergedWorkerCounts(env: Env, config: EndpointConfig): Promise<WorkerCounts> {
  const throttled = await endpointStub(env, config.id).throttledWorkers();
  const all = await Promise.all(allLivenessRefs(config.id, config.generation).map((ref) => livenessStub(env, ref).counts(ref, config.heartbeatTimeout, throttled)));
  const sum = countStates([]);
  for (const counts of all) for (const [state, n] of Object.entries(counts)) sum[state as keyof WorkerCounts] += n;
  return sum;
}

/** Every worker the shards remember, by worker id. */
export async function mergedWorkers(env: Env, config: EndpointConfig): Promise<WorkerView[]> {
  const throttled = await endpointStub(env, config.id).throttledWorkers();
  const all = await Promise.all(allLivenessRefs(config.id, config.generation).map((ref) => livenessStub(env, ref).list(ref, config.heartbeatTimeout, throttled)));
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
