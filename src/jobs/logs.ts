/**
 * A job's log (issue 14): lines its lease holder appended, in order, with the attempt and worker
 * that wrote them, kept in the job object (deleted with it, so kept for the job's retention).
 * Appends stay within the job's caps (JOB_LOG): the line that would pass them is replaced by one
 * truncation marker line (no worker), and nothing is appended after it. Each line stores the job's
 * log bytes up to and including it, so an append reads the totals from the last line (and the
 * first line's number), never by summing the log. Lines are not state changes: appending one
 * leaves the job record, its version and its endpoint alone.
 */
import { JOB_LOG } from "../shared/limits";
import type { Refusal } from "./job-results";
import type { JobRecord } from "./record";

export const LOG_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A line as a worker sent it, parsed. */
export interface LogLineIn {
  level: LogLevel;
  message: string;
  /** The worker's time of the line (ms since the epoch), if it sent one. */
  ts: number | null;
}

/** A stored line. `at` is when it arrived; `workerId` is null only for the truncation marker. */
export interface LogLine {
  seq: number;
  at: number;
  ts: number | null;
  attempt: number;
  workerId: string | null;
  level: LogLevel;
  message: string;
}

export interface LogAppended {
  /** Lines kept from this append. */
  accepted: number;
  /** Lines dropped because the job's log is full. */
  dropped: number;
  /** The job's log is full: it ends with the truncation marker. */
  truncated: boolean;
}

export interface LogPage {
  lines: LogLine[];
  /** More lines are stored after this page (read them with `after` = the last line's seq). */
  more: boolean;
  truncated: boolean;
}

export type LogAppend = ({ ok: true } & LogAppended) | Refusal;
export type LogRead = ({ ok: true; job: JobRecord } & LogPage) | { ok: false; code: "NOT_FOUND" };

export const TRUNCATION_MARKER = `log truncated: a job keeps at most ${JOB_LOG.linesPerJob} lines and ${JOB_LOG.bytesPerJob} bytes of messages; later lines were dropped`;

const enc = new TextEncoder();

/**
 * `message` if it has at most `max` characters (code points) plus room for a cut note, else cut in
 * the middle as RunPod's SDK cuts it (rp_logger: the first and last max/2 characters around
 * `\n...TRUNCATED <n> CHARACTERS...\n`, n the characters removed). The room keeps a message that
 * was cut that way already (by RunPod's SDK, by ours) as it is: cutting is done once.
 */
export function cutMessage(message: string, max: number = JOB_LOG.lineChars): string {
  const keep = max + JOB_LOG.cutNoteRoom;
  if (message.length <= keep) return message; // UTF-16 units never undercount characters
  const chars = Array.from(message);
  if (chars.length <= keep) return message;
  const half = Math.floor(max / 2);
  return `${chars.slice(0, half).join("")}\n...TRUNCATED ${chars.length - max} CHARACTERS...\n${chars.slice(chars.length - half).join("")}`;
}

interface Totals {
  lines: number;
  bytes: number;
  truncated: boolean;
}

/** The log's size so far: lines are only ever all deleted, so their numbers have no gaps. */
function totals(sql: SqlStorage): Totals {
  const last = sql
    .exec<{ seq: number; worker_id: string | null; total_bytes: number }>("SELECT seq, worker_id, total_bytes FROM log_line ORDER BY seq DESC LIMIT 1")
    .toArray()[0];
  if (!last) return { lines: 0, bytes: 0, truncated: false };
  const first = sql.exec<{ s: number }>("SELECT MIN(seq) AS s FROM log_line").one().s;
  return { lines: last.seq - first + 1, bytes: last.total_bytes, truncated: last.worker_id === null };
}

function insert(sql: SqlStorage, at: number, attempt: number, workerId: string | null, line: LogLineIn, totalBytes: number): void {
  sql.exec(
    "INSERT INTO log_line (at, attempt, worker_id, level, line, ts, total_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
    at,
    attempt,
    workerId,
    line.level,
    line.message,
    line.ts,
    totalBytes,
  );
}

/**
 * Appends `lines` of `workerId`'s `attempt` in order, as far as the job's caps allow; the first
 * line past them is replaced by the truncation marker, once. The caller holds the transaction and
 * has checked the lease.
 */
export function appendLog(sql: SqlStorage, attempt: number, workerId: string, lines: readonly LogLineIn[], now: number): LogAppended {
  const t = totals(sql);
  if (t.truncated) return { accepted: 0, dropped: lines.length, truncated: true };
  let { lines: count, bytes } = t;
  let accepted = 0;
  for (const line of lines) {
    const size = enc.encode(line.message).byteLength;
    if (count + 1 > JOB_LOG.linesPerJob || bytes + size > JOB_LOG.bytesPerJob) {
      insert(sql, now, attempt, null, { level: "WARN", message: TRUNCATION_MARKER, ts: null }, bytes);
      return { accepted, dropped: lines.length - accepted, truncated: true };
    }
    count += 1;
    bytes += size;
    insert(sql, now, attempt, workerId, line, bytes);
    accepted += 1;
  }
  return { accepted, dropped: 0, truncated: false };
}

/** Up to `limit` lines after `afterSeq`, in order. */
export function readLog(sql: SqlStorage, afterSeq: number, limit: number): LogPage {
  const rows = sql
    .exec<{ seq: number; at: number; ts: number | null; attempt: number; worker_id: string | null; level: string; line: string }>(
      "SELECT seq, at, ts, attempt, worker_id, level, line FROM log_line WHERE seq > ? ORDER BY seq LIMIT ?",
      afterSeq,
      limit + 1,
    )
    .toArray();
  const lines = rows.slice(0, limit).map((r) => ({
    seq: r.seq,
    at: r.at,
    ts: r.ts,
    attempt: r.attempt,
    workerId: r.worker_id,
    level: (LOG_LEVELS as readonly string[]).includes(r.level) ? (r.level as LogLevel) : "INFO",
    message: r.line,
  }));
  return { lines, more: rows.length > limit, truncated: totals(sql).truncated };
}
