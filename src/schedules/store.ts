/**
 * The schedule object's rows: the schedule (one row), its fire log, and (for an endpoint
 * incarnation's registry object) the schedule names.
 */
import { SCHEDULES } from "../shared/limits";
import type { ScheduleSpec } from "./spec";

/** Where a schedule lives: its endpoint incarnation and name. */
export interface ScheduleRef {
  endpointId: string;
  generation: string;
  name: string;
}

export interface ScheduleRow extends ScheduleRef {
  /** New each time the schedule is created (not on a replace): part of each fire's idempotency key. */
  incarnation: string;
  spec: ScheduleSpec;
  paused: boolean;
  /** Every scheduled fire at or before this time has been handled (fired, skipped or missed). */
  lastHandled: number;
  /** Missed fires not recorded one by one (past the rows kept per run or the catch-up window). */
  missedUncounted: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * What became of a fire. `submitted`: a job was created (its current status is read when shown);
 * `skipped`: overlap "skip" and the previous fire's job was unfinished; `missed`: not fired
 * (catch-up); `failed`: the submit was refused (detail says why).
 */
export type FireOutcome = "submitted" | "skipped" | "missed" | "failed";

export interface FireRow {
  fireTime: number;
  /** A "trigger now" fire, not a scheduled one. */
  manual: boolean;
  jobId: string | null;
  outcome: FireOutcome;
  detail: string | null;
  /** When the fire ran (its submit started; for a missed fire, when it was found missed): the fire's drift is handledAt - fireTime. */
  handledAt: number;
}

type Raw = Record<string, SqlStorageValue>;

export function loadSchedule(sql: SqlStorage): ScheduleRow | null {
  const r = sql.exec<Raw>("SELECT * FROM schedule WHERE id = 1").toArray()[0];
  if (!r) return null;
  return {
    endpointId: r.endpoint_id as string,
    generation: r.generation as string,
    name: r.name as string,
    incarnation: r.incarnation as string,
    spec: JSON.parse(r.spec as string) as ScheduleSpec,
    paused: r.paused === 1,
    lastHandled: r.last_handled as number,
    missedUncounted: r.missed_uncounted as number,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

export function saveSchedule(sql: SqlStorage, s: ScheduleRow): void {
  sql.exec(
    `INSERT OR REPLACE INTO schedule (id, endpoint_id, generation, name, incarnation, spec, paused, last_handled, missed_uncounted, created_at, updated_at)
     VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    s.endpointId,
    s.generation,
    s.name,
    s.incarnation,
    JSON.stringify(s.spec),
    s.paused ? 1 : 0,
    s.lastHandled,
    s.missedUncounted,
    s.createdAt,
    s.updatedAt,
  );
}

/** Drops the schedule and its fire log (the object may be reused by a schedule of the same name). */
export function clearSchedule(sql: SqlStorage): void {
  sql.exec("DELETE FROM schedule; DELETE FROM fire;");
}

export function hasFire(sql: SqlStorage, fireTime: number, manual: boolean): boolean {
  return sql.exec("SELECT 1 FROM fire WHERE fire_time = ? AND manual = ?", fireTime, manual ? 1 : 0).toArray().length > 0;
}

/** Records a fire (a repeat of a recorded one changes nothing) and keeps the newest SCHEDULES.keptFires. */
export function recordFire(sql: SqlStorage, f: FireRow): void {
  sql.exec(
    "INSERT OR IGNORE INTO fire (fire_time, manual, job_id, outcome, detail, handled_at) VALUES (?, ?, ?, ?, ?, ?)",
    f.fireTime,
    f.manual ? 1 : 0,
    f.jobId,
    f.outcome,
    f.detail,
    f.handledAt,
  );
  sql.exec(
    "DELETE FROM fire WHERE (fire_time, manual) IN (SELECT fire_time, manual FROM fire ORDER BY fire_time DESC, manual DESC LIMIT -1 OFFSET ?)",
    SCHEDULES.keptFires,
  );
}

function fireOf(r: Raw): FireRow {
  return {
    fireTime: r.fire_time as number,
    manual: r.manual === 1,
    jobId: (r.job_id as string | null) ?? null,
    outcome: r.outcome as FireOutcome,
    detail: (r.detail as string | null) ?? null,
    handledAt: r.handled_at as number,
  };
}

/** The newest `n` fires, newest first. */
export function lastFires(sql: SqlStorage, n: number): FireRow[] {
  return sql.exec<Raw>("SELECT * FROM fire ORDER BY fire_time DESC, manual DESC LIMIT ?", n).toArray().map(fireOf);
}

/** The job of the newest fire that created one (the "previous job" overlap looks at). */
export function previousJob(sql: SqlStorage): string | null {
  const r = sql.exec<{ job_id: string }>("SELECT job_id FROM fire WHERE job_id IS NOT NULL ORDER BY fire_time DESC, manual DESC LIMIT 1").toArray()[0];
  return r?.job_id ?? null;
}

// ---- the registry role ----

export function memberCount(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM member").one().n;
}

export function isMember(sql: SqlStorage, name: string): boolean {
  return sql.exec("SELECT 1 FROM member WHERE name = ?", name).toArray().length > 0;
}

export function addMember(sql: SqlStorage, name: string, now: number): void {
  sql.exec("INSERT OR IGNORE INTO member (name, created_at) VALUES (?, ?)", name, now);
}

export function removeMember(sql: SqlStorage, name: string): boolean {
  return sql.exec("DELETE FROM member WHERE name = ?", name).rowsWritten > 0;
}

export function members(sql: SqlStorage): string[] {
  return sql.exec<{ name: string }>("SELECT name FROM member ORDER BY name").toArray().map((r) => r.name);
}
