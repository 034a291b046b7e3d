/**
 * One Durable Object per job: the only writer of that job's state. Every change is a named
 * command from ./commands run inside one synchronous storage transaction together with the
 * history line, the payload writes and the alarm, which is always the earliest pending deadline.
 * After a change commits, the job tells its endpoint (one call) and, when the change grants or
 * takes away a worker's attempt, that worker's liveness object (one call); if either fails, the
 * job's own alarm tells them again until both succeed.
 */
import { DurableObject } from "cloudflare:workers";
import type { IndexEntry } from "./index-entry";
import { indexEntryOf } from "./index-entry";
import { blobBytes, deleteBlob, readBlob, writeBlob } from "../shared/blobs";
import { Clock } from "../shared/clock";
import { Faults } from "../shared/faults";
import { Waiters } from "../shared/waiters";
import { applyMigrations } from "../shared/migrations";
import * as commands from "./commands";
import type { Fence, SubmitInit } from "./commands";
import { dueWork, nextDeadline } from "./deadlines";
import * as push from "./push-commands";
import type { CommandResult, ConflictCode } from "./transition";
import { belongsTo, type EndpointRef, type HistoryEvent, type JobRecord } from "./record";
import { JOB_MIGRATIONS } from "./schema";
import { isTerminal, isWaiting } from "./states";
import { appendChunk, readChunks, readUnread } from "./stream";
import { statusFields } from "./view";
import { WEBHOOK_TIMEOUT_MS, WebhookDelivery, webhookLog, webhookSummary, type WebhookLogEntry, type WebhookSummary } from "../webhooks/delivery";
import { addEvent, hasPending, nextDue, redeliver, type Redelivery } from "../webhooks/outbox";
import type { StreamChunk } from "./stream";
import { appendHistory, appendRefusal, loadJob, readHistory, saveJob, setIndexDue, type StoredJob } from "./store";
import { confirmTells, mergeTells, readTells, tellsFor, writeTells } from "./liveness-tells";
import { livenessName, livenessRef, type HoldTell, type LivenessRef } from "../shared/liveness";

/** How soon an unconfirmed index update is retried by the alarm. */
const INDEX_RETRY_MS = 5_000;
/**
 * A waiting job tells its endpoint again this often, so an index that lost it (a deleted and
 * re-created endpoint, a pruned row) is repaired from the job, which stays authoritative.
 */
const REINDEX_WAITING_MS = 30 * 60_000;
/**
 * Re-tells are spread over ±25 % of the interval, so a backlog submitted in one burst does not
 * re-tell its endpoint in one burst (20,000 waiting jobs every 5 min cost 66 calls/s: issue 12).
 */
const reindexDelay = () => REINDEX_WAITING_MS * (0.75 + Math.random() / 2);

export type JobRead =
  | { ok: true; job: JobRecord; output: Uint8Array | null; webhook: WebhookSummary | null }
  | { ok: false; code: "NOT_FOUND" };

export type Refusal = { ok: false; code: "NOT_FOUND" } | { ok: false; code: ConflictCode; message: string; job: JobRecord };

/** `repeat`: a worker report that exactly repeats the one the job already accepted (changed nothing). */
export type JobChange = { ok: true; job: JobRecord; repeat?: true } | Refusal;

export type ClaimResult =
  | { ok: true; job: JobRecord; input: Uint8Array }
  | { ok: false; code: "NOT_FOUND" }
  | { ok: false; code: ConflictCode; message: string; job: JobRecord; entry: IndexEntry };

export type SubmitResult =
  | { ok: true; job: JobRecord }
  | { ok: false; code: "EXISTS"; job: JobRecord }
  | { ok: false; code: "IDEMPOTENCY_MISMATCH" };

export type StreamRead = { ok: true; job: JobRecord; chunks: StreamChunk[] } | { ok: false; code: "NOT_FOUND" };

/** What a worker reported on its job. The output bytes travel beside it. */
export type WorkerReport = { kind: "progress" } | { kind: "complete" } | { kind: "fail"; error: string };

