/**
 * Drives every named command from every state and checks it against SPEC §4: where a command
 * acts, it moves the job to the state the spec says (through the transition table, with a
 * history event and a new version); everywhere else it refuses with a typed conflict and leaves
 * the job as it was. The edges the commands take are then exactly the table's, and the table's
 * are exactly the spec's, so a wrong table entry or a wrong command fails here.
 */
import { describe, expect, it } from "vitest";
import * as commands from "../../src/jobs/commands";
import * as push from "../../src/jobs/push-commands";
import type { CommandResult, ConflictCode } from "../../src/jobs/transition";
import type { JobPolicy, JobRecord } from "../../src/jobs/record";
import { canTransition, JOB_STATES, type JobState } from "../../src/jobs/states";

const policy: JobPolicy = {
  executionTimeout: 60_000,
  ttl: 120_000,
  maxAttempts: 3,
  heartbeatTimeout: 30_000,
  lowPriority: false,
  priority: 0,
  retentionMs: 1_800_000,
  cancelGraceMs: 10_000,
  retryOnError: false,
};
const T0 = 1_000_000;

/** A record in `state`, as the commands would have left it, with worker w1 on attempt 1. */
function recordIn(state: JobState): JobRecord {
  const base = commands.submit({ id: "j", endpointId: "ep", endpointGen: null, kind: "run", policy, webhook: null, idempotency: null, sequenceKey: null, origin: null }, T0);
  const running = { ...base, attempt: 1, workerId: "w1", startedAt: T0 + 10, execDeadline: T0 + 10 + policy.executionTimeout, leaseCheckAt: T0 + 10 + policy.heartbeatTimeout };
  switch (state) {
    case "SCHEDULED":
      return { ...base, state, readyAt: T0 + 60_000 };
    case "PAUSED":
      return { ...base, state, paused: true };
    case "SEQUENCED":
    case "IN_QUEUE":
      return { ...base, state };
    case "IN_PROGRESS":
      return { ...running, state };
    case "CANCELLING":
      return { ...running, state, cancelDeadline: T0 + 20 + policy.cancelGraceMs };
    case "COMPLETED":
    case "ERROR":
    case "FAILED":
    case "CANCELLED":
    case "TIMED_OUT": {
      const lastReport =
        state === "COMPLETED" ? ({ workerId: "w1", attempt: 1, kind: "complete" } as const)
        : state === "ERROR" ? ({ workerId: "w1", attempt: 1, kind: "error", exitCode: 2 } as const)
        : state === "FAILED" ? ({ workerId: "w1", attempt: 1, kind: "fail" } as const)
        : null;
      return { ...running, state, lastReport, execDeadline: null, leaseCheckAt: null, completedAt: T0 + 30, purgeAt: T0 + 30 + policy.retentionMs };
    }
  }
}

