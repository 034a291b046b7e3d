/**
 * An endpoint object's admin half: its config (checked, stored, told to every shard), its run
 * state (paused), its hashed API keys and the callers they authorize, and its flow-key overrides.
 * EndpointObject adds the index, the relay, workers and metrics.
 */
import { DurableObject } from "cloudflare:workers";
import { Clock } from "../shared/clock";
import { FLOW_KEYS } from "../shared/limits";
import { checkConfig, newWebhookSecret, rotation, type EndpointConfig, type EndpointConfigInput } from "./config";
import { effectiveLimits, readRule, readRules, removeRule, ruleCount, setFlowDefaults, writeRule, type FlowKeyOverride, type FlowKeyRule } from "./flow-rules";
import { findKey, loadKeys, storeNewKey, type KeyScope, type StoredKey } from "./keys";
import type { ReadyQueue } from "./ready-queue";
import { eachShard, fanOutState } from "./shard-fanout";
import type { ShardState } from "./shard-object";
import { shardCount } from "./shards";

export type AuthResult =
  | { ok: true; config: EndpointConfig }
  | { ok: false; code: "NO_ENDPOINT" | "UNAUTHORIZED" | "FORBIDDEN" };

export type PutConfigResult = { ok: true; config: EndpointView; created: boolean } | { ok: false; message: string };
type StoreResult = { ok: true; config: EndpointConfig; created: boolean } | { ok: false; message: string };

/** The stored config plus the endpoint's run state, as the admin API shows it. */
export type EndpointView = EndpointConfig & { paused: boolean };

/** After a failed fan-out of the config to the shards, the alarm tries again this much later. */
export const FANOUT_RETRY_MS = 5_000;

export abstract class EndpointAdmin extends DurableObject<Env> {
  protected abstract readonly sql: SqlStorage;
  protected config: EndpointConfig | null = null;
  protected paused = false;
  protected keys: StoredKey[] = [];
  /** Shard 0 of the ready index (EndpointObject's): told when config, pause or overrides change. */
  protected abstract readonly queue: ReadyQueue;
  /** The time this endpoint acts on; frozen only by tests. */
  readonly clock = new Clock();

  protected loadState(): void {
    const row = this.sql.exec<{ body: string }>("SELECT body FROM config").toArray()[0];
    // Configs from before sharding keep one shard (their jobs are all on this object).
    const stored = row
      ? ({ retryOnError: false, rateLimit: true, previousWebhookSecret: null, previousSecretUntil: null, generation: "", shards: 1, sequenceShards: 1, firstShard: 0, ...JSON.parse(row.body) } as EndpointConfig)
      : null;
    // Flow keys of a config from before flowShards were placed over sequenceShards: they stay there.
    this.config = stored ? { ...stored, flowShards: stored.flowShards ?? stored.sequenceShards } : null;
    this.keys = loadKeys(this.sql);
    this.paused = this.sql.exec<{ value: number }>("SELECT value FROM flag WHERE name = 'paused'").toArray()[0]?.value === 1;
  }

  // ---- config and keys (admin) ----

  getConfig(): EndpointView | null {
    return this.view();
  }

  /** getConfig for this object's own use: not counted as a call served. */
  protected view(): EndpointView | null {
    return this.config ? { ...this.config, paused: this.paused } : null;
  }

  /** Pauses or resumes dispatch on every shard. A paused endpoint accepts submits; running jobs finish. */
  async setPaused(paused: boolean): Promise<EndpointView | null> {
    if (!this.config) return null;
    this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('paused', ?)", paused ? 1 : 0);
    this.paused = paused;
    await this.fanOut();
    if (!paused) await this.queue.readyChanged(this.clock.now());
    return this.view();
  }

  async putConfig(id: string, input: EndpointConfigInput, localDev: boolean): Promise<PutConfigResult> {
    const result = this.storeConfig(id, input, localDev);
    if (result.ok) {
      await this.fanOut();
      // A raised concurrency limit or a switch to push frees work at once.
      await this.queue.readyChanged(this.clock.now());
    }
    return result.ok ? { ...result, config: { ...result.config, paused: this.paused } } : result;
  }

