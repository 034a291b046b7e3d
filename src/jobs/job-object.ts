/**
 * One Durable Object per job: the only writer of that job's state. Every change is a named
 * command from ./commands run inside one synchronous storage transaction together with the
 * history line, the payload writes and the alarm, which is always the earliest pending deadline.
 * After a change commits, the job tells its endpoint (one call); if that call fails, the job's own
 * alarm tells it again until it succeeds.
 */
import { DurableObject } from "cloudflare:workers";
import type { IndexEntry } from "../endpoints/index-entry";
import { indexEntryOf } from "../endpoints/index-entry";
import { deleteBlob, readBlob, writeBlob } from "../shared/blobs";
import { Clock } from "../shared/clock";
import { Faults } from "../shared/faults";
import { applyMigrations } from "../shared/migrations";
import * as commands from "./commands";
import type { CommandResult, ConflictCode, SubmitInit } from "./commands";
import type { HistoryEvent, JobRecord } from "./record";
import { JOB_MIGRATIONS } from "./schema";
import { isTerminal } from "./states";
import { appendHistory, loadJob, readHistory, saveJob, setIndexDue, type StoredJob } from "./store";

/** How soon an unconfirmed index update is retried by the alarm. */
export const INDEX_RETRY_MS = 5_000;

export type JobRead = { ok: true; job: JobRecord; output: Uint8Array | null } | { ok: false; code: "NOT_FOUND" };

export type JobChange =
  | { ok: true; job: JobRecord }
  | { ok: false; code: "NOT_FOUND" }
  | { ok: false; code: ConflictCode; message: string; job: JobRecord };

export type ClaimResult =
  | { ok: true; job: JobRecord; input: Uint8Array }
  | { ok: false; code: "NOT_FOUND" }
  | { ok: false; code: ConflictCode; message: string; job: JobRecord; entry: IndexEntry };

/** What a worker reported on its job. The output bytes travel beside it. */
export type WorkerReport = { kind: "progress" } | { kind: "complete" } | { kind: "fail"; error: string };

