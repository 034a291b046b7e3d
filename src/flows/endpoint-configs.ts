/**
 * Endpoint configs cached per isolate for the paths that need an endpoint's config without a key
 * check (push workers' token reports, the push dispatch): kept CONFIG_CACHE_MS, like the
 * authorizations that also fill it (http/auth-cache), so the endpoint object is not on every
 * push job's path. An admin change clears the endpoint's entry in the isolate that made it
 * (forgetConfig); other isolates see the change within CONFIG_CACHE_MS.
 */
import type { EndpointConfig } from "../endpoints/config";
import { endpointStub } from "./stubs";

export const CONFIG_CACHE_MS = 5_000;
const MAX_ENTRIES = 10_000;

const configs = new Map<string, { config: EndpointConfig; until: number }>();

function cachedConfig(endpointId: string, now: number): EndpointConfig | null {
  const hit = configs.get(endpointId);
  if (!hit) return null;
  if (hit.until <= now) {
    configs.delete(endpointId);
    return null;
  }
  return hit.config;
}

export function rememberConfig(endpointId: string, config: EndpointConfig, now: number): void {
  if (configs.size >= MAX_ENTRIES) configs.clear();
  configs.set(endpointId, { config, until: now + CONFIG_CACHE_MS });
}

export function forgetConfig(endpointId: string): void {
  configs.delete(endpointId);
}

/** The endpoint's config, from this isolate's cache or its object (null: no such endpoint, not cached). */
export async function endpointConfig(env: Env, endpointId: string): Promise<EndpointConfig | null> {
  const now = Date.now();
  const cached = cachedConfig(endpointId, now);
  if (cached) return cached;
  const config = await endpointStub(env, endpointId).getConfig();
  if (config) rememberConfig(endpointId, config, now);
  return config;
}
