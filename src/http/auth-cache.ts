/**
 * A short-lived cache, per Worker isolate, of successful authorizations: (endpoint, key digest,
 * scope) → the endpoint's config. It takes the endpoint object off the hot path of every client
 * and worker request. Only successes are cached, so a new endpoint or key works at once; admin
 * changes clear this isolate's entries for the endpoint at once, and other isolates notice a
 * revoked key or a changed config within AUTH_CACHE_MS.
 */
import type { EndpointConfig } from "../endpoints/config";

const AUTH_CACHE_MS = 5_000;
const MAX_ENTRIES = 10_000;

const entries = new Map<string, { config: EndpointConfig; until: number }>();

const keyOf = (endpointId: string, digest: string, scope: string) => `${endpointId}\n${scope}\n${digest}`;

export function cachedAuth(endpointId: string, digest: string, scope: string, now: number): EndpointConfig | null {
  const k = keyOf(endpointId, digest, scope);
  const hit = entries.get(k);
  if (!hit) return null;
  if (hit.until <= now) {
    entries.delete(k);
    return null;
  }
  return hit.config;
}

export function rememberAuth(endpointId: string, digest: string, scope: string, config: EndpointConfig, now: number): void {
  if (entries.size >= MAX_ENTRIES) entries.clear();
  entries.set(keyOf(endpointId, digest, scope), { config, until: now + AUTH_CACHE_MS });
}

/** Forgets every cached authorization for the endpoint (after an admin change to it). */
export function forgetEndpoint(endpointId: string): void {
  const prefix = `${endpointId}\n`;
  for (const k of entries.keys()) if (k.startsWith(prefix)) entries.delete(k);
}
