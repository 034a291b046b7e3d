/**
 * The RunPod-shaped /health body, from the endpoint's index and worker table.
 */
import type { JobState } from "../jobs/states";
import type { CounterName } from "./ready-index";

export interface Health {
  jobs: { completed: number; failed: number; inProgress: number; inQueue: number; retried: number };
  workers: { idle: number; initializing: number; ready: number; running: number; throttled: number; unhealthy: number };
}

export interface WorkerSeen {
  workerId: string;
  lastSeen: number;
}

export function buildHealth(
  byState: Partial<Record<JobState, number>>,
  counters: Record<CounterName, number>,
  workers: readonly WorkerSeen[],
  busy: ReadonlySet<string>,
  now: number,
  aliveMs: number,
): Health {
  let idle = 0;
  let running = 0;
  let unhealthy = 0;
  for (const w of workers) {
    if (now - w.lastSeen > aliveMs) unhealthy++;
    else if (busy.has(w.workerId)) running++;
    else idle++;
  }
  return {
    jobs: {
      completed: counters.completed,
      failed: counters.failed,
      inProgress: (byState.IN_PROGRESS ?? 0) + (byState.CANCELLING ?? 0),
      inQueue: (byState.IN_QUEUE ?? 0) + (byState.SEQUENCED ?? 0),
      retried: counters.retried,
    },
    workers: { idle, initializing: 0, ready: idle + running, running, throttled: 0, unhealthy },
  };
}