export class JobObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private terminalWaiters = new Set<() => void>();
  /** Fault-injection points; armed only by tests through runInDurableObject. */
  readonly faults = new Faults();
  /** The time this job acts on; frozen only by tests. */
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, JOB_MIGRATIONS);
    });
  }

  // ---- reads ----

  /** The job as its endpoint's client sees it. Runs any deadline that is already due first. */
  async read(endpointId: string): Promise<JobRead> {
    await this.runDue();
    const stored = this.loadFor(endpointId);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    return { ok: true, job: stored.job, output: stored.job.hasOutput ? readBlob(this.sql, "output") : null };
  }

  /** Waits up to `waitMs` for the job to reach a terminal state, then reads it. */
  async waitTerminal(endpointId: string, waitMs: number): Promise<JobRead> {
    const first = await this.read(endpointId);
    if (!first.ok || isTerminal(first.job.state) || waitMs <= 0) return first;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.terminalWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.terminalWaiters.add(done);
    });
    return this.read(endpointId);
  }

  history(endpointId: string): HistoryEvent[] | null {
    return this.loadFor(endpointId) ? readHistory(this.sql) : null;
  }

  // ---- commands ----

  /** Creates the job. A second submit to the same object changes nothing and answers EXISTS. */
  async submit(init: SubmitInit, input: Uint8Array): Promise<{ ok: true; job: JobRecord } | { ok: false; code: "EXISTS"; job: JobRecord }> {
    const existing = loadJob(this.sql);
    if (existing) return { ok: false, code: "EXISTS", job: existing.job };
    const now = this.clock.now();
    const job = commands.submit(init, now);
    this.ctx.storage.transactionSync(() => {
      writeBlob(this.sql, "input", input);
      this.commit(job, { at: now, command: "submit", from: job.state, to: job.state, attempt: 0, workerId: null, detail: null }, now);
    });
    await this.tellEndpoint(job);
    return { ok: true, job };
  }

  /** A worker claims the job it was offered: IN_QUEUE → IN_PROGRESS under a new attempt. */
  async claim(endpointId: string, workerId: string): Promise<ClaimResult> {
    const r = await this.run(endpointId, (job, now) => commands.claim(job, workerId, now));
    if (!r.ok) return r.code === "NOT_FOUND" ? r : { ...r, entry: indexEntryOf(r.job) };
    return { ok: true, job: r.job, input: readBlob(this.sql, "input") ?? new Uint8Array() };
  }

  /** A worker's report on its attempt: progress, result or failure. Fenced by the lease. */
  async report(endpointId: string, workerId: string, report: WorkerReport, output: Uint8Array | null): Promise<JobChange> {
    return this.run(
      endpointId,
      (job, now) => {
        switch (report.kind) {
          case "progress":
            return commands.progress(job, workerId);
          case "complete":
            return commands.complete(job, workerId, now);
          case "fail":
            return commands.fail(job, workerId, report.error, output !== null, now);
        }
      },
      output,
      `report:${report.kind}`,
      workerId,
    );
  }

  cancel(endpointId: string): Promise<JobChange> {
    return this.run(endpointId, commands.cancel);
  }

  retry(endpointId: string): Promise<JobChange> {
    return this.run(endpointId, commands.retry);
  }

  requeue(endpointId: string): Promise<JobChange> {
    return this.run(endpointId, commands.requeue);
  }

  purge(endpointId: string): Promise<JobChange> {
    return this.run(endpointId, commands.purge);
  }

  // ---- alarm ----

  /**
   * Runs whatever is due: an expired deadline, the deletion of a retained job, an unconfirmed
   * index update. Idempotent: an early, late or repeated alarm does only what is due now, then
   * re-arms for the next deadline.
   */
  override async alarm(_info?: AlarmInvocationInfo): Promise<void> {
    await this.runDue();
    const stored = loadJob(this.sql);
    if (stored) this.armAlarm(stored.job, stored.indexDueAt);
  }

  // ---- internals ----

  private loadFor(endpointId: string): StoredJob | null {
    const stored = loadJob(this.sql);
    return stored && stored.job.endpointId === endpointId ? stored : null;
  }

  /** Writes the record, its history line and the alarm; the caller holds the transaction. */
  private commit(job: JobRecord, event: HistoryEvent | null, now: number): void {
    const indexDueAt = event ? now + INDEX_RETRY_MS : null;
    saveJob(this.sql, job, indexDueAt);
    if (event) appendHistory(this.sql, event);
    this.armAlarm(job, indexDueAt);
    this.faults.hit("job:in-transaction");
  }

  private armAlarm(job: JobRecord, indexDueAt: number | null): void {
    const deadline = commands.nextDeadline(job);
    const at = [deadline, indexDueAt].filter((t): t is number => t !== null);
    if (at.length === 0) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(Math.min(...at));
  }

  /**
   * Runs a command in one transaction. Refused worker reports are kept in the history for
   * inspection and change nothing else.
   */
  private async run(
    endpointId: string,
    command: (job: JobRecord, now: number) => CommandResult,
    output: Uint8Array | null = null,
    label: string | null = null,
    workerId: string | null = null,
  ): Promise<JobChange> {
    await this.runDue();
    const stored = this.loadFor(endpointId);
    if (!stored) return { ok: false, code: "NOT_FOUND" };
    const now = this.clock.now();
    const r = command(stored.job, now);
    if (!r.ok) {
      if (label) {
        const j = stored.job;
        appendHistory(this.sql, { at: now, command: `refused ${label}`, from: j.state, to: j.state, attempt: j.attempt, workerId, detail: r.message });
      }
      return r;
    }
    if (r.job === stored.job) return { ok: true, job: r.job };
    this.ctx.storage.transactionSync(() => {
      if (r.output === "set" && output !== null) writeBlob(this.sql, "output", output);
      else if (r.output === "set" || r.output === "clear") {
        deleteBlob(this.sql, "output");
        r.job.hasOutput = false;
      }
      if (r.event === null) saveJob(this.sql, r.job, stored.indexDueAt);
      else this.commit(r.job, r.event, now);
    });
    if (r.event) await this.afterTransition(r.job);
    return { ok: true, job: r.job };
  }

  private async afterTransition(job: JobRecord): Promise<void> {
    this.faults.hit("job:after-commit");
    if (isTerminal(job.state)) for (const wake of [...this.terminalWaiters]) wake();
    await this.tellEndpoint(job);
  }

  /** Sends the job's newest state to its endpoint; on failure the alarm retries (index_due_at). */
  private async tellEndpoint(job: JobRecord): Promise<void> {
    try {
      const endpoint = this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(job.endpointId));
      await endpoint.sync(indexEntryOf(job));
    } catch (e) {
      // Swallowed on purpose: the change is committed, and index_due_at makes the alarm retry.
      console.warn(`job ${job.id}: endpoint sync failed, the alarm will retry`, e);
      return;
    }
    const current = loadJob(this.sql);
    if (current && current.job.version === job.version && current.indexDueAt !== null) {
      setIndexDue(this.sql, null, job.version);
      this.armAlarm(current.job, null);
    }
  }

  /** Runs due deadlines and index retries; deletes the job when its retention is over. */
  private async runDue(): Promise<void> {
    const stored = loadJob(this.sql);
    if (!stored) return;
    const now = this.clock.now();
    const due = commands.dueWork(stored.job, now);
    if (due?.kind === "delete") {
      await this.ctx.storage.deleteAll();
      await this.ctx.storage.deleteAlarm();
      applyMigrations(this.ctx.storage, JOB_MIGRATIONS);
      return;
    }
    if (due?.kind === "command") {
      const r = due.run(stored.job, now);
      if (r.ok && r.event) {
        this.ctx.storage.transactionSync(() => this.commit(r.job, r.event, now));
        await this.afterTransition(r.job);
        return;
      }
    }
    if (stored.indexDueAt !== null && now >= stored.indexDueAt) {
      setIndexDue(this.sql, now + INDEX_RETRY_MS, stored.job.version);
      this.armAlarm(stored.job, now + INDEX_RETRY_MS);
      await this.tellEndpoint(stored.job);
    }
  }
}
