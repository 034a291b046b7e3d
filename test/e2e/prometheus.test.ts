/**
 * Prometheus scraping over HTTP (issue 13, item 4): what `curl /admin/metrics` gets from the real
 * Worker parses with a Prometheus text-format parser and counts the jobs just run.
 */
import parsePrometheus from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys } from "./api";
import { useServer } from "./harness";
import { checkerAt } from "./openapi-check";

const server = useServer({ TAKE_WAIT_MS: "1000" });

type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> };

describe("Prometheus scraping", () => {
  it("GET /admin/metrics and /v2/{ep}/metrics/prometheus parse, as documented, with the jobs just run", async () => {
    const ep = "e2e-prometheus";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    for (let i = 0; i < 3; i++) expect((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { i } })).status).toBe(200);
    const taken = await api(server.base, "GET", `/v2/${ep}/job-take/w1?job_in_progress=0`, keys.worker);
    expect((await api(server.base, "POST", `/v2/${ep}/job-done/w1/${taken.body.id as string}`, keys.worker, { output: { ok: 1 } })).status).toBe(200);

    const checker = await checkerAt(server.base);
    for (const [path, key] of [["/admin/metrics", server.adminKey], [`/v2/${ep}/metrics/prometheus`, keys.client]] as const) {
      const res = await fetch(`${server.base}${path}`, { headers: { authorization: `Bearer ${key}` } });
      const text = await res.text();
      expect(res.status, path).toBe(200);
      expect(checker.check("GET", `${server.base}${path}`, res.status, res.headers.get("content-type"), text)).toEqual([]);
      const families = parsePrometheus(text) as Family[];
      const sample = (name: string, labels: Record<string, string>) =>
        families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.endpoint === ep && Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
      expect(sample("edge_jobs_jobs_submitted_total", {}), path).toBe("3");
      expect(sample("edge_jobs_jobs", { state: "IN_QUEUE" }), path).toBe("2");
      expect(sample("edge_jobs_jobs_ended_total", { outcome: "completed" }), path).toBe("1");
      expect(families.find((f) => f.name === "edge_jobs_execution_seconds")?.type).toBe("SUMMARY");
    }
  });
});
