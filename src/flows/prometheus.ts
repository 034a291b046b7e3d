/**
 * Reading endpoints' numbers for Prometheus (metrics/prometheus): per endpoint, jobs by state and
 * counters (the endpoint merges its shards), workers by state (merged from the liveness shards)
 * and the last hour's metrics (their total over minute buckets). Reads only; nothing on a job's path.
 */
import type { EndpointConfig } from "../endpoints/config";
import type { EndpointNumbers } from "./prometheus-text";
import { mergedWorkerCounts } from "./liveness";
import { endpointStub } from "./stubs";

const HOUR = 3_600_000;
/** Read in minute buckets: the window's total then covers the last 60 minutes (hour buckets would round its start down to the hour). */
const MINUTE = 60_000;

/** The endpoint's numbers now, or null when it was deleted meanwhile. */
export async function endpointNumbers(env: Env, config: EndpointConfig, now = Date.now()): Promise<EndpointNumbers | null> {
  const stub = endpointStub(env, config.id);
  const workers = await mergedWorkerCounts(env, config);
  const numbers = await stub.scrape(now - HOUR, now, MINUTE, workers);
  if (!numbers) return null;
  return { endpointId: config.id, byState: numbers.stats.byState, counters: numbers.stats.counters, workers, lastHour: numbers.total };
}
