/**
 * One Durable Object per cron schedule, named per endpoint incarnation (`schedule:<ep>:<gen>:<name>`),
 * with one alarm at its next fire. Each alarm run handles the fires due since the last handled one
 * by the catch-up rule (./fires), each through ./firing with an idempotency key of the fire, and
 * records each fire before it counts as handled, so an alarm that runs twice fires once.
 *
 * The same class serves an endpoint incarnation's registry of schedule names
 * (`schedules:<ep>:<gen>`), for listing and the per-endpoint limit; no job path ever calls it.
 *
 * Every change runs one at a time (`serial`): a trigger, a pause or a replace never interleaves
 * with an alarm run between its submit and its record.
 */
import { DurableObject } from "cloudflare:workers";
import type { EndpointConfig } from "../endpoints/config";
import { endpointStub } from "../flows/stubs";
import { Clock } from "../shared/clock";
import { SCHEDULES } from "../shared/limits";
import { applyMigrations } from "../shared/migrations";
import { cronOf, firesAtOrBefore, nextFire, nextFires, planDue } from "./fires";
import { fireOnce } from "./firing";
import { SCHEDULE_MIGRATIONS } from "./schema";
import type { ScheduleSpec } from "./spec";
import {
  addMember,
  clearSchedule,
  hasFire,
  isMember,
  lastFires,
  loadSchedule,
  memberCount,
  members,
  previousJob,
  recordFire,
  removeMember,
  saveSchedule,
  type FireRow,
  type ScheduleRef,
  type ScheduleRow,
} from "./store";

/** A failed alarm run (the endpoint object did not answer) is tried again this much later. */
const RETRY_MS = 30_000;

export interface ScheduleState {
  schedule: ScheduleRow;
  /** The next fire times (empty while paused). */
  nextFires: number[];
  /** The newest fires, newest first. */
  lastFires: FireRow[];
}

export type IndexAdd = { ok: true; created: boolean } | { ok: false; count: number };

export function scheduleStub(env: Env, ref: ScheduleRef): DurableObjectStub<ScheduleObject> {
  return env.SCHEDULE.get(env.SCHEDULE.idFromName(`schedule:${ref.endpointId}:${ref.generation}:${ref.name}`));
}

export function scheduleIndexStub(env: Env, endpointId: string, generation: string): DurableObjectStub<ScheduleObject> {
  return env.SCHEDULE.get(env.SCHEDULE.idFromName(`schedules:${endpointId}:${generation}`));
}

