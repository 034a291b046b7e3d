/**
 * When a schedule fires: the cron read by croner (a maintained parser, no dependencies; DST by
 * its documented rules, see README), and which due fires an alarm run fires, records missed or
 * leaves for the next run (the catch-up rule).
 *
 * DST (croner's rules): a "fixed-time" cron (a single second, minute and hour, e.g. `30 2 * * *`)
 * whose time falls in a spring-forward gap fires once at the first valid time after the gap (03:00
 * in Europe/Berlin on 2026-03-29), and fires once, at the first occurrence, on a time that happens
 * twice at fall-back. Any other cron (`*\/30 * * * *`, `0 * * * *`) is an interval: times in the
 * gap do not exist and are skipped, a repeated hour fires on both occurrences.
 */
import { Cron } from "croner";
import { SCHEDULES } from "../shared/limits";

export type CompiledCron = { ok: true; cron: Cron } | { ok: false; message: string };

/** The cron parsed in its zone: 5 or 6 fields only, and it must fire at least once more. */
export function compileCron(expr: string, timezone: string): CompiledCron {
  let cron: Cron;
  try {
    cron = new Cron(expr, { mode: "5-or-6-parts", timezone, paused: true });
  } catch (e) {
    const message = e instanceof Error ? e.message.replace(/^CronPattern: /, "") : String(e);
    return { ok: false, message: `invalid cron '${expr.slice(0, SCHEDULES.cronChars)}': ${message}` };
  }
  try {
    if (cron.nextRun(new Date()) === null) return { ok: false, message: `cron '${expr}' never fires (e.g. a day that does not exist, such as 30 February)` };
  } catch (e) {
    return { ok: false, message: `cron '${expr}' cannot be evaluated: ${e instanceof Error ? e.message : String(e)}` };
  }
  return { ok: true, cron };
}

/** Compiles a stored cron (checked when stored, so it compiles). */
export function cronOf(expr: string, timezone: string): Cron {
  const c = compileCron(expr, timezone);
  if (!c.ok) throw new Error(c.message);
  return c.cron;
}

/** The next `n` fire times strictly after `after` (ms). */
export function nextFires(cron: Cron, after: number, n: number): number[] {
  return cron.nextRuns(n, new Date(after)).map((d) => d.getTime());
}

/** The next fire time strictly after `after`, or null when the cron never fires again. */
export function nextFire(cron: Cron, after: number): number | null {
  return cron.nextRun(new Date(after))?.getTime() ?? null;
}

/** The newest `n` fire times at or before `at`, ascending. */
export function firesAtOrBefore(cron: Cron, at: number, n: number): number[] {
  // croner counts a fire earlier in the reference's second as before it: a ref 1 ms later
  // includes a fire exactly at `at` (fires are whole seconds).
  return cron
    .previousRuns(n, new Date(at + 1))
    .map((d) => d.getTime())
    .filter((t) => t <= at)
    .reverse();
}

export type CatchUp = "none" | "latest" | "all";

/**
 * The fires in (lastHandled, now], ascending: walked forward from lastHandled (one or two parser
 * steps in the usual run), or, when more than `window` are due, the newest `window` of them.
 */
export function dueFires(cron: Cron, lastHandled: number, now: number, window: number): { due: number[]; beyondWindow: boolean } {
  const due: number[] = [];
  let t = lastHandled;
  while (due.length < window) {
    const next = nextFire(cron, t);
    if (next === null || next > now) return { due, beyondWindow: false };
    due.push(next);
    t = next;
  }
  const after = nextFire(cron, t);
  if (after === null || after > now) return { due, beyondWindow: false };
  return { due: firesAtOrBefore(cron, now, window), beyondWindow: true };
}

export interface DuePlan {
  /** Fire these now, in order. */
  fire: number[];
  /** Record these as missed (the newest SCHEDULES.missedRows of them). */
  missed: number[];
  /** Missed fires not recorded one by one (older than those in `missed`; one more when some lie past the catch-up window): at least this many. */
  missedUnlisted: number;
  /** The fire time handled through once this plan is carried out. */
  handledThrough: number;
  /** More due fires remain (catch-up "all" past firesPerRun): run again at once. */
  more: boolean;
}

/**
 * The catch-up rule. When an alarm runs at `now`, the fires in (lastHandled, now] are due. The
 * newest due fire is on time when it is at most SCHEDULES.onTimeMs old; the older ones, and a
 * newest one that is late, were missed (the schedule was paused, or its object did not run).
 * - none: the on-time fire fires; every missed one is recorded missed.
 * - latest: the newest due fire fires, on time or late; the older ones are recorded missed.
 * - all: every due fire fires in order, the newest SCHEDULES.catchUpWindow of them (older ones
 *   are missed), SCHEDULES.firesPerRun per alarm run; the rest continue in the next run at once.
 * Null when nothing is due.
 */
export function planDue(cron: Cron, lastHandled: number, now: number, catchUp: CatchUp): DuePlan | null {
  const { due: inWindow, beyondWindow } = dueFires(cron, lastHandled, now, SCHEDULES.catchUpWindow);
  if (inWindow.length === 0) return null;
  const newest = inWindow.at(-1)!;
  const onTime = now - newest <= SCHEDULES.onTimeMs;
  const beyond = beyondWindow ? 1 : 0;
  const recordMissed = (missed: number[]): Pick<DuePlan, "missed" | "missedUnlisted"> => ({
    missed: missed.slice(-SCHEDULES.missedRows),
    missedUnlisted: Math.max(0, missed.length - SCHEDULES.missedRows) + beyond,
  });
  switch (catchUp) {
    case "none": {
      const fire = onTime ? [newest] : [];
      return { fire, ...recordMissed(onTime ? inWindow.slice(0, -1) : inWindow), handledThrough: newest, more: false };
    }
    case "latest":
      return { fire: [newest], ...recordMissed(inWindow.slice(0, -1)), handledThrough: newest, more: false };
    case "all": {
      const fire = inWindow.slice(0, SCHEDULES.firesPerRun);
      const more = inWindow.length > fire.length;
      return { fire, missed: [], missedUnlisted: beyond, handledThrough: fire.at(-1)!, more };
    }
  }
}
