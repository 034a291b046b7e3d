/**
 * Stubs of the Durable Objects the flows call. Ids here are already checked: a job id from a URL
 * goes through http/stubs' jobStub (null for an id that is not ours) first.
 */
import type { EndpointConfig } from "../endpoints/config";
import type { EndpointRef, JobRecord } from "../jobs/record";
import { queueOf } from "../endpoints/shards";

export { shardStub } from "../endpoints/shards";

export function endpointStub(env: Env, endpointId: string) {
  return env.ENDPOINT.get(env.ENDPOINT.idFromName(endpointId));
}

export function directoryStub(env: Env) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("directory"));
}

/** The object of a job id this namespace issued (ids from our own objects and answers). */
export function jobAt(env: Env, jobId: string) {
  return env.JOB.get(env.JOB.idFromString(jobId));
}

/** The shard of its endpoint's ready index a job is indexed on (for its status's `queue` and index repairs). */
export function jobQueue(env: Env, job: Pick<JobRecord, "endpointId" | "endpointGen" | "shard">) {
  return queueOf(env, job.endpointId, job.endpointGen, job.shard);
}

/** The endpoint incarnation a caller was authorized against: jobs of an earlier one are not found. */
export function refOf(config: EndpointConfig): EndpointRef {
  return { id: config.id, generation: config.generation };
}
