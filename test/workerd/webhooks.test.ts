/**
 * Webhooks from the job's durable outbox: signed RunPod payloads, the retry schedule, 410,
 * secret rotation, Retry-After, surviving a throwing alarm and an eviction, the delivery log,
 * redelivery and the endpoint's counters.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { WEBHOOK_REDELIVERY } from "../../src/shared/limits";
import { MAX_ATTEMPTS, nextDelayMs, parseRetryAfter, RETRY_DELAYS_MS } from "../../src/webhooks/schedule";
import { call, createEndpoint, done, freezeJob as freeze, interceptFetch, jobStubOf as stubOf, json, status, submit, take, type Intercepted } from "./helpers";

const HOOK = "https://receiver.example.com/hook";

type Delivery = Intercepted;

/** Replaces fetch to the receiver with `answer(n)` for the n-th delivery; returns what arrived. */
const mockReceiver = (answer: (n: number) => Response | Promise<Response>): Delivery[] => interceptFetch(HOOK, answer);

afterEach(() => vi.restoreAllMocks());

const T0 = Date.now() - 60 * 60_000; // a frozen "now" in the past: natural alarms then find nothing new due

/** A job with a webhook, finished by a worker at frozen time T0. */
async function finishedJob(config: Record<string, unknown> = {}, output: unknown = { text: "hi" }) {
  const ep = await createEndpoint(config);
  const id = await submit(ep, { input: { prompt: "p" }, webhook: HOOK });
  await freeze(id, T0);
  await take(ep, "w1");
  await done(ep, "w1", id, { output });
  return { ep, id };
}

async function webhookState(ep: string, id: string) {
  return (await json<{ webhook?: Record<string, unknown> }>(await status(ep, id))).webhook;
}

/** Fires the job's alarm at `at` (frozen) and waits for the delivery count to reach `count`. */
async function attemptAt(id: string, at: number, got: Delivery[], count: number) {
  await freeze(id, at);
  await runDurableObjectAlarm(stubOf(id));
  await vi.waitUntil(() => got.length >= count, { timeout: 5_000, interval: 20 });
}

