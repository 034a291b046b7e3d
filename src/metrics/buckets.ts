/**
 * Per-endpoint metrics in one-minute buckets: counters and latency sketches (mergeable), kept 7
 * days, so storage is bounded by time, not by the number of jobs. Recorded from what the endpoint
 * already receives (job state changes, takes, webhook outcomes): no extra call on any job's path.
 */
import { add, merge, type Sketch, summary } from "./sketch";

export const BUCKET_MS = 60_000;
export const KEEP_MS = 7 * 24 * 60 * 60 * 1000;

export const METRIC_COUNTERS = [
  "submitted",
  "completed",
  "failed",
  "retried",
  "cancelled",
  "timedOut",
  "coldStarts",
  "webhookSent",
  "webhookSucceeded",
  "webhookFailed",
] as const;
export type MetricCounter = (typeof METRIC_COUNTERS)[number];
export const METRIC_SKETCHES = ["execution", "delay", "coldStart"] as const;
export type MetricSketch = (typeof METRIC_SKETCHES)[number];

export type WorkerCounts = Record<string, number>;

const bucketOf = (t: number) => Math.floor(t / BUCKET_MS) * BUCKET_MS;

function ensureBucket(sql: SqlStorage, start: number): void {
  sql.exec("INSERT OR IGNORE INTO metric_bucket (start) VALUES (?)", start);
}

export function countMetric(sql: SqlStorage, name: MetricCounter, now: number, by = 1): void {
  const start = bucketOf(now);
  ensureBucket(sql, start);
  sql.exec(`UPDATE metric_bucket SET counters = json_set(counters, '$.${name}', COALESCE(json_extract(counters, '$.${name}'), 0) + ?) WHERE start = ?`, by, start);
}

export function observe(sql: SqlStorage, name: MetricSketch, valueMs: number, now: number): void {
  const start = bucketOf(now);
  ensureBucket(sql, start);
  const row = sql.exec<{ sketches: string }>("SELECT sketches FROM metric_bucket WHERE start = ?", start).one();
  const sketches = JSON.parse(row.sketches) as Partial<Record<MetricSketch, Sketch>>;
  sketches[name] = add(sketches[name] ?? {}, valueMs);
  sql.exec("UPDATE metric_bucket SET sketches = ? WHERE start = ?", JSON.stringify(sketches), start);
}

/** Records the worker counts by state for the current minute, at most once a minute. */
export function sampleWorkers(sql: SqlStorage, now: number, counts: () => WorkerCounts): void {
  const start = bucketOf(now);
  const row = sql.exec<{ workers: string | null }>("SELECT workers FROM metric_bucket WHERE start = ?", start).toArray()[0];
  if (row?.workers) return;
  ensureBucket(sql, start);
  sql.exec("UPDATE metric_bucket SET workers = ? WHERE start = ?", JSON.stringify(counts()), start);
  sql.exec("DELETE FROM metric_bucket WHERE start < ?", now - KEEP_MS);
}

export interface MetricsView {
  start: string;
  requests: { total: number; completed: number; failed: number; retried: number; cancelled: number; timedOut: number };
  executionTime: ReturnType<typeof summary>;
  delayTime: ReturnType<typeof summary>;
  coldStartTime: ReturnType<typeof summary>;
  coldStarts: number;
  webhooks: { sent: number; succeeded: number; failed: number };
  workers: WorkerCounts | null;
}

interface Acc {
  counters: Record<string, number>;
  sketches: Record<MetricSketch, Sketch>;
  workers: WorkerCounts | null;
}

const emptyAcc = (): Acc => ({ counters: {}, sketches: { execution: {}, delay: {}, coldStart: {} }, workers: null });

function view(start: number, a: Acc): MetricsView {
  const c = (k: MetricCounter) => a.counters[k] ?? 0;
  return {
    start: new Date(start).toISOString(),
    requests: { total: c("submitted"), completed: c("completed"), failed: c("failed"), retried: c("retried"), cancelled: c("cancelled"), timedOut: c("timedOut") },
    executionTime: summary(a.sketches.execution),
    delayTime: summary(a.sketches.delay),
    coldStartTime: summary(a.sketches.coldStart),
    coldStarts: c("coldStarts"),
    webhooks: { sent: c("webhookSent"), succeeded: c("webhookSucceeded"), failed: c("webhookFailed") },
    workers: a.workers,
  };
}

/**
 * Metrics from `from` to `to`, in buckets of `bucketMs` (a multiple of a minute), and for the
 * whole window. Worker counts are the last sample in each bucket.
 */
export function readMetrics(sql: SqlStorage, from: number, to: number, bucketMs: number): { total: MetricsView; buckets: MetricsView[] } {
  const first = Math.floor(from / bucketMs) * bucketMs;
  const accs = new Map<number, Acc>();
  for (let t = first; t < to; t += bucketMs) accs.set(t, emptyAcc());
  const total = emptyAcc();
  const rows = sql
    .exec<{ start: number; counters: string; sketches: string; workers: string | null }>(
      "SELECT start, counters, sketches, workers FROM metric_bucket WHERE start >= ? AND start < ? ORDER BY start",
      first,
      to,
    )
    .toArray();
  for (const row of rows) {
    const acc = accs.get(Math.floor(row.start / bucketMs) * bucketMs);
    if (!acc) continue;
    const counters = JSON.parse(row.counters) as Record<string, number>;
    const sketches = JSON.parse(row.sketches) as Partial<Record<MetricSketch, Sketch>>;
    for (const target of [acc, total]) {
      for (const [k, n] of Object.entries(counters)) target.counters[k] = (target.counters[k] ?? 0) + n;
      for (const name of METRIC_SKETCHES) if (sketches[name]) merge(target.sketches[name], sketches[name]);
    }
    if (row.workers) {
      acc.workers = JSON.parse(row.workers) as WorkerCounts;
      total.workers = acc.workers;
    }
  }
  return { total: view(first, total), buckets: [...accs.entries()].map(([t, a]) => view(t, a)) };
}
