/**
 * Prometheus text exposition (format 0.0.4, which OpenMetrics scrapers read too) of endpoints'
 * numbers: jobs by state, jobs submitted, ended by outcome and retried, webhook deliveries by
 * result, workers by state, and execution, delay and cold-start time as summaries (p70/p90/p98,
 * the quantiles the product computes, over the last hour). Names and units follow Prometheus's
 * conventions: `edge_jobs_` prefix, seconds, `_total` on counters, one `endpoint` label.
 */
import type { CounterName } from "../endpoints/index-counters";
import { WORKER_STATES, type WorkerCounts } from "../endpoints/workers";
import { JOB_STATES, type JobState } from "../jobs/states";
import type { MetricsView } from "../metrics/buckets";
import { RELATIVE_ERROR } from "../metrics/sketch";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface EndpointNumbers {
  endpointId: string;
  byState: Partial<Record<JobState, number>>;
  counters: Record<CounterName, number>;
  workers: WorkerCounts;
  /** The metrics of the last hour, one bucket (null: none kept). */
  lastHour: MetricsView | null;
}

type Sample = { labels: Record<string, string>; value: number | null };
interface Family {
  name: string;
  type: "gauge" | "counter" | "summary";
  help: string;
  samples: (e: EndpointNumbers) => Sample[];
}

const OUTCOMES: Array<[CounterName, string]> = [["completed", "completed"], ["errored", "error"], ["failed", "failed"], ["cancelled", "cancelled"], ["timedOut", "timed_out"]];
const QUANTILES: Array<["p70" | "p90" | "p98", string]> = [["p70", "0.7"], ["p90", "0.9"], ["p98", "0.98"]];

function summary(name: string, what: string, pick: (m: MetricsView) => MetricsView["executionTime"]): Family {
  return {
    name,
    type: "summary",
    help: `${what} in seconds over the last hour (p70/p90/p98 from a sketch, within ${RELATIVE_ERROR * 100}% of a value in the sample; NaN without jobs).`,
    samples: (e) => {
      const s = e.lastHour ? pick(e.lastHour) : null;
      // Quantiles only: a window's count is not the cumulative `_count` a summary's rate() needs
      // (edge_jobs_jobs_ended_total counts the jobs).
      return QUANTILES.map(([k, q]) => ({ labels: { quantile: q }, value: s?.[k] == null ? null : s[k]! / 1000 }));
    },
  };
}

const FAMILIES: Family[] = [
  { name: "edge_jobs_jobs", type: "gauge", help: "Jobs by state now.", samples: (e) => JOB_STATES.map((s) => ({ labels: { state: s }, value: e.byState[s] ?? 0 })) },
  { name: "edge_jobs_jobs_submitted_total", type: "counter", help: "Jobs submitted.", samples: (e) => [{ labels: {}, value: e.counters.submitted }] },
  {
    name: "edge_jobs_jobs_ended_total",
    type: "counter",
    help: "Job attempts that ended, by outcome (a retried job counts each time it ends).",
    samples: (e) => OUTCOMES.map(([c, outcome]) => ({ labels: { outcome }, value: e.counters[c] })),
  },
  { name: "edge_jobs_jobs_retried_total", type: "counter", help: "Jobs queued again after an attempt ended (retries and requeues).", samples: (e) => [{ labels: {}, value: e.counters.retried }] },
  {
    name: "edge_jobs_webhook_deliveries_total",
    type: "counter",
    help: "Webhook delivery attempts, by result.",
    samples: (e) => [
      { labels: { result: "succeeded" }, value: e.counters.webhookSucceeded },
      { labels: { result: "failed" }, value: e.counters.webhookFailed },
    ],
  },
  { name: "edge_jobs_workers", type: "gauge", help: "Workers by state now.", samples: (e) => WORKER_STATES.map((s) => ({ labels: { state: s }, value: e.workers[s] })) },
  summary("edge_jobs_execution_seconds", "Execution time of jobs that ended", (m) => m.executionTime),
  summary("edge_jobs_delay_seconds", "Time jobs waited before they started, of jobs that ended", (m) => m.delayTime),
  summary("edge_jobs_cold_start_seconds", "Cold start time (a worker's first sign of life to its first take)", (m) => m.coldStartTime),
];

/** A label value, escaped as the text format wants (backslash, double quote, newline). */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(v: number | null): string {
  if (v === null || Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  return String(v);
}

/** The exposition of these endpoints: each family once (HELP, TYPE), a sample per endpoint and label set. */
export function prometheusText(endpoints: readonly EndpointNumbers[]): string {
  const lines: string[] = [];
  for (const f of FAMILIES) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const e of endpoints) {
      for (const s of f.samples(e)) {
        const labels = Object.entries({ endpoint: e.endpointId, ...s.labels }).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
        lines.push(`${f.name}{${labels.join(",")}} ${formatValue(s.value)}`);
      }
    }
  }
  return `${lines.join("\n")}\n`;
}
