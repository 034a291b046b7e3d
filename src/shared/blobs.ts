/**
 * Byte payloads of any size in Durable Object SQLite, which caps one value at 2 MB (a limit local
 * development does not enforce, so it is enforced here): a payload is split into chunks of at most
 * CHUNK_BYTES, stored as rows (name, idx, data) and joined again on read, byte for byte.
 */
import { concatBytes } from "./bytes";

export const CHUNK_BYTES = 1_000_000;

export function writeBlob(sql: SqlStorage, name: string, bytes: Uint8Array): void {
  sql.exec("DELETE FROM blob WHERE name = ?", name);
  for (let offset = 0, idx = 0; offset < bytes.byteLength; offset += CHUNK_BYTES, idx++) {
    const chunk = bytes.subarray(offset, Math.min(offset + CHUNK_BYTES, bytes.byteLength));
    sql.exec("INSERT INTO blob (name, idx, data) VALUES (?, ?, ?)", name, idx, chunk.slice().buffer);
  }
}

export function readBlob(sql: SqlStorage, name: string): Uint8Array | null {
  const rows = sql.exec<{ data: ArrayBuffer }>("SELECT data FROM blob WHERE name = ? ORDER BY idx", name).toArray();
  if (rows.length === 0) return null;
  return concatBytes(rows.map((r) => new Uint8Array(r.data)));
}

export function deleteBlob(sql: SqlStorage, name: string): void {
  sql.exec("DELETE FROM blob WHERE name = ?", name);
}

/** A payload's size in bytes without loading it (0 when there is none). */
export function blobBytes(sql: SqlStorage, name: string): number {
  return sql.exec<{ n: number }>("SELECT COALESCE(SUM(length(data)), 0) AS n FROM blob WHERE name = ?", name).one().n;
}

/**
 * A payload as a piece read row by row when written (see ./pieces), so a large payload is never
 * held twice; null when there is none. Its rows must be read before the next await.
 */
export function blobPiece(sql: SqlStorage, name: string): { byteLength: number; chunks(): Iterable<Uint8Array> } | null {
  const byteLength = blobBytes(sql, name);
  if (byteLength === 0) return null; // an empty payload has no rows, as readBlob sees it too
  return {
    byteLength,
    *chunks() {
      for (const r of sql.exec<{ data: ArrayBuffer }>("SELECT data FROM blob WHERE name = ? ORDER BY idx", name)) yield new Uint8Array(r.data);
    },
  };
}
