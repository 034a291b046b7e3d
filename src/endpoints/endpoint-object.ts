/**
 * One Durable Object per endpoint: its config and keys (./endpoint-admin), shard 0 of the ready index (a ReadyQueue;
 * shards 1.. are ShardObjects), the relay that forwards between shards, the counters, and the
 * summaries its worker shards (liveness objects) tell it. The only job objects it calls are those
 * its takes claim (take-claims.ts, as every shard does); otherwise it answers with ids, and the
 * caller acts (SPEC §3).
 */
import { meterCalls, meteredSql, meterOf, type LoadSnapshot } from "../shared/load";
import { applyMigrations } from "../shared/migrations";
import { EndpointAdmin } from "./endpoint-admin";
import { buildHealth, type Health } from "./health";
import type { IndexEntry } from "../jobs/index-entry";
import { recentJobs, unfinishedJobIds, waitingJobIds, type RecentJob } from "./ready-index";
import { ENDPOINT_MIGRATIONS } from "./schema";
import { enterSequence, jobAhead } from "./sequences";
import { listJobs, type ListPage, type ListQuery } from "./job-listing";
import { recordWebhookOutcome } from "./endpoint-metrics";
import { readMetrics, sampleWorkers, type MetricsView } from "../metrics/buckets";
import type { ShardSummary } from "./liveness-object";
import { ReadyQueue, type QueueStats } from "./ready-queue";
import { Relay, type Hint, type Seeker } from "./relay";
import { deleteShards, mergedJobs, mergedStats, mergedWaiting, shardMetricRows } from "./shard-fanout";
import { shardCount, type QueueInfo, type SyncReply, type TakeAnswer, type TakeAsk } from "./shards";
import { liveMatching, liveNow, signSince, storeSummary, summarisedShards, summedCounts, type LiveMatching } from "./worker-summaries";
import type { WorkerCounts } from "./workers";

export type { QueueInfo, QueueReason, SyncReply } from "./shards";

export type { AuthResult, EndpointView, PutConfigResult } from "./endpoint-admin";

/** Jobs a deletion ends at once (the rest end when they next reach the endpoint). */
const DELETE_BATCH = 1000;

