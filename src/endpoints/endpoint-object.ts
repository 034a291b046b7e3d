/**
 * One Durable Object per endpoint: its config and keys, the ready index that takes draw from,
 * long-poll waiters for takes, the counters, and the summaries its worker shards (liveness
 * objects) tell it. It never calls a job object: it answers with ids, and the caller acts (SPEC §3).
 */
import { DurableObject } from "cloudflare:workers";
import { isRunning } from "../jobs/states";
import { Clock } from "../shared/clock";
import { meterCalls, meteredSql, meterOf, type LoadSnapshot } from "../shared/load";
import { MEMORY_BOUNDS, QUEUE_POSITION } from "../shared/limits";
import { applyMigrations } from "../shared/migrations";
import { ConfigError, newWebhookSecret, resolveConfig, rotation, type EndpointConfig, type EndpointConfigInput } from "./config";
import { buildHealth, type Health } from "./health";
import type { IndexEntry } from "../jobs/index-entry";
import { findKey, newKey, sha256Hex, type KeyScope, type StoredKey } from "./keys";
import {
  applyEntry,
  countByState,
  offerJobs,
  type Offer,
  pruneTombstones,
  queuePosition,
  dispatchErrorOf,
  readCounters,
  recentJobs,
  type RecentJob,
  slotsInUse,
  unfinishedJobIds,
  waitingJobIds,
} from "./ready-index";
import { ENDPOINT_MIGRATIONS } from "./schema";
import { enterSequence, jobAhead, memberChanged } from "./sequences";
import { Waiters } from "../shared/waiters";
import { sendReady } from "./dispatcher";
import { recordColdStarts, recordEntry, recordWebhookOutcome } from "./endpoint-metrics";
import { readMetrics, sampleWorkers, type MetricsView } from "../metrics/buckets";
import type { ShardSummary } from "./liveness-object";
import { countStates, type WorkerCounts } from "./workers";

export type AuthResult =
  | { ok: true; config: EndpointConfig }
  | { ok: false; code: "NO_ENDPOINT" | "UNAUTHORIZED" | "FORBIDDEN" };

export type PutConfigResult = { ok: true; config: EndpointView; created: boolean } | { ok: false; message: string };
type StoreResult = { ok: true; config: EndpointConfig; created: boolean } | { ok: false; message: string };

/** What a take hands back: jobs offered to the worker (its liveness object knows what it lost). */
export interface TakeOffer {
  ids: string[];
}

/** The stored config plus the endpoint's run state, as the admin API shows it. */
export type EndpointView = EndpointConfig & { paused: boolean };

/** Why a waiting job waits (SPEC §5 "why it waits"). */
export type QueueReason = "no_workers" | "all_workers_busy" | "concurrency_limit" | "endpoint_paused" | "sequenced_behind" | "dispatch_retrying";

export interface QueueInfo {
  /** 1 + ready jobs ahead in take order; approximate, as the index trails the jobs by a moment. */
  position: number | null;
  /** The job is at least `position` in line (counted exactly only below QUEUE_POSITION.exactBelow). */
  positionAtLeast?: true;
  reason: QueueReason;
  ahead?: string;
  /** The last push error, while a dispatch is being retried. */
  lastError?: string;
}

/** The endpoint's answer to a job's sync: jobs the caller should release (next in a sequence). */
export interface SyncReply {
  release: string[];
  /** The job's endpoint incarnation is gone (deleted, perhaps re-created): the job must end. */
  orphaned?: true;
}

/** How often the endpoint prunes old index rows. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** Jobs a deletion ends at once (the rest end when they next reach the endpoint). */
const DELETE_BATCH = 1000;

