/**
 * What a job's alarm (and every call, first) runs when it is due: deadlines (expiry, timeouts,
 * cancel grace), a SCHEDULED job's time, lease and sequence checks, retries of unconfirmed index
 * updates, and the end of retention (a tombstone, then deletion). Each handler re-reads the job
 * after any await and acts only if nothing changed meanwhile.
 */
import { applyMigrations } from "../shared/migrations";
import { livenessRef } from "../shared/liveness";
import * as commands from "./commands";
import { dueWork } from "./deadlines";
import { INDEX_RETRY_MS, JobCore } from "./job-core";
import { JOB_BASELINE, JOB_MIGRATIONS } from "./schema";
import { forgetJob, inJobTransaction, loadJob, saveJob, setIndexDue, type StoredJob } from "./store";

export abstract class JobDue extends JobCore {
  /** Runs due deadlines, lease checks and index retries; deletes the job when its retention is over. */
  protected override async runDue(): Promise<void> {
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
      inJobTransaction(this.ctx.storage, this.sql, () => {
        this.sql.exec("DELETE FROM blob; DELETE FROM stream_chunk; DELETE FROM history; DELETE FROM log_line;");
        saveJob(this.sql, job, null);
        this.armAlarm(job, null);
      });
      // Its input went with the blobs.
      forgetJob(this.sql);
      return;
    }
    if (due?.kind === "delete") {
      await this.ctx.storage.deleteAll();
      forgetJob(this.sql);
      await this.ctx.storage.deleteAlarm();
      applyMigrations(this.ctx.storage, JOB_MIGRATIONS, "_migrations", JOB_BASELINE);
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
    if (due?.kind === "becomeReady") {
      await this.becomeReady(stored);
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
  protected async deliverWebhooks(): Promise<void> {
    const stored = loadJob(this.sql);
    if (stored?.job.webhook) await this.webhooks.deliverDue(stored.job.webhook, this.endpoint(stored.job));
  }

  /**
   * A SCHEDULED job's time came: it becomes ready. A job of a sequence first enters it (one call
   * to its shard, other events held off meanwhile, as a sequenced submit does); should the shard
   * not answer, it tries again INDEX_RETRY_MS later.
   */
  protected async becomeReady(stored: StoredJob): Promise<void> {
    const key = stored.job.sequenceKey;
    if (key === null) {
      const r = commands.becomeReady(stored.job, this.clock.now());
      if (r.ok) await this.apply(stored, r, this.clock.now());
      return;
    }
    await this.ctx.blockConcurrencyWhile(async () => {
      let ahead: string | null | undefined;
      try {
        ahead = await this.queue(stored.job).enterSequence(key, stored.job.id);
      } catch (e) {
        console.warn(`job ${stored.job.id}: could not enter its sequence; trying again`, e);
      }
      const fresh = loadJob(this.sql);
      if (!fresh || fresh.job.version !== stored.job.version) return;
      const now = this.clock.now();
      const r = ahead === undefined ? commands.postponeReady(fresh.job, now + INDEX_RETRY_MS) : commands.becomeReady(fresh.job, now, ahead !== null);
      if (r.ok) await this.apply(fresh, r, now);
    });
  }

  /** A SEQUENCED job's own check of its turn, for when the release by the job ahead was lost. */
  protected async checkSequence(stored: StoredJob): Promise<void> {
    let ahead: string | null;
    try {
      ahead = await this.queue(stored.job).sequenceAhead(stored.job.id);
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
  protected async checkLease(stored: StoredJob, workerId: string): Promise<void> {
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
