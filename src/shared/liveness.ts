/**
 * Where a worker's liveness lives: one liveness object per (endpoint, generation, shard), the
 * shard by a stable hash of the worker id. Jobs and the edge both name it from here, so a job
 * tells the same object its worker pings. A new endpoint generation names new objects.
 */
import { fnv1a } from "./hash";
import { LIVENESS } from "./limits";

/** What a liveness object serves: it keeps this, and tells its endpoint summaries under it. */
export interface LivenessRef {
  endpointId: string;
  /** The endpoint generation ("" for endpoints and jobs from before generations were kept). */
  generation: string;
  shard: number;
}

/**
 * What a job tells its worker's liveness object after a transition: the worker holds this
 * attempt (IN_PROGRESS, CANCELLING), or no longer does (RELEASED). Ordered by the job's version:
 * an older tell never undoes a newer one.
 */
export interface HoldTell {
  jobId: string;
  workerId: string;
  version: number;
  attempt: number;
  state: "IN_PROGRESS" | "CANCELLING" | "RELEASED";
  /** The worker must be told to stop this attempt (job-stop). */
  stop: boolean;
  /** A failure to note in the worker's record ("error", "lease_lost", a timeout reason). */
  failure: string | null;
  /**
   * The take that claimed this attempt (the edge's id for one job-take call): that take's own
   * release of what the worker held passes over it (see LivenessObject.taking).
   */
  takeId?: string;
  /**
   * The claiming take's own sign of life, which the take did not send itself (the take flow sends
   * LivenessObject.taking only when it waits or claims nothing): the tags it declared, and whether
   * it said its worker runs nothing else, which releases what the worker held from older takes.
   */
  take?: TakeRide;
}

/** Why a job loses its lease when its worker asks for work saying it runs none (job_in_progress=0). */
export const RUNS_NONE_WHY = "the worker asked for work saying it runs none";

/** What a take tells its worker's liveness object through the claim of a job (HoldTell.take). */
export interface TakeRide {
  /** The take said `job_in_progress=0`: jobs the worker holds from older takes are lost. */
  runsNone: boolean;
  /** The tags it declared (canonical; '' for none). */
  tags: string;
}

/** FNV-1a (32 bit) of the worker id, mod the shard count: stable across isolates and deploys. */
export function livenessShard(workerId: string): number {
  return fnv1a(workerId) % LIVENESS.shards;
}

export function livenessRef(endpointId: string, generation: string | null, workerId: string): LivenessRef {
  return { endpointId, generation: generation ?? "", shard: livenessShard(workerId) };
}

/** Every shard of an endpoint generation (for reads that merge them, and for a deletion). */
export function allLivenessRefs(endpointId: string, generation: string): LivenessRef[] {
  return Array.from({ length: LIVENESS.shards }, (_, shard) => ({ endpointId, generation, shard }));
}

export function livenessName(ref: LivenessRef): string {
  return `${ref.endpointId}/${ref.generation}/${ref.shard}`;
}
