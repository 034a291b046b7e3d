/**
 * One Durable Object per batch (RUNPOD-WIRE-2 §1), named by its id; the same class, named
 * `registry:<endpointId>:<generation>`, is an endpoint's batch registry (./registry). A batch
 * holds its requests (their /run bodies until they are jobs), their jobs' last known states with
 * the counts by state, and its webhook outbox. Every change runs in one storage transaction that
 * settles the batch (./commands) and arms the alarm; the alarm turns a FINALIZED batch's requests
 * into jobs a chunk at a time (./work), cancels waiting children after a cancel, tells the
 * registry, delivers the batch webhook and, 7 days after the batch finished, deletes it.
 */
import { DurableObject } from "cloudflare:workers";
import { Clock } from "../shared/clock";
import { Faults } from "../shared/faults";
import { BATCH } from "../shared/limits";
import { applyMigrations } from "../shared/migrations";
import { WEBHOOK_TIMEOUT_MS, WebhookDelivery } from "../webhooks/delivery";
import { addEvent, hasPending, nextDue } from "../webhooks/outbox";
import * as commands from "./commands";
import type { BatchChange } from "./commands";
import { childObjectName, type BatchRecord, type BatchRef, type BatchStatus, type BatchSummary, type ChildCounts, type ChildNote, type ChildPage } from "./record";
import * as registry from "./registry";
import { BATCH_MIGRATIONS } from "./schema";
import { applyNote, cancelHeld, childByJob, childPage, countsOf, hasHeldChildren, heldBytes, insertChildren, loadBatch, recount, removeChild, saveBatch } from "./store";
import { RETRY_MS, runWork } from "./work";

/** How soon failed work (a registry tell, a chunk that could not be created) is tried again. */

export interface BatchInit {
  id: string;
  endpointId: string;
  endpointGen: string;
  name: string | null;
  webhook: string | null;
}

export type BatchAnswer<T> =
  | { ok: true; value: T }
  | { ok: false; code: "NOT_FOUND" }
  | { ok: false; code: "NO_REQUEST"; message: string }
  | { ok: false; code: "WRONG_STATE" | "TOO_MANY"; status: BatchStatus; message: string };

export function summaryOf(b: BatchRecord, c: ChildCounts): BatchSummary {
  return {
    id: b.id,
    endpointId: b.endpointId,
    status: b.status,
    requestTotal: c.total,
    requestInProgress: c.inProgress,
    requestCompleted: c.completed,
    requestFailed: c.failed,
    createdAt: b.createdAt,
  };
}

