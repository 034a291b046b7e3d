/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-id`,
 * `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`, keyed with the secret after its `whsec_` prefix, base64-decoded.
 * Used for pushes to worker URLs and for webhooks; also for report tokens in push URLs.
 */
import { base64, base64url, equalConstantTime } from "./bytes";
import { piecesLength, writePieces, type Piece } from "./pieces";

const enc = new TextEncoder();

/** An endpoint's signing secrets: the current one, and the previous one until a rotation's overlap ends. */
export interface SigningSecrets {
  webhookSecret: string;
  previousWebhookSecret: string | null;
  /** ISO 8601; null when there is no previous secret. */
  previousSecretUntil: string | null;
}

/** The secrets to sign with now: the current one, and the previous one during a rotation. */
export function signingSecrets(secrets: SigningSecrets, now: number): string[] {
  const until = secrets.previousSecretUntil === null ? 0 : Date.parse(secrets.previousSecretUntil);
  return secrets.previousWebhookSecret !== null && now < until ? [secrets.webhookSecret, secrets.previousWebhookSecret] : [secrets.webhookSecret];
}

function secretBytes(secret: string): Uint8Array {
  const b64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
}

async function hmac(secret: string, message: string | Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, typeof message === "string" ? enc.encode(message) : message));
}

/** A body and the Standard Webhooks headers that sign it. */
export interface SignedBody {
  headers: Record<string, string>;
  /** The body's bytes: a view into the signed message, not a copy. */
  body: Uint8Array;
}

/**
 * Signs a body with every secret given: during a rotation, `webhook-signature` carries one
 * `v1,…` signature per secret, space-separated, so receivers with either secret verify. The
 * signed message `id.timestamp.body` is built once, the body written straight into it, and signed
 * with one secret after the other; the body sent is a view of the same buffer. So a body of N
 * bytes costs N bytes here, whatever the number of secrets.
 */
export async function signBody(secrets: readonly string[], id: string, body: readonly Piece[], nowMs = Date.now()): Promise<SignedBody> {
  const timestamp = Math.floor(nowMs / 1000).toString();
  const prefix = enc.encode(`${id}.${timestamp}.`);
  const message = new Uint8Array(prefix.byteLength + piecesLength(body));
  message.set(prefix);
  writePieces(body, message, prefix.byteLength); // synchronous: stored rows are read before any await
  const signatures: string[] = [];
  for (const secret of secrets) signatures.push(`v1,${base64(await hmac(secret, message))}`);
  return {
    headers: { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signatures.join(" ") },
    body: message.subarray(prefix.byteLength),
  };
}

/** A token that lets a push worker report on one attempt of one job without an API key. */
export async function reportToken(secret: string, jobId: string, attempt: number, workerId: string): Promise<string> {
  return base64url(await hmac(secret, `report.${jobId}.${attempt}.${workerId}`));
}

export async function checkReportToken(secret: string, jobId: string, attempt: number, workerId: string, token: string): Promise<boolean> {
  return equalConstantTime(await reportToken(secret, jobId, attempt, workerId), token);
}
