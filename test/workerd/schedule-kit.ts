/**
 * Helpers for the cron schedule tests: a schedule object's clock is frozen at a chosen instant
 * and its alarm run there, so hours of simulated time run in a moment.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { ScheduleObject } from "../../src/schedules/schedule-object";
import { scheduleStub } from "../../src/schedules/schedule-object";
import { lastFires, type FireRow } from "../../src/schedules/store";
import { call, endpointStubOf, json } from "./helpers";

export const MIN = 60_000;
/** A whole minute in simulated time (12:00:00 UTC). */
export const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

export type Stub = DurableObjectStub<ScheduleObject>;

export async function stubOf(ep: string, name: string): Promise<Stub> {
  const config = await endpointStubOf(ep).getConfig();
  if (!config) throw new Error(`no endpoint ${ep}`);
  return scheduleStub(env, { endpointId: ep, generation: config.generation, name }) as Stub;
}

export async function freeze(stub: Stub, at: number): Promise<void> {
  await runInDurableObject(stub, (i: ScheduleObject) => i.clock.freeze(at));
}

/** Freezes the schedule's clock at `at` and runs its alarm `times` times. */
export async function alarmAt(stub: Stub, at: number, times = 1): Promise<void> {
  await freeze(stub, at);
  for (let i = 0; i < times; i++) await runDurableObjectAlarm(stub);
}

/** Every fire the schedule keeps, oldest first. */
export async function fires(stub: Stub): Promise<FireRow[]> {
  return runInDurableObject(stub, (_i: ScheduleObject, state) => lastFires(state.storage.sql, 1000).reverse());
}

export const fired = (fs: FireRow[]) => fs.filter((f) => f.outcome === "submitted");

/** Creates the schedule with its object's clock frozen at `at` (it starts from then). */
export async function putAt(ep: string, name: string, body: Record<string, unknown>, at: number): Promise<Stub> {
  const stub = await stubOf(ep, name);
  await freeze(stub, at);
  const res = await call("PUT", `/admin/endpoints/${ep}/schedules/${name}`, { body });
  if (res.status !== 200) throw new Error(`PUT schedule: ${res.status} ${await res.text()}`);
  return stub;
}

export const every = (cron: string, extra: Record<string, unknown> = {}) => ({ cron, job: { input: { scheduled: true } }, ...extra });

export async function jobCount(ep: string): Promise<number> {
  const res = await call("GET", `/admin/endpoints/${ep}/jobs?limit=500`);
  expect(res.status).toBe(200);
  return (await json<{ jobs: unknown[] }>(res)).jobs.length;
}

export async function getSchedule(ep: string, name: string) {
  const res = await call("GET", `/admin/endpoints/${ep}/schedules/${name}`);
  expect(res.status).toBe(200);
  return json<{ nextFires: string[]; lastFires: Array<{ fireTime: string; jobId: string | null; outcome: string; manual: boolean; detail: string | null }>; paused: boolean; missedUnlisted: number }>(res);
}
