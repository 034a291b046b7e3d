/**
 * The RunPod status body (`/status`, `/status-sync`, `/runsync`, `/cancel`), with edge-jobs'
 * extensions. The stored output is spliced in as bytes, never parsed again.
 */
import type { JobRecord } from "../jobs/record";
import { objectWith } from "./json-bytes";

const iso = (t: number | null) => (t === null ? undefined : new Date(t).toISOString());

export function statusFields(job: JobRecord, now: number): Record<string, unknown> {
  const body: Record<string, unknown> = { id: job.id, status: job.state };
  if (job.startedAt !== null) {
    body.delayTime = job.startedAt - job.queuedAt;
    body.executionTime = (job.completedAt ?? now) - job.startedAt;
  }
  if (job.error !== null) body.error = job.error;
  if (job.workerId !== null) body.workerId = job.workerId;
  body.retries = job.retries;
  body.attempt = job.attempt;
  if (job.reason !== null) body.reason = job.reason;
  body.createdAt = iso(job.createdAt);
  body.startedAt = iso(job.startedAt);
  body.completedAt = iso(job.completedAt);
  return body;
}

/** `{...fields, "output": <stored bytes>}` as one UTF-8 body. */
export function renderWithOutput(fields: Record<string, unknown>, output: Uint8Array | null): Uint8Array {
  return objectWith(fields, "output", output);
}

export function jsonResponse(body: Uint8Array | string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "application/json; charset=utf-8" } });
}