export class EndpointObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private config: EndpointConfig | null = null;
  private paused = false;
  /** Workers whose take waits only because the concurrency limit is reached. */
  private readonly throttled = new Set<string>();
  private keys: StoredKey[] = [];
  /** Takes waiting for a ready job, in arrival order. */
  private readonly takeWaiters = new Waiters<{ workerId: string; max: number }, string[]>();
  /** Workers with a take long-poll open right now: alive, and perhaps throttled. */
  private readonly polling = new Map<string, number>();
  /** When the next prune is due (in memory: a new instance prunes on its first sync). */
  private pruneAt = 0;
  /** The time this endpoint acts on; frozen only by tests. */
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Rows written are counted for the load report (in memory; see shared/load).
    this.sql = meteredSql(ctx.storage.sql, meterOf(this));
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, ENDPOINT_MIGRATIONS);
      this.loadState();
    });
  }

  private loadState(): void {
    const row = this.sql.exec<{ body: string }>("SELECT body FROM config").toArray()[0];
    this.config = row
      ? ({ retryOnError: false, previousWebhookSecret: null, previousSecretUntil: null, generation: "", ...JSON.parse(row.body) } as EndpointConfig)
      : null;
    this.keys = this.sql
      .exec<{ id: string; scope: string; digest: string; prefix: string; created_at: string }>("SELECT * FROM api_key")
      .toArray()
      .map((r) => ({ id: r.id, scope: r.scope as KeyScope, digest: r.digest, prefix: r.prefix, createdAt: r.created_at }));
    this.paused = this.sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = 'paused'").toArray()[0]?.value === 1;
  }

  // ---- config and keys (admin) ----

  getConfig(): EndpointView | null {
    return this.view();
  }

  /** getConfig for this object's own use: not counted as a call served. */
  private view(): EndpointView | null {
    return this.config ? { ...this.config, paused: this.paused } : null;
  }

  /** Pauses or resumes dispatch. A paused endpoint accepts submits; running jobs finish. */
  async setPaused(paused: boolean): Promise<EndpointView | null> {
    if (!this.config) return null;
    this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('paused', ?)", paused ? 1 : 0);
    this.paused = paused;
    if (!paused) {
      this.wakeTakeWaiters(this.clock.now());
      await this.dispatchReady(this.clock.now());
    }
    return this.view();
  }

  async putConfig(id: string, input: EndpointConfigInput, localDev: boolean): Promise<PutConfigResult> {
    const result = this.storeConfig(id, input, localDev);
    if (result.ok) {
      // A raised concurrency limit or a switch to push frees work at once.
      this.wakeTakeWaiters(this.clock.now());
      await this.dispatchReady(this.clock.now());
    }
    return result.ok ? { ...result, config: { ...result.config, paused: this.paused } } : result;
  }

  private storeConfig(id: string, input: EndpointConfigInput, localDev: boolean): StoreResult {
    try {
      const config = resolveConfig(id, input, this.config, localDev, new Date());
      const created = this.config === null;
      this.sql.exec("INSERT OR REPLACE INTO config (one, body) VALUES (1, ?)", JSON.stringify(config));
      this.config = config;
      return { ok: true, config, created };
    } catch (e) {
      if (e instanceof ConfigError) return { ok: false, message: e.message };
      throw e;
    }
  }

  /**
   * Deletes the endpoint with its keys and index. Returns the unfinished jobs the index knows
   * (up to DELETE_BATCH) for the caller to end; any other job of this incarnation ends when it
   * next reaches the endpoint (its sync is answered `orphaned`).
   */
  async deleteEndpoint(): Promise<{ existed: boolean; jobs: string[]; generation: string | null }> {
    const existed = this.config !== null;
    const generation = this.config?.generation ?? null;
    const jobs = existed ? unfinishedJobIds(this.sql, DELETE_BATCH) : [];
    // Gone from here on: polls woken below, and any call while the storage is wiped, see no endpoint.
    this.config = null;
    this.takeWaiters.resolveAll([]);
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, ENDPOINT_MIGRATIONS);
    this.loadState();
    return { existed, jobs, generation };
  }

  async createKey(scope: KeyScope): Promise<{ id: string; key: string; scope: KeyScope; createdAt: string } | null> {
    if (!this.config) return null;
    const { id, key } = newKey(scope);
    const stored: StoredKey = {
      id,
      scope,
      digest: await sha256Hex(key),
      prefix: key.slice(0, 8),
      createdAt: new Date().toISOString(),
    };
    this.sql.exec(
      "INSERT INTO api_key (id, scope, digest, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
      stored.id,
      stored.scope,
      stored.digest,
      stored.prefix,
      stored.createdAt,
    );
    this.keys.push(stored);
    return { id, key, scope, createdAt: stored.createdAt };
  }

  listKeys(): Array<Omit<StoredKey, "digest">> {
    return this.keys.map(({ digest: _digest, ...rest }) => rest);
  }

  deleteKey(keyId: string): boolean {
    const before = this.keys.length;
    this.sql.exec("DELETE FROM api_key WHERE id = ?", keyId);
    this.keys = this.keys.filter((k) => k.id !== keyId);
    return this.keys.length < before;
  }

  /**
   * Checks a caller: the admin (already verified by the edge) or a key of this endpoint with the
   * scope the route needs. Returns the config so the edge needs no second call.
   */
  authorize(keyDigest: string | null, isAdmin: boolean, scope: KeyScope): AuthResult {
    if (!this.config) return { ok: false, code: "NO_ENDPOINT" };
    if (isAdmin) return { ok: true, config: this.config };
    if (keyDigest === null) return { ok: false, code: "UNAUTHORIZED" };
    const key = findKey(this.keys, keyDigest);
    if (!key) return { ok: false, code: "UNAUTHORIZED" };
    if (key.scope !== scope) return { ok: false, code: "FORBIDDEN" };
    return { ok: true, config: this.config };
  }

  // ---- the index (jobs → endpoint) ----

  /**
   * A job reports its newest state. Idempotent: older or repeated versions change nothing.
   * When a job of a sequence ends, the reply names the next one for the caller to release.
   */
  async sync(entry: IndexEntry): Promise<SyncReply> {
    const reply: SyncReply = { release: [] };
    if (!this.config || (entry.generation !== null && entry.generation !== this.config.generation)) return { ...reply, orphaned: true };
    const now = this.clock.now();
    const r = applyEntry(this.sql, entry, now);
    if (!r.applied) return reply;
    try {
      recordEntry(this.sql, entry, r.counted, now, () => this.workerCounts());
    } catch (e) {
      // Swallowed on purpose (and logged): a metrics fault must never stop the index.
      console.error(`endpoint ${entry.jobId}: metrics not recorded`, e);
    }
    if (entry.sequenceKey !== null) {
      const next = memberChanged(this.sql, entry.sequenceKey, entry.jobId, entry.state);
      if (next !== null) reply.release.push(next);
    }
    const freedSlot = r.previous !== null && isRunning(r.previous) && !isRunning(entry.state);
    if (r.ready || freedSlot) {
      this.wakeTakeWaiters(now);
      await this.dispatchReady(now);
    }
    if (now >= this.pruneAt) await this.prune(now);
    return reply;
  }

  /**
   * Drops old terminal index rows, a bounded batch, and schedules the next prune by alarm: by
   * time, however many requests the object serves.
   */
  private async prune(now: number): Promise<void> {
    const removed = pruneTombstones(this.sql, now);
    // A full batch means more is left: come back soon; otherwise at the usual interval.
    this.pruneAt = now + (removed >= 1000 ? 1000 : PRUNE_EVERY_MS);
    await this.armAlarm(this.pruneAt);
  }

  /** Sets the alarm to `at` unless one is already set for earlier. */
  private async armAlarm(at: number): Promise<void> {
    const wall = this.clock.toWall(at);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > wall) await this.ctx.storage.setAlarm(wall);
  }

  /** A job's webhook delivery attempt ended: counted for metrics. */
  webhookOutcome(succeeded: boolean): void {
    recordWebhookOutcome(this.sql, succeeded, this.clock.now());
  }

  /**
   * Metrics from `from` to `to` (ms), in buckets of `bucketMs`, and over the whole window.
   * `workers`: the workers by state now, merged from the worker shards by the caller.
   */
  metrics(from: number, to: number, bucketMs: number, workers: WorkerCounts | null = null): { total: MetricsView; buckets: MetricsView[] } | null {
    if (!this.config) return null;
    // The window's total and the current bucket show the workers as they are now.
    const current = workers ?? this.workerCounts();
    sampleWorkers(this.sql, this.clock.now(), () => current);
    const result = readMetrics(this.sql, from, to, bucketMs);
    result.total.workers = current;
    const last = result.buckets.at(-1);
    if (last) last.workers = current;
    return result;
  }

  /**
   * Workers by state from the shards' last summaries (they lag by up to LIVENESS.flushMs); the
   * workers held back by the concurrency limit count throttled, taken from the idle ones.
   */
  private workerCounts(): WorkerCounts {
    const counts = countStates([]);
    for (const r of this.sql.exec<{ counts: string }>("SELECT counts FROM worker_shard")) {
      for (const [state, n] of Object.entries(JSON.parse(r.counts) as WorkerCounts)) counts[state as keyof WorkerCounts] += n;
    }
    const throttled = Math.min(counts.idle, this.throttledWorkers().length);
    counts.idle -= throttled;
    counts.throttled += throttled;
    return counts;
  }

  /**
   * A worker shard's summary (see LivenessObject). Answers whether the shard's generation is
   * still this endpoint's: a shard of a deleted one drops itself.
   */
  workerShard(generation: string, shard: number, summary: ShardSummary): { current: boolean } {
    if (!this.config || generation !== this.config.generation) return { current: false };
    const now = this.clock.now();
    this.sql.exec(
      "INSERT OR REPLACE INTO worker_shard (shard, counts, last_sign, at) VALUES (?, ?, ?, ?)",
      shard,
      JSON.stringify(summary.counts),
      summary.lastSign,
      now,
    );
    recordColdStarts(this.sql, summary.coldStarts, now);
    return { current: true };
  }

  /** Workers whose take waits now only because the concurrency limit is reached. */
  throttledWorkers(): string[] {
    return [...this.throttled].filter((w) => this.polling.has(w));
  }

  /**
   * What a merged worker read needs from here: the shards that have told a summary (a shard does
   * on its first sign of life; the others have no workers), and the throttled workers.
   */
  workerShards(): { shards: number[]; throttled: string[] } {
    const shards = this.sql.exec<{ shard: number }>("SELECT shard FROM worker_shard ORDER BY shard").toArray().map((r) => r.shard);
    return { shards, throttled: this.throttledWorkers() };
  }

  /** Every counter of the endpoint (jobs by outcome, webhook deliveries). */
  counters(): Record<string, number> | null {
    return this.config ? readCounters(this.sql) : null;
  }

  /** Generates a new webhook secret; the old one is still signed with for a day. */
  rotateSecret(): EndpointView | null {
    if (!this.config) return null;
    const config = { ...this.config, ...rotation(this.config, newWebhookSecret(), new Date(this.clock.now())) };
    this.sql.exec("INSERT OR REPLACE INTO config (one, body) VALUES (1, ?)", JSON.stringify(config));
    this.config = config;
    return this.view();
  }

  /** A job with a sequence key joins its sequence: returns the job ahead of it, or null. */
  enterSequence(key: string, jobId: string): string | null {
    return enterSequence(this.sql, key, jobId);
  }

  /** The job ahead of `jobId` in its sequence, or null when its turn has come. */
  sequenceAhead(jobId: string): string | null {
    return jobAhead(this.sql, jobId);
  }

  // ---- workers ----

  /**
   * A worker asks for up to `max` jobs, waiting up to `waitMs` for one to arrive. Returns offered
   * job ids (the caller claims each from its job object). The worker's liveness object, not this
   * one, notes the take as a sign of life and knows what the worker lost.
   */
  async take(workerId: string, max: number, waitMs: number, generation: string | null = null): Promise<TakeOffer> {
    if (!this.isCurrent(generation)) return { ids: [] };
    const now = this.clock.now();
    let ids = this.offer(workerId, max, now).ids;
    if (ids.length === 0 && waitMs > 0) {
      ids = await this.whilePolling(workerId, this.takeWaiters.wait({ workerId, max }, waitMs, []));
    }
    return { ids };
  }

  /**
   * Serves parked takes, oldest first, until an offer comes back empty: the waiters behind would
   * find the same nothing. Unless that offer passed over jobs only because this worker failed
   * them — another worker may take those, so the next waiter is tried (at most once per waiter).
   */
  private wakeTakeWaiters(now: number): void {
    let more = true;
    this.takeWaiters.serve((w) => {
      if (!more) return undefined;
      const offer = this.offer(w.workerId, w.max, now);
      if (offer.ids.length === 0 && offer.passedOver === 0) more = false;
      return offer.ids.length > 0 ? offer.ids : undefined;
    });
  }

  /** Push mode: hands ready jobs within capacity to the dispatch queue (see dispatcher). */
  private async dispatchReady(now: number): Promise<void> {
    if (!this.config || this.config.mode !== "push") return;
    const again = await sendReady(this.sql, this.env.DISPATCH, this.config.id, () => this.capacity(now), now);
    if (again !== null) await this.armAlarm(again);
  }

  /** Re-dispatches after a failed send or a lapsed offer; prunes when due. */
  override async alarm(): Promise<void> {
    if (!this.config) return;
    const now = this.clock.now();
    await this.dispatchReady(now);
    if (now >= this.pruneAt) await this.prune(now);
    else await this.armAlarm(this.pruneAt);
  }

  /** How many more jobs may start now: none while paused, and the concurrency limit's free slots. */
  private capacity(now: number): number {
    if (this.paused || !this.config) return 0;
    if (this.config.concurrency === null) return Infinity;
    return Math.max(0, this.config.concurrency - slotsInUse(this.sql, now));
  }

  /** Offers up to `max` ready jobs within the endpoint's capacity; notes workers held back by the limit. */
  private offer(workerId: string, max: number, now: number): Offer {
    if (this.config?.mode === "push") return { ids: [], passedOver: 0 }; // push endpoints hand jobs out through the dispatch queue only
    const room = this.capacity(now);
    if (room <= 0) {
      if (!this.paused) this.throttled.add(workerId);
      return { ids: [], passedOver: 0 };
    }
    this.throttled.delete(workerId);
    // A batch answer holds at most MEMORY_BOUNDS.batchInputBytes of inputs in the isolate.
    return offerJobs(this.sql, workerId, Math.min(max, room), now, undefined, MEMORY_BOUNDS.batchInputBytes);
  }

  /** The most recently changed jobs, with why the waiting ones wait (for the dashboard). */
  jobs(limit: number): Array<RecentJob & { queue: QueueInfo | null }> | null {
    if (!this.config) return null;
    return recentJobs(this.sql, limit).map((j) => ({
      ...j,
      queue: j.state === "IN_QUEUE" || j.state === "SEQUENCED" ? this.queueInfo(j.jobId) : null,
    }));
  }

  /** Why a waiting job waits, and roughly where it stands. */
  queueInfo(jobId: string): QueueInfo {
    const now = this.clock.now();
    const ahead = jobAhead(this.sql, jobId);
    if (ahead !== null) return { position: null, reason: "sequenced_behind", ahead };
    const position = queuePosition(this.sql, jobId);
    // Far back in line, the position is a bound (a status read counts fewer than exactBelow rows).
    const at = position !== null && position >= QUEUE_POSITION.exactBelow ? { position, positionAtLeast: true as const } : { position };
    if (this.paused) return { ...at, reason: "endpoint_paused" };
    const dispatchError = dispatchErrorOf(this.sql, jobId);
    if (dispatchError !== undefined) return { ...at, reason: "dispatch_retrying", ...(dispatchError ? { lastError: dispatchError } : {}) };
    if (this.config?.concurrency != null && this.capacity(now) === 0) return { ...at, reason: "concurrency_limit" };
    // The shards' latest signs of life lag by up to LIVENESS.flushMs (README "Worker liveness").
    const since = now - (this.config?.heartbeatTimeout ?? 0);
    const alive = this.polling.size > 0 || this.sql.exec("SELECT 1 FROM worker_shard WHERE last_sign >= ? LIMIT 1", since).toArray().length > 0;
    return { ...at, reason: alive ? "all_workers_busy" : "no_workers" };
  }

  /**
   * Is the endpoint there, in the incarnation the caller was authorized against (null: any)? A
   * worker's long-poll loop that outlives a delete (and a re-creation) gets nothing more.
   */
  private isCurrent(generation: string | null): boolean {
    return this.config !== null && (generation === null || generation === this.config.generation);
  }

  /** Keeps a worker counted alive (and perhaps throttled) while one of its take polls is open. */
  private async whilePolling<T>(workerId: string, p: Promise<T>): Promise<T> {
    this.polling.set(workerId, (this.polling.get(workerId) ?? 0) + 1);
    try {
      return await p;
    } finally {
      const n = (this.polling.get(workerId) ?? 1) - 1;
      if (n <= 0) this.polling.delete(workerId);
      else this.polling.set(workerId, n);
    }
  }

  /** Ids of jobs waiting in the queue, oldest first (for purge-queue). */
  waitingJobs(limit: number): string[] {
    return waitingJobIds(this.sql, limit);
  }

  /** `workers`: the workers by state now, merged from the worker shards by the caller. */
  health(workers: WorkerCounts | null = null): Health | null {
    if (!this.config) return null;
    return buildHealth(countByState(this.sql), readCounters(this.sql), workers ?? this.workerCounts());
  }

  // ---- load (admin) ----

  /** Calls served and rows written since the last reset or restart (null: no endpoint). */
  load(): LoadSnapshot | null {
    return this.config ? meterOf(this).snapshot() : null;
  }

  /** Which other objects serve this endpoint, for its load report (not itself a counted call). */
  loadPlan(): { generation: string; workerShards: number[] } | null {
    if (!this.config) return null;
    const shards = this.sql.exec<{ shard: number }>("SELECT shard FROM worker_shard ORDER BY shard").toArray().map((r) => r.shard);
    return { generation: this.config.generation, workerShards: shards };
  }

  resetLoad(): LoadSnapshot | null {
    return this.config ? meterOf(this).reset() : null;
  }
}

// Every call an endpoint serves is counted by method (the list must name every public method).
meterCalls(EndpointObject, {
  getConfig: true,
  setPaused: true,
  putConfig: true,
  deleteEndpoint: true,
  createKey: true,
  listKeys: true,
  deleteKey: true,
  authorize: true,
  sync: true,
  webhookOutcome: true,
  metrics: true,
  counters: true,
  rotateSecret: true,
  enterSequence: true,
  sequenceAhead: true,
  take: true,
  alarm: true,
  jobs: true,
  queueInfo: true,
  workerShard: true,
  throttledWorkers: true,
  workerShards: true,
  waitingJobs: true,
  health: true,
});
