/**
 * One webhook delivery attempt: a POST of the payload, signed per Standard Webhooks with every
 * current secret (two during a rotation), redirects not followed, bounded by a timeout.
 */
import { signedHeaders } from "../shared/signing";
import { withTimeout } from "../shared/timeout";
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
  body: string,
  eventId: string,
  secrets: readonly string[],
  timeoutMs: number,
): Promise<AttemptResult> {
  const headers = {
    "content-type": "application/json",
    "user-agent": "edge-jobs-webhooks",
    ...(await signedHeaders(secrets, eventId, body)),
  };
  const started = performance.now();
  try {
    const res = await withTimeout(timeoutMs, async (signal) => {
      const r = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal });
      await r.body?.cancel().catch(() => undefined); // the answer's body is not needed
      return r;
    });
    const ok = res.status >= 200 && res.status < 300;
    return {
      status: res.status,
      latencyMs: Math.round(performance.now() - started),
      error: ok ? null : `HTTP ${res.status}`,
      retryAfterMs: parseRetryAfter(res.headers.get("retry-after"), Date.now()),
    };
  } catch (e) {
    const timedOut = e instanceof Error && e.name === "TimeoutError";
    return {
      status: null,
      latencyMs: Math.round(performance.now() - started),
      error: timedOut ? `no answer within ${timeoutMs} ms` : String(e instanceof Error ? e.message : e),
      retryAfterMs: null,
    };
  }
}
