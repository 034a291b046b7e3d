/**
 * One Durable Object per endpoint: its config and keys, the ready index that takes draw from,
 * long-poll waiters, the worker table and the counters. It never calls a job object: it answers
 * with ids, and the caller acts (SPEC §3).
 */
import { DurableObject } from "cloudflare:workers";
import { applyMigrations } from "../shared/migrations";
import { ConfigError, resolveConfig, type EndpointConfig, type EndpointConfigInput } from "./config";
import { buildHealth, type Health, type WorkerSeen } from "./health";
import type { IndexEntry } from "./index-entry";
import { findKey, newKey, sha256Hex, type KeyScope, type StoredKey } from "./keys";
import {
  applyEntry,
  busyWorkers,
  countByState,
  offerReady,
  pruneTombstones,
  readCounters,
  waitingJobIds,
} from "./ready-index";
import { ENDPOINT_MIGRATIONS } from "./schema";

/** A worker silent for longer than this is counted unhealthy; after FORGET_MS it is forgotten. */
const WORKER_ALIVE_MS = 90_000;
const FORGET_MS = 60 * 60 * 1000;

export type AuthResult =
  | { ok: true; config: EndpointConfig }
  | { ok: false; code: "NO_ENDPOINT" | "UNAUTHORIZED" | "FORBIDDEN" };

export type PutConfigResult = { ok: true; config: EndpointConfig; created: boolean } | { ok: false; message: string };

interface Waiter {
  max: number;
  resolve: (ids: string[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class EndpointObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private config: EndpointConfig | null = null;
  private keys: StoredKey[] = [];
  private waiters: Waiter[] = [];
  private syncsSincePrune = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, ENDPOINT_MIGRATIONS);
      this.loadState();
    });
  }

  private loadState(): void {
    const row = this.sql.exec<{ body: string }>("SELECT body FROM config").toArray()[0];
    this.config = row ? (JSON.parse(row.body) as EndpointConfig) : null;
    this.keys = this.sql
      .exec<{ id: string; scope: string; digest: string; prefix: string; created_at: string }>("SELECT * FROM api_key")
      .toArray()
      .map((r) => ({ id: r.id, scope: r.scope as KeyScope, digest: r.digest, prefix: r.prefix, createdAt: r.created_at }));
  }

  // ---- config and keys (admin) ----

  getConfig(): EndpointConfig | null {
    return this.config;
  }

  putConfig(id: string, input: EndpointConfigInput, localDev: boolean): PutConfigResult {
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

  /** Deletes the endpoint with its keys and index. Jobs still alive finish on their own deadlines. */
  async deleteEndpoint(): Promise<boolean> {
    const existed = this.config !== null;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve([]);
    }
    this.waiters = [];
    await this.ctx.storage.deleteAll();
    applyMigrations(this.ctx.storage, ENDPOINT_MIGRATIONS);
    this.loadState();
    return existed;
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

  /** A job reports its newest state. Idempotent: older or repeated versions change nothing. */
  sync(entry: IndexEntry): void {
    if (!this.config) return;
    const now = Date.now();
    const { ready } = applyEntry(this.sql, entry, now);
    if (ready) this.wakeWaiters(now);
    if (++this.syncsSincePrune >= 500) {
      this.syncsSincePrune = 0;
      pruneTombstones(this.sql, now);
    }
  }

  /**
   * A worker asks for up to `max` jobs, waiting up to `waitMs` for one to arrive. Returns offered
   * job ids; the caller claims each from its job object.
   */
  async take(workerId: string, max: number, waitMs: number): Promise<string[]> {
    const now = Date.now();
    this.seeWorker(workerId, now);
    const ids = offerReady(this.sql, max, now);
    if (ids.length > 0 || waitMs <= 0) return ids;
    return new Promise<string[]>((resolve) => {
      const waiter: Waiter = {
        max,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve([]);
        }, waitMs),
      };
      this.waiters.push(waiter);
    });
  }

  private wakeWaiters(now: number): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0]!;
      const ids = offerReady(this.sql, waiter.max, now);
      if (ids.length === 0) return;
      this.waiters.shift();
      clearTimeout(waiter.timer);
      waiter.resolve(ids);
    }
  }

  /** A worker showed a sign of life (a take, a report, a ping). */
  seeWorker(workerId: string, now = Date.now()): void {
    this.sql.exec(
      `INSERT INTO worker (worker_id, first_seen, last_seen) VALUES (?, ?, ?)
       ON CONFLICT (worker_id) DO UPDATE SET last_seen = excluded.last_seen`,
      workerId,
      now,
      now,
    );
  }

  /** Ids of jobs waiting in the queue, oldest first (for purge-queue). */
  waitingJobs(limit: number): string[] {
    return waitingJobIds(this.sql, limit);
  }

  health(): Health | null {
    if (!this.config) return null;
    const now = Date.now();
    this.sql.exec("DELETE FROM worker WHERE last_seen < ?", now - FORGET_MS);
    const workers: WorkerSeen[] = this.sql
      .exec<{ worker_id: string; last_seen: number }>("SELECT worker_id, last_seen FROM worker")
      .toArray()
      .map((r) => ({ workerId: r.worker_id, lastSeen: r.last_seen }));
    return buildHealth(countByState(this.sql), readCounters(this.sql), workers, busyWorkers(this.sql), now, WORKER_ALIVE_MS);
  }
}