/** The command a worker's report runs: progress, result or failure, fenced by the lease. */
function reportCommand(report: WorkerReport, fence: Fence, output: Uint8Array | null): (job: JobRecord, now: number) => CommandResult {
  return (job, now) => {
    switch (report.kind) {
      case "progress":
        return commands.progress(job, fence, now);
      case "complete":
        return commands.complete(job, fence, now);
      case "fail":
        return commands.fail(job, fence, report.error, output !== null, now);
    }
  };
}

export class JobObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Waiting reads, all woken on any change (a transition or a stream chunk). */
  private readonly changes = new Waiters<void, void>();
  /** The job's webhook deliveries, run by its alarm. */
  private readonly webhooks: WebhookDelivery;
  /** Fault-injection points; armed only by tests through runInDurableObject. */
  readonly faults = new Faults();
  /** The time this job acts on; frozen only by tests. */
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.webhooks = new WebhookDelivery(this.sql, this.clock, this.faults, Number(env.WEBHOOK_TIMEOUT_MS ?? WEBHOOK_TIMEOUT_MS), INDEX_RETRY_MS);
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, JOB_MIGRATIONS);
    });
  }

  // ---- reads ----

  /** The job as its endpoint's client sees it. Runs any deadline that is already due first. */
  async read(ref: EndpointRef): Promise<JobRead> {
    await this.runDue();
    const stored = this.loadFor(ref);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    const output = stored.job.hasOutput ? readBlob(this.sql, "output") : null;
    return { ok: true, job: stored.job, output, webhook: stored.job.webhook === null ? null : webhookSummary(this.sql) };
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

  history(ref: EndpointRef): HistoryEvent[] | null {
    return this.loadFor(ref) ? readHistory(this.sql) : null;
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
      // A sequenced job asks its endpoint whether a job of its sequence is ahead of it.
      const ahead = init.sequenceKey === null ? null : await this.endpointOf(init.endpointId).enterSequence(init.sequenceKey, init.id);
      const now = this.clock.now();
      const job = commands.submit(init, now, ahead !== null);
      this.ctx.storage.transactionSync(() => {
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

  /** A worker claims the job it was offered: IN_QUEUE → IN_PROGRESS under a new attempt. */
  async claim(ref: EndpointRef, workerId: string): Promise<ClaimResult> {
    const r = await this.run(ref, (job, now) => commands.claim(job, workerId, now));
    if (!r.ok) return r.code === "NOT_FOUND" ? r : { ...r, entry: this.entryOf(r.job) };
    return { ok: true, job: r.job, input: readBlob(this.sql, "input") ?? new Uint8Array() };
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

  retry(ref: EndpointRef): Promise<JobChange> {
    return this.backToQueue(ref, commands.retry);
  }

  requeue(ref: EndpointRef): Promise<JobChange> {
    return this.backToQueue(ref, commands.requeue);
  }

  /**
   * Retry and requeue. A job of a sequence first re-enters its sequence at the back (one call to
   * the endpoint), and waits SEQUENCED when a job of its key is unfinished; the object holds its
   * other events off meanwhile, as a sequenced submit does, so nothing runs between the two.
   */
  private async backToQueue(ref: EndpointRef, command: (job: JobRecord, now: number, behind: boolean) => CommandResult): Promise<JobChange> {
    const stored = this.loadFor(ref);
    const key = stored?.job.sequenceKey ?? null;
    if (!stored || key === null || !command(stored.job, this.clock.now(), false).ok) {
      return this.run(ref, (job, now) => command(job, now, false));
    }
    return this.ctx.blockConcurrencyWhile(async () => {
      const ahead = await this.endpoint(stored.job).enterSequence(key, stored.job.id);
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

  // ---- internals ----

  private nextChange(ms: number): Promise<void> {
    return this.changes.wait(undefined, Math.max(0, ms), undefined);
  }

  /** The job, if it belongs to the endpoint `ref` names and is not past its retention. */
  private loadFor(ref: EndpointRef): StoredJob | null {
    const stored = loadJob(this.sql);
    return stored && belongsTo(stored.job, ref) && !stored.job.gone ? stored : null;
  }

  /**
   * Writes the record, its history line and the alarm; the caller holds the transaction.
   * `written` is the output this transaction stored, if any (else the stored one is read).
   */
  private commit(job: JobRecord, event: HistoryEvent | null, now: number, written: Uint8Array | null = null): void {
    const indexDueAt = event ? now + INDEX_RETRY_MS : null;
    saveJob(this.sql, job, indexDueAt);
    if (event) appendHistory(this.sql, event);
    if (event && isTerminal(job.state) && job.webhook !== null) {
      // Into the outbox in the same transaction: a 200 to the worker means the webhook will be sent.
      const fields = { ...statusFields(job, now), webhook: job.webhook };
      addEvent(this.sql, job.id, fields, job.hasOutput ? (written ?? readBlob(this.sql, "output")) : null, now);
    }
    this.armAlarm(job, indexDueAt);
    this.faults.hit("job:in-transaction");
  }

  /**
   * A finished job's retention (its tombstone or deletion) waits while a webhook event of its is
   * pending: its payloads are sent with every attempt. Only a job with a webhook has events.
   */
  private heldForWebhooks(job: JobRecord): boolean {
    return job.webhook !== null && isTerminal(job.state) && hasPending(this.sql);
  }

  private armAlarm(job: JobRecord, indexDueAt: number | null): void {
    const deadline = this.heldForWebhooks(job) ? null : nextDeadline(job);
    const at = [deadline, indexDueAt, job.webhook !== null ? nextDue(this.sql) : null].filter((t): t is number => t !== null);
    if (at.length === 0) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(this.clock.toWall(Math.min(...at)));
  }

  /**
   * Runs a command in one transaction. Refused worker reports are kept in the history for
   * inspection and change nothing else.
   */
  private async run(
    ref: EndpointRef,
    command: (job: JobRecord, now: number) => CommandResult,
    opts: { output?: Uint8Array | null; chunk?: Uint8Array; label?: string; fence?: Fence } = {},
  ): Promise<JobChange> {
    await this.runDue();
    const stored = this.loadFor(ref);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    const now = this.clock.now();
    const r = command(stored.job, now);
    if (!r.ok) {
      if (opts.label) this.recordRefusal(stored.job, r.message, opts.label, opts.fence ?? null, now);
      return r;
    }
    if (r.job === stored.job) return { ok: true, job: r.job };
    await this.apply(stored, r, now, opts.output ?? null, opts.chunk);
    return { ok: true, job: r.job };
  }

  /**
   * Stores an accepted command result in one transaction (output blob, stream chunk, record,
   * history, alarm), then, for a transition, wakes readers and tells the endpoint.
   */
  private async apply(
    stored: StoredJob,
    r: Extract<CommandResult, { ok: true }>,
    now: number,
    output: Uint8Array | null = null,
    chunk?: Uint8Array,
  ): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      if (r.output === "set" && output !== null) writeBlob(this.sql, "output", output);
      else if (r.output === "set" || r.output === "clear") {
        deleteBlob(this.sql, "output");
        r.job.hasOutput = false;
      }
      if (chunk) appendChunk(this.sql, r.job.attempt, now, chunk);
      if (r.event === null) {
        saveJob(this.sql, r.job, stored.indexDueAt);
        this.armAlarm(r.job, stored.indexDueAt);
      } else {
        this.commit(r.job, r.event, now, r.output === "set" ? output : null);
        const tells = tellsFor(stored.job, r.job);
        if (tells.length > 0) writeTells(this.sql, mergeTells(readTells(this.sql), tells));
      }
    });
    if (r.event) await this.afterTransition(r.job);
    else this.changes.resolveAll();
  }

  private recordRefusal(job: JobRecord, message: string, label: string, fence: Fence | null, now: number): void {
    const attempt = fence?.attempt ?? job.attempt;
    appendRefusal(this.sql, { at: now, command: `refused ${label}`, from: job.state, to: job.state, attempt, workerId: fence?.workerId ?? null, detail: message });
  }

  private async afterTransition(job: JobRecord): Promise<void> {
    this.faults.hit("job:after-commit");
    this.changes.resolveAll();
    await this.tellAll(job);
  }

  /**
   * Tells the endpoint and the workers' liveness objects at once. A liveness tell that failed
   * keeps index_due_at set, so the alarm tries both again (the endpoint's sync is idempotent).
   */
  private async tellAll(job: JobRecord): Promise<void> {
    const [, told] = await Promise.all([this.tellEndpoint(job), this.tellLiveness(job)]);
    if (told) return;
    const current = loadJob(this.sql);
    if (!current) return;
    const at = this.clock.now() + INDEX_RETRY_MS;
    if (current.indexDueAt === null || current.indexDueAt > at) {
      setIndexDue(this.sql, at, current.job.version);
      this.armAlarm(current.job, at);
    }
  }

  /**
   * Sends the pending tells, one call per liveness object (a transition touches one worker, or
   * two); confirmed ones are removed. Returns whether none is left unsent.
   */
  private async tellLiveness(job: JobRecord): Promise<boolean> {
    const pending = readTells(this.sql);
    if (pending.length === 0) return true;
    const byObject = new Map<string, { ref: LivenessRef; tells: HoldTell[] }>();
    for (const t of pending) {
      const ref = livenessRef(job.endpointId, job.endpointGen, t.workerId);
      const group = byObject.get(livenessName(ref)) ?? { ref, tells: [] };
      group.tells.push(t);
      byObject.set(livenessName(ref), group);
    }
    const results = await Promise.allSettled([...byObject.values()].map(async (g) => {
      await this.livenessOf(g.ref).hold(g.ref, g.tells);
      return g.tells;
    }));
    const sent = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    for (const r of results) if (r.status === "rejected") console.warn(`job ${job.id}: liveness tell failed, the alarm will retry`, r.reason);
    if (sent.length > 0) confirmTells(this.sql, sent);
    return sent.length === pending.length;
  }

  private livenessOf(ref: LivenessRef) {
    return this.env.LIVENESS.get(this.env.LIVENESS.idFromName(livenessName(ref)));
  }

  /**
   * Sends the job's newest state to its endpoint; on failure the alarm retries (index_due_at).
   * Releases the job the endpoint names as next in this job's sequence.
   */
  private async tellEndpoint(job: JobRecord): Promise<void> {
    let orphaned = false;
    try {
      const reply = await this.endpoint(job).sync(this.entryOf(job));
      await Promise.all(reply.release.map((id) => this.releaseNext(job.endpointId, id)));
      orphaned = reply.orphaned === true;
    } catch (e) {
      // Swallowed on purpose: the change is committed, and index_due_at makes the alarm retry.
      console.warn(`job ${job.id}: endpoint sync failed, the alarm will retry`, e);
      return;
    }
    const current = loadJob(this.sql);
    if (current && current.job.version === job.version) {
      const next = isWaiting(job.state) ? this.clock.now() + reindexDelay() : null;
      setIndexDue(this.sql, next, job.version);
      this.armAlarm(current.job, next);
    }
    if (orphaned && !isTerminal(job.state)) await this.run(job.endpointId, commands.orphan);
  }

  /** What the endpoint's index is told of this job (with its input's size, for batch budgets). */
  private entryOf(job: JobRecord): IndexEntry {
    return indexEntryOf(job, blobBytes(this.sql, "input"));
  }

  private endpoint(job: JobRecord) {
    return this.endpointOf(job.endpointId);
  }

  private endpointOf(endpointId: string) {
    return this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(endpointId));
  }

  /** Releases the next job of this job's sequence; if that fails, its own sequence check will. */
  private async releaseNext(endpointId: string, jobId: string): Promise<void> {
    try {
      await this.env.JOB.get(this.env.JOB.idFromString(jobId)).release(endpointId);
    } catch (e) {
      console.warn(`could not release job ${jobId}; its own sequence check will`, e);
    }
  }

  /** Runs due deadlines, lease checks and index retries; deletes the job when its retention is over. */
  private async runDue(): Promise<void> {
    const stored = loadJob(this.sql);
    if (!stored) return;
    const now = this.clock.now();
    let due = dueWork(stored.job, now);
    if ((due?.kind === "tombstone" || due?.kind === "delete") && this.heldForWebhooks(stored.job)) due = null;
    if ((due?.kind === "tombstone" || due?.kind === "delete") && stored.indexDueAt !== null) {
      // The endpoint has not yet confirmed this job's final state: tell it first, so the index
      // never keeps a running row (a held concurrency slot) for a job that no longer exists.
      await this.tellAll(stored.job);
      const after = loadJob(this.sql);
      if (after && after.indexDueAt !== null) {
        // Not confirmed: the alarm tries again a little later.
        setIndexDue(this.sql, now + INDEX_RETRY_MS, after.job.version);
        this.armAlarm(after.job, now + INDEX_RETRY_MS);
        return;
      }
    }
    if (due?.kind === "tombstone") {
      const job = { ...stored.job, gone: true, hasOutput: false };
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("DELETE FROM blob; DELETE FROM stream_chunk; DELETE FROM history;");
        saveJob(this.sql, job, null);
        this.armAlarm(job, null);
      });
      return;
    }
    if (due?.kind === "delete") {
      await this.ctx.storage.deleteAll();
      await this.ctx.storage.deleteAlarm();
      applyMigrations(this.ctx.storage, JOB_MIGRATIONS);
      return;
    }
    if (due?.kind === "command") {
      const r = due.run(stored.job, now);
      if (r.ok && r.event) {
        await this.apply(stored, r, now);
        return;
      }
    }
    if (due?.kind === "checkLease") {
      await this.checkLease(stored, due.workerId);
      return;
    }
    if (due?.kind === "checkSequence") {
      await this.checkSequence(stored);
      return;
    }
    if (stored.indexDueAt !== null && now >= stored.indexDueAt) {
      setIndexDue(this.sql, now + INDEX_RETRY_MS, stored.job.version);
      this.armAlarm(stored.job, now + INDEX_RETRY_MS);
      await this.tellAll(stored.job);
    }
  }

  /** Delivers the job's due webhook events (see WebhookDelivery). */
  private async deliverWebhooks(): Promise<void> {
    const stored = loadJob(this.sql);
    if (stored?.job.webhook) await this.webhooks.deliverDue(stored.job.webhook, this.endpoint(stored.job));
  }

  /** A SEQUENCED job's own check of its turn, for when the release by the job ahead was lost. */
  private async checkSequence(stored: StoredJob): Promise<void> {
    let ahead: string | null;
    try {
      ahead = await this.endpoint(stored.job).sequenceAhead(stored.job.id);
    } catch (e) {
      console.warn(`job ${stored.job.id}: sequence check could not reach the endpoint`, e);
      ahead = stored.job.id; // unknown: check again later
    }
    const fresh = loadJob(this.sql);
    if (!fresh || fresh.job.version !== stored.job.version) return;
    const now = this.clock.now();
    const r = ahead === null ? commands.release(fresh.job, now) : commands.recheckSequence(fresh.job, now);
    if (r.ok) await this.apply(fresh, r, now);
  }

  /**
   * The lease check: asks the worker's liveness object (not the endpoint) when the worker was last
   * heard from, then (after that await, on a fresh read, only if nothing changed meanwhile)
   * extends the lease or ends it.
   */
  private async checkLease(stored: StoredJob, workerId: string): Promise<void> {
    let seen: number | null | undefined;
    try {
      const ref = livenessRef(stored.job.endpointId, stored.job.endpointGen, workerId);
      seen = await this.livenessOf(ref).lastSeen(ref, workerId);
    } catch (e) {
      console.warn(`job ${stored.job.id}: lease check could not reach the worker's liveness object`, e);
      seen = undefined;
    }
    const fresh = loadJob(this.sql);
    if (!fresh || fresh.job.version !== stored.job.version || fresh.job.leaseCheckAt !== stored.job.leaseCheckAt) return;
    const now = this.clock.now();
    if (seen === undefined) {
      // Cannot tell whether the worker is alive: keep the lease and ask again a little later.
      const job = { ...fresh.job, leaseCheckAt: now + INDEX_RETRY_MS };
      saveJob(this.sql, job, fresh.indexDueAt);
      this.armAlarm(job, fresh.indexDueAt);
      return;
    }
    const r = commands.checkLease(fresh.job, seen, now);
    if (r.ok) await this.apply(fresh, r, now);
  }
}
