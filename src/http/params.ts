/**
 * What routes read from their URL: the job a client route names (after checking the caller's client
 * key for the endpoint), a `?wait=` in ms, and a worker route's worker id, fence and numbers.
 */
import type { Context } from "hono";
import type { Fence } from "../jobs/commands";
import { refOf } from "../flows/stubs";
import { ID_PATTERN, WORKER_TAGS } from "../shared/limits";
import { tagKey, tagsRefusal } from "../shared/tags";
import { requireEndpoint } from "./auth";
import { badRequest } from "./errors";
import { endpointParam, jobNotFound, jobStub } from "./stubs";
import type { AppEnv } from "./types";

/** The endpoint and job in the path, the caller authorized as a client; 404 for an unknown job id. */
export async function jobFor(c: Context<AppEnv>) {
  const endpointId = endpointParam(c);
  const ref = refOf(await requireEndpoint(c, endpointId, "client"));
  const id = c.req.param("id")!;
  const stub = jobStub(c.env, id);
  if (!stub) throw jobNotFound(id);
  return { endpointId, ref, id, stub };
}

export { refOf };

/** `?wait=` in ms, clamped into `range`; absent is its default, not a number is a 400. */
export function waitParam(c: Context<AppEnv>, range: { min: number; max: number; default: number }): number {
  const raw = c.req.query("wait");
  if (raw === undefined || raw === "") return range.default;
  if (!/^\d+$/.test(raw)) throw badRequest(`wait must be a whole number of milliseconds, got '${raw}'`);
  return Math.min(range.max, Math.max(range.min, Number(raw)));
}

export function workerIdParam(c: Context<AppEnv>): string {
  const id = c.req.param("w")!;
  if (!ID_PATTERN.test(id)) throw badRequest(`'${id}' is not a valid worker id: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`);
  return id;
}

export function intParam(c: Context<AppEnv>, name: string, min: number, max: number): number | null {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return null;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  return n;
}

export function jobInProgressParam(c: Context<AppEnv>): boolean | null {
  const raw = c.req.query("job_in_progress");
  if (raw === undefined) return null;
  if (raw !== "0" && raw !== "1") throw badRequest(`job_in_progress must be 0 or 1, got '${raw}'`);
  return raw === "1";
}

/**
 * `?tags=gpu,a100`: the tags a worker declares (issue 15, item 3), canonical (shared/tags); null
 * when absent; an empty value declares none. A bad tag, or more than WORKER_TAGS.perWorker, is a 400.
 */
export function tagsParam(c: Context<AppEnv>, lenient = false): string | null {
  // `tags` given twice (`?tags=a&tags=b`, e.g. a URL template's and an appended one) counts both.
  const all = c.req.queries("tags");
  if (all === undefined) return null;
  const tags = [...new Set(all.flatMap((raw) => raw.split(",")).map((t) => t.trim()).filter((t) => t.length > 0))];
  const refusal = tagsRefusal(tags, WORKER_TAGS.perWorker, "tags");
  if (refusal !== null && lenient) return null;
  if (refusal !== null) throw badRequest(refusal);
  return tagKey(tags);
}

export function fenceOf(c: Context<AppEnv>, workerId: string): Fence {
  return { workerId, attempt: intParam(c, "attempt", 1, 1_000_000) };
}
