/**
 * Verifying what edge-jobs signs: webhook deliveries (a job reached a terminal state) and pushes
 * to push workers. Both follow Standard Webhooks: `webhook-id`, `webhook-timestamp` (seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (two signatures,
 * space-separated, during a secret rotation), keyed with the endpoint's `whsec_…` secret.
 */
import { Webhook } from "standardwebhooks";
import type { components } from "./schema.ts";

/** A delivery that is not genuine, not recent, or not readable. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

export type TerminalState = "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

/**
 * A webhook's payload: RunPod's, the job's status body plus its `input` and `webhook` URL, with a
 * `seq` that grows with each terminal state of the job (drop an event whose seq is not above the
 * last one you handled for that job; the `webhook-id` header is the same for every retry of one event).
 */
export type WebhookEvent = Omit<components["schemas"]["JobStatusBody"], "status" | "webhook" | "queue"> & {
  status: TerminalState;
  /** The URL the job was submitted with. */
  webhook: string;
  seq: number;
  /** The job's input, exactly as submitted. */
  input: unknown;
  /** The output the worker reported, when it reported one. */
  output?: unknown;
};

export interface VerifyOptions {
  /** How far the `webhook-timestamp` may be from now, either way (default 300 s, Standard Webhooks'). */
  toleranceSeconds?: number;
}

export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() !== name) continue;
    return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}

function equalConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The signer of a secret; a secret that is not `whsec_` + base64 is the caller's mistake (a TypeError), not a bad delivery. */
export function signerOf(secret: string): Webhook {
  try {
    return new Webhook(secret);
  } catch (e) {
    throw new TypeError(`the webhook secret is not usable (expected whsec_ followed by base64): ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Checks a signed body's headers and answers the body parsed. The signature is computed by the
 * `standardwebhooks` package; the timestamp is checked here so the tolerance can be chosen.
 */
export function verifySigned(secret: string, headers: HeadersLike, body: string, opts: VerifyOptions = {}): unknown {
  const signer = signerOf(secret);
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  if (!/^\d{1,15}$/.test(timestamp)) throw new WebhookVerificationError(`webhook-timestamp is not a time in seconds: '${timestamp.slice(0, 40)}'`);
  const seconds = Number(timestamp);
  const tolerance = opts.toleranceSeconds ?? 300;
  const skew = Math.floor(Date.now() / 1000) - seconds;
  if (skew > tolerance) throw new WebhookVerificationError(`the message is too old: signed ${skew} s ago (tolerance ${tolerance} s)`);
  if (-skew > tolerance) throw new WebhookVerificationError(`the message is too new: signed ${-skew} s ahead (tolerance ${tolerance} s)`);

  const expected = signer.sign(id, new Date(seconds * 1000), body).slice("v1,".length);
  const genuine = signatures.split(" ").some((s) => {
    const [version, signature] = s.split(",", 2);
    return version === "v1" && signature !== undefined && equalConstantTime(signature, expected);
  });
  if (!genuine) throw new WebhookVerificationError("no matching signature: a wrong secret, or a body changed on the way");
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new WebhookVerificationError("the signed body is not JSON");
  }
}

/**
 * Verifies a webhook delivery from edge-jobs and answers its payload. `body` must be the raw
 * request body, exactly as received (read it as text before any JSON parsing); `secret` is the
 * endpoint's `webhookSecret` (`whsec_…`). Throws a WebhookVerificationError when a header is
 * missing, no signature matches, or the timestamp is outside the tolerance (5 minutes by default).
 */
export function verifyWebhook(secret: string, headers: HeadersLike, body: string, opts: VerifyOptions = {}): WebhookEvent {
  const payload = verifySigned(secret, headers, body, opts);
  if (typeof payload !== "object" || payload === null || typeof (payload as { id?: unknown }).id !== "string" || typeof (payload as { status?: unknown }).status !== "string") {
    throw new WebhookVerificationError("the signed body is not a job event (no id or status)");
  }
  return payload as WebhookEvent;
}
