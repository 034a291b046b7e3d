import type { JobRecord } from "../jobs/record";
import type { JobState } from "../jobs/states";

/**
 * What a job tells its endpoint about itself after every change. The endpoint's ready index,
 * counters and worker view are derived from these; the job object stays authoritative, and a
 * newer version always replaces an older one, so repeats and reordering are harmless.
 */
export interface IndexEntry {
  jobId: string;
  version: number;
  state: JobState;
  priority: number;
  lowPriority: boolean;
  createdAt: number;
  workerId: string | null;
}

export function indexEntryOf(job: JobRecord): IndexEntry {
  return {
    jobId: job.id,
    version: job.version,
    state: job.state,
    priority: job.policy.priority,
    lowPriority: job.policy.lowPriority,
    createdAt: job.createdAt,
    workerId: job.workerId,
  };
}