/** Every command, called at a time when its deadline (if it has one) has passed. */
const LATE = T0 + 10_000_000;
const W1 = { workerId: "w1", attempt: null };
const COMMANDS: Record<string, (job: JobRecord) => CommandResult> = {
  claim: (j) => commands.claim(j, "w2", LATE),
  progress: (j) => commands.progress(j, W1, LATE),
  streamChunk: (j) => commands.streamChunk(j, W1, LATE),
  complete: (j) => commands.complete(j, W1, LATE),
  fail: (j) => commands.fail(j, W1, "boom", false, LATE),
  // Issue 15, item 5: a result with a non-zero exit code (the same one as the ERROR record's: a repeat there), one with 0, a preparing worker.
  errorOutcome: (j) => commands.errorOutcome(j, W1, "exit code 2", 2, true, LATE),
  completeExitZero: (j) => commands.complete(j, W1, LATE, 0),
  progressInitializing: (j) => commands.progress(j, W1, LATE, "initializing", false),
  // A handler error with attempts left on a policy that retries on errors.
  failRetrying: (j) => commands.fail(j, W1, "boom", false, LATE),
  loseLease: (j) => commands.loseLease(j, "w1", "gone", LATE),
  checkLease: (j) => commands.checkLease(j, null, LATE),
  workerQuiet: (j) => commands.workerQuiet(j, "w1", true, LATE),
  cancel: (j) => commands.cancel(j, LATE),
  finishCancel: (j) => commands.finishCancel(j, LATE),
  expire: (j) => commands.expire(j, LATE),
  retry: (j) => commands.retry(j, LATE),
  requeue: (j) => commands.requeue(j, LATE),
  // A job of a sequence whose key has an unfinished job re-enters the sequence behind it.
  retryBehind: (j) => commands.retry(j, LATE, true),
  requeueBehind: (j) => commands.requeue(j, LATE, true),
  notListed: (j) => commands.notListed(j, "w1", LATE),
  // Issue 16: a delay on retry/requeue, a backoff after an error or a lost lease, a SCHEDULED job's time.
  retryDelayed: (j) => commands.retry(j, LATE, false, 5_000),
  requeueDelayed: (j) => commands.requeue(j, LATE, true, 5_000),
  failBackingOff: (j) => commands.fail(j, W1, "boom", false, LATE),
  loseLeaseBackingOff: (j) => commands.loseLease(j, "w1", "gone", LATE),
  becomeReady: (j) => commands.becomeReady(j, LATE),
  becomeReadyBehind: (j) => commands.becomeReady(j, LATE, true),
  postponeReady: (j) => commands.postponeReady(j, LATE + 1000),
  promote: (j) => commands.promote(j, LATE),
  // Issue 15: per-job pause and resume.
  pause: (j) => commands.pause(j, LATE),
  resume: (j) => commands.resume(j, LATE),
  resumeLater: (j) => commands.resume(j, LATE),
  failPaused: (j) => commands.fail(j, W1, "boom", false, LATE),
  orphan: (j) => commands.orphan(j, LATE),
  purge: (j) => commands.purge(j, LATE),
  release: (j) => commands.release(j, LATE),
  recheckSequence: (j) => commands.recheckSequence(j, LATE),
  pushClaim: (j) => push.pushClaim(j, "t", "push-0", LATE),
  pushAccepted: (j) => push.pushAccepted(j, "t"),
  pushFailed: (j) => push.pushFailed(j, "t", "HTTP 500", LATE),
  deadLetter: (j) => push.deadLetter(j, "t", LATE),
};

/** What a command needs of the record besides its state. */
const SETUP: Partial<Record<string, (job: JobRecord) => JobRecord>> = {
  failRetrying: (j) => ({ ...j, policy: { ...j.policy, retryOnError: true } }),
  failBackingOff: (j) => ({ ...j, policy: { ...j.policy, retryOnError: true, retryBackoff: { type: "fixed", delay: 1000 } } }),
  loseLeaseBackingOff: (j) => ({ ...j, policy: { ...j.policy, retryBackoff: { type: "exponential", delay: 1000 } } }),
  // A paused job whose backoff (or delay) has not run out resumes SCHEDULED.
  resumeLater: (j) => (j.state === "PAUSED" ? { ...j, readyAt: LATE + 10_000 } : j),
  failPaused: (j) => ({ ...j, paused: true, policy: { ...j.policy, retryOnError: true } }),
  pushClaim: dispatched,
  pushAccepted: dispatched,
  pushFailed: dispatched,
  deadLetter: dispatched,
};

/** The record with a push dispatch under token "t" in flight (not yet accepted). */
function dispatched(j: JobRecord): JobRecord {
  return { ...j, dispatch: { token: "t", accepted: false, tries: 1, error: "HTTP 500" } };
}

