/**
 * The job's durable webhook outbox: one event per terminal state of a job with a webhook, kept
 * in the job object's SQLite with every delivery attempt. Events survive restarts, evictions and
 * throwing alarms; the job's alarm delivers whatever is due. Each event is self-contained (the
 * status fields and output as they were), so a requeued job's earlier completion is still told.
 */
import { blobPiece, writeBlob } from "../shared/blobs";
import { WEBHOOK_REDELIVERY } from "../shared/limits";
import type { Piece } from "../shared/pieces";
import type { AttemptResult } from "./deliver";

export type WebhookState = "pending" | "delivered" | "failed" | "gone";

export interface WebhookEvent {
  seq: number;
  /** The `webhook-id`: stable across every attempt and redelivery of this event. */
  eventId: string;
  createdAt: number;
  state: WebhookState;
  attempts: number;
  nextAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  fields: Record<string, unknown>;
}

export interface WebhookAttempt {
  at: number;
  status: number | null;
  latencyMs: number;
  error: string | null;
}

type EventRow = {
  seq: number;
  event_id: string;
  created_at: number;
  state: string;
  attempts: number;
  next_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
  fields: string;
};

const toEvent = (r: EventRow): WebhookEvent => ({
  seq: r.seq,
  eventId: r.event_id,
  createdAt: r.created_at,
  state: r.state as WebhookState,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastStatus: r.last_status,
  lastError: r.last_error,
  deliveredAt: r.delivered_at,
  fields: JSON.parse(r.fields) as Record<string, unknown>,
});

const outputBlob = (seq: number) => `webhook-output:${seq}`;

/** Adds the event for a terminal state, due at once; the caller holds the transaction. */
export function addEvent(sql: SqlStorage, jobId: string, fields: Record<string, unknown>, output: Uint8Array | null, now: number): number {
  const seq = (sql.exec<{ s: number | null }>("SELECT MAX(seq) AS s FROM webhook_event").one().s ?? 0) + 1;
  const withSeq = { ...fields, seq };
  sql.exec(
    `INSERT INTO webhook_event (seq, event_id, created_at, state, attempts, next_attempt_at, fields)
     VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
    seq,
    `wh_${jobId.slice(0, 24)}_${seq}`,
    now,
    now,
    JSON.stringify(withSeq),
  );
  if (output !== null) writeBlob(sql, outputBlob(seq), output);
  return seq;
}

/** The event's output, read row by row when written (see blobPiece). */
export function eventOutput(sql: SqlStorage, seq: number): Piece | null {
  return blobPiece(sql, outputBlob(seq));
}

export function dueEvents(sql: SqlStorage, now: number, limit: number): WebhookEvent[] {
  return sql
    .exec<EventRow>("SELECT * FROM webhook_event WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?", now, limit)
    .toArray()
    .map(toEvent);
}

export function nextDue(sql: SqlStorage): number | null {
  return sql.exec<{ t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM webhook_event WHERE state = 'pending'").one().t;
}

export function hasPending(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM webhook_event WHERE state = 'pending' LIMIT 1").toArray().length > 0;
}

/**
 * Records an attempt and the event's next state, only if no other attempt was recorded since
 * `attemptsBefore` was read (the send awaited the network, so others may have run meanwhile).
 */
export function recordAttempt(
  sql: SqlStorage,
  seq: number,
  attemptsBefore: number,
  result: AttemptResult,
  now: number,
  next: { state: WebhookState; nextAttemptAt: number | null },
): boolean {
  const updated = sql.exec(
    `UPDATE webhook_event SET attempts = attempts + 1, state = ?, next_attempt_at = ?, last_status = ?, last_error = ?,
       delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END
     WHERE seq = ? AND attempts = ?`,
    next.state,
    next.nextAttemptAt,
    result.status,
    result.error,
    next.state,
    now,
    seq,
    attemptsBefore,
  ).rowsWritten;
  if (updated === 0) return false;
  sql.exec(
    "INSERT INTO webhook_attempt (seq, at, status, latency_ms, error) VALUES (?, ?, ?, ?, ?)",
    seq,
    now,
    result.status,
    result.latencyMs,
    result.error,
  );
  return true;
}

/** Ends an event without sending it (its URL is refused, or its endpoint is gone). */
export function failEvent(sql: SqlStorage, seq: number, error: string): void {
  sql.exec("UPDATE webhook_event SET state = 'failed', next_attempt_at = NULL, last_error = ? WHERE seq = ?", error, seq);
}

/** Puts off the next attempt of these events to `at` without counting an attempt. */
export function postpone(sql: SqlStorage, seqs: readonly number[], at: number): void {
  for (const seq of seqs) sql.exec("UPDATE webhook_event SET next_attempt_at = ? WHERE seq = ?", at, seq);
}

export type Redelivery =
  | { ok: true; seq: number; eventId: string }
  | { ok: false; code: "NO_EVENT" }
  | { ok: false; code: "TOO_SOON"; message: string; retryAfterMs: number };

/**
 * Sends the latest event again, at once, under the same webhook-id; refused while a send of it
 * is due within WEBHOOK_REDELIVERY.minIntervalMs or was made less than that ago (so a caller
 * cannot turn redeliveries into a stream of requests at the receiver).
 */
export function redeliver(sql: SqlStorage, now: number): Redelivery {
  const latest = latestEvent(sql);
  if (!latest) return { ok: false, code: "NO_EVENT" };
  const interval = WEBHOOK_REDELIVERY.minIntervalMs;
  const dueAt = latest.state === "pending" ? latest.nextAttemptAt : null;
  if (dueAt !== null && dueAt < now + interval) {
    const message = `a send of this webhook event is already due; redeliver again ${interval / 1000} s after it`;
    return { ok: false, code: "TOO_SOON", message, retryAfterMs: Math.max(dueAt, now) + interval - now };
  }
  const lastSent = sql.exec<{ at: number | null }>("SELECT MAX(at) AS at FROM webhook_attempt WHERE seq = ?", latest.seq).one().at;
  if (lastSent !== null && now - lastSent < interval) {
    const message = `this webhook event was sent less than ${interval / 1000} s ago; redeliver at most once per ${interval / 1000} s`;
    return { ok: false, code: "TOO_SOON", message, retryAfterMs: lastSent + interval - now };
  }
  sql.exec("UPDATE webhook_event SET state = 'pending', next_attempt_at = ? WHERE seq = ?", now, latest.seq);
  return { ok: true, seq: latest.seq, eventId: latest.eventId };
}

export function latestEvent(sql: SqlStorage): WebhookEvent | null {
  const row = sql.exec<EventRow>("SELECT * FROM webhook_event ORDER BY seq DESC LIMIT 1").toArray()[0];
  return row ? toEvent(row) : null;
}

export function listEvents(sql: SqlStorage): Array<WebhookEvent & { log: WebhookAttempt[] }> {
  const attempts = sql
    .exec<{ seq: number; at: number; status: number | null; latency_ms: number; error: string | null }>(
      "SELECT seq, at, status, latency_ms, error FROM webhook_attempt ORDER BY id",
    )
    .toArray();
  return sql
    .exec<EventRow>("SELECT * FROM webhook_event ORDER BY seq")
    .toArray()
    .map(toEvent)
    .map((e) => ({
      ...e,
      log: attempts.filter((a) => a.seq === e.seq).map((a) => ({ at: a.at, status: a.status, latencyMs: a.latency_ms, error: a.error })),
    }));
}