  private storeConfig(id: string, input: EndpointConfigInput, localDev: boolean): StoreResult {
    const r = checkConfig(id, input, this.config, localDev, new Date());
    if (!r.ok) return r;
    const created = this.config === null;
    this.sql.exec("INSERT OR REPLACE INTO config (one, body) VALUES (1, ?)", JSON.stringify(r.config));
    this.config = r.config;
    setFlowDefaults(this.sql, r.config);
    return { ok: true, config: r.config, created };
  }

  /** Tells every shard the config and run state; a shard that misses it is told again by the alarm. */
  protected async fanOut(): Promise<void> {
    if (!this.config || shardCount(this.config) <= 1) return;
    const missed = await fanOutState(this.env, this.config, this.paused, readRules(this.sql));
    this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('fanout_due', ?)", missed ? 1 : 0);
    if (missed) await this.queue.armAlarm(this.clock.now() + FANOUT_RETRY_MS);
  }

  /** What a shard that was never told asks: the config and run state (null: no endpoint). */
  shardState(): ShardState | null {
    return this.config ? { config: this.config, paused: this.paused, flowRules: readRules(this.sql) } : null;
  }

  // ---- flow-key overrides (admin; flow-rules.ts) ----

  /** Every override, by key (null: no endpoint). */
  flowKeys(): FlowKeyRule[] | null {
    return this.config ? readRules(this.sql) : null;
  }

  /** One key's override (null: none) with its effective limits; undefined: no endpoint. */
  flowKey(key: string): { rule: FlowKeyRule | null; effective: ReturnType<typeof effectiveLimits> } | undefined {
    if (!this.config) return undefined;
    const rule = readRule(this.sql, key);
    return { rule, effective: effectiveLimits(rule, this.config) };
  }

  /**
   * Sets a key's override (at most FLOW_KEYS.overridesPerEndpoint keys), applies it to this
   * object's index (shard 0) and tells every shard (the alarm repeats it for one that missed it).
   */
  async putFlowKey(key: string, override: FlowKeyOverride): Promise<{ ok: true; rule: FlowKeyRule; created: boolean } | { ok: false; code: "NO_ENDPOINT" | "TOO_MANY" }> {
    if (!this.config) return { ok: false, code: "NO_ENDPOINT" };
    const created = readRule(this.sql, key) === null;
    if (created && ruleCount(this.sql) >= FLOW_KEYS.overridesPerEndpoint) return { ok: false, code: "TOO_MANY" };
    const rule: FlowKeyRule = { key, ...override, updatedAt: this.clock.now() };
    writeRule(this.sql, rule);
    await this.flowRuleChanged(key, rule);
    return { ok: true, rule, created };
  }

  /** Drops a key's override; false when it had none, null: no endpoint. */
  async deleteFlowKey(key: string): Promise<boolean | null> {
    if (!this.config) return null;
    if (!removeRule(this.sql, key)) return false;
    await this.flowRuleChanged(key, null);
    return true;
  }

  private async flowRuleChanged(key: string, rule: FlowKeyRule | null): Promise<void> {
    await this.queue.readyChanged(this.clock.now());
    const answers = await eachShard(this.env, this.config, (s, a) => s.setFlowRule(a, key, rule).then(() => true));
    if (answers.some((x) => x === null)) {
      this.sql.exec("INSERT OR REPLACE INTO flag (name, value) VALUES ('fanout_due', 1)");
      await this.queue.armAlarm(this.clock.now() + FANOUT_RETRY_MS);
    }
  }

  async createKey(scope: KeyScope): Promise<{ id: string; key: string; scope: KeyScope; createdAt: string } | null> {
    if (!this.config) return null;
    const { stored, key } = await storeNewKey(this.sql, scope);
    this.keys.push(stored);
    return { id: stored.id, key, scope, createdAt: stored.createdAt };
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


  /** Generates a new webhook secret; the old one is still signed with for a day. */
  async rotateSecret(): Promise<EndpointView | null> {
    if (!this.config) return null;
    const config = { ...this.config, ...rotation(this.config, newWebhookSecret(), new Date(this.clock.now())) };
    this.sql.exec("INSERT OR REPLACE INTO config (one, body) VALUES (1, ?)", JSON.stringify(config));
    this.config = config;
    await this.fanOut();
    return this.view();
  }
}
