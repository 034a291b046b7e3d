/**
 * One Durable Object per (endpoint, generation, worker shard): the liveness of that shard's
 * workers, off the endpoint object. It keeps their registry rows (workers.ts), their stop signals
 * (stops.ts) and job-stop long-polls, and which jobs each holds (held.ts), as the jobs tell it
 * directly. Pings, stop polls and lease checks are answered here; the endpoint only gets a
 * summary now and then (see LIVENESS in limits.ts). It never calls a job object.
 */
import { DurableObject } from "cloudflare:workers";
import { Clock } from "../shared/clock";
import { BLOCKLIST, LIVENESS, PING_LIST_GRACE_MS, WORKER_TAGS, WORKER_BOUNDS } from "../shared/limits";
import { meterCalls, meteredSql, meterOf, type LoadSnapshot } from "../shared/load";
import type { HoldTell, LivenessRef } from "../shared/liveness";
import { applyMigrations } from "../shared/migrations";
import { Waiters } from "../shared/waiters";
import { applyTell, heldBy, heldByWorker, lostBy, pruneReleased } from "./held";
import { LIVENESS_MIGRATIONS } from "./liveness-schema";
import { addStop, deliveredStops, deliverStops, pruneStops, supersedeStops } from "./stops";
import type { LostJob, PingReply, PingSign, ShardSummary, TakeSign, WorkerView } from "./liveness-types";
import {
  countStates,
  forgetSilentWorkers,
  listWorkers,
  markRecycle,
  markUnhealthy,
  recordFailure,
  recordTakes,
  seeTaker,
  liveWorkers,
  seeWorker,
  setTags,
  tagSetSigns,
  workerState,
  type WorkerCounts,
  type LiveWorkers,
} from "./workers";

export type { LostJob, PingReply, PingSign, ShardSummary, TakeSign, WorkerView } from "./liveness-types";

/** How often the object prunes old stop signals, released rows and silent workers. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** A shard's share of the endpoint's registry bound. */
const SHARD_ROWS = Math.ceil(WORKER_BOUNDS.registryRows / LIVENESS.shards);

