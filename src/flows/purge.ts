/**
 * The purge flow: the endpoint names its waiting jobs (oldest first, a bounded batch) and each is
 * purged in its own object, a few at a time. A job that moved on meanwhile is left as it is.
 */
import type { EndpointConfig } from "../endpoints/config";
import { endpointStub, jobAt, refOf } from "./stubs";

/** One purge call removes at most this many jobs (the Workers subrequest budget); call again for more. */
export const PURGE_BATCH = 1000;
const PURGE_PARALLEL = 16;

/** Purges up to PURGE_BATCH waiting jobs; returns how many it removed. */
export async function purgeQueue(env: Env, config: EndpointConfig): Promise<number> {
  const ref = refOf(config);
  const ids = await endpointStub(env, config.id).waitingJobs(PURGE_BATCH);
  let removed = 0;
  for (let i = 0; i < ids.length; i += PURGE_PARALLEL) {
    const results = await Promise.all(ids.slice(i, i + PURGE_PARALLEL).map((id) => jobAt(env, id).purge(ref)));
    removed += results.filter((r) => r.ok).length;
  }
  return removed;
}
