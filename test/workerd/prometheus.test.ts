/**
 * Prometheus text (issue 13, item 4): GET /v2/{ep}/metrics/prometheus and GET /admin/metrics,
 * read with a real parser of the text format, and the same numbers as the JSON APIs.
 */
import parsePrometheus from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { prometheusText, type EndpointNumbers } from "../../src/flows/prometheus-text";
import { call, createEndpoint, createKey, done, json, submit, takeOne } from "./helpers";

type Family = { name: string; help: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string; quantiles?: Record<string, string> }> };

async function scrape(path: string, key?: string): Promise<Family[]> {
  const res = await call("GET", path, key === undefined ? {} : { key });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parsePrometheus(await res.text()) as Family[];
}

/** The value of `name` for `endpoint` with these other labels (NaN kept as NaN; undefined: absent). */
function value(families: Family[], name: string, endpoint: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x) => x.labels?.endpoint === endpoint && Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

describe("Prometheus text", () => {
  it("an endpoint's jobs, outcomes, workers and times, as the JSON APIs say", async () => {
    const ep = await createEndpoint({ shards: 2 });
    const client = await createKey(ep, "client");
    const ids = [await submit(ep, { input: { n: 1 } }), await submit(ep, { input: { n: 2 } }), await submit(ep, { input: { n: 3 } })];
    for (const outcome of [{ output: { ok: true } }, { error: "boom" }]) {
      const job = await json<{ id: string }>(await takeOne(ep, "w1"));
      expect((await done(ep, "w1", job.id, outcome)).status).toBe(200);
    }
    expect(ids).toHaveLength(3);

    const families = await scrape(`/v2/${ep}/metrics/prometheus`, client);
    // Every family is there once, with its help and type.
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ["edge_jobs_jobs", "GAUGE"],
      ["edge_jobs_jobs_submitted_total", "COUNTER"],
      ["edge_jobs_jobs_ended_total", "COUNTER"],
      ["edge_jobs_jobs_retried_total", "COUNTER"],
      ["edge_jobs_webhook_deliveries_total", "COUNTER"],
      ["edge_jobs_workers", "GAUGE"],
      ["edge_jobs_execution_seconds", "SUMMARY"],
      ["edge_jobs_delay_seconds", "SUMMARY"],
      ["edge_jobs_cold_start_seconds", "SUMMARY"],
    ]);
    for (const f of families) expect(f.help.length).toBeGreaterThan(5);

    expect(value(families, "edge_jobs_jobs", ep, { state: "IN_QUEUE" })).toBe(1);
    expect(value(families, "edge_jobs_jobs", ep, { state: "IN_PROGRESS" })).toBe(0);
    expect(value(families, "edge_jobs_jobs_submitted_total", ep)).toBe(3);
    expect(value(families, "edge_jobs_jobs_ended_total", ep, { outcome: "completed" })).toBe(1);
    expect(value(families, "edge_jobs_jobs_ended_total", ep, { outcome: "failed" })).toBe(1);
    expect(value(families, "edge_jobs_jobs_ended_total", ep, { outcome: "timed_out" })).toBe(0);
    expect(value(families, "edge_jobs_jobs_retried_total", ep)).toBe(0);

    // The same numbers as /health and /metrics.
    const health = await json<{ jobs: { inQueue: number; completed: number; failed: number }; workers: Record<string, number> }>(await call("GET", `/v2/${ep}/health`, { key: client }));
    expect(health.jobs).toMatchObject({ inQueue: 1, completed: 1, failed: 1 });
    const workers = families.find((f) => f.name === "edge_jobs_workers")!.metrics.filter((m) => m.labels?.endpoint === ep);
    expect(workers.map((m) => m.labels!.state).sort()).toEqual(["idle", "initializing", "running", "throttled", "unhealthy"]);
    expect(workers.find((m) => m.labels!.state === "idle")!.value).toBe(String(health.workers.idle));
    expect(workers.find((m) => m.labels!.state === "running")!.value).toBe(String(health.workers.running));
    type Times = { p70: number | null; p90: number | null; p98: number | null };
    const metrics = await json<{ total: { executionTime: Times; delayTime: Times; coldStartTime: Times } }>(await call("GET", `/v2/${ep}/metrics`, { key: client }));
    expect(metrics.total.executionTime.p70).not.toBeNull();
    // This parser keeps a summary's quantiles but drops its other labels (it takes them from
    // `_count`/`_sum` lines, which these window summaries do not have): one endpoint here, so one set.
    for (const [name, times] of [["edge_jobs_execution_seconds", metrics.total.executionTime], ["edge_jobs_delay_seconds", metrics.total.delayTime], ["edge_jobs_cold_start_seconds", metrics.total.coldStartTime]] as const) {
      const samples = families.find((f) => f.name === name)!.metrics;
      expect(samples).toHaveLength(1);
      for (const [k, q] of [["p70", "0.7"], ["p90", "0.9"], ["p98", "0.98"]] as const) {
        const got = Number(samples[0]!.quantiles![q]);
        // Seconds here, ms there; no observation is NaN, not 0.
        if (times[k] === null) expect(Number.isNaN(got), `${name} ${q}`).toBe(true);
        else expect(got, `${name} ${q}`).toBeCloseTo(times[k]! / 1000, 6);
      }
    }
  });

  it("takes the endpoint's client key or the admin key, and refuses others", async () => {
    const ep = await createEndpoint();
    const worker = await createKey(ep, "worker");
    expect((await call("GET", `/v2/${ep}/metrics/prometheus`)).status).toBe(200); // admin
    expect((await call("GET", `/v2/${ep}/metrics/prometheus`, { key: worker })).status).toBe(403);
    expect((await call("GET", `/v2/${ep}/metrics/prometheus`, { key: null })).status).toBe(401);
    expect((await call("GET", `/v2/no-such-endpoint-${Date.now()}/metrics/prometheus`)).status).toBe(404);
    expect((await call("GET", "/admin/metrics", { key: worker })).status).toBe(401);
    expect((await call("POST", `/v2/${ep}/metrics/prometheus`)).status).toBe(405);
  });

  it("/admin/metrics has every endpoint, each sample labelled with its endpoint", async () => {
    const a = await createEndpoint();
    const b = await createEndpoint();
    await submit(b, { input: { n: 1 } });
    const families = await scrape("/admin/metrics");
    expect(value(families, "edge_jobs_jobs_submitted_total", a)).toBe(0);
    expect(value(families, "edge_jobs_jobs_submitted_total", b)).toBe(1);
    expect(value(families, "edge_jobs_jobs", b, { state: "IN_QUEUE" })).toBe(1);
    // Each family is declared once, however many endpoints there are.
    const names = families.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("escapes label values as the format wants (a hostile name round-trips through the parser)", () => {
    const hostile = 'ep"with\\quote\nand newline';
    const numbers: EndpointNumbers = {
      endpointId: hostile,
      byState: { IN_QUEUE: 2 },
      counters: { submitted: 5, completed: 1, errored: 0, failed: 1, cancelled: 0, timedOut: 1, retried: 2, webhookSent: 3, webhookSucceeded: 2, webhookFailed: 1 },
      workers: { initializing: 0, idle: 1, running: 2, throttled: 0, unhealthy: 0 },
      lastHour: null,
    };
    const families = parsePrometheus(prometheusText([numbers])) as Family[];
    // Nothing observed: the quantiles are NaN, not 0.
    expect(Object.values(families.find((f) => f.name === "edge_jobs_execution_seconds")!.metrics[0]!.quantiles!).map(Number).every(Number.isNaN)).toBe(true);
    expect(value(families, "edge_jobs_jobs", hostile, { state: "IN_QUEUE" })).toBe(2);
    expect(value(families, "edge_jobs_webhook_deliveries_total", hostile, { result: "failed" })).toBe(1);
    expect(value(families, "edge_jobs_jobs_ended_total", hostile, { outcome: "timed_out" })).toBe(1);
  });
});
