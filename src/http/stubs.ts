/**
 * Stubs of the Durable Objects behind ids taken from URLs. A job id that is not one of ours
 * yields null (the caller answers 404) instead of a thrown error.
 */
import { ID_PATTERN } from "../shared/limits";
import { notFound } from "./errors";

export { directoryStub, endpointStub } from "../flows/stubs";

const JOB_ID = /^[0-9a-f]{64}$/;

export function jobStub(env: Env, jobId: string) {
  if (!JOB_ID.test(jobId)) return null;
  try {
    return env.JOB.get(env.JOB.idFromString(jobId));
  } catch {
    return null; // not an id this namespace issued
  }
}

export function jobNotFound(jobId: string) {
  return notFound(`job '${jobId}' not found (unknown, submitted to another endpoint, or deleted after its retention)`, {
    id: jobId,
  });
}

/** The endpoint id in the route's `:ep` segment, checked. */
export function endpointParam(c: { req: { param(name: "ep"): string | undefined } }): string {
  return checkEndpointId(c.req.param("ep") ?? "");
}

/** A time for an answer body: ISO 8601, or null when there is none. */
export function isoTime(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString();
}

function checkEndpointId(id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw notFound(`'${id}' is not a valid endpoint id: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`);
  }
  return id;
}
