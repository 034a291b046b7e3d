/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-id`,
 * `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`, keyed with the secret after its `whsec_` prefix, base64-decoded.
 * Used for pushes to worker URLs and for webhooks; also for report tokens in push URLs.
 */
import { base64, base64url, equalConstantTime } from "./bytes";

const enc = new TextEncoder();

function secretBytes(secret: string): Uint8Array {
  const b64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
}

async function hmac(secret: string, message: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(message)));
}


async function signatureHeaders(secret: string, id: string, body: string, nowMs: number): Promise<Record<string, string>> {
  const timestamp = Math.floor(nowMs / 1000).toString();
  const signature = base64(await hmac(secret, `${id}.${timestamp}.${body}`));
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}

/**
 * Headers signed with every secret given: during a rotation, `webhook-signature` carries one
 * `v1,…` signature per secret, space-separated, so receivers with either secret verify.
 */
export async function signedHeaders(secrets: readonly string[], id: string, body: string, nowMs = Date.now()): Promise<Record<string, string>> {
  const signed = await Promise.all(secrets.map((s) => signatureHeaders(s, id, body, nowMs)));
  return { ...signed[0]!, "webhook-signature": signed.map((h) => h["webhook-signature"]).join(" ") };
}

/** A token that lets a push worker report on one attempt of one job without an API key. */
export async function reportToken(secret: string, jobId: string, attempt: number, workerId: string): Promise<string> {
  return base64url(await hmac(secret, `report.${jobId}.${attempt}.${workerId}`));
}

export async function checkReportToken(secret: string, jobId: string, attempt: number, workerId: string, token: string): Promise<boolean> {
  return equalConstantTime(await reportToken(secret, jobId, attempt, workerId), token);
}
