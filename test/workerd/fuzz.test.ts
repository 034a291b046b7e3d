/**
 * Fuzzing the API: generated valid, near-valid and hostile requests to every route — wrong types,
 * huge and deeply nested JSON, bad encodings, oversize bodies with and without Content-Length,
 * unknown methods, bad keys. Every answer is below 500, every 4xx is a clear JSON error, and a
 * rejected request changes nothing (the endpoint's counts and a sentinel job stay as they were).
 */
import fc from "fast-check";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call, createEndpoint, createKey, json, seedFrom, status, submit } from "./helpers";

/** Printed with the results; replay a failure with FUZZ_SEED=<seed> npm test. */
const SEED = seedFrom("FUZZ_SEED");

const ROUTES = [
  "/v2/{ep}/run", "/v2/{ep}/runsync?wait=1000", "/v2/{ep}/status/{id}", "/v2/{ep}/status-sync/{id}?wait=1000", "/v2/{ep}/stream/{id}?wait=0",
  "/v2/{ep}/cancel/{id}", "/v2/{ep}/retry/{id}", "/v2/{ep}/requeue/{id}", "/v2/{ep}/purge-queue", "/v2/{ep}/health", "/v2/{ep}/history/{id}",
  "/v2/{ep}/webhooks/{id}", "/v2/{ep}/webhooks/{id}/redeliver", "/v2/{ep}/metrics?window=1h", "/v2/{ep}/job-take/{w}?job_in_progress=1",
  "/v2/{ep}/job-take-batch/{w}?batch_size=2", "/v2/{ep}/job-stop/{w}", "/v2/{ep}/job-done/{w}/{id}", "/v2/{ep}/job-stream/{w}/{id}",
  "/v2/{ep}/ping/{w}?job_id={id}", "/admin/endpoints", "/admin/endpoints/{ep}", "/admin/endpoints/{ep}/keys", "/admin/endpoints/{ep}/keys/key_x",
  "/admin/endpoints/{ep}/pause", "/admin/endpoints/{ep}/workers", "/admin/endpoints/{ep}/jobs?limit=5", "/admin/endpoints/{ep}/counters",
  "/dashboard", "/", "/v2/{ep}/nope", "/v3/x",
] as const;

const hostileString = fc.oneof(
  fc.string(),
  fc.constantFrom("", " ", "\u0000", "../..", "%00", "%2e%2e%2f", "<script>", "💥".repeat(50), "a".repeat(5000), "null", "-1", "1e309", "NaN"),
);

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small" }, fc.constant(null), fc.boolean(), fc.double(), fc.integer(), hostileString, fc.array(tie("value"), { maxLength: 4 }), fc.dictionary(hostileString, tie("value"), { maxKeys: 4 })),
})).value;

/** Bodies: valid submits, near-valid ones, arbitrary JSON, and hostile bytes. */
const body = fc.oneof(
  fc.record({ input: jsonValue }),
  fc.record({ input: jsonValue, policy: fc.dictionary(fc.constantFrom("ttl", "executionTimeout", "lowPriority", "maxAttempts", "bogus"), jsonValue) }),
  fc.record({ input: jsonValue, webhook: hostileString, priority: jsonValue, sequenceKey: jsonValue, idempotencyKey: jsonValue }, { requiredKeys: [] }),
  fc.record({ mode: jsonValue, workerUrls: jsonValue, ttl: jsonValue, concurrency: jsonValue, scope: jsonValue }, { requiredKeys: [] }),
  fc.record({ output: jsonValue, error: jsonValue, status: fc.constantFrom("IN_PROGRESS", "COMPLETED", 5), stopPod: jsonValue }, { requiredKeys: [] }),
  jsonValue,
).map((v) => JSON.stringify(v));

const rawBody = fc.oneof(
  body,
  fc.constantFrom("{", "[1,", '{"input":}', "\u0000\u0001", "input=1&x=2", "   ", "{\"input\": 1}}", `{"input":${"[".repeat(20_000)}${"]".repeat(20_000)}}`),
  fc.uint8Array({ maxLength: 64 }).map((b) => new Uint8Array([0xff, 0xfe, ...b])),
);

const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD");
const keyChoice = fc.constantFrom("admin", "client", "worker", "wrong", "none", "bearer-empty", "raw-admin");

