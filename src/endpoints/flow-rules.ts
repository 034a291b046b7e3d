/**
 * The limits of flow keys (issue 16, item 4): the endpoint's defaults (`keyConcurrency`,
 * `keyRateLimit`) and per-key overrides (`PUT /admin/endpoints/{id}/flow-keys/{key}`). The
 * endpoint object keeps the overrides (flow_key_rule) and tells every shard of them; each shard
 * keeps a copy in its own flow_key_rule, which the triggers of endpoint migration 10 read when a
 * key's row is created, and copies the effective cap and rate into the key's flow_key_state row
 * (where the partial index flow_key_open needs them) whenever a rule or default changes.
 *
 * In flow_key_rule, cap NULL means the endpoint's default and UNCAPPED_CAP none; rate_n NULL means
 * the endpoint's default and 0 none.
 */
import { z } from "zod";
import { FLOW_KEYS } from "../shared/limits";

/** flow_key_state.cap of a key without a cap (a column the partial index compares, never NULL). */
export const UNCAPPED_CAP = 1_000_000_000;

const int = (r: { min: number; max: number }) => z.number().int().min(r.min).max(r.max);

export const KeyRateLimit = z
  .object({
    limit: int(FLOW_KEYS.rateLimit).meta({ description: "Starts per period." }),
    periodMs: int(FLOW_KEYS.periodMs).meta({ description: "The period, ms (1 s to 1 day)." }),
  })
  .strict();
export type KeyRateLimit = z.infer<typeof KeyRateLimit>;

/** The body of `PUT …/flow-keys/{key}`: an omitted field takes the endpoint's default, null means none for this key. */
export const FlowKeyOverride = z
  .object({
    concurrency: int(FLOW_KEYS.concurrency).nullable().optional().meta({ description: "Most jobs of this key running (or handed out) at once; null: no cap for this key; omitted: the endpoint's keyConcurrency." }),
    rateLimit: KeyRateLimit.nullable().optional().meta({ description: "Most starts of this key per period; null: no rate limit for this key; omitted: the endpoint's keyRateLimit." }),
  })
  .strict();
export type FlowKeyOverride = z.infer<typeof FlowKeyOverride>;

export interface FlowKeyRule extends FlowKeyOverride {
  key: string;
  updatedAt: number;
}

/** The endpoint settings the keys default to (absent in configs from before them: none). */
export interface FlowDefaults {
  keyConcurrency?: number | null;
  keyRateLimit?: KeyRateLimit | null;
}

type RuleRow = {
  flow_key: string;
  cap: number | null;
  rate_n: number | null;
  rate_period: number | null;
  updated_at: number;
};

function toRule(r: RuleRow): FlowKeyRule {
  return {
    key: r.flow_key,
    ...(r.cap === null ? {} : { concurrency: r.cap === UNCAPPED_CAP ? null : r.cap }),
    ...(r.rate_n === null ? {} : { rateLimit: r.rate_n === 0 ? null : { limit: r.rate_n, periodMs: r.rate_period ?? 0 } }),
    updatedAt: r.updated_at,
  };
}

function columnsOf(o: FlowKeyOverride): [number | null, number | null, number | null] {
  const cap = o.concurrency === undefined ? null : o.concurrency === null ? UNCAPPED_CAP : o.concurrency;
  const rateN = o.rateLimit === undefined ? null : o.rateLimit === null ? 0 : o.rateLimit.limit;
  return [cap, rateN, o.rateLimit ? o.rateLimit.periodMs : null];
}

/** A key's limits after its override and the endpoint's defaults (null: none). */
export function effectiveLimits(o: FlowKeyOverride | null, d: FlowDefaults): { concurrency: number | null; rateLimit: KeyRateLimit | null } {
  return {
    concurrency: o?.concurrency !== undefined ? o.concurrency : (d.keyConcurrency ?? null),
    rateLimit: o?.rateLimit !== undefined ? o.rateLimit : (d.keyRateLimit ?? null),
  };
}

/** A key's effective column, as the triggers compute it (the override, else the default, else none). */
const effective = (col: "cap" | "rate_n" | "rate_period", none: number) =>
  `COALESCE((SELECT ${col} FROM flow_key_rule r WHERE r.flow_key = flow_key_state.flow_key), (SELECT ${col} FROM flow_key_default), ${none})`;
