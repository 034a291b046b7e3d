/**
 * Blocklists (issue 15, item 3; Flamenco's): a worker that failed a job's attempts
 * `blocklistThreshold` times (errors it reported, leases it lost) is never handed that job again.
 * Counted from the job's failedWorkers (a worker once per failed attempt). Plain data in, plain
 * data out: the ready index skips blocklisted workers (IndexEntry.blockedWorkers), and a job
 * every live worker that may take is blocklisted from fails (commands.blocklisted).
 */
import { BLOCKLIST } from "../shared/limits";
import type { JobRecord } from "./record";

/** A worker blocklisted from a job, with the attempts of the job it failed. */
export interface Blocklisted {
  workerId: string;
  failures: number;
}

/** Failed attempts per worker, in the order each first failed. */
export function failuresByWorker(job: Pick<JobRecord, "failedWorkers">): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of job.failedWorkers) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/** The job's threshold (records from before blocklists: the default). */
export function thresholdOf(job: Pick<JobRecord, "policy">): number {
  return job.policy.blocklistThreshold ?? BLOCKLIST.threshold.default;
}

/**
 * The workers blocklisted from the job, with their failures of it: those that failed it
 * `blocklistThreshold` times, and, for a task, those its job of tasks blocklisted (they failed
 * that many of its tasks; listed with their failures of this task, maybe 0).
 */
export function blocklisted(job: Pick<JobRecord, "failedWorkers" | "policy"> & Partial<Pick<JobRecord, "task">>): Blocklisted[] {
  const threshold = thresholdOf(job);
  const failures = failuresByWorker(job);
  const own = [...failures].filter(([, n]) => n >= threshold).map(([workerId, n]) => ({ workerId, failures: n }));
  const byGraph = (job.task?.blocked ?? []).filter((w) => (failures.get(w) ?? 0) < threshold).map((workerId) => ({ workerId, failures: failures.get(workerId) ?? 0 }));
  return [...own, ...byGraph];
}

/** The workers that failed the job at least once, each once (the queue offers it to others first). */
export function avoidedBy(job: Pick<JobRecord, "failedWorkers">): string[] {
  return [...new Set(job.failedWorkers)];
}

/** `workerId`'s failure of this attempt blocklists it now (its count reaches the threshold). */
export function blocklistsNow(job: Pick<JobRecord, "failedWorkers" | "policy">, workerId: string): boolean {
  return (failuresByWorker(job).get(workerId) ?? 0) + 1 === thresholdOf(job);
}
