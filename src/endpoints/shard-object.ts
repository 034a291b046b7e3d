/**
 * Shards 1.. of an endpoint's ready index (issue 12, item 3): one Durable Object each, named
 * by (endpoint, generation, shard). A shard holds its jobs' index rows, takes' waiters, sequences
 * placed on it, counters and metrics (a ReadyQueue, like the endpoint object's shard 0); the
 * endpoint object keeps config, keys and the relay between shards. A shard learns the config from
 * the endpoint object's fan-out on every change, or asks it once when it has none. It knows
 * nothing of worker liveness (jobs tell liveness objects directly).
 */
import { DurableObject } from "cloudflare:workers";
import type { IndexEntry } from "../jobs/index-entry";
import { metricRows, type MetricRows } from "../metrics/buckets";
import { Clock } from "../shared/clock";
import { meterCalls, meteredSql, meterOf, type LoadSnapshot } from "../shared/load";
import { applyMigrations } from "../shared/migrations";
import type { EndpointConfig } from "./config";
import { removeRule, replaceRules, setFlowDefaults, writeRule, type FlowKeyRule } from "./flow-rules";
import { enterSequence, jobAhead } from "./sequences";
import { listJobs, type ListPage, type ListQuery } from "./job-listing";
import { recentJobs, unfinishedJobIds, waitingJobIds, type RecentJob } from "./ready-index";
import { ReadyQueue, type QueueStats } from "./ready-queue";
import { liveNow } from "./worker-summaries";
import { ENDPOINT_MIGRATIONS } from "./schema";
import { shardCount, type QueueInfo, type ShardAddr, type SyncReply, type TakeAnswer, type TakeAsk } from "./shards";

/** What the endpoint object tells its shards: the config and the run state. */
export interface ShardState {
  config: EndpointConfig;
  paused: boolean;
  /** The endpoint's flow-key overrides, all of them (absent: unchanged). */
  flowRules?: FlowKeyRule[];
}

