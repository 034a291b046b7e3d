/**
 * The RunPod-shaped /health body, from the endpoint's index, counters and worker registry.
 */
import type { JobState } from "../jobs/states";
import type { CounterName } from "./index-counters";
import type { WorkerCounts } from "./workers";

export interface Health {
  /** inQueue counts SCHEDULED jobs too (clients read them IN_QUEUE; metrics count them apart). */
  jobs: { completed: number; failed: number; inProgress: number; inQueue: number; retried: number };
  workers: { idle: number; initializing: number; ready: number; running: number; throttled: number; unhealthy: number };
}

export function buildHealth(
  byState: Partial<Record<JobState, number>>,
  counters: Record<CounterName, number>,
  workers: WorkerCounts,
): Health {
  const { idle, running } = workers;
  return {
    jobs: {
      // RunPod's clients read an ERROR job COMPLETED (with its error): counted so here too.
      completed: counters.completed + counters.errored,
      failed: counters.failed,
      inProgress: (byState.IN_PROGRESS ?? 0) + (byState.CANCELLING ?? 0),
      inQueue: (byState.IN_QUEUE ?? 0) + (byState.SEQUENCED ?? 0) + (byState.SCHEDULED ?? 0) + (byState.PAUSED ?? 0),
      retried: counters.retried,
    },
    workers: {
      idle,
      initializing: workers.initializing,
      // RunPod's "ready": workers up and able to take work, busy or not.
      ready: idle + running,
      running,
      throttled: workers.throttled,
      unhealthy: workers.unhealthy,
    },
  };
}