/** Which states each command acts on (ok), and where it goes; unlisted states must refuse. */
const EXPECTED: Record<string, Partial<Record<JobState, JobState>>> = {
  claim: { IN_QUEUE: "IN_PROGRESS" },
  progress: { IN_PROGRESS: "IN_PROGRESS" },
  streamChunk: { IN_PROGRESS: "IN_PROGRESS" },
  loseLease: { IN_PROGRESS: "IN_QUEUE", CANCELLING: "CANCELLED" },
  checkLease: { IN_PROGRESS: "IN_QUEUE", CANCELLING: "CANCELLED" },
  workerQuiet: { CANCELLING: "CANCELLED" },
  // A repeat of the lease holder's accepted result answers ok and changes nothing.
  complete: { IN_PROGRESS: "COMPLETED", CANCELLING: "CANCELLED", COMPLETED: "COMPLETED" },
  fail: { IN_PROGRESS: "FAILED", CANCELLING: "CANCELLED", FAILED: "FAILED" },
  // An ERROR outcome is never retried, whatever the policy; while CANCELLING the cancel wins.
  errorOutcome: { IN_PROGRESS: "ERROR", CANCELLING: "CANCELLED", ERROR: "ERROR" },
  completeExitZero: { IN_PROGRESS: "COMPLETED", CANCELLING: "CANCELLED", COMPLETED: "COMPLETED" },
  progressInitializing: { IN_PROGRESS: "IN_PROGRESS" },
  failRetrying: { IN_PROGRESS: "IN_QUEUE", CANCELLING: "CANCELLED", FAILED: "FAILED" },
  cancel: { PAUSED: "CANCELLED", SCHEDULED: "CANCELLED", SEQUENCED: "CANCELLED", IN_QUEUE: "CANCELLED", IN_PROGRESS: "CANCELLING", CANCELLING: "CANCELLING", CANCELLED: "CANCELLED" },
  finishCancel: { CANCELLING: "CANCELLED" },
  expire: { PAUSED: "TIMED_OUT", SCHEDULED: "TIMED_OUT", SEQUENCED: "TIMED_OUT", IN_QUEUE: "TIMED_OUT", IN_PROGRESS: "TIMED_OUT" },
  retry: { FAILED: "IN_QUEUE", TIMED_OUT: "IN_QUEUE" },
  // RunPod's /retry is for FAILED and TIMED_OUT only: an ERROR job reads COMPLETED, so only /requeue runs it again.
  requeue: { COMPLETED: "IN_QUEUE", ERROR: "IN_QUEUE", FAILED: "IN_QUEUE", CANCELLED: "IN_QUEUE", TIMED_OUT: "IN_QUEUE" },
  retryBehind: { FAILED: "SEQUENCED", TIMED_OUT: "SEQUENCED" },
  requeueBehind: { COMPLETED: "SEQUENCED", ERROR: "SEQUENCED", FAILED: "SEQUENCED", CANCELLED: "SEQUENCED", TIMED_OUT: "SEQUENCED" },
  // The lease holder's ping does not list its running job (attempt old enough): the lease is lost.
  notListed: { IN_PROGRESS: "IN_QUEUE" },
  retryDelayed: { FAILED: "SCHEDULED", TIMED_OUT: "SCHEDULED" },
  // A delayed requeue enters its sequence when its time comes, never SEQUENCED now.
  requeueDelayed: { COMPLETED: "SCHEDULED", ERROR: "SCHEDULED", FAILED: "SCHEDULED", CANCELLED: "SCHEDULED", TIMED_OUT: "SCHEDULED" },
  failBackingOff: { IN_PROGRESS: "SCHEDULED", CANCELLING: "CANCELLED", FAILED: "FAILED" },
  loseLeaseBackingOff: { IN_PROGRESS: "SCHEDULED", CANCELLING: "CANCELLED" },
  becomeReady: { SCHEDULED: "IN_QUEUE" },
  becomeReadyBehind: { SCHEDULED: "SEQUENCED" },
  postponeReady: { SCHEDULED: "SCHEDULED" },
  // Its time becomes now: the due work (becomeReady) moves it, not the promote itself.
  promote: { SCHEDULED: "SCHEDULED" },
  pause: { SCHEDULED: "PAUSED", SEQUENCED: "PAUSED", IN_QUEUE: "PAUSED", PAUSED: "PAUSED", IN_PROGRESS: "IN_PROGRESS" },
  // Resuming a job that is not paused changes nothing, whatever its state.
  resume: {
    PAUSED: "IN_QUEUE", SCHEDULED: "SCHEDULED", SEQUENCED: "SEQUENCED", IN_QUEUE: "IN_QUEUE", IN_PROGRESS: "IN_PROGRESS", CANCELLING: "CANCELLING",
    COMPLETED: "COMPLETED", ERROR: "ERROR", FAILED: "FAILED", CANCELLED: "CANCELLED", TIMED_OUT: "TIMED_OUT",
  },
  resumeLater: {
    PAUSED: "SCHEDULED", SCHEDULED: "SCHEDULED", SEQUENCED: "SEQUENCED", IN_QUEUE: "IN_QUEUE", IN_PROGRESS: "IN_PROGRESS", CANCELLING: "CANCELLING",
    COMPLETED: "COMPLETED", ERROR: "ERROR", FAILED: "FAILED", CANCELLED: "CANCELLED", TIMED_OUT: "TIMED_OUT",
  },
  // A job paused while it ran waits PAUSED when its attempt goes back.
  failPaused: { IN_PROGRESS: "PAUSED", CANCELLING: "CANCELLED", FAILED: "FAILED" },
  // The endpoint was deleted: waiting jobs end, running ones are cancelled, the rest stay.
  orphan: {
    PAUSED: "CANCELLED", SCHEDULED: "CANCELLED", SEQUENCED: "CANCELLED", IN_QUEUE: "CANCELLED", IN_PROGRESS: "CANCELLING", CANCELLING: "CANCELLING",
    COMPLETED: "COMPLETED", ERROR: "ERROR", FAILED: "FAILED", CANCELLED: "CANCELLED", TIMED_OUT: "TIMED_OUT",
  },
  purge: { PAUSED: "CANCELLED", SCHEDULED: "CANCELLED", SEQUENCED: "CANCELLED", IN_QUEUE: "CANCELLED" },
  release: { SEQUENCED: "IN_QUEUE" },
  recheckSequence: { SEQUENCED: "SEQUENCED" },
  pushClaim: { IN_QUEUE: "IN_PROGRESS", IN_PROGRESS: "IN_PROGRESS" },
  pushAccepted: { IN_PROGRESS: "IN_PROGRESS" },
  pushFailed: { IN_PROGRESS: "IN_QUEUE" },
  deadLetter: { IN_QUEUE: "FAILED", IN_PROGRESS: "FAILED" },
};

