/**
 * What client routes read from their URL: the job they name (after checking the caller's client
 * key for the endpoint) and a `?wait=` in ms.
 */
import type { Context } from "hono";
import type { EndpointConfig } from "../endpoints/config";
import type { EndpointRef } from "../jobs/record";
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

/** The endpoint incarnation a caller was authorized against: jobs of an earlier one are not found. */
export function refOf(config: EndpointConfig): EndpointRef {
  return { id: config.id, generation: config.generation };
}

/** `?wait=` in ms, clamped into `range`; absent is its default, not a number is a 400. */
export function waitParam(c: Context<AppEnv>, range: { min: number; max: number; default: number }): number {
  const raw = c.req.query("wait");
  if (raw === undefined || raw === "") return range.default;
  if (!/^\d+$/.test(raw)) throw badRequest(`wait must be a whole number of milliseconds, got '${raw}'`);
  return Math.min(range.max, Math.max(range.min, Number(raw)));
}
