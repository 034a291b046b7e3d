/**
 * A short-lived cache, per Worker isolate, of successful authorizations: (endpoint, key digest,
 * scope) → the endpoint's config. It takes the endpoint object off the hot path of every client
 * and worker request. Only successes are cached, so a new endpoint or key works at once; admin
 * changes clear this isolate's entries for the endpoint at once, and other isolates notice a
 * revoked key or a changed config within AUTH_CACHE_MS.
 */
import type { EndpointConfig } from "../endpoints/config";
import { CONFIG_CACHE_MS, forgetConfig, rememberConfig } from "../flows/endpoint-configs";

/** The same window as the config cache: an authorization hands out the config it read. */
const AUTH_CACHE_MS = CONFIG_CACHE_MS;
/**
 * When an entry expires, the first request to see it asks the endpoint again; the others keep the
 * expired entry for up to this long meanwhile, so many concurrent requests with one key do not
 * all reach the endpoint object at once (each expiry costs one call, not one per request).
 */
export const AUTH_REFRESH_GRACE_MS = 1_000;
const MAX_ENTRIES = 10_000;

const entries = new Map<string, { config: EndpointConfig; until: number; refreshing?: number }>();

const keyOf = (endpointId: string, digest: string, scope: string) => `${endpointId}\n${scope}\n${digest}`;

export function cachedAuth(endpointId: string, digest: string, scope: string, now: number): EndpointConfig | null {
  const k = keyOf(endpointId, digest, scope);
  const hit = entries.get(k);
  if (!hit) return null;
  if (hit.until > now) return hit.config;
  // Expired: one request refreshes it; the others use it a moment longer (AUTH_REFRESH_GRACE_MS).
  if (hit.refreshing !== undefined && now < hit.refreshing + AUTH_REFRESH_GRACE_MS) return hit.config;
  if (now >= hit.until + AUTH_REFRESH_GRACE_MS) {
    entries.delete(k);
    return null;
  }
  hit.refreshing = now;
  return null;
}

export function rememberAuth(endpointId: string, digest: string, scope: string, config: EndpointConfig, now: number): void {
  if (entries.size >= MAX_ENTRIES) entries.clear();
  entries.set(keyOf(endpointId, digest, scope), { config, until: now + AUTH_CACHE_MS });
  rememberConfig(endpointId, config, now);
}

/** Forgets one authorization (its refresh was refused: a revoked key, a deleted endpoint). */
export function forgetAuth(endpointId: string, digest: string, scope: string): void {
  entries.delete(keyOf(endpointId, digest, scope));
}

/** Forgets every cached authorization and config of the endpoint (after an admin change to it). */
export function forgetEndpoint(endpointId: string): void {
  const prefix = `${endpointId}\n`;
  for (const k of entries.keys()) if (k.startsWith(prefix)) entries.delete(k);
  forgetConfig(endpointId);
}