/** Reports of worker w1: on a waiting job (nobody holds a lease) they are not the lease holder's. */
const REPORTS = new Set(["progress", "progressInitializing", "streamChunk", "complete", "completeExitZero", "errorOutcome", "fail", "failRetrying", "failBackingOff", "failPaused", "loseLease", "loseLeaseBackingOff", "notListed"]);
function refusal(name: string, from: JobState): ConflictCode {
  return REPORTS.has(name) && (from === "PAUSED" || from === "SCHEDULED" || from === "SEQUENCED" || from === "IN_QUEUE") ? "NOT_LEASE_HOLDER" : "WRONG_STATE";
}

/** The edges of SPEC §4, written out from the spec (not from the table). */
const SPEC_EDGES = [
  "SEQUENCED>IN_QUEUE", "SEQUENCED>CANCELLED", "SEQUENCED>TIMED_OUT",
  "IN_QUEUE>IN_PROGRESS", "IN_QUEUE>CANCELLED", "IN_QUEUE>TIMED_OUT", "IN_QUEUE>FAILED",
  "IN_PROGRESS>COMPLETED", "IN_PROGRESS>FAILED", "IN_PROGRESS>IN_QUEUE", "IN_PROGRESS>CANCELLING", "IN_PROGRESS>TIMED_OUT",
  "CANCELLING>CANCELLED",
  "COMPLETED>IN_QUEUE", "FAILED>IN_QUEUE", "CANCELLED>IN_QUEUE", "TIMED_OUT>IN_QUEUE",
  // Beyond SPEC §4 (issue 11, defect 3; README "Sequences"): a retried or requeued job of a
  // sequence re-enters it behind an unfinished job of its key.
  "COMPLETED>SEQUENCED", "FAILED>SEQUENCED", "CANCELLED>SEQUENCED", "TIMED_OUT>SEQUENCED",
  // Issue 16 (README "Delayed jobs and retry backoff"): SCHEDULED waits for its time (a delay,
  // runAt, a retry's delay or backoff), then becomes ready or enters its sequence.
  "SCHEDULED>IN_QUEUE", "SCHEDULED>SEQUENCED", "SCHEDULED>CANCELLED", "SCHEDULED>TIMED_OUT",
  "IN_PROGRESS>SCHEDULED",
  "COMPLETED>SCHEDULED", "FAILED>SCHEDULED", "CANCELLED>SCHEDULED", "TIMED_OUT>SCHEDULED",
  // Issue 15 (README "Pausing one job"): a waiting job pauses; a resume sends it back in line (or
  // SCHEDULED: not yet its time, or a sequence to enter); a job paused while it ran waits PAUSED.
  "IN_QUEUE>PAUSED", "SEQUENCED>PAUSED", "SCHEDULED>PAUSED", "IN_PROGRESS>PAUSED",
  "PAUSED>IN_QUEUE", "PAUSED>SCHEDULED", "PAUSED>CANCELLED", "PAUSED>TIMED_OUT",
  // Issue 15, item 5 (README "Exit codes, ERROR and INITIALIZING"): a result with a non-zero exit
  // code ends ERROR (an outcome, never retried); a requeue runs it again.
  "IN_PROGRESS>ERROR", "ERROR>IN_QUEUE", "ERROR>SEQUENCED", "ERROR>SCHEDULED",
].sort();

