/**
 * One webhook delivery attempt: a POST of the payload, signed per Standard Webhooks with every
 * current secret (two during a rotation), redirects not followed, bounded by a timeout.
 */
import type { Piece } from "../shared/pieces";
import { postSigned } from "../shared/signed-post";
import { parseRetryAfter } from "./schedule";

export interface AttemptResult {
  /** The HTTP status, or null when no answer came (network error, timeout). */
  status: number | null;
  latencyMs: number;
  error: string | null;
  retryAfterMs: number | null;
}

export async function deliverOnce(
  url: string,
  body: readonly Piece[],
  eventId: string,
  secrets: readonly string[],
  timeoutMs: number,
): Promise<AttemptResult> {
  const r = await postSigned(url, body, eventId, secrets, { timeoutMs, userAgent: "edge-jobs-webhooks", readBody: false });
  if (!r.answered) return { status: null, latencyMs: r.latencyMs, error: r.error, retryAfterMs: null };
  const ok = r.status >= 200 && r.status < 300;
  return {
    status: r.status,
    latencyMs: r.latencyMs,
    error: ok ? null : `HTTP ${r.status}`,
    retryAfterMs: parseRetryAfter(r.headers.get("retry-after"), Date.now()),
  };
}
