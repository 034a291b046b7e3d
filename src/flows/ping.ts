/**
 * The liveness flows of a worker: its heartbeat and its job-stop poll, both served by the
 * worker's liveness shard (never the endpoint object), and what a heartbeat says about the jobs it
 * no longer lists, told to those jobs.
 */
import type { EndpointConfig } from "../endpoints/config";
import { livenessOf } from "./liveness";
import { jobAt, refOf } from "./stubs";

export interface Heartbeat {
  /** The jobs the worker says it runs (null: the ping says nothing about jobs). */
  jobIds: string[] | null;
  sdkVersion: string | null;
  /** A failed start-up check, as "check: reason" (null: healthy). */
  unhealthy: string | null;
  /** The tags it declared (canonical, shared/tags; null: unsaid). */
  tags: string | null;
}

/**
 * A ping: one call to the worker's liveness shard, then one to each job it went quiet on
 * (CANCELLING jobs it no longer lists) or does not list while running it.
 */
export async function ping(env: Env, config: EndpointConfig, workerId: string, beat: Heartbeat): Promise<void> {
  const ref = refOf(config);
  const liveness = livenessOf(env, config, workerId);
  const { quiet, unlisted } = await liveness.stub.ping(liveness.ref, config.heartbeatTimeout, workerId, beat);
  await Promise.all([
    ...quiet.map((q) => jobAt(env, q.jobId).workerQuiet(ref, workerId, q.told)),
    ...unlisted.map((id) => jobAt(env, id).notListed(ref, workerId)),
  ]);
}

/** job-stop: the jobs this worker must stop, waiting up to `waitMs` for one. */
export function takeStops(env: Env, config: EndpointConfig, workerId: string, waitMs: number): Promise<string[]> {
  const { ref, stub } = livenessOf(env, config, workerId);
  return stub.takeStops(ref, config.heartbeatTimeout, workerId, waitMs);
}