describe("API fuzz", () => {
  it(`no 5xx and a clear JSON error for every 4xx, on every route (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const ep = await createEndpoint();
    const clientKey = await createKey(ep, "client");
    const workerKey = await createKey(ep, "worker");
    const sentinel = await submit(ep, { input: { keep: "me" } });
    const snapshot = async () => ({
      health: await json(await call("GET", `/v2/${ep}/health`)),
      sentinel: await json(await status(ep, sentinel)),
      config: await json(await call("GET", `/admin/endpoints/${ep}`)),
    });
    const before = await snapshot();
    const ids = fc.constantFrom(sentinel, "0".repeat(64), "nope", "%2F..%2F", "a".repeat(300));
    const eps = fc.constantFrom(ep, "missing-endpoint", "bad id!", "x".repeat(80));
    const workers = fc.constantFrom("w1", "bad worker", "", "w".repeat(70));
    let requests = 0;
    let rejected = 0;

    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), method, keyChoice, eps, ids, workers, fc.option(rawBody), fc.boolean(), async (route, m, k, e, id, w, b, declareHuge) => {
        const path = route.replace("{ep}", encodeURIComponent(e)).replace("{id}", encodeURIComponent(id)).replace("{w}", encodeURIComponent(w));
        const headers: Record<string, string> = {};
        if (k === "admin") headers.authorization = `Bearer ${ADMIN}`;
        if (k === "raw-admin") headers.authorization = ADMIN;
        if (k === "client") headers.authorization = `Bearer ${clientKey}`;
        if (k === "worker") headers.authorization = workerKey;
        if (k === "wrong") headers.authorization = "Bearer not-a-key";
        if (k === "bearer-empty") headers.authorization = "Bearer ";
        if (declareHuge) headers["content-length"] = String(50 * 1024 * 1024);
        const hasBody = b !== null && m !== "GET" && m !== "HEAD";
        const req = new Request(`http://edge.test${path}`, { method: m, headers, body: hasBody ? b : undefined });
        const res = await exports.default.fetch(req);
        requests++;
        expect(res.status, `${m} ${path}`).toBeLessThan(500);
        if (res.status >= 400) {
          rejected++;
          if (m !== "HEAD") {
            expect(res.headers.get("content-type"), `${m} ${path} ${res.status}`).toMatch(/application\/json/);
            const err = (await res.json()) as { error?: unknown };
            expect(typeof err.error).toBe("string");
            expect((err.error as string).length).toBeGreaterThan(3);
          }
        } else {
          await res.arrayBuffer();
        }
      }),
      { seed: SEED, numRuns: 400, endOnFailure: true },
    );
    // Fuzzed requests may also have been valid and accepted (a submit, a take, a cancel, even the
    // endpoint's deletion); what must hold is that every answer above was well-formed and that the
    // endpoint still answers consistently: its config and the sentinel job, or a clear 404.
    expect(before.config).toMatchObject({ id: ep });
    const config = await call("GET", `/admin/endpoints/${ep}`);
    expect([200, 404]).toContain(config.status);
    if (config.status === 200) {
      expect(await json(config)).toMatchObject({ id: ep });
      expect(await json(await status(ep, sentinel))).toMatchObject({ id: sentinel });
    } else {
      expect((await json(config)).error).toMatch(/does not exist/);
    }
    console.log(`fuzz: ${requests} requests, ${rejected} rejected with a JSON error, seed ${SEED}`);
  });

  it("a rejected request changes nothing", { timeout: 60_000 }, async () => {
    const ep = await createEndpoint();
    const sentinel = await submit(ep, { input: { keep: "me" } });
    const snapshot = async () => JSON.stringify([await json(await call("GET", `/v2/${ep}/health`)), await json(await status(ep, sentinel)), await json(await call("GET", `/admin/endpoints/${ep}`))]);
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(rawBody, fc.constantFrom("run", "runsync?wait=1000"), fc.constantFrom("wrong", "none", "ok"), async (b, op, k) => {
        const headers: Record<string, string> = k === "ok" ? { authorization: `Bearer ${ADMIN}` } : k === "wrong" ? { authorization: "nope" } : {};
        const res = await exports.default.fetch(new Request(`http://edge.test/v2/${ep}/${op}`, { method: "POST", headers, body: b }));
        if (res.status === 200) {
          // A valid submit was generated: cancel it so the snapshot holds, and go on.
          const { id } = (await res.json()) as { id: string };
          await call("POST", `/v2/${ep}/cancel/${id}`);
          return;
        }
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
      }),
      { seed: SEED, numRuns: 150 },
    );
    const after = JSON.parse(await snapshot()) as [{ jobs: { inQueue: number } }, unknown, unknown];
    const was = JSON.parse(before) as [{ jobs: { inQueue: number } }, unknown, unknown];
    expect(after[0].jobs.inQueue).toBe(was[0].jobs.inQueue);
    expect(after[1]).toEqual(was[1]);
    expect(after[2]).toEqual(was[2]);
  });
});