const CAP = effective("cap", UNCAPPED_CAP);
const RATE_N = effective("rate_n", 0);
const RATE_PERIOD = effective("rate_period", 0);

/**
 * Copies the effective limits into the rows of `key` (null: every key; an admin change, so a
 * walk of the shard's keys, which pruning keeps to the active ones). A changed rate starts a new
 * window (and reopens a limited key); a changed cap moves the key in or out of flow_key_open.
 */
function refresh(sql: SqlStorage, key: string | null): void {
  const changedRate = `(rate_n IS NOT ${RATE_N} OR rate_period IS NOT ${RATE_PERIOD})`;
  sql.exec(
    `UPDATE flow_key_state SET cap = ${CAP}, rate_n = ${RATE_N}, rate_period = ${RATE_PERIOD},
       window_count = CASE WHEN ${changedRate} THEN 0 ELSE window_count END,
       limited_until = CASE WHEN ${changedRate} THEN 0 ELSE limited_until END
     WHERE ${key === null ? "1" : "flow_key = ?"} AND (cap IS NOT ${CAP} OR ${changedRate})`,
    ...(key === null ? [] : [key]),
  );
}

/** Stores the endpoint's defaults; true when they changed (every key's row was refreshed). */
export function setFlowDefaults(sql: SqlStorage, d: FlowDefaults): boolean {
  const cap = d.keyConcurrency ?? null;
  const rateN = d.keyRateLimit?.limit ?? 0;
  const period = d.keyRateLimit?.periodMs ?? 0;
  const now = sql.exec<{ cap: number | null; rate_n: number; rate_period: number }>("SELECT cap, rate_n, rate_period FROM flow_key_default").toArray()[0];
  if ((now?.cap ?? null) === cap && (now?.rate_n ?? 0) === rateN && (now?.rate_period ?? 0) === period) return false;
  sql.exec("INSERT OR REPLACE INTO flow_key_default (one, cap, rate_n, rate_period) VALUES (1, ?, ?, ?)", cap, rateN, period);
  refresh(sql, null);
  return true;
}

export function readRules(sql: SqlStorage): FlowKeyRule[] {
  return sql.exec<RuleRow>("SELECT flow_key, cap, rate_n, rate_period, updated_at FROM flow_key_rule ORDER BY flow_key").toArray().map(toRule);
}

export function readRule(sql: SqlStorage, key: string): FlowKeyRule | null {
  const row = sql.exec<RuleRow>("SELECT flow_key, cap, rate_n, rate_period, updated_at FROM flow_key_rule WHERE flow_key = ?", key).toArray()[0];
  return row ? toRule(row) : null;
}

export function ruleCount(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM flow_key_rule").one().n;
}

/** Stores one override (replacing the key's) and refreshes the key's row. */
export function writeRule(sql: SqlStorage, rule: FlowKeyRule): void {
  const [cap, rateN, period] = columnsOf(rule);
  sql.exec("INSERT OR REPLACE INTO flow_key_rule (flow_key, cap, rate_n, rate_period, updated_at) VALUES (?, ?, ?, ?, ?)", rule.key, cap, rateN, period, rule.updatedAt);
  refresh(sql, rule.key);
}

/** Drops a key's override (the key takes the endpoint's defaults again); false when it had none. */
export function removeRule(sql: SqlStorage, key: string): boolean {
  const gone = sql.exec("DELETE FROM flow_key_rule WHERE flow_key = ? RETURNING 1", key).toArray().length > 0;
  if (gone) refresh(sql, key);
  return gone;
}

/**
 * Makes the stored overrides exactly `rules` (a shard told the endpoint's whole set: a repair),
 * writing only what differs; true when anything changed.
 */
export function replaceRules(sql: SqlStorage, rules: readonly FlowKeyRule[]): boolean {
  const stored = new Map(readRules(sql).map((r) => [r.key, r]));
  let changed = false;
  for (const r of rules) {
    const had = stored.get(r.key);
    stored.delete(r.key);
    if (had && had.updatedAt === r.updatedAt && JSON.stringify(columnsOf(had)) === JSON.stringify(columnsOf(r))) continue;
    writeRule(sql, r);
    changed = true;
  }
  for (const key of stored.keys()) changed = removeRule(sql, key) || changed;
  return changed;
}
