/**
 * The RunPod status fields of a job, with edge-jobs' extensions: what /status shows and what a
 * webhook carries. The output is not among them: it is spliced in from its stored bytes.
 */
import type { JobRecord } from "./record";
import { clientStatus, isTerminal } from "./states";
import { blocklisted } from "./blocklist";

const iso = (t: number | null) => (t === null ? undefined : new Date(t).toISOString());

export function statusFields(job: JobRecord, now: number): Record<string, unknown> {
  const body: Record<string, unknown> = { id: job.id, status: clientStatus(job.state) };
  if (job.startedAt !== null) {
    body.delayTime = job.startedAt - job.queuedAt;
    body.executionTime = (job.completedAt ?? now) - job.startedAt;
  }
  if (job.error !== null) body.error = job.error;
  // Issue 15, item 5: a result's exit code; an ERROR job (read COMPLETED) says so; a preparing worker's phase.
  if (job.lastReport?.exitCode !== undefined && job.lastReport.attempt === job.attempt && isTerminal(job.state)) body.exitCode = job.lastReport.exitCode;
  if (job.state === "ERROR") body.outcome = "error";
  if (job.phase !== null && job.state === "IN_PROGRESS") body.phase = job.phase;
  if (job.workerId !== null) body.workerId = job.workerId;
  body.retries = job.retries;
  body.attempt = job.attempt;
  if (job.reason !== null) body.reason = job.reason;
  // Per-job pause (issue 15): a waiting job reads IN_QUEUE (queue.reason "job_paused"), a running one IN_PROGRESS.
  if (job.paused) body.paused = true;
  // Worker tags (issue 15, item 3): the tags a worker must have declared to be handed the job.
  if (job.policy.tags !== undefined && job.policy.tags.length > 0) body.tags = job.policy.tags;
  // Blocklists (issue 15, item 3): the workers never handed this job again, with their failed attempts.
  const blocked = blocklisted(job);
  if (blocked.length > 0) body.blocklisted = blocked;
  // Jobs of tasks (issue 15, item 1): a task's job names its job of tasks and the task.
  if (job.task !== null) {
    body.parentJobId = job.task.graphId;
    body.taskName = job.task.name;
  }
  body.createdAt = iso(job.createdAt);
  body.startedAt = iso(job.startedAt);
  body.completedAt = iso(job.completedAt);
  return body;
}

/** Why a SCHEDULED or PAUSED job waits (its `queue` field): its time, or its pause; no shard is asked. */
export function scheduledInfo(job: JobRecord): { position: null; reason: "scheduled" | "job_paused"; runAt?: string } {
  const runAt = job.readyAt === null ? {} : { runAt: iso(job.readyAt) };
  return job.state === "PAUSED" ? { position: null, reason: "job_paused", ...runAt } : { position: null, reason: "scheduled", ...runAt };
}
