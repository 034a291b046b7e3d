/**
 * Issue 16, item 4: flow keys from hostile input are a 400 or work, never a 5xx — on submit,
 * in batch requests, in the endpoint config and on the override routes — and keys such as
 * `__proto__` and `constructor` are ordinary keys. The override count is bounded (409).
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { FLOW_KEYS } from "../../src/shared/limits";
import { call, createEndpoint, endpointStubOf, json } from "./helpers";
import { drainIds, takeKeep } from "./flow-keys-kit";

const run = (ep: string, body: unknown) => call("POST", `/v2/${ep}/run`, { body });

describe("flow keys: submit bodies", () => {
  it("refuses differing keys, a flow key with a sequenceKey, bad lengths and non-strings with 400", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ concurrencyKey: "a", rateLimitKey: "b" }, /differ/],
      [{ concurrencyKey: "a", sequenceKey: "s" }, /sequenceKey/],
      [{ rateLimitKey: "a", sequenceKey: "s" }, /sequenceKey/],
      [{ concurrencyKey: "x".repeat(256) }, /concurrencyKey/],
      [{ rateLimitKey: "" }, /rateLimitKey/],
      [{ concurrencyKey: 7 }, /concurrencyKey/],
      [{ concurrencyKey: null }, /concurrencyKey/],
      [{ rateLimitKey: { a: 1 } }, /rateLimitKey/],
      [{ concurrencyKey: ["a"] }, /concurrencyKey/],
    ];
    for (const [fields, message] of bad) {
      const res = await run(ep, { input: {}, ...fields });
      expect(res.status, JSON.stringify(fields).slice(0, 80)).toBe(400);
      expect(JSON.stringify(await json(res))).toMatch(message);
    }
    // The same key in both, and 255 characters, are fine.
    expect((await run(ep, { input: {}, concurrencyKey: "same", rateLimitKey: "same" })).status).toBe(200);
    expect((await run(ep, { input: {}, concurrencyKey: "x".repeat(255) })).status).toBe(200);
  });

  it("a batch request with differing keys is a 400 naming the request", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const res = await call("POST", `/v2/${ep}/batch`, { body: { requests: [{ input: {} }, { input: {}, concurrencyKey: "a", rateLimitKey: "b" }] } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await json(res))).toMatch(/requests\[1\]\.concurrencyKey/);
  });

  it("__proto__, constructor and hasOwnProperty are ordinary keys: capped, listed, overridden", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 1 });
    for (const key of ["__proto__", "constructor", "hasOwnProperty"]) {
      for (let i = 0; i < 2; i++) expect((await run(ep, { input: {}, concurrencyKey: key })).status).toBe(200);
      const put = await call("PUT", `/admin/endpoints/${ep}/flow-keys/${key}`, { body: { concurrency: 2 } });
      expect(put.status, key).toBe(200);
      expect(await json(put)).toMatchObject({ key, concurrency: 2 });
      expect(await json(await call("GET", `/admin/endpoints/${ep}/flow-keys/${key}`))).toMatchObject({ key, effective: { concurrency: 2 } });
    }
    const listed = await json<{ flowKeys: Array<{ key: string }> }>(await call("GET", `/admin/endpoints/${ep}/flow-keys`));
    expect(listed.flowKeys.map((r) => r.key).sort()).toEqual(["__proto__", "constructor", "hasOwnProperty"]);
    expect(await drainIds(ep, "w")).toHaveLength(6);
    expect((await call("DELETE", `/admin/endpoints/${ep}/flow-keys/__proto__`)).status).toBe(200);
    expect((await call("GET", `/admin/endpoints/${ep}/flow-keys/__proto__`)).status).toBe(404);
  });
});

describe("flow keys: config and override routes", () => {
  it("refuses bad endpoint settings with 400", async () => {
    const bodies = [
      { keyConcurrency: 0 },
      { keyConcurrency: 100_001 },
      { keyConcurrency: 1.5 },
      { keyConcurrency: "2" },
      { keyRateLimit: { limit: 1 } },
      { keyRateLimit: { limit: 1, periodMs: 999 } },
      { keyRateLimit: { limit: 0, periodMs: 1000 } },
      { keyRateLimit: { limit: 1, periodMs: 1000, burst: 2 } },
      { keyRateLimit: [1, 1000] },
    ];
    for (const body of bodies) expect((await call("PUT", `/admin/endpoints/bad-flow-config`, { body })).status, JSON.stringify(body)).toBe(400);
  });

  it("flowShards: 1 by default, at most shards, fixed at creation; a config stored before it keeps its keys where they were (sequenceShards)", async () => {
    for (const body of [{ flowShards: 0 }, { flowShards: 9 }, { flowShards: 1.5 }, { flowShards: "1" }, { shards: 2, flowShards: 3 }, { concurrency: 2, flowShards: 2 }]) {
      expect((await call("PUT", `/admin/endpoints/bad-flow-shards-${Date.now()}`, { body })).status, JSON.stringify(body)).toBe(400);
    }
    const ep = await createEndpoint({ flowShards: 4 });
    expect((await endpointStubOf(ep).getConfig())!.flowShards).toBe(4);
    const change = await call("PUT", `/admin/endpoints/${ep}`, { body: { flowShards: 2 } });
    expect(change.status).toBe(400);
    expect((await json<{ error: string }>(change)).error).toMatch(/fixed when the endpoint is created.*4/);
    // Restating it, or leaving it out, keeps it.
    expect((await json<{ flowShards: number }>(await call("PUT", `/admin/endpoints/${ep}`, { body: { flowShards: 4, shards: 16 } }))).flowShards).toBe(4);
    expect((await json<{ flowShards: number }>(await call("PUT", `/admin/endpoints/${ep}`, { body: {} }))).flowShards).toBe(4);
    expect((await endpointStubOf(await createEndpoint()).getConfig())!.flowShards).toBe(1);
    // A config written before flowShards existed: its keys stay on sequenceShards.
    const old = await createEndpoint();
    const config = await runInDurableObject(endpointStubOf(old), (instance: EndpointObject, state) => {
      const row = state.storage.sql.exec<{ body: string }>("SELECT body FROM config").one();
      const { flowShards: _gone, ...before } = JSON.parse(row.body) as Record<string, unknown>;
      state.storage.sql.exec("UPDATE config SET body = ?", JSON.stringify(before));
      (instance as unknown as { loadState(): void }).loadState();
      return instance.getConfig();
    });
    expect(config).toMatchObject({ sequenceShards: 8, flowShards: 8 });
  });

  it("refuses bad override bodies and keys with 400, unknown endpoints with 404, other methods with 405", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const bodies: unknown[] = [{ concurrency: 0 }, { concurrency: "1" }, { rateLimit: { limit: 1 } }, { rateLimit: 5 }, { other: 1 }, [1], "x"];
    for (const body of bodies) expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/k`, { body })).status, JSON.stringify(body)).toBe(400);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/k`, { raw: "{not json", headers: { "content-type": "application/json" } })).status).toBe(400);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/${"k".repeat(256)}`, { body: {} })).status).toBe(400);
    expect((await call("GET", `/admin/endpoints/${ep}/flow-keys/${"k".repeat(256)}`)).status).toBe(400);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/%ZZ`, { body: {} })).status).toBe(400);
    expect((await call("PUT", `/admin/endpoints/no-such-ep-fk/flow-keys/k`, { body: {} })).status).toBe(404);
    expect((await call("GET", `/admin/endpoints/no-such-ep-fk/flow-keys`)).status).toBe(404);
    expect((await call("DELETE", `/admin/endpoints/no-such-ep-fk/flow-keys/k`)).status).toBe(404);
    expect((await call("POST", `/admin/endpoints/${ep}/flow-keys/k`, { body: {} })).status).toBe(405);
    expect((await call("GET", `/admin/endpoints/${ep}/flow-keys/k`, { key: null })).status).toBe(401);
    // A key with a slash, escaped, and one of spaces and emoji.
    for (const key of ["a/b", "tenant 1 🚀"]) {
      const res = await call("PUT", `/admin/endpoints/${ep}/flow-keys/${encodeURIComponent(key)}`, { body: { concurrency: 1 } });
      expect(res.status, key).toBe(200);
      expect((await json(res)).key).toBe(key);
    }
  });

  it(`keeps at most ${FLOW_KEYS.overridesPerEndpoint} overrides: a new one past it is a 409, an existing one may change`, async () => {
    const ep = await createEndpoint({ shards: 1 });
    await runInDurableObject(endpointStubOf(ep), (_i: EndpointObject, state) => {
      state.storage.sql.exec(
        `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
         INSERT INTO flow_key_rule (flow_key, cap, rate_n, rate_period, updated_at) SELECT 'k' || i, 1, NULL, NULL, 1 FROM s`,
        FLOW_KEYS.overridesPerEndpoint,
      );
    });
    const more = await call("PUT", `/admin/endpoints/${ep}/flow-keys/one-more`, { body: { concurrency: 1 } });
    expect(more.status).toBe(409);
    expect(await json(more)).toMatchObject({ limit: FLOW_KEYS.overridesPerEndpoint });
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/k7`, { body: { concurrency: 5 } })).status).toBe(200);
    expect((await call("DELETE", `/admin/endpoints/${ep}/flow-keys/k8`)).status).toBe(200);
    expect((await call("PUT", `/admin/endpoints/${ep}/flow-keys/one-more`, { body: { concurrency: 1 } })).status).toBe(200);
    expect(await takeKeep(ep, "w")).toBeNull();
  });
});
