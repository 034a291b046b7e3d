/**
 * API keys: generated here, shown once, stored as SHA-256 digests, compared in constant time.
 */
import { base64url, equalConstantTime } from "../shared/bytes";

export const KEY_SCOPES = ["client", "worker"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export interface StoredKey {
  id: string;
  scope: KeyScope;
  /** Hex SHA-256 of the key. */
  digest: string;
  /** The first characters of the key, to tell keys apart in listings. */
  prefix: string;
  createdAt: string;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return hex(new Uint8Array(digest));
}

export function newKey(scope: KeyScope): { id: string; key: string } {
  const id = `key_${hex(crypto.getRandomValues(new Uint8Array(8)))}`;
  const key = `ej_${scope === "client" ? "c" : "w"}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
  return { id, key };
}

/** Constant-time equality of two hex digests. */
export const digestsEqual = equalConstantTime;

/**
 * Finds the key whose digest matches, comparing against every stored key so the time taken does
 * not depend on which one (if any) matched.
 */
export function findKey(keys: readonly StoredKey[], digest: string): StoredKey | null {
  let found: StoredKey | null = null;
  for (const k of keys) {
    if (digestsEqual(k.digest, digest)) found = k;
  }
  return found;
}

/** The endpoint's keys as stored (digests only). */
export function loadKeys(sql: SqlStorage): StoredKey[] {
  return sql
    .exec<{ id: string; scope: string; digest: string; prefix: string; created_at: string }>("SELECT * FROM api_key")
    .toArray()
    .map((r) => ({ id: r.id, scope: r.scope as KeyScope, digest: r.digest, prefix: r.prefix, createdAt: r.created_at }));
}

/** Generates a key and stores its digest; the key itself is answered once and never kept. */
export async function storeNewKey(sql: SqlStorage, scope: KeyScope): Promise<{ stored: StoredKey; key: string }> {
  const { id, key } = newKey(scope);
  const stored: StoredKey = { id, scope, digest: await sha256Hex(key), prefix: key.slice(0, 8), createdAt: new Date().toISOString() };
  sql.exec("INSERT INTO api_key (id, scope, digest, prefix, created_at) VALUES (?, ?, ?, ?, ?)", stored.id, stored.scope, stored.digest, stored.prefix, stored.createdAt);
  return { stored, key };
}
