/**
 * The named transitions of a push dispatch: the queue consumer claims an attempt under a
 * message's token, the worker URL accepts or refuses it, and the dead-letter queue gives up.
 */
import { claim } from "./commands";
import type { JobRecord } from "./record";
import { conflict, moveTo, releaseAttempt, sameState, wrongState, type CommandResult } from "./transition";

/** How long a worker URL has to answer a push (the dispatch consumer's timeout). */
export const PUSH_TIMEOUT_MS = 30_000;
/** How long a claimed push may be under way: the push timeout and a margin. */
export const PUSH_IN_FLIGHT_MS = PUSH_TIMEOUT_MS + 5_000;

/**
 * The dispatch consumer claims the job for a push to a worker URL, under the queue message's
 * token. IN_QUEUE → IN_PROGRESS under a new attempt. The same message again before the worker
 * accepted: PUSH_IN_FLIGHT while the first push may be under way, then (a crash mid-push) it
 * pushes again. Anything else is a duplicate.
 */
export function pushClaim(job: JobRecord, token: string, workerId: string, now: number): CommandResult {
  if (holdsDispatch(job, token)) {
    // The same message again, its push not yet accepted. Within PUSH_IN_FLIGHT_MS the first
    // push may still be under way (a duplicate delivery): it waits, so a worker never gets one
    // attempt twice at once. Later, the consumer that claimed it is gone: this one pushes again.
    const since = now - (job.dispatch!.claimedAt ?? 0);
    if (since < PUSH_IN_FLIGHT_MS) return conflict(job, "PUSH_IN_FLIGHT", `a push of this dispatch started ${since} ms ago`);
    return sameState(job, { dispatch: { ...job.dispatch!, claimedAt: now } }, "keep");
  }
  if (job.state !== "IN_QUEUE") return wrongState(job, "dispatch");
  const claimed = claim(job, workerId, now);
  if (!claimed.ok) return claimed;
  const tries = (job.dispatch?.tries ?? 0) + 1;
  return { ...claimed, job: { ...claimed.job, dispatch: { token, accepted: false, tries, error: job.dispatch?.error ?? null, claimedAt: now } } };
}

function holdsDispatch(job: JobRecord, token: string): boolean {
  return job.state === "IN_PROGRESS" && job.dispatch?.token === token && !job.dispatch.accepted;
}

/** The worker URL answered 2xx: the push is accepted and the attempt runs. */
export function pushAccepted(job: JobRecord, token: string): CommandResult {
  if (!holdsDispatch(job, token)) return wrongState(job, "accept a push for");
  return sameState(job, { dispatch: { ...job.dispatch!, accepted: true, error: null } }, "keep");
}

/**
 * The worker URL refused the push or could not be reached: the attempt is released and the job
 * waits for the queue's retry of the same message.
 */
export function pushFailed(job: JobRecord, token: string, error: string, now: number): CommandResult {
  if (!holdsDispatch(job, token)) return wrongState(job, "fail a push for");
  return releaseAttempt(job, "pushFailed", now, { dispatch: { ...job.dispatch!, error } }, error, false);
}

/** The queue gave up on the dispatch (dead letter): the job fails with the reason. */
export function deadLetter(job: JobRecord, token: string, now: number): CommandResult {
  const waitingForRetry = job.state === "IN_QUEUE" && job.dispatch?.token === token;
  if (!waitingForRetry && !holdsDispatch(job, token)) return wrongState(job, "dead-letter");
  const tries = job.dispatch?.tries ?? 0;
  const error = `could not deliver the job to a worker URL after ${tries} ${tries === 1 ? "try" : "tries"}: ${job.dispatch?.error ?? "no answer"}`;
  return moveTo(job, "FAILED", "deadLetter", now, { error }, "keep", error);
}
