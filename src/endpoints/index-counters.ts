/**
 * The endpoint's counters (jobs by outcome, webhook deliveries) and its index rows per state,
 * as a shard keeps them beside its ready index (ready-index applyEntry moves them).
 */
import type { JobState } from "../jobs/states";

export const COUNTERS = [
  "submitted",
  "completed",
  /** Jobs that ended ERROR (a result with a non-zero exit code); RunPod's /health counts them completed. */
  "errored",
  "failed",
  "cancelled",
  "timedOut",
  "retried",
  "webhookSent",
  "webhookSucceeded",
  "webhookFailed",
] as const;
export type CounterName = (typeof COUNTERS)[number];

export function bumpCounter(sql: SqlStorage, name: CounterName): void {
  sql.exec(
    "INSERT INTO counter (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1",
    name,
  );
}

export function counterFor(to: JobState): CounterName | null {
  switch (to) {
    case "COMPLETED":
      return "completed";
    case "ERROR":
      return "errored";
    case "FAILED":
      return "failed";
    case "CANCELLED":
      return "cancelled";
    case "TIMED_OUT":
      return "timedOut";
    default:
      return null;
  }
}

/** Index rows per state, from job_state_count (kept by triggers on job_index; migration 7). */
export function countByState(sql: SqlStorage): Partial<Record<JobState, number>> {
  const out: Partial<Record<JobState, number>> = {};
  for (const r of sql.exec<{ state: string; n: number }>("SELECT state, n FROM job_state_count WHERE n > 0")) {
    out[r.state as JobState] = r.n;
  }
  return out;
}

export function readCounters(sql: SqlStorage): Record<CounterName, number> {
  const out = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  for (const r of sql.exec<{ name: string; value: number }>("SELECT name, value FROM counter")) {
    if ((COUNTERS as readonly string[]).includes(r.name)) out[r.name as CounterName] = r.value;
  }
  return out;
}
