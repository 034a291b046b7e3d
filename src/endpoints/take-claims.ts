/**
 * A shard's take claims what it offers (issue 12, item 2: one hop from where the job is indexed):
 * each offered job is claimed in its own object, which tells the worker's liveness object but not
 * the index; the shard applies each claim's entry itself. A claim refused because the index was
 * behind the job (cancelled, expired, taken) repairs the index the same way. Inputs come back
 * inline up to MEMORY_BOUNDS.inlineClaimBytes per take (split over its jobs); larger ones the
 * edge reads from the job, so a shard never holds much input at once.
 */
import { handedOf } from "../jobs/handed";
import type { IndexEntry } from "../jobs/index-entry";
import type { JobRecord } from "../jobs/record";
import type { TakeClaim } from "../jobs/job-results";
import { MEMORY_BOUNDS } from "../shared/limits";
import type { TakeRide } from "../shared/liveness";
import type { EndpointConfig } from "./config";
import type { ClaimedJob, SyncReply } from "./shards";

export interface Claimed {
  jobs: ClaimedJob[];
  /** Offers whose claim was refused or failed. */
  stale: number;
}

const jobStub = (env: Env, jobId: string) => env.JOB.get(env.JOB.idFromString(jobId));

/**
 * Claims `ids` for `workerId` under the take `takeId`, all at once; answers in offer order.
 * `apply` indexes an entry on the offering shard (and returns the jobs its sequence releases):
 * every claim's entry when `indexedHere` (the shard claims), else only a refused claim's repair
 * (the edge claims what a waiting take was offered; the jobs tell their shard themselves, and
 * their inputs come inline whatever their size).
 */
export async function claimOffered(
  env: Env,
  config: EndpointConfig,
  ids: readonly string[],
  workerId: string,
  { takeId, indexedHere, sign }: { takeId: string | null; indexedHere: boolean; sign?: TakeRide },
  apply: (entry: IndexEntry) => Promise<SyncReply>,
): Promise<Claimed> {
  const ref = { id: config.id, generation: config.generation };
  const by = {
    ...(takeId ? { takeId } : {}),
    ...(sign ? { take: sign } : {}),
    ...(indexedHere ? { indexed: true, inlineInputMax: Math.floor(MEMORY_BOUNDS.inlineClaimBytes / Math.max(1, ids.length)) } : {}),
  };
  const results = await Promise.all(
    ids.map((id) =>
      // Inside the chain: a malformed id throws here, for this job only.
      (async (): Promise<TakeClaim> => jobStub(env, id).claim(ref, workerId, by))()
        .catch((e: unknown) => {
          // Unknown whether it was claimed: the job's lease rules decide (its worker never hears of it).
          console.warn(`endpoint ${config.id}: claim of job ${id} failed`, e);
          return null;
        }),
    ),
  );
  const out: Claimed = { jobs: [], stale: 0 };
  for (const r of results) {
    if (r?.ok) out.jobs.push({ id: r.job.id, attempt: r.job.attempt, input: r.input, ...handedField(r.job) });
    else out.stale++;
    const entry = r === null ? null : r.ok ? (indexedHere ? r.entry : null) : r.code !== "NOT_FOUND" ? r.entry : null;
    if (entry !== null) {
      try {
        const reply = await apply(entry);
        await Promise.all(reply.release.map((id) => release(env, config, id)));
      } catch (e) {
        // The job stays authoritative: a later change of it, or a refused re-offer, repairs the row.
        console.warn(`endpoint ${config.id}: claim of job ${entry.jobId} not indexed`, e);
      }
    }
  }
  return out;
}

function handedField(job: JobRecord): { handed?: ClaimedJob["handed"] } {
  const handed = handedOf(job);
  return handed === undefined ? {} : { handed };
}

/** The next job of a sequence whose member ended here: SEQUENCED → IN_QUEUE (its own check repeats it if this fails). */
async function release(env: Env, config: EndpointConfig, jobId: string): Promise<void> {
  try {
    await jobStub(env, jobId).release({ id: config.id, generation: config.generation });
  } catch (e) {
    console.warn(`could not release job ${jobId}; its own sequence check will`, e);
  }
}
