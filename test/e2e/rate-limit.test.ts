/**
 * Client rate limits on the real Worker under wrangler dev, counted by its [[ratelimits]] bindings
 * (miniflare: exact counts in 10 s windows aligned to the wall clock). A key over its limit gets a
 * 429 with Retry-After, and passes again after it; nothing else is refused. Every answer `api`
 * gets is checked against the OpenAPI document, the 429s included.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys } from "./api";
import { ROOT, useServer } from "./harness";
import { checkerAt } from "./openapi-check";

// Explicit: a RATE_LIMITS=off in the developer's environment must not reach this server.
const server = useServer({ TAKE_WAIT_MS: "1000", RATE_LIMITS: "on" });

const PERIOD_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the next window when less than `needMs` of this one is left. */
async function roomInWindow(needMs = 4_000): Promise<void> {
  const left = PERIOD_MS - (Date.now() % PERIOD_MS);
  if (left < needMs) await sleep(left + 50);
}

async function raw(method: string, p: string, key: string): Promise<{ status: number; retryAfter: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`${server.base}${p}`, { method, headers: { authorization: `Bearer ${key}` } });
  const body = (await res.json()) as Record<string, unknown>;
  expect((await checkerAt(server.base)).check(method, `${server.base}${p}`, res.status, res.headers.get("content-type"), body)).toEqual([]);
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body };
}

describe("client rate limits under wrangler dev", () => {
  it("a burst over a key's limit gets 429 with Retry-After, and passes again after it; another key, the admin key, other routes and workers are not refused", async () => {
    const ep = "e2e-rate-limit";
    const a = await endpointWithKeys(server.base, server.adminKey, ep);
    const b = (await api(server.base, "POST", `/admin/endpoints/${ep}/keys`, server.adminKey, { scope: "client" })).body.key as string;
    const job = (await api(server.base, "POST", `/v2/${ep}/run`, a.client, { input: { n: 1 } })).body.id as string;

    await roomInWindow();
    expect((await api(server.base, "POST", `/v2/${ep}/purge-queue`, a.client)).status).toBe(200);
    expect((await api(server.base, "POST", `/v2/${ep}/purge-queue`, a.client)).status).toBe(200);
    const refused = await raw("POST", `/v2/${ep}/purge-queue`, a.client);
    const refusedAt = Date.now();
    expect(refused).toMatchObject({ status: 429, retryAfter: "10", body: { group: "purge-queue", limit: 2, periodSeconds: 10, retryAfterSeconds: 10 } });
    expect(refused.body.error).toBe(`rate limit exceeded: at most 2 requests per 10 s to /purge-queue per key on endpoint '${ep}'; retry after 10 s`);

    // Meanwhile nothing else is refused.
    for (let i = 0; i < 2; i++) expect((await api(server.base, "POST", `/v2/${ep}/purge-queue`, b)).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await api(server.base, "POST", `/v2/${ep}/purge-queue`, server.adminKey)).status).toBe(200);
    expect((await api(server.base, "GET", `/v2/${ep}/status/${job}`, a.client)).body.status).toBe("CANCELLED");
    for (let i = 0; i < 50; i++) expect((await api(server.base, "GET", `/v2/${ep}/ping/w1?gpu=none`, a.worker)).status).toBe(200);
    expect((await api(server.base, "POST", `/v2/${ep}/run`, a.client, { input: { n: 2 } })).status).toBe(200);
    expect((await api(server.base, "GET", `/v2/${ep}/job-take/w1?job_in_progress=0`, a.worker)).status).toBe(200);

    // After Retry-After the key passes again.
    await sleep(Math.max(0, refusedAt + Number(refused.retryAfter) * 1000 - Date.now()));
    expect((await api(server.base, "POST", `/v2/${ep}/purge-queue`, a.client)).status).toBe(200);
  });

  it("exactly 100 /cancel calls per key pass in a window; the 101st is refused", async () => {
    const ep = "e2e-rate-limit-cancel";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    await roomInWindow(6_000);
    const got: number[] = [];
    for (let i = 0; i < 101; i++) {
      const res = await fetch(`${server.base}/v2/${ep}/cancel/nope`, { method: "POST", headers: { authorization: `Bearer ${keys.client}` } });
      await res.arrayBuffer();
      got.push(res.status);
    }
    expect(got.slice(0, 100)).toEqual(new Array(100).fill(404));
    expect(got[100]).toBe(429);
  });

  it("wrangler.toml's [[ratelimits]] are RunPod's limits, and the 429s the document lists state the same numbers", async () => {
    const wrangler = (await import("wrangler")) as { unstable_readConfig: (a: { config: string }) => { ratelimits: Array<{ name: string; namespace_id: string; simple: { limit: number; period: number } }>; vars: Record<string, unknown> } };
    const config = wrangler.unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") });
    const limits = Object.fromEntries(config.ratelimits.map((r) => [r.name, r.simple]));
    expect(limits).toEqual({
      RATE_LIMIT_RUN: { limit: 1000, period: 10 },
      RATE_LIMIT_RUNSYNC: { limit: 2000, period: 10 },
      RATE_LIMIT_STATUS: { limit: 2000, period: 10 },
      RATE_LIMIT_CANCEL: { limit: 100, period: 10 },
      RATE_LIMIT_PURGE_QUEUE: { limit: 2, period: 10 },
      RATE_LIMIT_OPENAI: { limit: 2000, period: 10 },
      RATE_LIMIT_REQUESTS: { limit: 10, period: 10 },
    });
    // Each binding counts in its own namespace (the same namespace_id would share counts).
    expect(new Set(config.ratelimits.map((r) => r.namespace_id)).size).toBe(config.ratelimits.length);
    expect(config.vars.RATE_LIMITS).toBe("on");

    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> };
    const bindingOf: Record<string, string> = {
      run: "RATE_LIMIT_RUN", runsync: "RATE_LIMIT_RUNSYNC", status: "RATE_LIMIT_STATUS", "status-sync": "RATE_LIMIT_STATUS", stream: "RATE_LIMIT_STATUS",
      cancel: "RATE_LIMIT_CANCEL", "purge-queue": "RATE_LIMIT_PURGE_QUEUE", openai: "RATE_LIMIT_OPENAI", requests: "RATE_LIMIT_REQUESTS",
    };
    let checked = 0;
    for (const [p, ops] of Object.entries(doc.paths)) {
      const op = /^\/v2\/\{ep\}\/([^/]+)/.exec(p)?.[1];
      const binding = op !== undefined && Object.hasOwn(bindingOf, op) ? bindingOf[op]! : undefined;
      if (binding === undefined) continue;
      for (const [method, o] of Object.entries(ops)) {
        expect(o.responses["429"]?.description, `${method} ${p}`).toContain(`${limits[binding]!.limit} requests per ${limits[binding]!.period} s`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(9);
  });
});

describe("RATE_LIMITS=off", () => {
  const off = useServer({ TAKE_WAIT_MS: "1000", RATE_LIMITS: "off" });

  it("turns every client limit off (what a local load test uses)", async () => {
    const ep = "e2e-rate-limit-off";
    const keys = await endpointWithKeys(off.base, off.adminKey, ep);
    for (let i = 0; i < 5; i++) expect((await api(off.base, "POST", `/v2/${ep}/purge-queue`, keys.client)).status).toBe(200);
  });
});