export class ShardObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private config: EndpointConfig | null = null;
  private paused = false;
  private addr: ShardAddr | null = null;
  private readonly queue: ReadyQueue;
  readonly clock = new Clock();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Rows written are counted for the load report (in memory; see shared/load).
    this.sql = meteredSql(ctx.storage.sql, meterOf(this));
    const owner = this;
    this.queue = new ReadyQueue(this.sql, ctx.storage, env, this.clock, {
      get shard() {
        return owner.addr?.shard ?? -1;
      },
      config: () => this.config,
      paused: () => this.paused,
      workerCounts: null,
      hint: (count, fresh, shard, needs) => this.root().hint(shard ?? this.addr!.shard, count, this.addr!.generation, fresh, needs === undefined ? null : needs && [...needs]),
      forwardPoll: (waitMs, seekers) => this.root().forwardPoll(this.addr!.shard, waitMs, this.addr!.generation, seekers),
      alive: (since, tags) => this.root().workersAlive(since, tags),
      // A job about to fail asks the worker shards directly (not through the endpoint object).
      liveWorkers: (since, tags, fresh) =>
        fresh ? liveNow(env, this.addr!.endpointId, this.addr!.generation, since, tags) : this.root().liveWorkers(since, tags),
      waitMs: () => Number(env.TAKE_WAIT_MS),
    });
    ctx.blockConcurrencyWhile(async () => {
      // The endpoint migrations: the same tables and partial indexes (INDEXED BY names) as shard 0.
      applyMigrations(ctx.storage, ENDPOINT_MIGRATIONS);
      const row = this.sql.exec<{ body: string }>("SELECT body FROM config").toArray()[0];
      this.config = row ? (JSON.parse(row.body) as EndpointConfig) : null;
      this.paused = this.sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = 'paused'").toArray()[0]?.value === 1;
      const shard = this.sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = 'shard'").toArray()[0]?.value;
      if (this.config && shard !== undefined) this.addr = { endpointId: this.config.id, generation: this.config.generation, shard };
    });
  }

  private root() {
    return this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(this.addr!.endpointId));
  }

  /** The endpoint object's fan-out: the config and run state after a change. */
  async setState(addr: ShardAddr, state: ShardState): Promise<void> {
    if (state.config.generation !== addr.generation) return;
    this.store(addr, state);
    await this.queue.readyChanged(this.clock.now());
  }

  private store(addr: ShardAddr, state: ShardState): void {
    this.addr = addr;
    this.sql.exec("INSERT OR REPLACE INTO config (one, body) VALUES (1, ?)", JSON.stringify(state.config));
    this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('paused', ?)", state.paused ? 1 : 0);
    this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('shard', ?)", addr.shard);
    this.config = state.config;
    this.paused = state.paused;
    setFlowDefaults(this.sql, state.config);
    if (state.flowRules !== undefined) replaceRules(this.sql, state.flowRules);
  }

  /** The endpoint object's word of one flow-key override (null: removed); the key's jobs here follow it at once. */
  async setFlowRule(addr: ShardAddr, key: string, rule: FlowKeyRule | null): Promise<void> {
    if (!(await this.ready(addr))) return;
    if (rule === null) removeRule(this.sql, key);
    else writeRule(this.sql, rule);
    await this.queue.readyChanged(this.clock.now());
  }

  /**
   * Is this shard's endpoint incarnation there? A shard that was never told asks the endpoint
   * object once; a deleted (or re-created) endpoint answers with another generation or none.
   */
  private async ready(addr: ShardAddr): Promise<boolean> {
    if (this.config) return this.config.generation === addr.generation;
    this.addr = addr;
    const state = await this.root().shardState();
    if (!state || state.config.generation !== addr.generation || addr.shard >= shardCount(state.config)) return false;
    this.store(addr, state);
    return true;
  }

  private current(addr: ShardAddr): boolean {
    return this.config !== null && this.config.generation === addr.generation;
  }

  /** The endpoint was deleted: this shard's rows go; waiting takes end. Returns its unfinished jobs (up to `limit`). */
  async deleteShard(addr: ShardAddr, limit: number): Promise<string[]> {
    if (!this.current(addr)) return [];
    const jobs = unfinishedJobIds(this.sql, limit);
    this.config = null;
    this.queue.endWaiters();
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, ENDPOINT_MIGRATIONS);
    return jobs;
  }

  async sync(addr: ShardAddr, entry: IndexEntry): Promise<SyncReply> {
    if (!(await this.ready(addr)) || entry.generation !== addr.generation) return { release: [], orphaned: true };
    return this.queue.sync(entry);
  }

  async take(addr: ShardAddr, ask: TakeAsk): Promise<TakeAnswer> {
    if (!(await this.ready(addr)) || (ask.generation !== null && ask.generation !== addr.generation)) return { ids: [], depth: 0 };
    return this.queue.take(ask);
  }

  async queueInfo(addr: ShardAddr, jobId: string): Promise<QueueInfo> {
    await this.ready(addr);
    return this.queue.queueInfo(jobId);
  }

  async enterSequence(addr: ShardAddr, key: string, jobId: string): Promise<string | null> {
    await this.ready(addr);
    return enterSequence(this.sql, key, jobId);
  }

  async sequenceAhead(addr: ShardAddr, jobId: string): Promise<string | null> {
    await this.ready(addr);
    return jobAhead(this.sql, jobId);
  }

  // ---- reads the endpoint object merges ----

  stats(addr: ShardAddr): QueueStats | null {
    return this.current(addr) ? this.queue.stats() : null;
  }

  metricRows(addr: ShardAddr, from: number, to: number, bucketMs: number): MetricRows | null {
    return this.current(addr) ? metricRows(this.sql, from, to, bucketMs) : null;
  }

  recent(addr: ShardAddr, limit: number): RecentJob[] {
    return this.current(addr) ? recentJobs(this.sql, limit) : [];
  }

  waitingJobs(addr: ShardAddr, limit: number): string[] {
    return this.current(addr) ? waitingJobIds(this.sql, limit) : [];
  }

  /** This shard's part of a request listing (job-listing.ts); a shard never told of its endpoint holds no jobs. */
  listJobs(addr: ShardAddr, query: ListQuery): ListPage {
    return this.current(addr) ? listJobs(this.sql, query) : { jobs: [], reached: null };
  }

  override async alarm(): Promise<void> {
    await this.queue.alarm();
  }

  // ---- load (admin) ----

  /** Calls served and rows written since the last reset or restart (null: never told of its endpoint). */
  load(): LoadSnapshot | null {
    return this.config ? meterOf(this).snapshot() : null;
  }

  resetLoad(): LoadSnapshot | null {
    return this.config ? meterOf(this).reset() : null;
  }
}

// Every call a shard serves is counted by method (the list must name every public method).
meterCalls(ShardObject, {
  setState: true,
  setFlowRule: true,
  deleteShard: true,
  sync: true,
  take: true,
  queueInfo: true,
  enterSequence: true,
  sequenceAhead: true,
  stats: true,
  metricRows: true,
  recent: true,
  waitingJobs: true,
  listJobs: true,
  alarm: true,
});
