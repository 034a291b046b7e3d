/**
 * A job's stream: the chunks its worker posted to job-stream, in order. RunPod's /stream hands
 * each chunk out once (a read cursor in the job row); the SSE stream reads without consuming.
 * Every read is bounded by bytes (STREAM_READ), so an answer always fits in one RPC result
 * (32 MiB) and in the isolate's memory, however long the stream grew.
 */
import { STREAM_READ } from "../shared/limits";

export interface StreamChunk {
  seq: number;
  data: Uint8Array;
}

export function appendChunk(sql: SqlStorage, attempt: number, at: number, data: Uint8Array): void {
  sql.exec("INSERT INTO stream_chunk (attempt, at, data) VALUES (?, ?, ?)", attempt, at, data.slice().buffer);
}

/**
 * The chunks after `afterSeq`, in order, up to `maxBytes` of chunk data (always at least one, so a
 * read makes progress). Sizes are looked at first, so no chunk past the budget is loaded.
 */
export function readChunks(sql: SqlStorage, afterSeq: number, maxBytes: number = STREAM_READ.maxBytes): StreamChunk[] {
  const sizes = sql
    .exec<{ seq: number; n: number }>("SELECT seq, length(data) AS n FROM stream_chunk WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, STREAM_READ.maxChunks)
    .toArray();
  let last: number | null = null;
  let bytes = 0;
  for (const { seq, n } of sizes) {
    if (last !== null && bytes + n > maxBytes) break;
    bytes += n;
    last = seq;
  }
  if (last === null) return [];
  return sql
    .exec<{ seq: number; data: ArrayBuffer }>("SELECT seq, data FROM stream_chunk WHERE seq > ? AND seq <= ? ORDER BY seq", afterSeq, last)
    .toArray()
    .map((r) => ({ seq: r.seq, data: new Uint8Array(r.data) }));
}

/**
 * The next chunks not yet handed out by /stream (bounded as above). The cursor moves past exactly
 * these, and only after the answer's chunk list is complete, in the same synchronous step (two
 * concurrent reads cannot both get a chunk).
 */
export function readUnread(sql: SqlStorage): StreamChunk[] {
  const cursor = sql.exec<{ stream_read: number }>("SELECT stream_read FROM job").toArray()[0]?.stream_read ?? 0;
  const chunks = readChunks(sql, cursor);
  const last = chunks.at(-1);
  if (last) sql.exec("UPDATE job SET stream_read = ?", last.seq);
  return chunks;
}
