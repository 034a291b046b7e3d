/**
 * One Durable Object per job: the only writer of that job's state. Its RPC surface is here: reads
 * (status, waits, streams, history, webhook log) and commands (submit, claims, reports, user
 * actions, push outcomes). Every change is a named command from ./commands run inside one
 * synchronous storage transaction together with the history line, the payload writes and the
 * alarm, which is always the earliest pending deadline; the machinery that runs it, and tells the
 * endpoint and the worker's liveness object after the commit, is in ./job-core.
 */
import { readBlob, writeBlob } from "../shared/blobs";
import * as commands from "./commands";
import type { Fence, SubmitInit } from "./commands";
import * as push from "./push-commands";
import { wrongState, type CommandResult } from "./transition";
import type { EndpointRef, HistoryEvent, JobRecord } from "./record";
import { isTerminal, isWaiting } from "./states";
import { readChunks, readUnread } from "./stream";
import { appendLog, readLog, type LogAppend, type LogLineIn, type LogRead } from "./logs";
import { webhookLog, webhookSummary, type WebhookLogEntry } from "../webhooks/delivery";
import { redeliver, type Redelivery } from "../webhooks/outbox";
import { inJobTransaction, loadJob, readHistory } from "./store";
import type { ClaimBy, ClaimResult, JobChange, JobRead, StreamRead, SubmitResult, TakeClaim, WorkerReport } from "./job-results";
import { JobDue } from "./job-due";

export type { ClaimResult, JobChange, JobRead, Refusal, StreamRead, SubmitResult, WorkerReport } from "./job-results";

/** The command a worker's report runs: progress, result or failure, fenced by the lease. */
function reportCommand(report: WorkerReport, fence: Fence, output: Uint8Array | null): (job: JobRecord, now: number) => CommandResult {
  return (job, now) => {
    switch (report.kind) {
      case "progress":
        // RunPod's progress ({"status": "IN_PROGRESS"}) sets the partial output, absent or not; an
        // "initializing" phase without output keeps what was there.
        return commands.progress(job, fence, now, report.phase ?? null, report.phase === undefined || output !== null);
      case "complete":
        return commands.complete(job, fence, now, report.exitCode ?? null);
      case "fail":
        return commands.fail(job, fence, report.error, output !== null, now);
      case "error":
        return commands.errorOutcome(job, fence, report.error, report.exitCode, output !== null, now);
    }
  };
}

export class JobObject extends JobDue {
  // ---- reads ----

  /** The job as its endpoint's client sees it. Runs any deadline that is already due first. */
  async read(ref: EndpointRef): Promise<JobRead> {
    await this.runDue();
    const stored = this.loadFor(ref);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    const output = stored.job.hasOutput ? readBlob(this.sql, "output") : null;
    return { ok: true, job: stored.job, output, webhook: stored.job.webhook === null ? null : webhookSummary(this.sql) };
  }

  /**
   * Reads the job (after waiting up to `waitMs` for it to finish, as waitTerminal), then shortens a
   * finished job's retention to `keepForMs` from now (RunPod's `/status?ttl=`; the answer still
   * carries the job). One call for /status and /status-sync alike.
   */
  async readThenKeep(ref: EndpointRef, keepForMs: number, waitMs = 0): Promise<JobRead> {
    const r = waitMs > 0 ? await this.waitTerminal(ref, waitMs) : await this.read(ref);
    if (r.ok) await this.run(ref, (job, now) => commands.shortenRetention(job, keepForMs, now));
    return r;
  }

  /** Every webhook event of the job with every delivery attempt. */
  webhookLog(ref: EndpointRef): WebhookLogEntry[] | null {
    if (!this.loadFor(ref)) return null;
    return webhookLog(this.sql);
  }

  /** Sends the latest webhook event again at once (same webhook-id), within its rate limit. Null for an unknown job. */
  redeliverWebhook(ref: EndpointRef): Redelivery | null {
    const stored = this.loadFor(ref);
    if (!stored) return null;
    const r = redeliver(this.sql, this.clock.now());
    if (r.ok) this.armAlarm(stored.job, stored.indexDueAt);
    return r;
  }

