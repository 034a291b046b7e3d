/**
 * The RunPod status fields of a job, with edge-jobs' extensions: what /status shows and what a
 * webhook carries. The output is not among them: it is spliced in from its stored bytes.
 */
import type { JobRecord } from "./record";

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