function newIncarnation(): string {
  return [...crypto.getRandomValues(new Uint8Array(6))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class ScheduleObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  readonly clock = new Clock();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, SCHEDULE_MIGRATIONS);
    });
  }

  /** Runs `fn` after every change started before it has finished. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---- the schedule ----

  /**
   * Creates or replaces the schedule. A replace keeps the fire log and, when the cron and zone
   * are unchanged, where the schedule had got to (so a replace that unpauses catches up like a
   * resume); a changed cron starts from now. `paused` is the body's.
   */
  put(ref: ScheduleRef, spec: ScheduleSpec): Promise<{ state: ScheduleState; created: boolean }> {
    return this.serial(async () => {
      const now = this.clock.now();
      const prev = loadSchedule(this.sql);
      const sameCron = prev !== null && prev.spec.cron === spec.cron && prev.spec.timezone === spec.timezone;
      const row: ScheduleRow = {
        ...ref,
        incarnation: prev?.incarnation ?? newIncarnation(),
        spec,
        paused: spec.paused,
        lastHandled: sameCron ? prev.lastHandled : now,
        missedUncounted: prev?.missedUncounted ?? 0,
        createdAt: prev?.createdAt ?? now,
        updatedAt: now,
      };
      saveSchedule(this.sql, row);
      await this.arm(row, now);
      return { state: this.stateOf(row, now), created: prev === null };
    });
  }

  get(): ScheduleState | null {
    const row = loadSchedule(this.sql);
    return row ? this.stateOf(row, this.clock.now()) : null;
  }

  /** Pauses (no fires until resumed) or resumes (the fires missed meanwhile follow catchUp). */
  setPaused(paused: boolean): Promise<ScheduleState | null> {
    return this.serial(async () => {
      const row = loadSchedule(this.sql);
      if (!row) return null;
      const now = this.clock.now();
      const next = { ...row, paused, spec: { ...row.spec, paused }, updatedAt: now };
      saveSchedule(this.sql, next);
      await this.arm(next, now);
      return this.stateOf(next, now);
    });
  }

  /** Deletes the schedule and its fire log; its alarm goes. False when there was none. */
  remove(): Promise<boolean> {
    return this.serial(async () => {
      const existed = loadSchedule(this.sql) !== null;
      clearSchedule(this.sql);
      await this.ctx.storage.deleteAlarm();
      return existed;
    });
  }

  /**
   * Fires now, once, outside the cron ("trigger now"): its own key (the fire time, marked manual),
   * the overlap policy's queueing but never its skip, paused or not. Null without a schedule.
   */
  trigger(): Promise<FireRow | null> {
    return this.serial(async () => {
      const row = loadSchedule(this.sql);
      if (!row) return null;
      const config = await this.endpointConfig(row);
      if (config === null) {
        await this.stop(row);
        return null;
      }
      const now = this.clock.now();
      const r = await fireOnce(this.env, row, config, now, true, previousJob(this.sql));
      const fire: FireRow = { fireTime: now, manual: true, ...r, handledAt: now };
      recordFire(this.sql, fire);
      return fire;
    });
  }

  // ---- the alarm ----

  override async alarm(_info?: AlarmInvocationInfo): Promise<void> {
    await this.serial(async () => {
      try {
        await this.runDue();
      } catch (e) {
        // Never let the platform give up on the alarm: try again a little later.
        console.warn("schedule alarm failed; trying again", e);
        await this.ctx.storage.setAlarm(this.clock.toWall(this.clock.now() + RETRY_MS));
      }
    });
  }

  /** Handles the due fires (see fires.planDue), then arms the alarm for the next one. */
  private async runDue(): Promise<void> {
    const row = loadSchedule(this.sql);
    if (!row || row.paused) return;
    const now = this.clock.now();
    const cron = cronOf(row.spec.cron, row.spec.timezone);
    const plan = planDue(cron, row.lastHandled, now, row.spec.catchUp);
    if (plan === null) return this.arm(row, now);
    const config = await this.endpointConfig(row);
    if (config === null) return this.stop(row);
    this.ctx.storage.transactionSync(() => {
      for (const t of plan.missed) {
        if (!hasFire(this.sql, t, false)) recordFire(this.sql, { fireTime: t, manual: false, jobId: null, outcome: "missed", detail: null, handledAt: now });
      }
    });
    let current = row;
    for (const t of plan.fire) {
      if (!hasFire(this.sql, t, false)) {
        const firedAt = this.clock.now();
        const r = await fireOnce(this.env, current, config, t, false, previousJob(this.sql));
        this.ctx.storage.transactionSync(() => {
          recordFire(this.sql, { fireTime: t, manual: false, ...r, handledAt: firedAt });
          current = this.advance(t, 0);
        });
      }
    }
    current = this.advance(plan.handledThrough, plan.missedUnlisted);
    if (plan.more) await this.ctx.storage.setAlarm(this.clock.toWall(now));
    else await this.arm(current, now);
  }

  /** Moves lastHandled forward to `t` (never back) and counts unlisted missed fires. */
  private advance(t: number, missedUncounted: number): ScheduleRow {
    const row = loadSchedule(this.sql)!;
    const next = { ...row, lastHandled: Math.max(row.lastHandled, t), missedUncounted: row.missedUncounted + missedUncounted };
    saveSchedule(this.sql, next);
    return next;
  }

  /** The alarm at the next thing to do: now when fires are due, else the next fire; none while paused. */
  private async arm(row: ScheduleRow, now: number): Promise<void> {
    if (row.paused) return this.ctx.storage.deleteAlarm();
    const cron = cronOf(row.spec.cron, row.spec.timezone);
    const latest = firesAtOrBefore(cron, now, 1)[0];
    const at = latest !== undefined && latest > row.lastHandled ? now : nextFire(cron, Math.max(now, row.lastHandled));
    if (at === null) return this.ctx.storage.deleteAlarm();
    await this.ctx.storage.setAlarm(this.clock.toWall(at));
  }

  /** The schedule's endpoint incarnation as it is now; null when it was deleted (or re-created). */
  private async endpointConfig(row: ScheduleRow): Promise<EndpointConfig | null> {
    const config = await endpointStub(this.env, row.endpointId).getConfig();
    return config !== null && config.generation === row.generation ? config : null;
  }

  /** The endpoint incarnation is gone: the schedule stops and forgets itself. */
  private async stop(row: ScheduleRow): Promise<void> {
    clearSchedule(this.sql);
    await this.ctx.storage.deleteAlarm();
    await scheduleIndexStub(this.env, row.endpointId, row.generation).indexRemove(row.name).catch(() => false);
  }

  private stateOf(row: ScheduleRow, now: number): ScheduleState {
    const cron = cronOf(row.spec.cron, row.spec.timezone);
    return {
      schedule: row,
      nextFires: row.paused ? [] : nextFires(cron, Math.max(now, row.lastHandled), SCHEDULES.nextFires),
      lastFires: lastFires(this.sql, SCHEDULES.lastFires),
    };
  }

  // ---- the registry of an endpoint incarnation's schedules ----

  /** Adds a name, refusing a new one past SCHEDULES.perEndpoint. */
  indexAdd(name: string): IndexAdd {
    if (isMember(this.sql, name)) return { ok: true, created: false };
    const count = memberCount(this.sql);
    if (count >= SCHEDULES.perEndpoint) return { ok: false, count };
    addMember(this.sql, name, this.clock.now());
    return { ok: true, created: true };
  }

  indexRemove(name: string): boolean {
    return removeMember(this.sql, name);
  }

  indexList(): string[] {
    return members(this.sql);
  }
}
