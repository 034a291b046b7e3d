/**
 * A schedule as the admin API shows it: its fires' outcomes are their jobs' current status, read
 * from the job objects (state only, no output) when shown.
 */
import { jobAt } from "../flows/stubs";
import type { EndpointRef } from "../jobs/record";
import type { ScheduleState } from "./schedule-object";
import type { FireRow } from "./store";

const iso = (t: number) => new Date(t).toISOString();

export interface FireView {
  fireTime: string;
  manual: boolean;
  jobId: string | null;
  outcome: string;
  detail: string | null;
  firedAt: string;
}

/** A fire with its outcome: the job's status now ("gone" past its retention), else the recorded one. */
export async function fireView(env: Env, ref: EndpointRef, f: FireRow): Promise<FireView> {
  let outcome: string = f.outcome;
  if (f.outcome === "submitted" && f.jobId !== null) outcome = (await jobAt(env, f.jobId).state(ref)) ?? "gone";
  return { fireTime: iso(f.fireTime), manual: f.manual, jobId: f.jobId, outcome, detail: f.detail, firedAt: iso(f.handledAt) };
}

export async function scheduleView(env: Env, ref: EndpointRef, s: ScheduleState) {
  const { schedule: row } = s;
  // Storage credentials are handed to workers, never echoed (as on /run).
  const { s3Config, ...job } = row.spec.job;
  return {
    name: row.name,
    endpointId: row.endpointId,
    cron: row.spec.cron,
    timezone: row.spec.timezone,
    job: s3Config === undefined ? job : { ...job, s3Config: "(set; not shown)" },
    overlap: row.spec.overlap,
    catchUp: row.spec.catchUp,
    paused: row.paused,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    nextFires: s.nextFires.map(iso),
    lastFires: await Promise.all(s.lastFires.map((f) => fireView(env, ref, f))),
    missedUnlisted: row.missedUncounted,
  };
}

/** One line of the list: next fire and the newest fire. */
export async function scheduleSummary(env: Env, ref: EndpointRef, s: ScheduleState) {
  const row = s.schedule;
  const last = s.lastFires[0];
  return {
    name: row.name,
    cron: row.spec.cron,
    timezone: row.spec.timezone,
    overlap: row.spec.overlap,
    catchUp: row.spec.catchUp,
    paused: row.paused,
    nextFire: s.nextFires[0] === undefined ? null : iso(s.nextFires[0]),
    lastFire: last === undefined ? null : await fireView(env, ref, last),
  };
}
