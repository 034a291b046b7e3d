/**
 * A job's deadlines: the earliest one that applies to its state (its alarm), and what a due one
 * asks for.
 */
import { expire, finishCancel } from "./commands";
import { IDEMPOTENCY_MS, ttlIsLifespan, type JobRecord } from "./record";
import { isTerminal, isWaiting } from "./states";
import type { CommandResult } from "./transition";

function earliest(...times: Array<number | null>): number | null {
  const set = times.filter((t): t is number => t !== null);
  return set.length === 0 ? null : Math.min(...set);
}

/** The earliest deadline that applies to the job in its state, or null when none does. */
export function nextDeadline(job: JobRecord): number | null {
  switch (job.state) {
    case "SCHEDULED":
      return earliest(job.ttlAt, job.readyAt);
    case "PAUSED":
      return job.ttlAt;
    case "SEQUENCED":
      return earliest(job.ttlAt, job.sequenceCheckAt);
    case "IN_QUEUE":
      return job.ttlAt;
    case "IN_PROGRESS":
      return earliest(job.execDeadline, job.leaseCheckAt, lifespanEnd(job));
    case "CANCELLING":
      return earliest(job.cancelDeadline, job.leaseCheckAt, lifespanEnd(job));
    case "COMPLETED":
    case "ERROR":
    case "FAILED":
    case "CANCELLED":
    case "TIMED_OUT":
      return job.gone ? idempotencyUntil(job) : job.purgeAt;
  }
}

/** When a job whose TTL is its lifespan ends, whatever its state (null: the TTL bounds only the queue). */
function lifespanEnd(job: JobRecord): number | null {
  return ttlIsLifespan(job.policy) ? job.ttlAt : null;
}

/** Until when a job's idempotency key must keep answering, if it has one. */
function idempotencyUntil(job: JobRecord): number | null {
  return job.idempotency ? job.createdAt + IDEMPOTENCY_MS : null;
}

/**
 * What a due deadline asks for: a command to run, a lease check (which needs the worker's
 * last sign of life from the endpoint), the deletion of a retained job, or nothing.
 */
type DueWork =
  | { kind: "command"; run: (job: JobRecord, now: number) => CommandResult }
  | { kind: "checkLease"; workerId: string }
  | { kind: "checkSequence"; sequenceKey: string }
  /** A SCHEDULED job's time came: it becomes ready (entering its sequence first, if it has one). */
  | { kind: "becomeReady" }
  | { kind: "delete" }
  /** Retention is over but the idempotency key is not: keep only what a repeat submit needs. */
  | { kind: "tombstone" }
  | null;

export function dueWork(job: JobRecord, now: number): DueWork {
  const deadline = nextDeadline(job);
  if (deadline === null || now < deadline) return null;
  if (isTerminal(job.state)) {
    const until = idempotencyUntil(job);
    return !job.gone && until !== null && now < until ? { kind: "tombstone" } : { kind: "delete" };
  }
  if (isWaiting(job.state) && now >= job.ttlAt) return { kind: "command", run: expire };
  if (job.state === "SCHEDULED") return job.readyAt === null || now >= job.readyAt ? { kind: "becomeReady" } : null;
  if (job.state === "SEQUENCED") return job.sequenceKey === null ? null : { kind: "checkSequence", sequenceKey: job.sequenceKey };
  if (job.state === "IN_PROGRESS" && job.execDeadline !== null && now >= job.execDeadline) return { kind: "command", run: expire };
  const lifespan = lifespanEnd(job);
  if (job.state === "IN_PROGRESS" && lifespan !== null && now >= lifespan) return { kind: "command", run: expire };
  if (job.state === "CANCELLING" && lifespan !== null && now >= lifespan) return { kind: "command", run: finishCancel };
  if (job.state === "CANCELLING" && job.cancelDeadline !== null && now >= job.cancelDeadline) {
    return { kind: "command", run: finishCancel };
  }
  return job.workerId === null ? null : { kind: "checkLease", workerId: job.workerId };
}
