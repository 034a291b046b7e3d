/**
 * Who is calling: the admin (the ADMIN_KEY secret) or a key of the endpoint in the path.
 * Both `Authorization: Bearer <key>` and a raw `Authorization: <key>` are accepted (RunPod's
 * SDKs send the first, its docs and workers the second).
 */
import type { Context } from "hono";
import { routePath } from "hono/route";
import type { EndpointConfig } from "../endpoints/config";
import { digestsEqual, sha256Hex, type KeyScope } from "../endpoints/keys";
import { cachedAuth, forgetAuth, rememberAuth } from "./auth-cache";
import { ApiError, notConfigured, notFound } from "./errors";
import { enforceRateLimit } from "./rate-limit";
import { endpointStub } from "./stubs";
import type { AppEnv } from "./types";

export function presentedKey(req: Request): string | null {
  const header = req.headers.get("authorization")?.trim();
  if (!header) return null;
  const m = /^Bearer\s+(.+)$/i.exec(header);
  const key = (m ? m[1]! : header).trim();
  return key.length > 0 ? key : null;
}

let adminDigestCache: { key: string; digest: string } | null = null;

async function adminDigest(adminKey: string): Promise<string> {
  if (adminDigestCache?.key !== adminKey) adminDigestCache = { key: adminKey, digest: await sha256Hex(adminKey) };
  return adminDigestCache.digest;
}

/**
 * Digests of keys presented lately, per isolate: hashing costs more CPU than the rest of a cached
 * authorization, and a worker presents the same key on every call. Bounded; cleared when full.
 */
const digests = new Map<string, string>();
const MAX_DIGESTS = 1_000;
/** Longer presented keys (never ours: ours are 40-odd characters) are hashed every time. */
const MAX_CACHED_KEY_CHARS = 256;

async function digestOf(key: string): Promise<string> {
  const hit = digests.get(key);
  if (hit !== undefined) return hit;
  const digest = await sha256Hex(key);
  if (key.length > MAX_CACHED_KEY_CHARS) return digest;
  if (digests.size >= MAX_DIGESTS) digests.clear();
  digests.set(key, digest);
  return digest;
}

export interface Caller {
  digest: string | null;
  isAdmin: boolean;
}

export async function identify(req: Request, adminKey: string | undefined): Promise<Caller> {
  if (!adminKey) throw notConfigured();
  const key = presentedKey(req);
  if (key === null) return { digest: null, isAdmin: false };
  const digest = await digestOf(key);
  return { digest, isAdmin: digestsEqual(digest, await adminDigest(adminKey)) };
}

const missingKey = () =>
  new ApiError(401, "missing API key: send the header Authorization: Bearer <key>", {}, { "www-authenticate": 'Bearer realm="edge-jobs"' });

export function unknownEndpoint(id: string): ApiError {
  return notFound(`endpoint '${id}' does not exist; create it with PUT /admin/endpoints/${id} (admin key)`, {
    endpointId: id,
  });
}

/** The value an endpoint object answered, or a 404 when that endpoint does not exist (null). */
export function foundOn<T>(endpointId: string, value: T | null): T {
  if (value === null) throw unknownEndpoint(endpointId);
  return value;
}

export async function requireAdmin(c: Context<AppEnv>): Promise<void> {
  const caller = await identify(c.req.raw, c.env.ADMIN_KEY);
  if (caller.digest === null) throw missingKey();
  if (!caller.isAdmin) throw new ApiError(401, "this route needs the admin key");
}

/**
 * Authorizes the caller for `scope` on endpoint `id` and returns the endpoint's config; then counts
 * a client's request against its route's rate limit (rate-limit.ts: a 429 when over it).
 */
export async function requireEndpoint(c: Context<AppEnv>, id: string, scope: KeyScope): Promise<EndpointConfig> {
  const caller = await identify(c.req.raw, c.env.ADMIN_KEY);
  if (caller.digest === null) throw missingKey();
  const known = { digest: caller.digest, isAdmin: caller.isAdmin };
  const config = await authorized(c.env, id, known, scope);
  if (scope === "client") await enforceRateLimit(c.env, routePath(c), id, known, config);
  return config;
}

async function authorized(env: Env, id: string, caller: { digest: string; isAdmin: boolean }, scope: KeyScope): Promise<EndpointConfig> {
  const now = Date.now();
  const cached = cachedAuth(id, caller.digest, scope, now);
  if (cached) return cached;
  const r = await endpointStub(env, id).authorize(caller.digest, caller.isAdmin, scope);
  if (r.ok) {
    rememberAuth(id, caller.digest, scope, r.config, now);
    return r.config;
  }
  forgetAuth(id, caller.digest, scope);
  switch (r.code) {
    case "NO_ENDPOINT":
      throw unknownEndpoint(id);
    case "UNAUTHORIZED":
      throw new ApiError(401, `invalid API key for endpoint '${id}'`);
    case "FORBIDDEN":
      throw new ApiError(403, `this key may not use the ${scope} API of endpoint '${id}'`);
  }
}
