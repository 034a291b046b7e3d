/**
 * The machinery under every job object (JobObject holds its RPC surface): loading the job for
 * the endpoint incarnation that asks, running a command in one storage transaction with its
 * history line, payload writes and the alarm, and what follows a commit — waking waiting reads
 * and telling the job's endpoint (one call) and, when the change grants or takes away a worker's
 * attempt, that worker's liveness object (one call). If either call fails, the job's own alarm
 * tells them again until both succeed. The alarm's due work (deadlines, lease and sequence
 * checks, retention) is in ./job-due.
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
import type { Fence } from "./commands";
import { nextDeadline } from "./deadlines";
import type { CommandResult } from "./transition";
import { belongsTo, ttlIsLifespan, type EndpointRef, type HistoryEvent, type JobRecord } from "./record";
import { JOB_BASELINE, JOB_MIGRATIONS } from "./schema";
import { isTerminal, isWaiting } from "./states";
import { appendChunk } from "./stream";
import { statusFields } from "./view";
import { WEBHOOK_TIMEOUT_MS, WebhookDelivery } from "../webhooks/delivery";
import { addEvent, hasPending, nextDue } from "../webhooks/outbox";
import { appendHistory, appendRefusal, cachedField, inJobTransaction, loadJob, saveJob, setIndexDue, type StoredJob } from "./store";
import { confirmTells, mergeTells, readTells, tellsFor, writeTells } from "./liveness-tells";
import { livenessName, livenessRef, RUNS_NONE_WHY, type HoldTell, type LivenessRef } from "../shared/liveness";
import type { ClaimBy, JobChange } from "./job-results";
import { shardName } from "../shared/shards";
import { tellBatch } from "./batch-tell";
import { tellGraph } from "./task-tell";

/** How soon an unconfirmed index update is retried by the alarm. */
export const INDEX_RETRY_MS = 5_000;
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

