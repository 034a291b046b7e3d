import type { JobRecord } from "./record";
import type { JobState } from "./states";
import { tagKey } from "../shared/tags";
import { avoidedBy, blocklisted } from "./blocklist";

/**
 * What a job tells its endpoint about itself after every change. The endpoint's ready index,
 * stop signals, worker view and counters are derived from these; the job object stays
 * authoritative, and a newer version always replaces an older one, so repeats and reordering
 * are harmless.
 */
export interface IndexEntry {
  jobId: string;
  /** The endpoint incarnation the job was submitted to (null: from before it was kept). */
  generation: string | null;
  version: number;
  state: JobState;
  priority: number;
  lowPriority: boolean;
  createdAt: number;
  /** The worker holding the lease (IN_PROGRESS, CANCELLING) or that ran the job last. */
  workerId: string | null;
  attempt: number;
  /** Workers that failed or lost this job: the queue offers it to others first. */
  avoidWorkers: string[];
  /** Workers blocklisted from this job (jobs/blocklist), and those running another replica of it: never offered it (absent from older entries: none). */
  blockedWorkers?: string[];
  /** Of blockedWorkers, those only running another replica of its job (issue 15, item 4): the job waits for others, never fails on their account. */
  busyWorkers?: string[];
  /** A worker that must be told to stop its attempt (job-stop). */
  stopFor: string | null;
  /** Why a TIMED_OUT job timed out, for the worker's failure record. */
  reason: string | null;
  sequenceKey: string | null;
  /** The job's flow-control key (issue 16; absent from entries built before it was kept). */
  flowKey?: string | null;
  /** The tags a worker needs to be handed the job (canonical, shared/tags; '' or absent: none). */
  tags?: string;
  /** The batch the job is a request of (listing filters on it; absent from entries built before it was kept). */
  batchId?: string | null;
  /** A push job waiting for the queue's retry of its dispatch: not to be dispatched again. */
  dispatchPending: boolean;
  dispatchError: string | null;
  /** The input's size: a batch take is offered jobs within a byte budget (0 from older jobs). */
  inputBytes: number;
  /** For metrics, once the job has started: ms it waited in the queue, and ms it ran. */
  delayMs: number | null;
  executionMs: number | null;
}

export function indexEntryOf(job: JobRecord, inputBytes: number): IndexEntry {
  return {
    jobId: job.id,
    generation: job.endpointGen,
    version: job.version,
    state: job.state,
    priority: job.policy.priority,
    lowPriority: job.policy.lowPriority,
    createdAt: job.createdAt,
    workerId: job.workerId,
    attempt: job.attempt,
    avoidWorkers: avoidedBy(job),
    blockedWorkers: [...new Set([...blocklisted(job).map((b) => b.workerId), ...(job.task?.busy ?? [])])],
    ...((job.task?.busy?.length ?? 0) > 0 ? { busyWorkers: job.task!.busy } : {}),
    stopFor: job.stopFor,
    reason: job.reason,
    sequenceKey: job.sequenceKey,
    flowKey: job.flowKey,
    tags: tagKey(job.policy.tags),
    batchId: job.batchId,
    dispatchPending: job.state === "IN_QUEUE" && job.dispatch !== null,
    dispatchError: job.state === "IN_QUEUE" ? (job.dispatch?.error ?? null) : null,
    inputBytes,
    delayMs: job.startedAt === null ? null : job.startedAt - job.queuedAt,
    executionMs: job.startedAt === null || job.completedAt === null ? null : job.completedAt - job.startedAt,
  };
}
