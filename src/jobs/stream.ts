/**
 * A job's stream: the chunks its worker posted to job-stream, in order. RunPod's /stream hands
 * each chunk out once (a read cursor in the job row); the SSE stream reads without consuming.
 */
export interface StreamChunk {
  seq: number;
  data: Uint8Array;
}

/** Chunks a single /stream answer hands out at most (the rest come on the next call). */
const MAX_CHUNKS_PER_READ = 256;

export function appendChunk(sql: SqlStorage, attempt: number, at: number, data: Uint8Array): void {
  sql.exec("INSERT INTO stream_chunk (attempt, at, data) VALUES (?, ?, ?)", attempt, at, data.slice().buffer);
}

export function readChunks(sql: SqlStorage, afterSeq: number, limit = MAX_CHUNKS_PER_READ): StreamChunk[] {
  return sql
    .exec<{ seq: number; data: ArrayBuffer }>("SELECT seq, data FROM stream_chunk WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit)
    .toArray()
    .map((r) => ({ seq: r.seq, data: new Uint8Array(r.data) }));
}

/** The chunks not yet handed out by /stream, now marked read. */
export function readUnread(sql: SqlStorage): StreamChunk[] {
  const cursor = sql.exec<{ stream_read: number }>("SELECT stream_read FROM job").toArray()[0]?.stream_read ?? 0;
  const chunks = readChunks(sql, cursor);
  const last = chunks.at(-1);
  if (last) sql.exec("UPDATE job SET stream_read = ?", last.seq);
  return chunks;
}
