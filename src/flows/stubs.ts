/**
 * Stubs of the Durable Objects the flows call. Ids here are already checked: a job id from a URL
 * goes through http/stubs' jobStub (null for an id that is not ours) first.
 */
import type { EndpointConfig } from "../endpoints/config";
import type { EndpointRef } from "../jobs/record";

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



/** The endpoint incarnation a caller was authorized against: jobs of an earlier one are not found. */
export function refOf(config: EndpointConfig): EndpointRef {
  return { id: config.id, generation: config.generation };
}