export class LivenessObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private ref: LivenessRef | null = null;
  /** The endpoint's heartbeat timeout, as the last caller that knew it said. */
  private heartbeatMs = 45_000;
  /** Dropped with its endpoint generation: answers nothing, keeps nothing. */
  private dropped = false;
  private readonly stopWaiters = new Waiters<{ workerId: string }, string[]>();
  /** Workers with a job-stop poll open here right now. */
  private readonly polling = new Map<string, number>();
  /** What the endpoint was last told: the latest sign of life, and when. */
  private flushedSign: number | null = null;
  private flushedAt = 0;
  private flushing: Promise<void> | null = null;
  private pruneAt = 0;
  /** Calls served, by method (tests and load reports read it). */
  readonly calls = new Map<string, number>();
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Rows written are counted for the load report, as the endpoint object counts its own.
    this.sql = meteredSql(ctx.storage.sql, meterOf(this));
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, LIVENESS_MIGRATIONS);
      const meta = new Map(this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM meta").toArray().map((r) => [r.name, r.value]));
      this.dropped = meta.get("dropped") === "1";
      if (meta.has("ref")) this.ref = JSON.parse(meta.get("ref")!) as LivenessRef;
      if (meta.has("heartbeat")) this.heartbeatMs = Number(meta.get("heartbeat"));
    });
  }

  /** Notes who this object is (its name carries it, but an object cannot read its own name). */
  private enter(method: string, ref: LivenessRef, heartbeatMs: number | null = null): boolean {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    if (this.dropped) return false;
    if (this.ref === null) {
      this.ref = ref;
      this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('ref', ?)", JSON.stringify(ref));
    }
    if (heartbeatMs !== null && heartbeatMs !== this.heartbeatMs) {
      this.heartbeatMs = heartbeatMs;
      this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('heartbeat', ?)", String(heartbeatMs));
    }
    return true;
  }

  // ---- workers (through the edge) ----

  /**
   * A heartbeat. `jobIds` lists the jobs the worker says it runs (null: the ping says nothing
   * about jobs). Returns the CANCELLING jobs it no longer lists (it went quiet on them; see
   * commands.workerQuiet), and the running jobs it does not list (see commands.notListed).
   */
  async ping(ref: LivenessRef, heartbeatMs: number, workerId: string, beat: PingSign): Promise<PingReply> {
    const { jobIds, sdkVersion, unhealthy } = beat;
    if (!this.enter("ping", ref, heartbeatMs)) return { quiet: [], unlisted: [] };
    const now = this.clock.now();
    const fresh = seeWorker(this.sql, workerId, now, sdkVersion, SHARD_ROWS);
    if (unhealthy !== null) markUnhealthy(this.sql, workerId, unhealthy);
    // New tags are told to the endpoint at once (queue.reason no_matching_workers reads them).
    const retagged = beat.tags != null && setTags(this.sql, workerId, beat.tags);
    await this.afterSign(now, unhealthy !== null || retagged, fresh);
    // Only a ping that says what it runs can say what it does not.
    if (jobIds === null) return { quiet: [], unlisted: [] };
    const listed = new Set(jobIds);
    const told = deliveredStops(this.sql, workerId);
    const held = heldBy(this.sql, workerId).filter((j) => !listed.has(j.jobId));
    const quiet = held.filter((j) => j.state === "CANCELLING").map((j) => ({ jobId: j.jobId, told: told.has(`${j.jobId}:${j.attempt}`) }));
    // The job checks its own attempt's age too: `since` is when this object learned of the claim.
    const unlisted = held.filter((j) => j.state === "IN_PROGRESS" && now - j.since >= PING_LIST_GRACE_MS).map((j) => j.jobId);
    return { quiet, unlisted };
  }

  /**
   * A take starts: a sign of life that lasts while its long-poll may (until `pollUntil`, or until
   * a job it claims is told here). When the worker says it runs nothing (`jobInProgress` false),
   * returns the jobs it evidently lost: all it holds but those this very take (`takeId`) claimed,
   * whose tells may arrive here before this call does, and those claimed by the worker's takes
   * that started no earlier than this one (held.ts lostBy; found by CI: an SDK worker's second
   * take loop was handed a job before its first loop's `job_in_progress=0` was read here).
   */
  async taking(ref: LivenessRef, heartbeatMs: number, take: TakeSign): Promise<string[]> {
    const { workerId, jobInProgress, pollUntil, takeId } = take;
    if (!this.enter("taking", ref, heartbeatMs)) return [];
    const now = this.clock.now();
    const { fresh, retagged } = seeTaker(this.sql, workerId, now, pollUntil, take.tags, SHARD_ROWS);
    await this.afterSign(now, retagged, fresh);
    return jobInProgress === false ? lostBy(this.sql, workerId, takeId) : [];
  }

  /** job-stop: the jobs this worker must stop, waiting up to `waitMs` for one. */
  async takeStops(ref: LivenessRef, heartbeatMs: number, workerId: string, waitMs: number): Promise<string[]> {
    if (!this.enter("takeStops", ref, heartbeatMs)) return [];
    const now = this.clock.now();
    const fresh = seeWorker(this.sql, workerId, now, null, SHARD_ROWS);
    await this.afterSign(now, false, fresh);
    const ids = deliverStops(this.sql, workerId, now);
    if (ids.length > 0 || waitMs <= 0 || this.dropped) return ids;
    this.polling.set(workerId, (this.polling.get(workerId) ?? 0) + 1);
    try {
      return await this.stopWaiters.wait({ workerId }, waitMs, []);
    } finally {
      const n = (this.polling.get(workerId) ?? 1) - 1;
      if (n <= 0) this.polling.delete(workerId);
      else this.polling.set(workerId, n);
      // A poll ended by the drop leaves no trace (the storage it would write to is wiped).
      if (!this.dropped) seeWorker(this.sql, workerId, this.clock.now(), null, SHARD_ROWS);
    }
  }

  /** The worker asked to be recycled after its job (RunPod's stopPod / refresh_worker). */
  recycle(ref: LivenessRef, workerId: string): void {
    if (!this.enter("recycle", ref)) return;
    seeWorker(this.sql, workerId, this.clock.now(), null, SHARD_ROWS);
    markRecycle(this.sql, workerId);
  }

  // ---- jobs ----

  /** When the worker last showed a sign of life (now, while a long-poll of its is open). */
  lastSeen(ref: LivenessRef, workerId: string): number | null {
    if (!this.enter("lastSeen", ref)) return null;
    const now = this.clock.now();
    if (this.polling.has(workerId)) return now;
    const row = this.sql
      .exec<{ last_seen: number; poll_until: number }>("SELECT last_seen, poll_until FROM worker WHERE worker_id = ?", workerId)
      .toArray()[0];
    return row ? Math.max(row.last_seen, Math.min(now, row.poll_until)) : null;
  }

  /**
   * A job's tells, in its version order (HoldTell). Stops are per attempt and idempotent, so a
   * stop is kept even from a tell that is otherwise older than what is known.
   */
  async hold(ref: LivenessRef, tells: HoldTell[]): Promise<LostJob[]> {
    if (!this.enter("hold", ref)) return [];
    const now = this.clock.now();
    let coldStart = false;
    /** A claim carried its take's sign of life (the take sent none itself): as `taking` would, after. */
    const signed = { any: false, fresh: false, retagged: false };
    const lost: LostJob[] = [];
    for (const t of tells) {
      const r = applyTell(this.sql, t, now);
      if (t.stop) addStop(this.sql, t.workerId, t.jobId, t.attempt, t.state, now);
      // A stop for an attempt older than the one the worker now holds would stop the newer one.
      if (t.stop || (r.applied && r.took)) supersedeStops(this.sql, t.workerId, t.jobId, now);
      if (!r.applied) continue;
      if (t.failure !== null) recordFailure(this.sql, t.workerId, { jobId: t.jobId, at: now, reason: t.failure });
      if (r.took && t.take) {
        // Its poll is over (took, below, ends it): seen now, poll window untouched, tags as declared.
        const s = seeTaker(this.sql, t.workerId, now, 0, t.take.tags, SHARD_ROWS);
        signed.any = true;
        signed.fresh ||= s.fresh;
        signed.retagged ||= s.retagged;
        if (t.take.runsNone) for (const jobId of lostBy(this.sql, t.workerId, t.takeId ?? null)) lost.push({ jobId, workerId: t.workerId });
      }
      if (r.took) coldStart = this.took(t.workerId, now) || coldStart;
    }
    for (const workerId of new Set(tells.filter((t) => t.stop).map((t) => t.workerId))) this.wakeStopWaiter(workerId, now);
    if (signed.any) await this.afterSign(now, signed.retagged || coldStart, signed.fresh);
    else if (coldStart) await this.flush(now);
    await this.armPrune(now);
    return lost;
  }

  /** The worker claimed an attempt: its take is over (a sign of life now), and one more job taken. */
  private took(workerId: string, now: number): boolean {
    const coldStart = recordTakes(this.sql, workerId, 1, now, true);
    if (coldStart !== null) this.sql.exec("INSERT INTO cold_start (ms) VALUES (?)", coldStart);
    return coldStart !== null;
  }

  private wakeStopWaiter(workerId: string, now: number): void {
    this.stopWaiters.serve((w) => {
      if (w.workerId !== workerId) return undefined;
      const ids = deliverStops(this.sql, workerId, now);
      return ids.length > 0 ? ids : undefined;
    }, 1);
  }

  // ---- the worker view (merged over the shards by the edge) ----

  /** This shard's workers with their states; `throttled`: workers the endpoint holds back. */
  list(ref: LivenessRef, heartbeatMs: number, throttled: string[]): WorkerView[] {
    if (!this.enter("list", ref, heartbeatMs)) return [];
    return this.views(this.clock.now(), new Set(throttled));
  }

  /** This shard's live workers now (a blocklist's confirmation: EndpointObject.liveWorkers), at most `limit`. */
  live(ref: LivenessRef, since: number, limit: number): LiveWorkers {
    if (!this.enter("live", ref)) return { workers: [], more: false };
    return liveWorkers(this.sql, since, limit);
  }

  counts(ref: LivenessRef, heartbeatMs: number, throttled: string[]): WorkerCounts {
    if (!this.enter("counts", ref, heartbeatMs)) return countStates([]);
    return countStates(this.views(this.clock.now(), new Set(throttled)).map((w) => w.state));
  }

  private views(now: number, throttled: ReadonlySet<string>): WorkerView[] {
    const held = heldByWorker(this.sql);
    return listWorkers(this.sql, now).map((w) => {
      const currentJobs = held.get(w.workerId) ?? [];
      const polling = this.isPolling(w.workerId, now);
      return { ...w, state: workerState(w, currentJobs.length, now, this.heartbeatMs, polling, polling && throttled.has(w.workerId)), currentJobs };
    });
  }

  private isPolling(workerId: string, now: number): boolean {
    if (this.polling.has(workerId)) return true;
    const row = this.sql.exec<{ poll_until: number }>("SELECT poll_until FROM worker WHERE worker_id = ?", workerId).toArray()[0];
    return row !== undefined && row.poll_until > now;
  }

  // ---- the endpoint ----

  /**
   * After a sign of life: tells the endpoint a summary when it would otherwise think this shard
   * has no live worker, when `force`d, or when the last summary is older than the flush interval.
   */
  private async afterSign(now: number, force: boolean, newcomer = false): Promise<void> {
    const stale = this.flushedSign === null || this.flushedSign < now - this.heartbeatMs;
    const interval = Math.min(LIVENESS.flushMs, this.heartbeatMs / 2, newcomer ? LIVENESS.newcomerFlushMs : Infinity);
    if (force || stale || now - this.flushedAt >= interval) await this.flush(now);
    await this.armPrune(now);
  }

  /** Sends the summary (one call at a time); a failure is logged and retried on a later sign. */
  private async flush(now: number): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.dropped || this.ref === null) return;
    const ref = this.ref;
    const summary = this.summary(now);
    const sent = this.sql.exec<{ id: number | null }>("SELECT MAX(id) AS id FROM cold_start").one().id;
    this.flushing = (async () => {
      try {
        const endpoint = this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(ref.endpointId));
        const r = await endpoint.workerShard(ref.generation, ref.shard, summary);
        if (!r.current) {
          // The generation is gone (its endpoint deleted): nothing here serves anyone any more.
          await this.drop(ref);
          return;
        }
        this.flushedSign = summary.lastSign;
        this.flushedAt = now;
        if (sent !== null && !this.dropped) this.sql.exec("DELETE FROM cold_start WHERE id <= ?", sent);
      } catch (e) {
        console.warn(`liveness ${ref.endpointId}/${ref.shard}: summary not told to the endpoint`, e);
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private summary(now: number): ShardSummary {
    // An open take counts until its end (poll_until), as the endpoint's own take polls do.
    const sign = this.sql.exec<{ s: number | null }>("SELECT MAX(MAX(last_seen, poll_until)) AS s FROM worker WHERE unhealthy_reason IS NULL").one().s;
    const polls = this.polling.size > 0 ? now : null;
    return {
      counts: countStates(this.views(now, new Set()).map((w) => w.state)),
      lastSign: sign === null && polls === null ? null : Math.max(sign ?? 0, polls ?? 0),
      coldStarts: this.sql.exec<{ ms: number }>("SELECT ms FROM cold_start ORDER BY id LIMIT 1000").toArray().map((r) => r.ms),
      tagSets: tagSetSigns(this.sql, WORKER_TAGS.setsPerSummary),
      live: liveWorkers(this.sql, now - this.heartbeatMs, BLOCKLIST.liveIdsPerSummary),
    };
  }

  /**
   * The endpoint generation is deleted: open job-stop polls end with nothing, the storage is
   * wiped, and the object answers nothing from now on (a new generation names new objects).
   */
  async drop(ref: LivenessRef): Promise<void> {
    this.calls.set("drop", (this.calls.get("drop") ?? 0) + 1);
    this.ref ??= ref;
    this.dropped = true;
    this.stopWaiters.resolveAll([]);
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, LIVENESS_MIGRATIONS);
    this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('dropped', '1')");
  }

  // ---- load (admin) ----

  /** Calls served and rows written since the last reset or restart (null: never used, or dropped). */
  load(): LoadSnapshot | null {
    return this.ref === null || this.dropped ? null : meterOf(this).snapshot();
  }

  resetLoad(): LoadSnapshot | null {
    return this.ref === null || this.dropped ? null : meterOf(this).reset();
  }

  // ---- pruning ----

  private async armPrune(now: number): Promise<void> {
    if (this.dropped || now < this.pruneAt) return;
    const removed = pruneStops(this.sql, now) + pruneReleased(this.sql, now) + forgetSilentWorkers(this.sql, now);
    this.pruneAt = now + (removed >= 1000 ? 1000 : PRUNE_EVERY_MS);
    const wall = this.clock.toWall(this.pruneAt);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > wall) await this.ctx.storage.setAlarm(wall);
  }

  override async alarm(): Promise<void> {
    if (this.dropped) return;
    const now = this.clock.now();
    if (now >= this.pruneAt) await this.armPrune(now);
  }
}

// Every call a liveness shard serves is counted for the load report (the list names every public method).
meterCalls(LivenessObject, {
  ping: true,
  taking: true,
  takeStops: true,
  recycle: true,
  lastSeen: true,
  hold: true,
  list: true,
  live: true,
  counts: true,
  drop: true,
  alarm: true,
});
