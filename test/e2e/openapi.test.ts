/**
 * The OpenAPI document (issue 13) is a valid OpenAPI 3.1 description, checked with a maintained
 * validator of the specification; and the Worker's real answers along a job's whole life match it
 * (every answer the `api` helper gets, here and in the other end-to-end suites, is checked).
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys } from "./api";
import { useServer } from "./harness";
import { checkerAt, checkerFor } from "./openapi-check";

const server = useServer({ TAKE_WAIT_MS: "1000" });

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as Record<string, unknown>;
    const validator = new Validator();
    const res = await validator.validate(doc);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("matches the real answers of a job's life: submit, take, progress, done, status, history, health, admin reads", async () => {
    const ep = "e2e-openapi";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const client = (m: string, p: string, b?: unknown) => api(server.base, m, p, keys.client, b);
    const worker = (m: string, p: string, b?: unknown) => api(server.base, m, p, keys.worker, b);
    const admin = (m: string, p: string, b?: unknown) => api(server.base, m, p, server.adminKey, b);

    const run = await client("POST", `/v2/${ep}/run`, { input: { n: 1 }, webhook: undefined });
    expect(run.status).toBe(200);
    const id = run.body.id as string;
    expect((await client("GET", `/v2/${ep}/status/${id}`)).body.status).toBe("IN_QUEUE");
    const taken = await worker("GET", `/v2/${ep}/job-take/w1?gpu=none&job_in_progress=0`);
    expect(taken).toMatchObject({ status: 200, body: { id, input: { n: 1 } } });
    expect((await worker("POST", `/v2/${ep}/job-stream/w1/${id}?gpu=none&isStream=true`, { output: [{ part: 1 }] })).status).toBe(200);
    expect((await worker("GET", `/v2/${ep}/ping/w1?job_id=${id}&gpu=none`)).status).toBe(200);
    expect((await worker("POST", `/v2/${ep}/job-done/w1/${id}?gpu=none&isStream=false`, { output: { ok: true } })).status).toBe(200);
    expect((await client("GET", `/v2/${ep}/status/${id}`)).body.status).toBe("COMPLETED");
    expect((await client("GET", `/v2/${ep}/history/${id}`)).status).toBe(200);
    expect((await client("GET", `/v2/${ep}/health`)).status).toBe(200);
    expect((await client("GET", `/v2/${ep}/metrics`)).status).toBe(200);
    expect((await worker("GET", `/v2/${ep}/job-take/w1?gpu=none&job_in_progress=0`)).status).toBe(204);
    const cancelled = await client("POST", `/v2/${ep}/run`, { input: { n: 2 } });
    expect((await client("POST", `/v2/${ep}/cancel/${cancelled.body.id as string}`)).body.status).toBe("CANCELLED");
    expect((await client("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(409); // it has completed
    expect((await client("GET", `/v2/${ep}/status/no-such-job`)).status).toBe(404);
    for (const p of [`/admin/endpoints`, `/admin/endpoints/${ep}`, `/admin/endpoints/${ep}/keys`, `/admin/endpoints/${ep}/jobs`, `/admin/endpoints/${ep}/workers`, `/admin/endpoints/${ep}/counters`, `/admin/endpoints/${ep}/load`]) {
      expect((await admin("GET", p)).status, p).toBe(200);
    }
  });

  it("the check catches an answer that drifts from the document (a planted one)", async () => {
    const checker = await checkerAt(server.base);
    const fine = checker.check("POST", `${server.base}/v2/x/run`, 200, "application/json", { id: "abc", status: "IN_QUEUE" });
    expect(fine).toEqual([]);
    expect(checker.check("POST", `${server.base}/v2/x/run`, 200, "application/json", { id: 7, status: "IN_QUEUE" }).length).toBeGreaterThan(0);
    expect(checker.check("POST", `${server.base}/v2/x/run`, 200, "application/json", { id: "abc", status: "RUNNING" }).length).toBeGreaterThan(0);
    expect(checker.check("GET", `${server.base}/v2/x/never-served`, 200, "application/json", {})).toEqual(["GET /v2/x/never-served: no documented operation"]);
    // A copy of the document without the run answer's schema cannot tell: the check is the document's.
    const doc = structuredClone(checker.doc) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    doc.paths["/v2/{ep}/run"]!.post!.responses["200"] = { description: "anything" };
    expect(checkerFor(doc).check("POST", `${server.base}/v2/x/run`, 200, "application/json", { id: 7 })).toEqual(["POST /v2/{ep}/run 200: documented without a body, answered with one"]);
  });
});
