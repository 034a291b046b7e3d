/**
 * What the endpoint records into its metrics, from what it receives anyway: a job's state entry
 * (the counters it moved; its delay and execution times when it ended), cold starts its worker
 * shards tell it (first sign of life → first take), a webhook attempt's outcome. Workers by state are
 * sampled at most once a minute as entries arrive.
 */
import { isTerminal } from "../jobs/states";
import { countMetric, observe, sampleWorkers } from "../metrics/buckets";
import type { IndexEntry } from "../jobs/index-entry";
import { bumpCounter, type CounterName } from "./index-counters";
import type { WorkerCounts } from "./workers";

/** `workers` is null on a shard other than 0: the endpoint object samples workers. */
export function recordEntry(sql: SqlStorage, entry: IndexEntry, counted: readonly CounterName[], now: number, workers: (() => WorkerCounts) | null): void {
  for (const c of counted) countMetric(sql, c, now);
  if (isTerminal(entry.state) && counted.length > 0) {
    if (entry.delayMs !== null) observe(sql, "delay", entry.delayMs, now);
    if (entry.executionMs !== null) observe(sql, "execution", entry.executionMs, now);
  }
  if (workers !== null) sampleWorkers(sql, now, workers);
}

/** Cold starts (a worker's first sign of life → its first take, ms) its liveness shard told. */
export function recordColdStarts(sql: SqlStorage, coldStarts: readonly number[], now: number): void {
  for (const ms of coldStarts) {
    countMetric(sql, "coldStarts", now);
    observe(sql, "coldStart", ms, now);
  }
}

export function recordWebhookOutcome(sql: SqlStorage, succeeded: boolean, now: number): void {
  bumpCounter(sql, "webhookSent");
  bumpCounter(sql, succeeded ? "webhookSucceeded" : "webhookFailed");
  countMetric(sql, "webhookSent", now);
  countMetric(sql, succeeded ? "webhookSucceeded" : "webhookFailed", now);
}
