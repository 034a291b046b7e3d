/**
 * One POST signed per Standard Webhooks with every given secret (two during a rotation),
 * redirects not followed, bounded by a timeout, its answer read only up to a byte limit: how webhooks reach receivers and pushes reach
 * worker URLs.
 */
import { readAtMost } from "./bytes";
import type { Piece } from "./pieces";
import { signBody } from "./signing";
import { withTimeout } from "./timeout";

/**
 * `text`: the answer's body when it was read (a 2xx up to `maxBytes`, anything else up to
 * `errorBytes`, cut there); `over`: a 2xx body passed `maxBytes` (declared or streamed), and was
 * not kept.
 */
export type SignedPostResult =
  | { answered: true; status: number; headers: Headers; text: string | null; over: boolean; latencyMs: number }
  | { answered: false; error: string; latencyMs: number };

/** How much of an answer's body to read: nothing, or a limit by bytes. */
export type ReadBody = false | { maxBytes: number; errorBytes: number };

async function readAnswer(r: Response, limits: ReadBody): Promise<{ text: string | null; over: boolean }> {
  const ok = r.status >= 200 && r.status < 300;
  if (!limits || r.body === null) {
    await r.body?.cancel().catch(() => undefined); // the answer's body is not needed
    return { text: limits ? "" : null, over: false };
  }
  const declared = Number(r.headers.get("content-length") ?? NaN);
  if (ok && declared > limits.maxBytes) {
    await r.body.cancel().catch(() => undefined);
    return { text: null, over: true };
  }
  const { bytes, over } = await readAtMost(r.body, ok ? limits.maxBytes : limits.errorBytes);
  if (ok && over) return { text: null, over: true };
  return { text: new TextDecoder().decode(bytes), over: false };
}

export async function postSigned(
  url: string,
  body: readonly Piece[],
  messageId: string,
  secrets: readonly string[],
  opts: { timeoutMs: number; userAgent: string; readBody: ReadBody },
): Promise<SignedPostResult> {
  // The body is built once, inside the signed message, and sent as a view of it.
  const signed = await signBody(secrets, messageId, body);
  const headers = { "content-type": "application/json", "user-agent": opts.userAgent, ...signed.headers };
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const { res, text, over } = await withTimeout(opts.timeoutMs, async (signal) => {
      const r = await fetch(url, { method: "POST", headers, body: signed.body, redirect: "manual", signal });
      return { res: r, ...(await readAnswer(r, opts.readBody)) };
    });
    return { answered: true, status: res.status, headers: res.headers, text, over, latencyMs: latency() };
  } catch (e) {
    const timedOut = e instanceof Error && e.name === "TimeoutError";
    return { answered: false, error: timedOut ? `no answer within ${opts.timeoutMs} ms` : String(e instanceof Error ? e.message : e), latencyMs: latency() };
  }
}
