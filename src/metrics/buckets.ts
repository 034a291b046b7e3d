/**
 * Per-endpoint metrics in one-minute buckets: counters, latency sketches (one row per non-empty
 * bin, so recording is a single upsert) and worker counts by state, kept 7 days, so storage is
 * bounded by time, not by the number of jobs. Recorded from what the endpoint already receives
 * (job state changes, takes, webhook outcomes): no extra call on any job's path.
 */
import { binOf, merge, type Sketch, summary } from "./sketch";

export const BUCKET_MS = 60_000;
const KEEP_MS = 7 * 24 * 60 * 60 * 1000;

const METRIC_COUNTERS = [
  "submitted",
  "completed",
  "errored",
  "failed",
  "retried",
  "cancelled",
  "timedOut",
  "coldStarts",
  "webhookSent",
  "webhookSucceeded",
  "webhookFailed",
] as const;
type MetricCounter = (typeof METRIC_COUNTERS)[number];
const METRIC_SKETCHES = ["execution", "delay", "coldStart"] as const;
type MetricSketch = (typeof METRIC_SKETCHES)[number];

export type WorkerCounts = Record<string, number>;

const bucketOf = (t: number) => Math.floor(t / BUCKET_MS) * BUCKET_MS;

export function countMetric(sql: SqlStorage, name: MetricCounter, now: number, by = 1): void {
  sql.exec(
    "INSERT INTO metric_count (start, name, n) VALUES (?, ?, ?) ON CONFLICT (start, name) DO UPDATE SET n = n + excluded.n",
    bucketOf(now),
    name,
    by,
  );
}

export function observe(sql: SqlStorage, name: MetricSketch, valueMs: number, now: number): void {
  sql.exec(
    "INSERT INTO metric_bin (start, metric, bin, n) VALUES (?, ?, ?, 1) ON CONFLICT (start, metric, bin) DO UPDATE SET n = n + 1",
    bucketOf(now),
    name,
    binOf(Math.max(0, valueMs)),
  );
}

/** Records the worker counts by state for the current minute, at most once a minute. */
export function sampleWorkers(sql: SqlStorage, now: number, counts: () => WorkerCounts): void {
  const start = bucketOf(now);
  if (sql.exec("SELECT 1 FROM metric_workers WHERE start = ?", start).toArray().length > 0) return;
  sql.exec("INSERT INTO metric_workers (start, counts) VALUES (?, ?)", start, JSON.stringify(counts()));
  const cutoff = now - KEEP_MS;
  for (const table of ["metric_workers", "metric_count", "metric_bin"]) sql.exec(`DELETE FROM ${table} WHERE start < ?`, cutoff);
}

export interface MetricsView {
  start: string;
  requests: { total: number; completed: number; errored: number; failed: number; retried: number; cancelled: number; timedOut: number };
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
    requests: { total: c("submitted"), completed: c("completed"), errored: c("errored"), failed: c("failed"), retried: c("retried"), cancelled: c("cancelled"), timedOut: c("timedOut") },
    executionTime: summary(a.sketches.execution),
    delayTime: summary(a.sketches.delay),
    coldStartTime: summary(a.sketches.coldStart),
    coldStarts: c("coldStarts"),
    webhooks: { sent: c("webhookSent"), succeeded: c("webhookSucceeded"), failed: c("webhookFailed") },
    workers: a.workers,
  };
}

/** A shard's counter and sketch rows for a window, merged into the endpoint's on read (counters add, sketch bins add). */
export interface MetricRows {
  counts: Array<{ start: number; name: string; n: number }>;
  bins: Array<{ start: number; metric: string; bin: number; n: number }>;
}

export function metricRows(sql: SqlStorage, from: number, to: number, bucketMs: number): MetricRows {
  const first = Math.floor(from / bucketMs) * bucketMs;
  return {
    counts: sql.exec<{ start: number; name: string; n: number }>("SELECT start, name, n FROM metric_count WHERE start >= ? AND start < ?", first, to).toArray(),
    bins: sql.exec<{ start: number; metric: string; bin: number; n: number }>("SELECT start, metric, bin, n FROM metric_bin WHERE start >= ? AND start < ?", first, to).toArray(),
  };
}

/**
 * Metrics from `from` to `to`, in buckets of `bucketMs` (a multiple of a minute), and for the
 * whole window, with other shards' rows (`extra`) merged in. Worker counts are the last sample in each bucket.
 */
export function readMetrics(sql: SqlStorage, from: number, to: number, bucketMs: number, extra: readonly MetricRows[] = []): { total: MetricsView; buckets: MetricsView[] } {
  const first = Math.floor(from / bucketMs) * bucketMs;
  const accs = new Map<number, Acc>();
  for (let t = first; t < to; t += bucketMs) accs.set(t, emptyAcc());
  const total = emptyAcc();
  const accOf = (start: number) => accs.get(Math.floor(start / bucketMs) * bucketMs);
  const rows = [metricRows(sql, from, to, bucketMs), ...extra];
  for (const r of rows.flatMap((x) => x.counts)) {
    const acc = accOf(r.start);
    if (!acc) continue;
    for (const target of [acc, total]) target.counters[r.name] = (target.counters[r.name] ?? 0) + r.n;
  }
  for (const r of rows.flatMap((x) => x.bins)) {
    const acc = accOf(r.start);
    if (!acc || !(METRIC_SKETCHES as readonly string[]).includes(r.metric)) continue;
    for (const target of [acc, total]) merge(target.sketches[r.metric as MetricSketch], { [String(r.bin)]: r.n });
  }
  for (const r of sql.exec<{ start: number; counts: string }>("SELECT start, counts FROM metric_workers WHERE start >= ? AND start < ? ORDER BY start", first, to)) {
    const acc = accOf(r.start);
    if (!acc) continue;
    acc.workers = JSON.parse(r.counts) as WorkerCounts;
    total.workers = acc.workers;
  }
  return { total: view(first, total), buckets: [...accs.entries()].map(([t, a]) => view(t, a)) };
}
