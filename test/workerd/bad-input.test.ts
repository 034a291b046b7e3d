/**
 * Bad input gets a clear JSON error with the right status, and changes nothing.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { call, createEndpoint, createKey, done, json, status, submit, take, uniqueEndpointId } from "./helpers";

async function expectError(res: Response, code: number, pattern: RegExp): Promise<Record<string, unknown>> {
  expect(res.status).toBe(code);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = await json(res);
  expect(body.error).toMatch(pattern);
  return body;
}

async function queueCounts(ep: string) {
  return (await json<{ jobs: Record<string, number> }>(await call("GET", `/v2/${ep}/health`))).jobs;
}

describe("submit bodies", () => {
  const cases: Array<[string, { raw?: string; body?: unknown }, RegExp]> = [
    ["malformed JSON", { raw: '{"input": ' }, /malformed JSON/],
    ["a JSON array", { body: [1, 2] }, /must be a JSON object/],
    ["a JSON string", { body: "hi" }, /must be a JSON object/],
    ["an empty body", { raw: "" }, /empty/],
    ["no input", { body: { webhook: "https://example.com/h" } }, /input/],
    ["policy not an object", { body: { input: 1, policy: 5 } }, /policy/],
    ["executionTimeout a string", { body: { input: 1, policy: { executionTimeout: "10s" } } }, /policy\.executionTimeout/],
    ["executionTimeout below 5 s", { body: { input: 1, policy: { executionTimeout: 4999 } } }, /policy\.executionTimeout/],
    ["executionTimeout above 7 days", { body: { input: 1, policy: { executionTimeout: 604_800_001 } } }, /policy\.executionTimeout/],
    ["ttl below 10 s", { body: { input: 1, policy: { ttl: 9999 } } }, /policy\.ttl/],
    ["ttl above 7 days", { body: { input: 1, policy: { ttl: 604_800_001 } } }, /policy\.ttl/],
    ["ttl fractional", { body: { input: 1, policy: { ttl: 10000.5 } } }, /policy\.ttl/],
    ["lowPriority not a boolean", { body: { input: 1, policy: { lowPriority: "yes" } } }, /policy\.lowPriority/],
    ["an unknown policy field", { body: { input: 1, policy: { timeout: 5 } } }, /policy/],
    ["a webhook that is not a URL", { body: { input: 1, webhook: "not a url" } }, /webhook/],
    ["a webhook with another scheme", { body: { input: 1, webhook: "ftp://example.com/x" } }, /webhook/],
    ["priority not an integer", { body: { input: 1, priority: 1.5 } }, /priority/],
  ];
  for (const [name, req, pattern] of cases) {
    it(`${name} is a 400 and queues nothing`, async () => {
      const ep = await createEndpoint();
      const res = await call("POST", `/v2/${ep}/run`, req);
      await expectError(res, 400, pattern);
      expect(await queueCounts(ep)).toMatchObject({ inQueue: 0 });
    });
  }

  it("defect 18: {\"input\": null} is a 400 and queues nothing; {}, 0, \"\", false and [] are inputs", async () => {
    const ep = await createEndpoint();
    for (const path of ["run", "runsync?wait=1000"]) {
      await expectError(await call("POST", `/v2/${ep}/${path}`, { raw: '{"input": null}' }), 400, /input: input is required and must not be null/);
    }
    expect(await queueCounts(ep)).toMatchObject({ inQueue: 0 });
    for (const input of [{}, 0, "", false, []]) {
      const res = await call("POST", `/v2/${ep}/run`, { body: { input } });
      expect(res.status, JSON.stringify(input)).toBe(200);
      const id = (await json<{ id: string }>(res)).id;
      expect((await json<{ input?: unknown }>(await take(ep))).input, JSON.stringify(input)).toEqual(input);
      await done(ep, "w1", id, { output: 1 });
    }
  });

  it("invalid UTF-8 is a 400", async () => {
    const ep = await createEndpoint();
    const raw = new Uint8Array([0x7b, 0x22, 0x69, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    await expectError(await call("POST", `/v2/${ep}/run`, { raw }), 400, /UTF-8/);
  });

  it("deeply nested JSON is refused with a 400 or accepted whole, never a 5xx", async () => {
    const ep = await createEndpoint();
    const depth = 100_000;
    const raw = `{"input":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const res = await call("POST", `/v2/${ep}/run`, { raw });
    expect([200, 400]).toContain(res.status);
    if (res.status === 400) expect((await json(res)).error).toMatch(/nest|JSON/);
  });
});

describe("admin bodies", () => {
  it("unknown fields are a 400 naming them", async () => {
    const body = await expectError(await call("PUT", `/admin/endpoints/${uniqueEndpointId()}`, { body: { mode: "pull", colour: "red" } }), 400, /colour|unrecognized/i);
    expect(body.issues).toBeDefined();
  });

  it("wrong types and out-of-range values are a 400", async () => {
    for (const body of [{ mode: "poll" }, { ttl: "1h" }, { executionTimeout: 1 }, { concurrency: 0 }, { webhookSecret: "hunter2" }, { workerUrls: ["javascript:alert(1)"] }]) {
      const id = uniqueEndpointId();
      await expectError(await call("PUT", `/admin/endpoints/${id}`, { body }), 400, /invalid body/);
      expect((await call("GET", `/admin/endpoints/${id}`)).status).toBe(404); // nothing was created
    }
  });

  it("defect 14: a webhookSecret that matches the pattern but is not decodable base64 is a 400 and keeps the stored secret", async () => {
    const ep = await createEndpoint();
    const before = (await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${ep}`))).webhookSecret;
    for (const webhookSecret of [`whsec_${"A".repeat(25)}`, `whsec_${"A".repeat(29)}=`, `whsec_${"A".repeat(22)}B==`]) {
      expect(atob.bind(null, webhookSecret.slice(6)), webhookSecret).toThrow();
      await expectError(await call("PUT", `/admin/endpoints/${ep}`, { body: { webhookSecret } }), 400, /webhookSecret: must be whsec_ followed by valid base64/);
      const id = uniqueEndpointId();
      await expectError(await call("PUT", `/admin/endpoints/${id}`, { body: { webhookSecret } }), 400, /webhookSecret/);
      expect((await call("GET", `/admin/endpoints/${id}`)).status).toBe(404);
    }
    expect((await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${ep}`))).webhookSecret).toBe(before);
    // Secrets that decode are still taken, padded or not.
    for (const webhookSecret of [`whsec_${"A".repeat(22)}==`, `whsec_${"A".repeat(23)}`, `whsec_${"A".repeat(24)}`]) {
      expect((await call("PUT", `/admin/endpoints/${ep}`, { body: { webhookSecret } })).status, webhookSecret).toBe(200);
    }
  });

  it("a key scope other than client or worker is a 400", async () => {
    const ep = await createEndpoint();
    await expectError(await call("POST", `/admin/endpoints/${ep}/keys`, { body: { scope: "admin" } }), 400, /scope/);
    expect((await json<{ keys: unknown[] }>(await call("GET", `/admin/endpoints/${ep}/keys`))).keys).toHaveLength(0);
  });

  it("an invalid endpoint id is a 404 with a clear message", async () => {
    await expectError(await call("PUT", `/admin/endpoints/${"x".repeat(65)}`, { body: {} }), 404, /not a valid endpoint id/);
  });
});

describe("keys and auth", () => {
  it("a missing key is a 401 that says how to send one", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/run`, { key: null, body: { input: 1 } });
    await expectError(res, 401, /Authorization/);
    expect(res.headers.get("www-authenticate")).toMatch(/Bearer/);
    expect(await queueCounts(ep)).toMatchObject({ inQueue: 0 });
  });

  it("a wrong key is a 401 on every API", async () => {
    const ep = await createEndpoint();
    await expectError(await call("POST", `/v2/${ep}/run`, { key: "wrong", body: { input: 1 } }), 401, /invalid API key/);
    await expectError(await call("GET", `/v2/${ep}/job-take/w1`, { key: "wrong" }), 401, /invalid API key/);
    await expectError(await call("GET", `/admin/endpoints`, { key: "wrong" }), 401, /admin key/);
    await expectError(await call("GET", `/admin/endpoints`, { key: null }), 401, /missing API key/);
  });

  it("an unknown endpoint is a 404 saying how to create it", async () => {
    const id = uniqueEndpointId("missing");
    await expectError(await call("POST", `/v2/${id}/run`, { body: { input: 1 } }), 404, new RegExp(`PUT /admin/endpoints/${id}`));
  });

  it("a Worker deployed without ADMIN_KEY refuses every request", async () => {
    const bare = { ...env, ADMIN_KEY: undefined } as Env;
    for (const path of ["/", "/admin/endpoints", "/v2/x/health"]) {
      const res = await worker.fetch(new Request(`http://edge.test${path}`, { headers: { authorization: "anything" } }), bare, createExecutionContext());
      await expectError(res, 503, /ADMIN_KEY/);
    }
  });
});

describe("routes and methods", () => {
  it("an unknown route is a 404 naming it", async () => {
    await expectError(await call("GET", "/v2/ep/nothing-here"), 404, /no route for GET \/v2\/ep\/nothing-here/);
    await expectError(await call("GET", "/v1/run"), 404, /no route/);
  });

  it("defect 12: a malformed percent-escape anywhere in a path is a JSON 400 naming it, never a 500", async () => {
    const ep = await createEndpoint();
    const worker = await createKey(ep, "worker");
    const cases: Array<[string, string, string | undefined]> = [
      ["PUT", "/admin/endpoints/%ZZ", undefined],
      ["DELETE", "/admin/endpoints/%ZZ", undefined],
      ["GET", "/admin/endpoints/%ZZ", undefined],
      ["POST", "/admin/endpoints/%E0%A4%A/pause", undefined],
      ["DELETE", `/admin/endpoints/${ep}/keys/%ZZ`, undefined],
      ["GET", "/v2/%ZZ/status/x", undefined],
      ["GET", `/v2/${ep}/status/%ZZ`, undefined],
      ["POST", "/v2/%/run", undefined],
      ["GET", `/v2/${ep}/job-take/%ZZ`, worker],
      ["POST", `/v2/${ep}/job-done/w1/%C0%AF`, worker],
      ["GET", "/%ZZ", undefined],
    ];
    for (const [method, path, key] of cases) {
      const res = await call(method, path, { key, body: method === "PUT" || method === "POST" ? {} : undefined });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/application\/json/);
      expect((await json(res)).error, `${method} ${path}`).toMatch(/malformed percent-escape/);
    }
    // Well-formed escapes still route as before.
    expect((await call("GET", `/admin/endpoints/${encodeURIComponent(ep)}`)).status).toBe(200);
    expect((await call("PUT", "/admin/endpoints/a%20b", { body: {} })).status).toBe(404);
  });

  it("a wrong method is a 405 with Allow", async () => {
    const ep = await createEndpoint();
    for (const [method, path, allow] of [
      ["GET", `/v2/${ep}/run`, "POST"],
      ["DELETE", `/v2/${ep}/status/abc`, "GET, POST"],
      ["POST", `/v2/${ep}/health`, "GET"],
      ["PATCH", `/admin/endpoints/${ep}`, "PUT, GET, DELETE"],
    ] as const) {
      const res = await call(method, path);
      await expectError(res, 405, /not allowed/);
      expect(res.headers.get("allow")).toBe(allow);
    }
  });
});

describe("worker reports", () => {
  it("a report from a worker that does not hold the lease is a 409 and changes nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    await expectError(await done(ep, "w2", id, { output: "stolen" }), 409, /does not hold the lease/);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS", workerId: "w1" });
  });

  it("a repeat of an accepted result answers 200 and changes nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    expect((await done(ep, "w1", id, { output: "first" })).status).toBe(200);
    expect((await done(ep, "w1", id, { output: "second" })).status).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "first" });
  });

  it("progress after the final result is refused and never overrides it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    await done(ep, "w1", id, { output: "final" });
    await expectError(await done(ep, "w1", id, { status: "IN_PROGRESS", output: "10%" }), 409, /COMPLETED/);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "final" });
  });

  it("malformed job-done bodies are a 400 and change nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    await expectError(await call("POST", `/v2/${ep}/job-done/w1/${id}`, { raw: "output=1" }), 400, /malformed JSON/);
    await expectError(await call("POST", `/v2/${ep}/job-done/w1/${id}`, { raw: "[1]" }), 400, /JSON object/);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS" });
  });

  it("job-done for an unknown job is a 404; an invalid worker id a 400", async () => {
    const ep = await createEndpoint();
    await expectError(await done(ep, "w1", "0".repeat(64), { output: 1 }), 404, /not found/);
    await expectError(await call("GET", `/v2/${ep}/job-take/${"w".repeat(70)}`), 400, /worker id/);
  });

  it("a client key cannot report results", async () => {
    const ep = await createEndpoint();
    const client = await createKey(ep, "client");
    const id = await submit(ep);
    await take(ep, "w1");
    await expectError(await call("POST", `/v2/${ep}/job-done/w1/${id}`, { key: client, body: { output: 1 } }), 403, /worker API/);
  });
});
