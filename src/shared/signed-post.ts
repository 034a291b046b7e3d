/**
 * One POST signed per Standard Webhooks with every given secret (two during a rotation),
 * redirects not followed, bounded by a timeout: how webhooks reach receivers and pushes reach
 * worker URLs.
 */
import type { Piece } from "./pieces";
import { signBody } from "./signing";
import { withTimeout } from "./timeout";

export type SignedPostResult =
  | { answered: true; status: number; headers: Headers; text: string | null; latencyMs: number }
  | { answered: false; error: string; latencyMs: number };

export async function postSigned(
  url: string,
  body: readonly Piece[],
  messageId: string,
  secrets: readonly string[],
  opts: { timeoutMs: number; userAgent: string; readBody: boolean },
): Promise<SignedPostResult> {
  // The body is built once, inside the signed message, and sent as a view of it.
  const signed = await signBody(secrets, messageId, body);
  const headers = { "content-type": "application/json", "user-agent": opts.userAgent, ...signed.headers };
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const { res, text } = await withTimeout(opts.timeoutMs, async (signal) => {
      const r = await fetch(url, { method: "POST", headers, body: signed.body, redirect: "manual", signal });
      if (opts.readBody) return { res: r, text: await r.text() };
      await r.body?.cancel().catch(() => undefined); // the answer's body is not needed
      return { res: r, text: null };
    });
    return { answered: true, status: res.status, headers: res.headers, text, latencyMs: latency() };
  } catch (e) {
    const timedOut = e instanceof Error && e.name === "TimeoutError";
    return { answered: false, error: timedOut ? `no answer within ${opts.timeoutMs} ms` : String(e instanceof Error ? e.message : e), latencyMs: latency() };
  }
}