export class BatchObject extends DurableObject<Env> {
  readonly sql: SqlStorage;
  readonly clock = new Clock();
  readonly faults = new Faults();
  readonly webhooks: WebhookDelivery;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.webhooks = new WebhookDelivery(this.sql, this.clock, this.faults, Number(env.WEBHOOK_TIMEOUT_MS ?? WEBHOOK_TIMEOUT_MS), RETRY_MS);
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, BATCH_MIGRATIONS, "_migrations");
    });
  }

  // ---- a batch: client calls ----

  /** Creates the batch (DRAFT) with its first requests (validated /run bodies). */
  create(init: BatchInit, bodies: readonly Uint8Array[]): BatchAnswer<BatchSummary> {
    const existing = loadBatch(this.sql);
    if (existing) return { ok: true, value: this.summaryNow(existing) };
    const now = this.clock.now();
    const batch: BatchRecord = {
      ...init,
      status: "DRAFT",
      createdAt: now,
      updatedAt: now,
      finalizedAt: null,
      cancelRequestedAt: null,
      finishedAt: null,
      failure: null,
      nextIdx: 0,
      workDueAt: null,
      createFailingSince: null,
      registryTold: true,
    };
    const tooMany = this.checkRoom(batch, bodies);
    if (tooMany) return tooMany;
    this.ctx.storage.transactionSync(() => this.addRequests(batch, bodies, now));
    return { ok: true, value: this.summaryNow(loadBatch(this.sql)!) };
  }

  /** Appends requests to a DRAFT batch. */
  append(ref: BatchRef, bodies: readonly Uint8Array[]): BatchAnswer<BatchSummary> {
    const b = this.loadFor(ref);
    if (!b) return { ok: false, code: "NOT_FOUND" };
    const draft = commands.requireDraft(b, "requests can be appended");
    if (!draft.ok) return draft;
    const tooMany = this.checkRoom(b, bodies);
    if (tooMany) return tooMany;
    this.ctx.storage.transactionSync(() => this.addRequests(b, bodies, this.clock.now()));
    return { ok: true, value: this.summaryNow(loadBatch(this.sql)!) };
  }

  finalize(ref: BatchRef): BatchAnswer<BatchSummary> {
    return this.change(ref, (b, now) => commands.finalize(b, now));
  }

  /** Renames the batch and/or sets its webhook (any status). */
  update(ref: BatchRef, patch: { name?: string; webhook?: string }): BatchAnswer<BatchSummary> {
    return this.change(ref, (b, now) => ({ ok: true, batch: { ...b, ...patch, updatedAt: b.status === "DRAFT" ? now : b.updatedAt } }));
  }

  /** Removes one request (by its child id) from a DRAFT batch. */
  removeRequest(ref: BatchRef, jobId: string): BatchAnswer<BatchSummary> {
    const b = this.loadFor(ref);
    if (!b) return { ok: false, code: "NOT_FOUND" };
    const draft = commands.requireDraft(b, "requests can be removed");
    if (!draft.ok) return draft;
    const child = childByJob(this.sql, jobId);
    if (!child) return { ok: false, code: "NO_REQUEST", message: `batch ${b.id} has no request '${jobId}'` };
    const now = this.clock.now();
    this.ctx.storage.transactionSync(() => {
      removeChild(this.sql, child);
      this.commit(b.status, { ...b, updatedAt: now }, now);
    });
    return { ok: true, value: this.summaryNow(loadBatch(this.sql)!) };
  }

  /** A DRAFT ends CANCELLED at once; a FINALIZED batch's waiting children are cancelled and it ends CANCELLED once its running ones end. */
  cancel(ref: BatchRef): BatchAnswer<BatchSummary> {
    return this.change(ref, (b, now) => {
      const r = commands.cancel(b, now);
      if (r.ok && b.status === "DRAFT") cancelHeld(this.sql, now);
      return r;
    });
  }

  summary(ref: BatchRef): BatchSummary | null {
    const b = this.loadFor(ref);
    return b ? this.summaryNow(b) : null;
  }

  nameOf(ref: BatchRef): string | null {
    return this.loadFor(ref)?.name ?? null;
  }

  /** Whether the batch counts against its endpoint's limit (./commands isActive); null when there is none. */
  activeFor(ref: BatchRef): boolean | null {
    const b = this.loadFor(ref);
    return b ? commands.isActive(b) : null;
  }

  /**
   * A page of children in the child list's order: at most `limit`, cut earlier when their outputs
   * pass BATCH.pageOutputBytes (always one child; `limit` then says how many came).
   */
  children(ref: BatchRef, offset: number, limit: number): ChildPage | null {
    if (!this.loadFor(ref)) return null;
    const { rows, total } = childPage(this.sql, offset, limit);
    let bytes = 0;
    let cut = rows.length;
    for (let i = 0; i < rows.length; i++) {
      bytes += rows[i]!.outputBytes;
      if (i > 0 && bytes > BATCH.pageOutputBytes) {
        cut = i;
        break;
      }
    }
    const page = rows.slice(0, cut);
    return { rows: page, total, limit: cut < rows.length ? cut : limit, hasMore: offset + page.length < total };
  }

  // ---- a batch: its children's jobs ----

  /** A child's job changed (JobCore.tellAll); repeats and older notes change nothing. */
  childChanged(note: ChildNote): void {
    const b = loadBatch(this.sql);
    if (!b) return;
    const now = this.clock.now();
    this.ctx.storage.transactionSync(() => {
      if (applyNote(this.sql, note)) this.commit(b.status, b, now, false);
    });
  }

  /** The kept counts and a recount from the rows (tests check they agree). */
  countsCheck(): { kept: ChildCounts; recounted: Record<string, number> } {
    return { kept: countsOf(this.sql), recounted: recount(this.sql) };
  }

  // ---- the registry role ----

  registryReserve(id: string, createdAt: number, confirmed: readonly registry.Confirmed[]): registry.Reservation {
    return this.ctx.storage.transactionSync(() => registry.reserve(this.sql, id, createdAt, BATCH.activePerEndpoint, confirmed));
  }

  registrySetActive(id: string, active: boolean): void {
    registry.setActive(this.sql, id, active);
  }

  registryForget(ids: readonly string[]): void {
    this.ctx.storage.transactionSync(() => registry.forget(this.sql, ids));
  }

  registryPage(offset: number, limit: number): { ids: string[]; total: number } {
    return registry.page(this.sql, offset, limit);
  }

  // ---- alarm ----

  override async alarm(): Promise<void> {
    const b = loadBatch(this.sql);
    if (!b) return;
    const now = this.clock.now();
    if (b.status === "DRAFT" && now >= b.updatedAt + BATCH.draftIdleMs) {
      this.ctx.storage.transactionSync(() => {
        cancelHeld(this.sql, now);
        this.commit(b.status, { ...b, status: "CANCELLED", cancelRequestedAt: now, failure: "cancelled: left DRAFT too long" }, now);
      });
    }
    const fresh = loadBatch(this.sql)!;
    if (fresh.finishedAt !== null && now >= fresh.finishedAt + BATCH.retentionMs && !hasPending(this.sql)) {
      await this.expire(fresh);
      return;
    }
    if (fresh.workDueAt !== null && now >= fresh.workDueAt) await runWork(this, this.env);
    const after = loadBatch(this.sql);
    if (after?.webhook) await this.webhooks.deliverDue(after.webhook, this.endpointFor(after));
    this.arm(loadBatch(this.sql));
  }

  // ---- machinery (./work uses these too) ----

  /** The batch, if it belongs to the endpoint incarnation `ref` names. */
  loadFor(ref: BatchRef): BatchRecord | null {
    const b = loadBatch(this.sql);
    return b && b.endpointId === ref.id && b.endpointGen === ref.generation ? b : null;
  }

  summaryNow(b: BatchRecord): BatchSummary {
    return summaryOf(b, countsOf(this.sql));
  }

  /**
   * Saves `b` after a change (the caller holds the transaction): settles it, adds the webhook
   * event when it has just finished, marks registry work when its activity changed, arms the alarm.
   */
  commit(before: BatchStatus, b: BatchRecord, now: number, dirty = true): void {
    const counts = countsOf(this.sql);
    const { batch, announce } = commands.settle(before, b, counts, hasHeldChildren(this.sql), now);
    let next = batch;
    if (announce && next.webhook !== null) addEvent(this.sql, next.id, this.eventFields(next, counts), null, now);
    if (commands.isActive(next) !== next.registryTold && (next.workDueAt === null || next.workDueAt > now)) next = { ...next, workDueAt: now };
    // Most tells change a child and the counts only: the record and the alarm stay as they are.
    if (!dirty && next === b && !announce) return;
    saveBatch(this.sql, next);
    this.arm(next);
  }

  /** Settles the batch as stored after child rows changed (the caller holds the transaction). */
  recommit(): void {
    const b = loadBatch(this.sql);
    if (b) this.commit(b.status, b, this.clock.now(), false);
  }

  transact<T>(fn: () => T): T {
    return this.ctx.storage.transactionSync(fn);
  }

  /** The batch webhook's body: the summary, the cancelled count, when it finished and why. */
  private eventFields(b: BatchRecord, c: ChildCounts): Record<string, unknown> {
    return {
      type: "batch.finished",
      ...summaryOf(b, c),
      requestCancelled: c.cancelled,
      name: b.name,
      finishedAt: b.finishedAt === null ? null : new Date(b.finishedAt).toISOString(),
      ...(b.failure === null ? {} : { failure: b.failure }),
    };
  }

  arm(b: BatchRecord | null): void {
    if (!b) {
      void this.ctx.storage.deleteAlarm();
      return;
    }
    const at = [
      b.workDueAt,
      b.webhook !== null ? nextDue(this.sql) : null,
      b.finishedAt !== null ? b.finishedAt + BATCH.retentionMs : null,
      b.status === "DRAFT" ? b.updatedAt + BATCH.draftIdleMs : null,
    ].filter((t): t is number => t !== null);
    if (at.length === 0) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(this.clock.toWall(Math.min(...at)));
  }

  registryOf(b: BatchRecord) {
    return this.env.BATCH.get(this.env.BATCH.idFromName(registry.registryName(b.endpointId, b.endpointGen)));
  }

  endpointFor(b: BatchRecord) {
    const stub = this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(b.endpointId));
    return {
      getConfig: async () => {
        const c = await stub.getConfig();
        return c !== null && c.generation === b.endpointGen ? c : null;
      },
      webhookOutcome: (ok: boolean) => stub.webhookOutcome(ok),
    };
  }

  private change(ref: BatchRef, command: (b: BatchRecord, now: number) => BatchChange): BatchAnswer<BatchSummary> {
    const b = this.loadFor(ref);
    if (!b) return { ok: false, code: "NOT_FOUND" };
    const now = this.clock.now();
    const r = this.ctx.storage.transactionSync(() => {
      const c = command(b, now);
      if (c.ok && c.batch !== b) this.commit(b.status, c.batch, now);
      return c;
    });
    return r.ok ? { ok: true, value: this.summaryNow(loadBatch(this.sql)!) } : r;
  }

  /** Refuses requests past the batch's limits (count, held bytes). */
  private checkRoom(b: BatchRecord, bodies: readonly Uint8Array[]): BatchAnswer<never> | null {
    const total = countsOf(this.sql).total;
    if (total + bodies.length > BATCH.requestsPerBatch) {
      return { ok: false, code: "TOO_MANY", status: b.status, message: `a batch holds at most ${BATCH.requestsPerBatch} requests; it has ${total}, and this call adds ${bodies.length}` };
    }
    const held = heldBytes(this.sql) + bodies.reduce((n, x) => n + x.byteLength, 0);
    if (held > BATCH.requestBytes) {
      return { ok: false, code: "TOO_MANY", status: b.status, message: `a batch holds at most ${BATCH.requestBytes} bytes of request bodies before it is finalized; this call would bring it to ${held}` };
    }
    return null;
  }

  private addRequests(b: BatchRecord, bodies: readonly Uint8Array[], now: number): void {
    const children = bodies.map((body, i) => ({ jobId: this.env.JOB.idFromName(childObjectName(b.id, b.nextIdx + i)).toString(), body }));
    insertChildren(this.sql, b.nextIdx, children);
    this.commit(b.status, { ...b, nextIdx: b.nextIdx + bodies.length, updatedAt: now }, now);
  }

  /** Retention is over: the registry forgets the batch, then it is deleted. */
  private async expire(b: BatchRecord): Promise<void> {
    try {
      await this.registryOf(b).registryForget([b.id]);
    } catch (e) {
      console.warn(`batch ${b.id}: the registry could not be told of its deletion; retrying`, e);
      saveBatch(this.sql, { ...b, workDueAt: this.clock.now() + RETRY_MS });
      this.arm({ ...b, workDueAt: this.clock.now() + RETRY_MS });
      return;
    }
    await this.ctx.storage.deleteAll();
    await this.ctx.storage.deleteAlarm();
    applyMigrations(this.ctx.storage, BATCH_MIGRATIONS, "_migrations");
  }
}