describe("schedule", () => {
  it("grows from seconds to hours, about a day in all", () => {
    const total = RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
    expect(RETRY_DELAYS_MS[0]).toBe(2_000);
    expect(total).toBeGreaterThan(20 * 3_600_000);
    expect(total).toBeLessThan(26 * 3_600_000);
    for (let i = 1; i < RETRY_DELAYS_MS.length; i++) expect(RETRY_DELAYS_MS[i]).toBeGreaterThanOrEqual(RETRY_DELAYS_MS[i - 1]!);
    expect(nextDelayMs(MAX_ATTEMPTS, null)).toBeNull();
  });

  it("honours Retry-After when it asks for longer, up to 12 h", () => {
    expect(nextDelayMs(1, 60_000)).toBe(60_000);
    expect(nextDelayMs(1, 500)).toBe(2_000);
    expect(nextDelayMs(1, 99 * 3_600_000)).toBe(12 * 3_600_000);
    expect(parseRetryAfter("120", 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
  });
});

describe("delivery", () => {
  it("posts the RunPod payload (status + input + webhook + seq), signed, once, on completion", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    const d = got[0]!;
    expect(d.json).toMatchObject({ id, status: "COMPLETED", output: { text: "hi" }, input: { prompt: "p" }, webhook: HOOK, seq: 1, workerId: "w1" });
    expect(d.json.delayTime).toEqual(expect.any(Number));
    const secret = (await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${ep}`))).webhookSecret;
    expect(new Webhook(secret).verify(d.body, d.headers)).toMatchObject({ id });
    await vi.waitUntil(async () => (await webhookState(ep, id))?.state === "delivered", { timeout: 5_000 });
    expect(await webhookState(ep, id)).toMatchObject({ state: "delivered", attempts: 1, lastStatus: 200, nextAttemptAt: null });
    const counters = await json<{ counters: Record<string, number> }>(await call("GET", `/admin/endpoints/${ep}/counters`));
    expect(counters.counters).toMatchObject({ webhookSent: 1, webhookSucceeded: 1, webhookFailed: 0 });
  });

  it("fires for FAILED, CANCELLED and TIMED_OUT too", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const ep = await createEndpoint();
    const failed = await submit(ep, { input: 1, webhook: HOOK });
    await take(ep, "w1");
    await done(ep, "w1", failed, { error: "boom" });
    const cancelled = await submit(ep, { input: 2, webhook: HOOK });
    await call("POST", `/v2/${ep}/cancel/${cancelled}`);
    await vi.waitUntil(() => got.length >= 2, { timeout: 5_000, interval: 20 });
    expect(got.map((d) => [d.json.id, d.json.status]).sort()).toEqual([[failed, "FAILED"], [cancelled, "CANCELLED"]].sort());
    expect(got.find((d) => d.json.id === failed)!.json).toMatchObject({ error: "boom" });
  });

  it("retries non-2xx on the schedule with the same webhook-id, and 410 stops at once", async () => {
    const got = mockReceiver((n) => (n === 1 ? new Response("down", { status: 503 }) : n === 2 ? new Response("moved", { status: 302, headers: { location: "https://elsewhere.example/" } }) : new Response("gone", { status: 410 })));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 1, { timeout: 5_000 });
    expect(await webhookState(ep, id)).toMatchObject({ state: "pending", lastStatus: 503, nextAttemptAt: new Date(T0 + 2_000).toISOString() });
    await attemptAt(id, T0 + 1_999, got, 1); // just before: nothing
    expect(got).toHaveLength(1);
    await attemptAt(id, T0 + 2_000, got, 2); // the redirect is not followed: a failure
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 2, { timeout: 5_000 });
    await attemptAt(id, T0 + 2_000 + 10_000, got, 3);
    await vi.waitUntil(async () => (await webhookState(ep, id))?.state === "gone", { timeout: 5_000 });
    expect(new Set(got.map((d) => d.headers["webhook-id"])).size).toBe(1);
    expect(new Set(got.map((d) => d.headers["webhook-timestamp"])).size).toBeGreaterThanOrEqual(1);
    await freeze(id, T0 + 20 * 60_000); // every early retry would be due by now; retention not yet over
    await runDurableObjectAlarm(stubOf(id));
    expect(got).toHaveLength(3);
    const log = await json<{ events: Array<{ state: string; log: Array<{ status: number }> }> }>(await call("GET", `/v2/${ep}/webhooks/${id}`));
    expect(log.events).toHaveLength(1);
    expect(log.events[0]!.log.map((a) => a.status)).toEqual([503, 302, 410]);
  });

  it("a network error or a timeout is retried like an error status", async () => {
    const got = mockReceiver((n) => (n === 1 ? Promise.reject(new TypeError("connection reset")) : new Response("ok")));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 1, { timeout: 5_000 });
    const log = await json<{ events: Array<{ lastError: string }> }>(await call("GET", `/v2/${ep}/webhooks/${id}`));
    expect(log.events[0]!.lastError).toMatch(/connection reset/);
    await attemptAt(id, T0 + 2_000, got, 2);
    await vi.waitUntil(async () => (await webhookState(ep, id))?.state === "delivered", { timeout: 5_000 });
  });

  it("during a secret rotation both signatures are sent, and either secret verifies", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const ep = await createEndpoint();
    const before = (await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${ep}`))).webhookSecret;
    const rotated = await json<{ webhookSecret: string; previousWebhookSecret: string }>(await call("POST", `/admin/endpoints/${ep}/rotate-secret`));
    expect(rotated.previousWebhookSecret).toBe(before);
    expect(rotated.webhookSecret).not.toBe(before);
    const id = await submit(ep, { input: 1, webhook: HOOK });
    await take(ep, "w1");
    await done(ep, "w1", id, { output: 1 });
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    const d = got[0]!;
    expect(d.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(new Webhook(before).verify(d.body, d.headers)).toMatchObject({ id });
    expect(new Webhook(rotated.webhookSecret).verify(d.body, d.headers)).toMatchObject({ id });
  });

  it("the outbox survives an alarm that throws after sending: the retry sends again under the same id", async () => {
    const got = mockReceiver(() => new Response("down", { status: 500 }));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 1, { timeout: 5_000 });
    vi.restoreAllMocks();
    const again = mockReceiver(() => new Response("ok"));
    await runInDurableObject(stubOf(id), (i: JobObject) => i.faults.arm("webhook:after-send"));
    await freeze(id, T0 + 2_000);
    await expect(runDurableObjectAlarm(stubOf(id))).rejects.toThrow(/injected fault/);
    expect(again).toHaveLength(1); // sent, but the alarm died before recording it
    expect(await webhookState(ep, id)).toMatchObject({ state: "pending", attempts: 1 });
    await runInDurableObject(stubOf(id), (i: JobObject) => i.alarm({ isRetry: true, retryCount: 1, scheduledTime: T0 + 2_000 }));
    expect(again).toHaveLength(2);
    expect(again[0]!.headers["webhook-id"]).toBe(again[1]!.headers["webhook-id"]);
    expect(again[0]!.headers["webhook-id"]).toBe(got[0]!.headers["webhook-id"]);
    expect(await webhookState(ep, id)).toMatchObject({ state: "delivered", attempts: 2 });
  });

  it("the outbox survives an eviction", async () => {
    const got = mockReceiver((n) => new Response(n === 1 ? "down" : "ok", { status: n === 1 ? 500 : 200 }));
    // A long retention: after the eviction the job runs on the wall clock, an hour after T0.
    const { ep, id } = await finishedJob({ retentionMs: 24 * 3_600_000 });
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 1, { timeout: 5_000 });
    await evictDurableObject(stubOf(id)); // memory (and the frozen clock) gone; storage and alarm kept
    // T0 + 2 s is long past on the wall clock, so the alarm delivers at once.
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    await vi.waitUntil(() => got.length === 2, { timeout: 5_000, interval: 20 });
    await vi.waitUntil(async () => (await webhookState(ep, id))?.state === "delivered", { timeout: 5_000 });
  });

  it("redeliver sends the latest event again under the same webhook-id", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(async () => (await webhookState(ep, id))?.state === "delivered", { timeout: 5_000 });
    await freeze(id, T0 + WEBHOOK_REDELIVERY.minIntervalMs); // redeliveries are spaced (defect 18)
    const r = await call("POST", `/v2/${ep}/webhooks/${id}/redeliver`);
    expect(await json(r)).toMatchObject({ id, seq: 1, state: "pending" });
    await runDurableObjectAlarm(stubOf(id));
    await vi.waitUntil(() => got.length === 2, { timeout: 5_000, interval: 20 });
    expect(got[1]!.headers["webhook-id"]).toBe(got[0]!.headers["webhook-id"]);
  });

  it("defect 18: redeliver is limited per job: one send per 10 s and one pending, else a 429 with Retry-After", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    const redeliver = () => call("POST", `/v2/${ep}/webhooks/${id}/redeliver`);
    const tooSoon = async (retryAfterSeconds: number) => {
      const r = await redeliver();
      expect(r.status).toBe(429);
      expect(r.headers.get("content-type")).toMatch(/application\/json/);
      expect(r.headers.get("retry-after")).toBe(String(retryAfterSeconds));
      expect(await json(r)).toMatchObject({ error: expect.stringMatching(/redeliver/), retryAfterMs: retryAfterSeconds * 1000 });
    };
    // Just delivered (at T0): the next redelivery may come 10 s after that send.
    await tooSoon(10);
    await freeze(id, T0 + 4_000);
    await tooSoon(6);
    await freeze(id, T0 + 10_000);
    expect((await redeliver()).status).toBe(200);
    // One is now pending: a burst of further requests is refused and sends nothing more.
    const burst = await Promise.all(Array.from({ length: 20 }, redeliver));
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(429));
    await attemptAt(id, T0 + 10_000, got, 2);
    await tooSoon(10);
    expect(got).toHaveLength(2);
    const log = await json<{ events: Array<{ attempts: number }> }>(await call("GET", `/v2/${ep}/webhooks/${id}`));
    expect(log.events[0]!.attempts).toBe(2);
  });

  it("a requeued job's next ending is a new event with a higher seq", async () => {
    const got = mockReceiver(() => new Response("ok"));
    const { ep, id } = await finishedJob();
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    await call("POST", `/v2/${ep}/requeue/${id}`);
    await take(ep, "w2");
    await done(ep, "w2", id, { output: "second" });
    await runDurableObjectAlarm(stubOf(id));
    await vi.waitUntil(() => got.length === 2, { timeout: 5_000, interval: 20 });
    expect(got.map((d) => [d.json.seq, d.json.output])).toEqual([[1, { text: "hi" }], [2, "second"]]);
    expect(got[0]!.headers["webhook-id"]).not.toBe(got[1]!.headers["webhook-id"]);
  });

  it("a job past its retention is kept until its webhook is delivered or given up", async () => {
    mockReceiver(() => new Response("down", { status: 500 }));
    const { ep, id } = await finishedJob({ retentionMs: 1_000 });
    await vi.waitUntil(async () => (await webhookState(ep, id))?.attempts === 1, { timeout: 5_000 });
    await freeze(id, T0 + 1_500); // retention over, webhook retry not yet due
    await runDurableObjectAlarm(stubOf(id));
    expect((await status(ep, id)).status).toBe(200);
  });

  it("an idempotent job past its retention keeps its payloads until its webhook is delivered", async () => {
    const got = mockReceiver((n) => new Response(n === 1 ? "down" : "ok", { status: n === 1 ? 500 : 200 }));
    const ep = await createEndpoint({ retentionMs: 1_000 });
    const id = await submit(ep, { input: { prompt: "p" }, webhook: HOOK, idempotencyKey: "kept-until-delivered" });
    await freeze(id, T0);
    await take(ep, "w1");
    await done(ep, "w1", id, { output: { text: "hi" } });
    await vi.waitUntil(() => got.length === 1, { timeout: 5_000, interval: 20 });
    await freeze(id, T0 + 1_500); // retention over (its tombstone is due), webhook retry not yet due
    expect((await status(ep, id)).status).toBe(200); // a read runs what is due
    await attemptAt(id, T0 + 60_000, got, 2);
    expect(got[1]!.json).toMatchObject({ id, input: { prompt: "p" }, output: { text: "hi" } });
  });

  it("webhook routes answer 404 for unknown jobs and 409 when there is nothing to redeliver", async () => {
    const ep = await createEndpoint();
    expect((await call("GET", `/v2/${ep}/webhooks/${"0".repeat(64)}`)).status).toBe(404);
    const id = await submit(ep, { input: 1 });
    expect((await call("POST", `/v2/${ep}/webhooks/${id}/redeliver`)).status).toBe(409);
    expect(await json(await call("GET", `/v2/${ep}/webhooks/${id}`))).toEqual({ id, events: [] });
  });
});
