/**
 * Client rate limits (src/http/rate-limit.ts) on the real bindings: miniflare counts wrangler.toml's
 * [[ratelimits]] exactly, in 10 s windows aligned to the wall clock, so each burst starts early in
 * a window. A key over its limit gets a 429 with Retry-After; nothing else is refused meanwhile.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RATE_LIMITS, enforceRateLimit, rateLimitGroupOf } from "../../src/http/rate-limit";
import type { EndpointConfig } from "../../src/endpoints/config";
import { ADMIN, call, createEndpoint, createKey, json, submit } from "./helpers";

const PERIOD_MS = 10_000;

/** Waits for the next window when less than `needMs` of this one is left. */
async function roomInWindow(needMs = 4_000): Promise<void> {
  const left = PERIOD_MS - (Date.now() % PERIOD_MS);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 50));
}

async function burst(n: number, send: () => Promise<Response>): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) out.push(await send());
  return out;
}

const statuses = (rs: Response[]) => rs.map((r) => r.status);

describe("client rate limits", () => {
  it("a burst of /purge-queue over 2 per 10 s gets a RunPod-shaped 429 with Retry-After; another key, the admin key and other routes are not refused", async () => {
    const ep = await createEndpoint();
    const [a, b] = [await createKey(ep, "client"), await createKey(ep, "client")];
    const job = await submit(ep, { input: 1 }, a);
    await roomInWindow();
    const first = await burst(3, () => call("POST", `/v2/${ep}/purge-queue`, { key: a }));
    expect(statuses(first)).toEqual([200, 200, 429]);
    const refused = first[2]!;
    expect(refused.headers.get("retry-after")).toBe("10");
    expect(refused.headers.get("content-type")).toMatch(/application\/json/);
    const body = await json(refused);
    expect(body).toEqual({
      error: `rate limit exceeded: at most 2 requests per 10 s to /purge-queue per key on endpoint '${ep}'; retry after 10 s`,
      group: "purge-queue",
      limit: 2,
      periodSeconds: 10,
      retryAfterSeconds: 10,
    });
    // Still refused while the window lasts, and a refusal removed nothing.
    expect((await call("POST", `/v2/${ep}/purge-queue`, { key: a })).status).toBe(429);
    // Meanwhile: the second key, the admin key, and the same key on other routes go through.
    expect(statuses(await burst(2, () => call("POST", `/v2/${ep}/purge-queue`, { key: b })))).toEqual([200, 200]);
    expect(statuses(await burst(5, () => call("POST", `/v2/${ep}/purge-queue`, { key: ADMIN })))).toEqual([200, 200, 200, 200, 200]);
    expect((await call("GET", `/v2/${ep}/status/${job}`, { key: a })).status).toBe(200);
    expect((await call("POST", `/v2/${ep}/run`, { key: a, body: { input: 2 } })).status).toBe(200);
    expect((await call("GET", `/v2/${ep}/health`, { key: a })).status).toBe(200);
  });

  it("exactly 100 /cancel calls per key pass in a window and the 101st is refused", async () => {
    const ep = await createEndpoint();
    const key = await createKey(ep, "client");
    // Early in a window: 101 calls take seconds on a loaded machine and must all fall in one window.
    await roomInWindow(9_000);
    // A job id that names nothing: each call is counted, then answered 404.
    const rs = await burst(101, () => call("POST", `/v2/${ep}/cancel/nope`, { key }));
    expect(statuses(rs).slice(0, 100).every((s) => s === 404)).toBe(true);
    expect(rs[100]!.status).toBe(429);
    expect(await json(rs[100]!)).toMatchObject({ group: "cancel", limit: 100 });
  }, 30_000);

  it("a route added under a limited name is limited by its pattern: GET /requests allows 10 per 10 s per key", async () => {
    const ep = await createEndpoint();
    const key = await createKey(ep, "client");
    await roomInWindow();
    const rs = await burst(11, () => call("GET", `/v2/${ep}/requests?limit=1`, { key }));
    expect(statuses(rs)).toEqual([...new Array(10).fill(200), 429]);
    expect(await json(rs[10]!)).toMatchObject({ group: "requests", limit: 10, periodSeconds: 10 });
  });

  it("/status, /status-sync and /stream share one count; /run and /runsync have their own", async () => {
    expect(["/v2/:ep/status/:id", "/v2/:ep/status-sync/:id", "/v2/:ep/stream/:id"].map(rateLimitGroupOf)).toEqual(["status", "status", "status"]);
    expect(rateLimitGroupOf("/v2/:ep/run")).toBe("run");
    expect(rateLimitGroupOf("/v2/:ep/runsync")).toBe("runsync");
    expect(rateLimitGroupOf("/v2/:ep/openai/v1/chat/completions")).toBe("openai");
    expect(rateLimitGroupOf("/v2/:ep/openai/*")).toBe("openai");
    expect(rateLimitGroupOf("/v2/:ep/requests")).toBe("requests");
    // edge-jobs' own one-job actions count with /cancel.
    expect(["/v2/:ep/cancel/:id", "/v2/:ep/pause/:id", "/v2/:ep/resume/:id", "/v2/:ep/promote/:id", "/v2/:ep/reschedule/:id"].map(rateLimitGroupOf)).toEqual(["cancel", "cancel", "cancel", "cancel", "cancel"]);
    // Not limited: worker, admin and other client routes, and names that only look like a group.
    for (const route of [
      "/v2/:ep/job-take/:w", "/v2/:ep/job-take-batch/:w", "/v2/:ep/job-done/:w/:id", "/v2/:ep/job-stream/:w/:id", "/v2/:ep/job-stop/:w",
      "/v2/:ep/ping/:w", "/v2/:ep/health", "/v2/:ep/retry/:id", "/v2/:ep/metrics", "/v2/:ep/batch/:id/requests", "/admin/endpoints/:ep",
      "/v2/:ep/__proto__", "/v2/:ep/constructor", "/v2/:ep/toString", "/v2/:ep/runs", "/v2/run", "/run",
    ]) expect(rateLimitGroupOf(route), route).toBeNull();
  });

  it("worker routes are never limited: 150 pings and 150 reports from one worker key, and takes, all pass", async () => {
    const ep = await createEndpoint();
    const worker = await createKey(ep, "worker");
    await roomInWindow();
    const pings = await burst(150, () => call("GET", `/v2/${ep}/ping/w1?gpu=none`, { key: worker }));
    expect(new Set(statuses(pings))).toEqual(new Set([200]));
    // Reports about a job id that names nothing: each one authorized, then a 404.
    const dones = await burst(150, () => call("POST", `/v2/${ep}/job-done/w1/nope?isStream=false`, { key: worker, body: { output: 1 } }));
    expect(new Set(statuses(dones))).toEqual(new Set([404]));
    // Takes hand out jobs submitted past a client's own purge limit of 2 (admin submits).
    for (let i = 0; i < 3; i++) await submit(ep);
    const takes = await burst(3, () => call("GET", `/v2/${ep}/job-take/w${Math.random().toString(36).slice(2, 8)}?job_in_progress=0`, { key: worker }));
    expect(statuses(takes)).toEqual([200, 200, 200]);
  });

  it("an endpoint with rateLimit: false is not limited; its config says so; PUT without it turns limits back on", async () => {
    const ep = await createEndpoint({ rateLimit: false });
    const key = await createKey(ep, "client");
    expect(await json(await call("GET", `/admin/endpoints/${ep}`))).toMatchObject({ rateLimit: false });
    await roomInWindow();
    expect(statuses(await burst(6, () => call("POST", `/v2/${ep}/purge-queue`, { key })))).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await call("PUT", `/admin/endpoints/${ep}`, { body: {} })).status).toBe(200);
    expect(await json(await call("GET", `/admin/endpoints/${ep}`))).toMatchObject({ rateLimit: true });
    const again = statuses(await burst(3, () => call("POST", `/v2/${ep}/purge-queue`, { key })));
    expect(again).toContain(429);
    expect((await call("PUT", `/admin/endpoints/${ep}`, { body: { rateLimit: "no" } })).status).toBe(400);
  });

  it("a wrong or missing key is refused as before (401), never counted into a 429", async () => {
    const ep = await createEndpoint();
    await roomInWindow();
    expect(statuses(await burst(4, () => call("POST", `/v2/${ep}/purge-queue`, { key: "not-a-key" })))).toEqual([401, 401, 401, 401]);
    expect(statuses(await burst(3, () => call("POST", `/v2/${ep}/purge-queue`, { key: null })))).toEqual([401, 401, 401]);
    // A key of another endpoint is 401 here, and its own limit is untouched.
    const other = await createEndpoint();
    const otherKey = await createKey(other, "client");
    expect(statuses(await burst(3, () => call("POST", `/v2/${ep}/purge-queue`, { key: otherKey })))).toEqual([401, 401, 401]);
    expect(statuses(await burst(2, () => call("POST", `/v2/${other}/purge-queue`, { key: otherKey })))).toEqual([200, 200]);
    // An unknown endpoint is a 404, not a 429.
    expect(statuses(await burst(3, () => call("POST", `/v2/no-such-ep-${Date.now()}/purge-queue`, { key: otherKey })))).toEqual([404, 404, 404]);
  });

  it("RATE_LIMITS=off, a missing binding or a failing one limit nothing (fail open); over the limit it throws the 429", async () => {
    const config = { rateLimit: true } as EndpointConfig;
    const caller = { digest: "d".repeat(64), isAdmin: false };
    let calls = 0;
    const refusing = { limit: async () => ((calls += 1), { success: false }) };
    const failing = { limit: async () => { calls += 1; throw new Error("binding down"); } };
    const withBinding = (b: unknown, vars: Partial<Env> = {}) => ({ ...env, ...vars, RATE_LIMIT_PURGE_QUEUE: b }) as unknown as Env;
    const route = "/v2/:ep/purge-queue";
    await expect(enforceRateLimit(withBinding(refusing, { RATE_LIMITS: "off" }), route, "ep", caller, config)).resolves.toBeUndefined();
    expect(calls).toBe(0);
    await expect(enforceRateLimit(withBinding(undefined), route, "ep", caller, config)).resolves.toBeUndefined();
    await expect(enforceRateLimit(withBinding(failing), route, "ep", caller, config)).resolves.toBeUndefined();
    expect(calls).toBe(1);
    await expect(enforceRateLimit(withBinding(refusing), route, "ep", { ...caller, isAdmin: true }, config)).resolves.toBeUndefined();
    await expect(enforceRateLimit(withBinding(refusing), route, "ep", caller, { ...config, rateLimit: false })).resolves.toBeUndefined();
    expect(calls).toBe(1);
    await expect(enforceRateLimit(withBinding(refusing), route, "ep", caller, config)).rejects.toMatchObject({ status: 429, headers: { "retry-after": "10" } });
    expect(calls).toBe(2);
  });

  it("the OpenAPI document lists the 429 with Retry-After on every limited operation and on no other", async () => {
    const doc = await json<{ paths: Record<string, Record<string, { responses: Record<string, { description: string; headers?: Record<string, unknown> }> }>> }>(
      await call("GET", "/openapi.json", { key: null }),
    );
    const limited: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const r429 = op.responses["429"];
        const group = rateLimitGroupOf(path);
        if (group === null) {
          // /webhooks/{id}/redeliver has its own, unrelated 429 (too soon to redeliver).
          if (r429) expect(r429.description, `${method} ${path}`).not.toMatch(/rate limit/i);
          continue;
        }
        limited.push(`${method} ${path}`);
        expect(r429?.headers?.["Retry-After"], `${method} ${path}`).toBeDefined();
        // A route may describe its own 429 (/openai/* in OpenAI's error shape); it states the same limit.
        expect(r429!.description).toContain(`${RATE_LIMITS[group].limit} requests per 10 s`);
      }
    }
    for (const op of ["post /v2/{ep}/run", "post /v2/{ep}/runsync", "get /v2/{ep}/status/{id}", "post /v2/{ep}/status-sync/{id}", "get /v2/{ep}/stream/{id}", "post /v2/{ep}/cancel/{id}", "post /v2/{ep}/purge-queue"]) {
      expect(limited).toContain(op);
    }
  });
});