export class EndpointObject extends EndpointAdmin {
  protected readonly sql: SqlStorage;
  /** Shard 0 of the ready index: this endpoint's own jobs (and every job from before sharding). */
  protected readonly queue: ReadyQueue;
  /** Forwarding between shards: hints of ready jobs, polls of shards whose takes wait. */
  private readonly relay = new Relay();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Rows written are counted for the load report (in memory; see shared/load).
    this.sql = meteredSql(ctx.storage.sql, meterOf(this));
    this.queue = new ReadyQueue(this.sql, ctx.storage, env, this.clock, {
      shard: 0,
      config: () => this.config,
      paused: () => this.paused,
      workerCounts: () => this.workerCounts(),
      hint: async (count, fresh, shard = 0, needs = null) => this.relayHint(shard, count, fresh, needs),
      forwardPoll: async () => null,
      alive: async (since, tags) => signSince(this.sql, since, tags),
      liveWorkers: async (since, tags, fresh) =>
        fresh && this.config ? liveNow(this.env, this.config.id, this.config.generation, since, tags) : this.liveWorkers(since, tags),
      waitMs: () => Number(env.TAKE_WAIT_MS),
    });
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, ENDPOINT_MIGRATIONS);
      this.loadState();
    });
  }

  /**
   * Deletes the endpoint with its keys, index and shards. Returns the unfinished jobs the indexes
   * know (up to DELETE_BATCH) for the caller to end; any other job of this incarnation ends when
   * it next reaches its shard (its sync is answered `orphaned`).
   */
  async deleteEndpoint(): Promise<{ existed: boolean; jobs: string[]; generation: string | null }> {
    const config = this.config;
    const generation = config?.generation ?? null;
    const jobs = config ? unfinishedJobIds(this.sql, DELETE_BATCH) : [];
    if (config) jobs.push(...(await deleteShards(this.env, config, DELETE_BATCH)).slice(0, Math.max(0, DELETE_BATCH - jobs.length)));
    // Gone from here on: polls woken below, and any call while the storage is wiped, see no endpoint.
    this.config = null;
    this.queue.endWaiters();
    this.relay.endAll();
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, ENDPOINT_MIGRATIONS);
    this.loadState();
    return { existed: config !== null, jobs, generation };
  }

  // ---- the index (jobs → shard 0) ----

  /**
   * A job of shard 0 reports its newest state. Idempotent: older or repeated versions change
   * nothing. When a job of a sequence ends, the reply names the next one for the caller to release.
   */
  async sync(entry: IndexEntry): Promise<SyncReply> {
    if (!this.config || (entry.generation !== null && entry.generation !== this.config.generation)) return { release: [], orphaned: true };
    return this.queue.sync(entry);
  }

  /** A job's webhook delivery attempt ended: counted for metrics. */
  webhookOutcome(succeeded: boolean): void {
    recordWebhookOutcome(this.sql, succeeded, this.clock.now());
  }

  /**
   * Metrics from `from` to `to` (ms), in buckets of `bucketMs`, over every shard, and over the
   * whole window. `workers`: the workers by state now, merged from the worker shards by the caller.
   */
  async metrics(from: number, to: number, bucketMs: number, workers: WorkerCounts | null = null): Promise<{ total: MetricsView; buckets: MetricsView[] } | null> {
    if (!this.config) return null;
    const extra = await shardMetricRows(this.env, this.config, from, to, bucketMs);
    // The window's total and the current bucket show the workers as they are now.
    const current = workers ?? this.workerCounts();
    sampleWorkers(this.sql, this.clock.now(), () => current);
    const result = readMetrics(this.sql, from, to, bucketMs, extra);
    result.total.workers = current;
    const last = result.buckets.at(-1);
    if (last) last.workers = current;
    return result;
  }

  /** Workers by state from the worker shards' last summaries, with the throttled ones (see worker-summaries). */
  private workerCounts(): WorkerCounts {
    return summedCounts(this.sql, this.throttledWorkers().length);
  }

  /**
   * A worker shard's summary (see LivenessObject). Answers whether the shard's generation is
   * still this endpoint's: a shard of a deleted one drops itself.
   */
  workerShard(generation: string, shard: number, summary: ShardSummary): { current: boolean } {
    if (!this.config || generation !== this.config.generation) return { current: false };
    storeSummary(this.sql, shard, summary, this.clock.now());
    return { current: true };
  }

  /** Workers whose take waits now only because the concurrency limit is reached. */
  throttledWorkers(): string[] {
    return [...this.queue.throttled].filter((w) => this.queue.polling.has(w));
  }

  /**
   * What a merged worker read needs from here: the shards that have told a summary (a shard does
   * on its first sign of life; the others have no workers), and the throttled workers.
   */
  workerShards(): { shards: number[]; throttled: string[] } {
    return { shards: summarisedShards(this.sql), throttled: this.throttledWorkers() };
  }

  /** Every counter of the endpoint (jobs by outcome, webhook deliveries), over every shard. */
  async counters(): Promise<Record<string, number> | null> {
    return this.config ? (await mergedStats(this.env, this.config, this.queue.stats())).counters : null;
  }

  /**
   * One scrape's numbers in one call: jobs by state and every counter, and the metrics' total
   * over the window (in `bucketMs` buckets), each merged over every shard (null: no endpoint).
   */
  async scrape(from: number, to: number, bucketMs: number, workers: WorkerCounts): Promise<{ stats: QueueStats; total: MetricsView } | null> {
    if (!this.config) return null;
    const [stats, metrics] = await Promise.all([mergedStats(this.env, this.config, this.queue.stats()), this.metrics(from, to, bucketMs, workers)]);
    return metrics && { stats, total: metrics.total };
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
   * A worker asks shard 0 for up to `max` jobs, waiting up to `waitMs` for one here or for a
   * redirect to another shard with ready jobs (`skip`: shards it was sent to in vain). Jobs
   * ready at once are claimed here; jobs that came while it waited are offered for the caller to
   * claim (see ReadyQueue.take). The worker's liveness object,
   * not this one, notes the take as a sign of life and knows what the worker lost.
   */
  async take(ask: TakeAsk): Promise<TakeAnswer> {
    if (!this.isCurrent(ask.generation)) return { ids: [], depth: 0 };
    // A hint nobody took up yet sends this worker to that shard at once (nothing ready here).
    const hinted = shardCount(this.config!) > 1 && this.queue.depthFor(ask.tags ?? "", this.clock.now()) === 0 ? this.relay.takeHint(0, [{ tags: ask.tags ?? "", skip: ask.skip ?? [] }]) : null;
    if (hinted !== null) return { ...(await this.queue.take({ ...ask, waitMs: 0, skip: [], redirected: false })), redirect: hinted.shard };
    return this.queue.take(ask);
  }

  /**
   * Shard `shard` has ready jobs nobody waits for there, needing `needs` (tag sets; null: any
   * worker may take one; see Relay); true when a waiter was told at once.
   */
  hint(shard: number, count: number, generation: string | null = null, fresh = false, needs: string[] | null = null): boolean {
    return this.isCurrent(generation) && this.relayHint(shard, count, fresh, needs);
  }

  private relayHint(shard: number, count: number, fresh: boolean, needs: readonly string[] | null): boolean {
    return this.relay.hint(shard, count, fresh, needs, (h) => this.queue.redirectOne(h));
  }

  /** Shard `shard`'s takes (`seekers`) wait: answered with a shard that has ready jobs one of them may take, or null. */
  forwardPoll(shard: number, waitMs: number, generation: string | null = null, seekers: Seeker[] = []): Promise<Hint | null> {
    if (!this.isCurrent(generation)) return Promise.resolve(null);
    return this.relay.poll(shard, waitMs, seekers);
  }

  /** Re-dispatches after a failed send or a lapsed offer; repeats a missed fan-out; prunes when due. */
  override async alarm(): Promise<void> {
    if (!this.config) return;
    if (this.sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = 'fanout_due'").toArray()[0]?.value === 1) await this.fanOut();
    await this.queue.alarm();
  }

  /** The most recently changed jobs over every shard, with why the waiting ones wait (for the dashboard). */
  async jobs(limit: number): Promise<Array<RecentJob & { queue: QueueInfo | null }> | null> {
    const config = this.config;
    if (!config) return null;
    return mergedJobs(this.env, config, recentJobs(this.sql, limit), limit, (id) => this.queue.queueInfo(id));
  }

  /** Why a waiting job of shard 0 waits, and roughly where it stands. */
  queueInfo(jobId: string): Promise<QueueInfo> {
    return this.queue.queueInfo(jobId);
  }

  /**
   * Has any worker shown a sign of life since `since` (a shard's `queue.reason` asks): a take poll
   * open here, or a worker shard's latest sign (lagging by up to LIVENESS.flushMs; README "Worker liveness").
   */
  /** The live workers that may take a job requiring `tags`, by id, from the worker shards' summaries (blocklists: ReadyQueue.sync). */
  liveWorkers(since: number, tags: string): LiveMatching {
    return liveMatching(this.sql, since, tags);
  }

  workersAlive(since: number, tags?: string): boolean {
    if (tags !== undefined && tags !== "") return this.queue.polling.matches(tags) || signSince(this.sql, since, tags);
    return this.queue.polling.size > 0 || signSince(this.sql, since);
  }

  /**
   * Is the endpoint there, in the incarnation the caller was authorized against (null: any)? A
   * worker's long-poll loop that outlives a delete (and a re-creation) gets nothing more.
   */
  private isCurrent(generation: string | null): boolean {
    return this.config !== null && (generation === null || generation === this.config.generation);
  }

  /** Ids of jobs waiting in the queue, oldest first per shard (for purge-queue), from every shard. */
  async waitingJobs(limit: number): Promise<string[]> {
    const own = waitingJobIds(this.sql, limit);
    return this.config ? mergedWaiting(this.env, this.config, own, limit) : own;
  }

  /** Shard 0's part of a request listing (job-listing.ts); null: no such endpoint incarnation. */
  listJobs(generation: string, query: ListQuery): ListPage | null {
    return this.isCurrent(generation) ? listJobs(this.sql, query) : null;
  }

  /** `workers`: the workers by state now, merged from the worker shards by the caller. */
  async health(workers: WorkerCounts | null = null): Promise<Health | null> {
    if (!this.config) return null;
    const stats = await mergedStats(this.env, this.config, this.queue.stats());
    return buildHealth(stats.byState, stats.counters, workers ?? this.workerCounts());
  }

  // ---- load (admin) ----

  /** Calls served and rows written since the last reset or restart (null: no endpoint). */
  load(): LoadSnapshot | null {
    return this.config ? meterOf(this).snapshot() : null;
  }

  /** Which other objects serve this endpoint, for its load report (not itself a counted call): worker shards, index shards. */
  loadPlan(): { generation: string; workerShards: number[]; shards: number } | null {
    if (!this.config) return null;
    return { generation: this.config.generation, workerShards: summarisedShards(this.sql), shards: shardCount(this.config) };
  }

  resetLoad(): LoadSnapshot | null {
    return this.config ? meterOf(this).reset() : null;
  }
}

// Every call an endpoint serves is counted by method (the list must name every public method).
meterCalls(EndpointObject, {
  getConfig: true,
  flowKeys: true,
  flowKey: true,
  putFlowKey: true,
  deleteFlowKey: true,
  scrape: true,
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
  shardState: true,
  hint: true,
  forwardPoll: true,
  workersAlive: true,
  liveWorkers: true,
  waitingJobs: true,
  listJobs: true,
  health: true,
});