/** Runs command `name` on a fresh record in state `from`; keeps a copy of the record it was given. */
function drive(name: string, from: JobState): { before: JobRecord; copy: JobRecord; r: CommandResult } {
  const before = (SETUP[name] ?? ((j: JobRecord) => j))(recordIn(from));
  const copy = structuredClone(before);
  return { before, copy, r: COMMANDS[name]!(before) };
}

describe("every command from every state", () => {
  for (const name of Object.keys(COMMANDS)) {
    for (const from of JOB_STATES) {
      const to = EXPECTED[name]![from];
      it(`${name} from ${from} ${to ? `→ ${to}` : "is refused"}`, () => {
        const { before, copy, r } = drive(name, from);
        // Commands are pure: the record they were given is never changed in place.
        expect(before).toEqual(copy);
        if (to === undefined) {
          // A typed refusal (never a throw), handing back the job exactly as it was.
          expect(r).toMatchObject({ ok: false, code: refusal(name, from), message: expect.stringMatching(/\S/) });
          expect(r.job).toEqual(copy);
          return;
        }
        expect(r.ok, r.ok ? "" : `${r.code}: ${r.message}`).toBe(true);
        if (!r.ok) return;
        expect(r.job.state).toBe(to);
        if (to === from) {
          // Acting without leaving the state (a progress, a repeat, a pending push): no edge, no new version.
          expect(r.event).toBeNull();
          expect(r.job.version).toBe(before.version);
        } else {
          // A state change goes through the table and leaves a history event and a new version.
          expect(r.event).toMatchObject({ from, to, command: expect.any(String) });
          expect(r.job.version).toBe(before.version + 1);
        }
      });
    }
  }

  it("the commands take every edge of SPEC §4 and no other", () => {
    const taken = new Set<string>();
    for (const name of Object.keys(COMMANDS))
      for (const from of JOB_STATES) {
        const { r } = drive(name, from);
        if (r.ok && r.event) taken.add(`${r.event.from}>${r.event.to}`);
      }
    expect([...taken].sort()).toEqual(SPEC_EDGES);
  });

  it("the transition table allows exactly the edges of SPEC §4", () => {
    const allowed: string[] = [];
    for (const from of JOB_STATES) for (const to of JOB_STATES) if (canTransition(from, to)) allowed.push(`${from}>${to}`);
    expect(allowed.sort()).toEqual(SPEC_EDGES);
  });
});

describe("fencing in the pure commands", () => {
  it("refuses reports from a worker that does not hold the lease", () => {
    const job = recordIn("IN_PROGRESS");
    const w2 = { workerId: "w2", attempt: null };
    for (const r of [commands.complete(job, w2, LATE), commands.fail(job, w2, "x", false, LATE), commands.progress(job, w2, LATE)]) {
      expect(r).toMatchObject({ ok: false, code: "NOT_LEASE_HOLDER" });
    }
  });

  it("refuses progress after the final result, so it can never override it", () => {
    const r = commands.progress(recordIn("COMPLETED"), W1, LATE);
    expect(r).toMatchObject({ ok: false, code: "WRONG_STATE" });
  });

  it("expire before a deadline is NOT_DUE and changes nothing", () => {
    const q = recordIn("IN_QUEUE");
    expect(commands.expire(q, q.ttlAt - 1)).toMatchObject({ ok: false, code: "NOT_DUE" });
    expect(commands.expire(q, q.ttlAt)).toMatchObject({ ok: true, job: { state: "TIMED_OUT", reason: "ttl" } });
    const p = recordIn("IN_PROGRESS");
    expect(commands.expire(p, p.execDeadline! - 1)).toMatchObject({ ok: false, code: "NOT_DUE" });
    expect(commands.expire(p, p.execDeadline!)).toMatchObject({ ok: true, job: { state: "TIMED_OUT", reason: "execution_timeout" } });
  });

  it("retry clears output and error, keeps the id and counts the retry", () => {
    const failed = { ...recordIn("FAILED"), error: "boom", hasOutput: true };
    const r = commands.retry(failed, LATE);
    expect(r).toMatchObject({ ok: true, output: "clear", job: { id: "j", state: "IN_QUEUE", error: null, hasOutput: false, retries: 1, purgeAt: null, ttlAt: LATE + policy.ttl } });
  });
});