export abstract class JobCore extends DurableObject<Env> {
  protected readonly sql: SqlStorage;
  /** Waiting reads, all woken on any change (a transition or a stream chunk). */
  protected readonly changes = new Waiters<void, void>();
  /** The job's webhook deliveries, run by its alarm. */
  protected readonly webhooks: WebhookDelivery;
  /** Fault-injection points; armed only by tests through runInDurableObject. */
  readonly faults = new Faults();
  /** The time this job acts on; frozen only by tests. */
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.webhooks = new WebhookDelivery(this.sql, this.clock, this.faults, Number(env.WEBHOOK_TIMEOUT_MS ?? WEBHOOK_TIMEOUT_MS), INDEX_RETRY_MS);
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, JOB_MIGRATIONS, "_migrations", JOB_BASELINE);
    });
  }


  protected nextChange(ms: number): Promise<void> {
    return this.changes.wait(undefined, Math.max(0, ms), undefined);
  }

  /** The job, if it belongs to the endpoint `ref` names and is not past its retention. */
  protected loadFor(ref: EndpointRef): StoredJob | null {
    const stored = loadJob(this.sql);
    if (!stored || !belongsTo(stored.job, ref) || stored.job.gone) return null;
    // Past a lifespan TTL the job is gone to everyone, while its deletion waits for its index update and webhook.
    return ttlIsLifespan(stored.job.policy) && this.clock.now() >= stored.job.ttlAt ? null : stored;
  }

  /**
   * Writes the record, its history line and the alarm; the caller holds the transaction.
   * `written` is the output this transaction stored, if any (else the stored one is read).
   */
  protected commit(job: JobRecord, event: HistoryEvent | null, now: number, written: Uint8Array | null = null): void {
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
  protected heldForWebhooks(job: JobRecord): boolean {
    return job.webhook !== null && isTerminal(job.state) && hasPending(this.sql);
  }

  protected armAlarm(job: JobRecord, indexDueAt: number | null): void {
    const deadline = this.heldForWebhooks(job) ? null : nextDeadline(job);
    const at = [deadline, indexDueAt, job.webhook !== null ? nextDue(this.sql) : null].filter((t): t is number => t !== null);
    if (at.length === 0) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(this.clock.toWall(Math.min(...at)));
  }

  /**
   * Runs a command in one transaction. Refused worker reports are kept in the history for
   * inspection and change nothing else.
   */
  protected async run(
    ref: EndpointRef,
    command: (job: JobRecord, now: number) => CommandResult,
    opts: { output?: Uint8Array | null; chunk?: Uint8Array; label?: string; fence?: Fence; claim?: ClaimBy } = {},
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
    await this.apply(stored, r, now, opts.output ?? null, opts.chunk, opts.claim);
    return { ok: true, job: r.job };
  }

  /**
   * Stores an accepted command result in one transaction (output blob, stream chunk, record,
   * history, alarm), then, for a transition, wakes readers and tells the endpoint.
   */
  protected async apply(
    stored: StoredJob,
    r: Extract<CommandResult, { ok: true }>,
    now: number,
    output: Uint8Array | null = null,
    chunk?: Uint8Array,
    claim?: ClaimBy,
  ): Promise<void> {
    inJobTransaction(this.ctx.storage, this.sql, () => {
      if (r.output === "set" && output !== null) writeBlob(this.sql, "output", output);
      else if (r.output === "set" || r.output === "clear") {
        deleteBlob(this.sql, "output");
        r.job.hasOutput = false;
      }
      if (chunk) appendChunk(this.sql, r.job.attempt, now, chunk);
      if (r.event === null) {
        saveJob(this.sql, r.job, stored.indexDueAt);
        if (r.note) appendHistory(this.sql, r.note);
        this.armAlarm(r.job, stored.indexDueAt);
      } else {
        this.commit(r.job, r.event, now, r.output === "set" ? output : null);
        // A grant carries the claiming take, whose own release passes over it (LivenessObject.taking).
        const tells = tellsFor(stored.job, r.job).map((t) =>
          t.state === "RELEASED" || !claim ? t : { ...t, ...(claim.takeId ? { takeId: claim.takeId } : {}), ...(claim.take ? { take: claim.take } : {}) },
        );
        if (tells.length > 0) writeTells(this.sql, mergeTells(readTells(this.sql), tells));
      }
    });
    if (r.event) await this.afterTransition(r.job, claim?.indexed === true);
    else this.changes.resolveAll();
  }

  protected recordRefusal(job: JobRecord, message: string, label: string, fence: Fence | null, now: number): void {
    const attempt = fence?.attempt ?? job.attempt;
    appendRefusal(this.sql, { at: now, command: `refused ${label}`, from: job.state, to: job.state, attempt, workerId: fence?.workerId ?? null, detail: message });
  }

  /** `indexed`: the caller (the shard that claimed the job) applies this change to its index itself. */
  protected async afterTransition(job: JobRecord, indexed = false): Promise<void> {
    this.faults.hit("job:after-commit");
    this.changes.resolveAll();
    await this.tellAll(job, indexed);
  }

  /**
   * Tells the endpoint and the workers' liveness objects at once (the endpoint not when `indexed`:
   * the shard that asked for the change applies it from the answer). A liveness tell that failed
   * keeps index_due_at set, so the alarm tries both again (the endpoint's sync is idempotent).
   */
  protected async tellAll(job: JobRecord, indexed = false): Promise<void> {
    // A job of a batch tells its batch too, a task its job of tasks (no call for other jobs); a failed tell is retried like the others.
    const parent = job.task !== null ? tellGraph(this.env, this.sql, job) : tellBatch(this.env, this.sql, job);
    const [, told, parentTold] = await Promise.all([indexed ? this.indexedByCaller(job) : this.tellEndpoint(job), this.tellLiveness(job), parent]);
    if (told && parentTold) return;
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
  protected async tellLiveness(job: JobRecord): Promise<boolean> {
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
      const lost = await this.livenessOf(g.ref).hold(g.ref, g.tells);
      // The claiming take said its worker runs nothing else: what it held from older takes is lost.
      await this.releaseLost(job, lost);
      return g.tells;
    }));
    const sent = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    for (const r of results) if (r.status === "rejected") console.warn(`job ${job.id}: liveness tell failed, the alarm will retry`, r.reason);
    if (sent.length > 0) confirmTells(this.sql, sent);
    return sent.length === pending.length;
  }

  protected livenessOf(ref: LivenessRef) {
    return this.env.LIVENESS.get(this.env.LIVENESS.idFromName(livenessName(ref)));
  }

  /**
   * Sends the job's newest state to its shard of the endpoint's index; on failure the alarm retries (index_due_at).
   * Releases the job the endpoint names as next in this job's sequence.
   */
  protected async tellEndpoint(job: JobRecord): Promise<void> {
    let orphaned = false;
    let blocklisted = false;
    try {
      const reply = await this.queue(job).sync(this.entryOf(job));
      await Promise.all(reply.release.map((id) => this.releaseNext(job.endpointId, id)));
      orphaned = reply.orphaned === true;
      blocklisted = reply.blocklisted === true;
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
    // Every live worker that may take it is blocklisted from it (the shard checked): it fails.
    else if (blocklisted) await this.run(job.endpointId, (j, now) => commands.blocklistedOut(j, job.version, now));
  }

  /** The shard that claimed this job indexes the claim from its answer: no sync is owed for this version. */
  private async indexedByCaller(job: JobRecord): Promise<void> {
    const current = loadJob(this.sql);
    if (current && current.job.version === job.version) {
      const next = isWaiting(job.state) ? this.clock.now() + reindexDelay() : null;
      setIndexDue(this.sql, next, job.version);
      this.armAlarm(current.job, next);
    }
  }

  /** Jobs a worker lost (the liveness object found them when a claim of this job carried its take's word). */
  private async releaseLost(job: JobRecord, lost: Array<{ jobId: string; workerId: string }>): Promise<void> {
    const ref: EndpointRef = job.endpointGen === null ? job.endpointId : { id: job.endpointId, generation: job.endpointGen };
    await Promise.all(
      lost.map(async ({ jobId, workerId }) => {
        try {
          await this.env.JOB.get(this.env.JOB.idFromString(jobId)).loseLease(ref, workerId, RUNS_NONE_WHY);
        } catch (e) {
          // Its own lease check ends the attempt later.
          console.warn(`job ${job.id}: could not release job ${jobId} its worker lost`, e);
        }
      }),
    );
  }

  /** The input's size in bytes: written once at submit, gone only with the job's tombstone (read once per object). */
  protected inputBytes(): number {
    return cachedField(this.sql, "inputBytes", () => blobBytes(this.sql, "input"));
  }

  /** What the endpoint's index is told of this job (with its input's size, for batch budgets). */
  protected entryOf(job: JobRecord): IndexEntry {
    return indexEntryOf(job, this.inputBytes());
  }

  protected endpoint(job: JobRecord) {
    return this.endpointOf(job.endpointId);
  }

  /**
   * The shard of the endpoint's ready index this job was placed on: shard 0 (or a job from before
   * generations were kept) is the endpoint object, the others ShardObjects (see shared/shards).
   * The three calls a job makes; the edge's full queue (takes, queue info) is endpoints/shards'
   * queueOf, which jobs cannot import (they sit below endpoints).
   */
  protected queue(job: Pick<JobRecord, "endpointId" | "endpointGen" | "shard">) {
    const shard = job.shard ?? 0;
    if (shard === 0 || job.endpointGen === null || job.endpointGen === "") {
      const s = this.endpointOf(job.endpointId);
      return {
        sync: (e: IndexEntry) => s.sync(e),
        enterSequence: (key: string, id: string) => s.enterSequence(key, id),
        sequenceAhead: (id: string) => s.sequenceAhead(id),
      };
    }
    const addr = { endpointId: job.endpointId, generation: job.endpointGen, shard };
    const s = this.env.SHARD.get(this.env.SHARD.idFromName(shardName(addr)));
    return {
      sync: (e: IndexEntry) => s.sync(addr, e),
      enterSequence: (key: string, id: string) => s.enterSequence(addr, key, id),
      sequenceAhead: (id: string) => s.sequenceAhead(addr, id),
    };
  }

  protected endpointOf(endpointId: string) {
    return this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(endpointId));
  }

  /** Releases the next job of this job's sequence; if that fails, its own sequence check will. */
  protected async releaseNext(endpointId: string, jobId: string): Promise<void> {
    try {
      await this.env.JOB.get(this.env.JOB.idFromString(jobId)).release(endpointId);
    } catch (e) {
      console.warn(`could not release job ${jobId}; its own sequence check will`, e);
    }
  }

  /** Runs whatever of the job is due now (./job-due). */
  protected abstract runDue(): Promise<void>;
}