  /** Waits up to `waitMs` for the job to reach a terminal state, then reads it (output and all, once). */
  async waitTerminal(ref: EndpointRef, waitMs: number): Promise<JobRead> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.runDue();
      const stored = this.loadFor(ref);
      if (!stored || isTerminal(stored.job.state) || Date.now() >= deadline) return this.read(ref);
      await this.nextChange(deadline - Date.now());
    }
  }

  /**
   * RunPod's /stream: the chunks not yet read (then marked read), waiting up to `waitMs` for one
   * while the job runs.
   */
  async takeStream(ref: EndpointRef, waitMs: number): Promise<StreamRead> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.runDue();
      const stored = this.loadFor(ref);
      if (!stored) return { ok: false, code: "NOT_FOUND" };
      const chunks = readUnread(this.sql);
      if (chunks.length > 0 || isTerminal(stored.job.state) || Date.now() >= deadline) {
        return { ok: true, job: stored.job, chunks };
      }
      await this.nextChange(deadline - Date.now());
    }
  }

  /** Chunks after `afterSeq` without consuming them (SSE), waiting up to `waitMs` for one. */
  async streamFrom(ref: EndpointRef, afterSeq: number, waitMs: number): Promise<StreamRead> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.runDue();
      const stored = this.loadFor(ref);
      if (!stored) return { ok: false, code: "NOT_FOUND" };
      const chunks = readChunks(this.sql, afterSeq);
      if (chunks.length > 0 || isTerminal(stored.job.state) || Date.now() >= deadline) return { ok: true, job: stored.job, chunks };
      await this.nextChange(deadline - Date.now());
    }
  }

  /** Log lines after `afterSeq` (at most `limit`, see ./logs), waiting up to `waitMs` for one while the job runs. */
  async readLog(ref: EndpointRef, afterSeq: number, limit: number, waitMs: number): Promise<LogRead> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.runDue();
      const stored = this.loadFor(ref);
      if (!stored) return { ok: false, code: "NOT_FOUND" };
      const page = readLog(this.sql, afterSeq, limit);
      if (page.lines.length > 0 || isTerminal(stored.job.state) || Date.now() >= deadline) return { ok: true, job: stored.job, ...page };
      await this.nextChange(deadline - Date.now());
    }
  }

  history(ref: EndpointRef): HistoryEvent[] | null {
    return this.loadFor(ref) ? readHistory(this.sql) : null;
  }

  /** The job's state alone (no output read), after any due deadline; null for an unknown job. Schedules read it. */
  async state(ref: EndpointRef): Promise<JobRecord["state"] | null> {
    await this.runDue();
    return this.loadFor(ref)?.job.state ?? null;
  }

  // ---- commands ----

  /**
   * Creates the job. A second submit to the same object (an idempotent repeat) changes nothing:
   * it answers EXISTS with the first job when the body is the same, IDEMPOTENCY_MISMATCH when not.
   */
  async submit(init: SubmitInit, input: Uint8Array): Promise<SubmitResult> {
    const create = async (): Promise<SubmitResult> => {
      // A job past its idempotency window is deleted first: the key then starts a new job.
      await this.runDue();
      const existing = loadJob(this.sql);
      if (existing) {
        const same = existing.job.endpointId === init.endpointId && existing.job.idempotency?.bodyHash === init.idempotency?.bodyHash;
        return same ? { ok: false, code: "EXISTS", job: existing.job } : { ok: false, code: "IDEMPOTENCY_MISMATCH" };
      }
      // A sequenced job asks its endpoint whether a job of its sequence is ahead of it; a delayed
      // one enters its sequence when its time comes (JobDue.becomeReady).
      const before = this.clock.now();
      const scheduled = commands.submit(init, before).state === "SCHEDULED";
      const ahead = init.sequenceKey === null || scheduled ? null : await this.queue({ ...init, shard: init.shard ?? 0 }).enterSequence(init.sequenceKey, init.id);
      // The same instant for a scheduled job: it must not turn ready without entering its sequence.
      const now = scheduled ? before : this.clock.now();
      const job = commands.submit(init, now, ahead !== null);
      inJobTransaction(this.ctx.storage, this.sql, () => {
        writeBlob(this.sql, "input", input);
        this.commit(job, { at: now, command: "submit", from: job.state, to: job.state, attempt: 0, workerId: null, detail: ahead }, now);
      });
      return { ok: true, job };
    };
    // The endpoint call must not let a concurrent repeat of this submit in between the check and
    // the write, so a sequenced submit holds the object's other events off while it runs.
    const r = init.sequenceKey === null ? await create() : await this.ctx.blockConcurrencyWhile(create);
    if (r.ok) await this.tellEndpoint(r.job);
    return r;
  }

  /**
   * The dispatch consumer claims the job for a push under the message's token. Returns the job
   * and its input to push, or a refusal when the message is a duplicate or stale.
   */
  async pushClaim(ref: EndpointRef, token: string, workerId: string): Promise<ClaimResult> {
    const r = await this.run(ref, (job, now) => push.pushClaim(job, token, workerId, now));
    if (!r.ok) return r.code === "NOT_FOUND" ? r : { ...r, entry: this.entryOf(r.job) };
    return { ok: true, job: r.job, input: readBlob(this.sql, "input") ?? new Uint8Array() };
  }

  /**
   * The worker URL accepted the push; a result in its answer finishes the attempt at once, in the
   * same transaction (the accepting worker holds the lease on this very attempt).
   */
  async pushAccepted(ref: EndpointRef, token: string, result: { report: WorkerReport; output: Uint8Array | null } | null): Promise<JobChange> {
    return this.run(
      ref,
      (job, now) => {
        const accepted = push.pushAccepted(job, token);
        if (!accepted.ok || result === null || accepted.job.workerId === null) return accepted;
        const fence = { workerId: accepted.job.workerId, attempt: accepted.job.attempt };
        return reportCommand(result.report, fence, result.output)(accepted.job, now);
      },
      { output: result?.output ?? null },
    );
  }

  pushFailed(ref: EndpointRef, token: string, error: string): Promise<JobChange> {
    return this.run(ref, (job, now) => push.pushFailed(job, token, error.slice(0, 1000), now));
  }

  deadLetter(ref: EndpointRef, token: string): Promise<JobChange> {
    return this.run(ref, (job, now) => push.deadLetter(job, token, now));
  }

  /** The job ahead of this one in its sequence ended: SEQUENCED → IN_QUEUE. */
  release(ref: EndpointRef): Promise<JobChange> {
    return this.run(ref, commands.release);
  }

  /**
   * A worker claims the job it was offered: IN_QUEUE → IN_PROGRESS under a new attempt. The
   * shard that offered it claims it (`by`: its take, and that it indexes the claim itself from
   * `entry`); an input over `by.inlineInputMax` bytes is left out (the edge reads it with
   * claimedInput), so large inputs do not pass through the shard.
   */
  async claim(ref: EndpointRef, workerId: string, by: ClaimBy & { inlineInputMax?: number } = {}): Promise<TakeClaim> {
    const r = await this.run(ref, (job, now) => commands.claim(job, workerId, now), { claim: by });
    if (!r.ok) return r.code === "NOT_FOUND" ? r : { ...r, entry: this.entryOf(r.job) };
    const inline = by.inlineInputMax === undefined || this.inputBytes() <= by.inlineInputMax;
    return { ok: true, job: r.job, entry: this.entryOf(r.job), input: inline ? (readBlob(this.sql, "input") ?? new Uint8Array()) : null };
  }

  /** The input of the attempt `fence` names, to its lease holder only (a claim that left it out). */
  claimedInput(ref: EndpointRef, fence: Fence): Uint8Array | null {
    const stored = this.loadFor(ref);
    if (!stored || stored.job.workerId !== fence.workerId || stored.job.attempt !== fence.attempt || stored.job.state !== "IN_PROGRESS") return null;
    return readBlob(this.sql, "input") ?? new Uint8Array();
  }

  /** A worker's report on its attempt: progress, result or failure. Fenced by the lease. */
  async report(ref: EndpointRef, fence: Fence, report: WorkerReport, output: Uint8Array | null): Promise<JobChange> {
    // A final report that returns the job itself is an exact repeat (commands.isRepeat): the
    // caller must not act on it twice (job-done?next=1 would hand the worker a second job).
    const command = reportCommand(report, fence, output);
    let repeat = false;
    const r = await this.run(
      ref,
      (job, now) => {
        const c = command(job, now);
        repeat = report.kind !== "progress" && c.ok && c.job === job;
        return c;
      },
      { output, label: `report:${report.kind}`, fence },
    );
    return r.ok && repeat ? { ...r, repeat: true } : r;
  }

  /** A stream chunk from the lease holder, kept in order. */
  async stream(ref: EndpointRef, fence: Fence, chunk: Uint8Array): Promise<JobChange> {
    const r = await this.run(ref, (job, now) => commands.streamChunk(job, fence, now), { label: "stream", fence, chunk });
    return r;
  }

  /**
   * Log lines from the lease holder of the attempt `fence` names, kept within the job's caps
   * (./logs). Not a state change: the record and its version stay; waiting readers are woken.
   */
  async appendLog(ref: EndpointRef, fence: Fence, lines: LogLineIn[]): Promise<LogAppend> {
    await this.runDue();
    const stored = this.loadFor(ref);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    const now = this.clock.now();
    const fenced = commands.logLines(stored.job, fence);
    if (!fenced.ok) {
      this.recordRefusal(stored.job, fenced.message, "log", fence, now);
      return fenced;
    }
    const r = this.ctx.storage.transactionSync(() => appendLog(this.sql, stored.job.attempt, fence.workerId, lines, now));
    if (r.accepted > 0 || r.truncated) this.changes.resolveAll();
    return { ok: true, ...r };
  }

  /** The worker holding the lease is gone (it asked for work saying it runs nothing). */
  loseLease(ref: EndpointRef, workerId: string, why: string): Promise<JobChange> {
    return this.run(ref, (job, now) => commands.loseLease(job, workerId, why, now));
  }

  /** The worker told to stop this CANCELLING job no longer lists it. */
  workerQuiet(ref: EndpointRef, workerId: string, told = true): Promise<JobChange> {
    return this.run(ref, (job, now) => commands.workerQuiet(job, workerId, told, now));
  }

  cancel(ref: EndpointRef): Promise<JobChange> {
    return this.run(ref, commands.cancel);
  }

  /** A batch's cancel (RUNPOD-WIRE-2 §1.5): cancels the job only while it waits; a running one finishes (WRONG_STATE, with the job). */
  cancelWaiting(ref: EndpointRef): Promise<JobChange> {
    return this.run(ref, (job, now) => (isWaiting(job.state) ? commands.cancel(job, now) : wrongState(job, "batch-cancel")));
  }

  /** Its job of tasks blocklisted `workers` from this task, or they took another replica (`list` "busy"; see commands.blockForGraph). */
  blockForGraph(ref: EndpointRef, workers: string[], list: "blocked" | "busy" = "blocked"): Promise<JobChange> {
    return this.run(ref, (job, now) => commands.blockForGraph(job, workers, now, list));
  }

  /** A user pauses the job (see commands.pause). */
  pause(ref: EndpointRef): Promise<JobChange> {
    return this.run(ref, commands.pause);
  }

  /** A user runs a delayed job now (see commands.promote): it becomes ready (or enters its sequence) in this call. */
  promote(ref: EndpointRef): Promise<JobChange> {
    return this.thenDue(ref, commands.promote);
  }

  /**
   * A user moves a delayed job's time (see commands.reschedule): `delayMs` from now (this object's
   * clock, as a submit's delay) or `at`; a time already past makes it ready in this call.
   */
  reschedule(ref: EndpointRef, when: { delayMs: number } | { at: number }): Promise<JobChange> {
    return this.thenDue(ref, (job, now) => commands.reschedule(job, now, "delayMs" in when ? now + when.delayMs : when.at));
  }

  /**
   * A user resumes the job (see commands.resume). A job of a sequence resumes SCHEDULED for now and
   * enters its sequence at once, in this call (its due work runs before the answer).
   */
  resume(ref: EndpointRef): Promise<JobChange> {
    return this.thenDue(ref, commands.resume);
  }

  /** Runs `command`; a job it left SCHEDULED and due becomes ready (or enters its sequence) before the answer. */
  private async thenDue(ref: EndpointRef, command: (job: JobRecord, now: number) => CommandResult): Promise<JobChange> {
    const r = await this.run(ref, command);
    if (!r.ok || r.job.state !== "SCHEDULED") return r;
    await this.runDue();
    const now = this.loadFor(ref);
    return now ? { ok: true, job: now.job } : r;
  }

  /** RunPod's /retry, at once or after `delayMs` (SCHEDULED meanwhile). */
  retry(ref: EndpointRef, delayMs = 0): Promise<JobChange> {
    return this.backToQueue(ref, (job, now, behind) => commands.retry(job, now, behind, delayMs), delayMs);
  }

  requeue(ref: EndpointRef, delayMs = 0): Promise<JobChange> {
    return this.backToQueue(ref, (job, now, behind) => commands.requeue(job, now, behind, delayMs), delayMs);
  }

  /**
   * Retry and requeue. A job of a sequence first re-enters its sequence at the back (one call to
   * the endpoint), and waits SEQUENCED when a job of its key is unfinished; the object holds its
   * other events off meanwhile, as a sequenced submit does, so nothing runs between the two.
   * A delayed one enters its sequence when its time comes (JobDue.becomeReady).
   */
  private async backToQueue(ref: EndpointRef, command: (job: JobRecord, now: number, behind: boolean) => CommandResult, delayMs: number): Promise<JobChange> {
    const stored = this.loadFor(ref);
    const key = stored?.job.sequenceKey ?? null;
    if (!stored || key === null || delayMs > 0 || !command(stored.job, this.clock.now(), false).ok) {
      return this.run(ref, (job, now) => command(job, now, false));
    }
    return this.ctx.blockConcurrencyWhile(async () => {
      const ahead = await this.queue(stored.job).enterSequence(key, stored.job.id);
      return this.run(ref, (job, now) => command(job, now, ahead !== null));
    });
  }

  /** The job's endpoint was deleted: it ends (see commands.orphan). */
  endpointDeleted(endpointId: string): Promise<JobChange> {
    return this.run(endpointId, commands.orphan);
  }

  /** The lease holder's ping does not list this job (see commands.notListed). */
  notListed(ref: EndpointRef, workerId: string): Promise<JobChange> {
    return this.run(ref, (job, now) => commands.notListed(job, workerId, now));
  }

  purge(ref: EndpointRef): Promise<JobChange> {
    return this.run(ref, commands.purge);
  }

  // ---- alarm ----

  /**
   * Runs whatever is due: an expired deadline, a lease check, the deletion of a retained job, an
   * unconfirmed index update. Idempotent: an early, late or repeated alarm does only what is due
   * now, then re-arms for the next deadline.
   */
  override async alarm(_info?: AlarmInvocationInfo): Promise<void> {
    await this.runDue();
    await this.deliverWebhooks();
    const stored = loadJob(this.sql);
    if (stored) this.armAlarm(stored.job, stored.indexDueAt);
  }
}
