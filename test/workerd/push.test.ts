/**
 * Push dispatch: the queue consumer's every outcome (ack, retry with delay, dead letter), signed
 * pushes, duplicate deliveries, report tokens, and the whole path from submit through the real
 * local queue to a (mocked) worker URL.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryDelaySeconds } from "../../src/dispatch/consumer";
import { PUSH_IN_FLIGHT_MS, PUSH_TIMEOUT_MS } from "../../src/jobs/push-commands";
import { PUSH_ANSWER } from "../../src/shared/limits";
import type { JobObject } from "../../src/jobs/job-object";
import worker from "../../src/index";
import { ADMIN, call, createEndpoint, createKey, interceptFetch, type Intercepted, json, status, submit } from "./helpers";

const WORKER_URL = "https://worker.example.com/jobs";

type Pushed = Intercepted<{ id: string; attempt: number; input: unknown; urls: { done: string; stream: string } }>;

/** Replaces fetch to the worker URL with `answer`; returns what was pushed. */
const mockWorker = (answer: (n: number) => Response | Promise<Response>): Pushed[] => interceptFetch(WORKER_URL, answer);

afterEach(() => vi.restoreAllMocks());

/** A push endpoint, paused so that only the messages a test builds are dispatched. */
async function pausedPushEndpoint(): Promise<{ ep: string; secret: string }> {
  const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL] });
  const view = await json<{ webhookSecret: string }>(await call("POST", `/admin/endpoints/${ep}/pause`));
  return { ep, secret: view.webhookSecret };
}

async function deliver(queue: string, body: unknown, attempts = 1, id = "m1") {
  const batch = createMessageBatch(queue, [{ id, timestamp: new Date(), attempts, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

const dispatchQueue = "edge-jobs-dispatch";
const deadLetterQueue = "edge-jobs-dispatch-dlq";

describe("dispatch consumer", () => {
  it("a 2xx accepts: the push is signed, carries the job and report URLs, and the message is acked", async () => {
    const { ep, secret } = await pausedPushEndpoint();
    const id = await submit(ep, { input: { prompt: "p" } });
    const pushed = mockWorker(() => new Response("accepted", { status: 202 }));
    const result = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t1" });
    expect(result.explicitAcks).toEqual(["m1"]);
    expect(pushed).toHaveLength(1);
    const p = pushed[0]!;
    expect(p.json).toMatchObject({ id, attempt: 1, input: { prompt: "p" } });
    // Verified with the Standard Webhooks reference library.
    expect(new Webhook(secret).verify(p.body, p.headers)).toMatchObject({ id });
    expect(p.headers["webhook-id"]).toBe("push_t1");
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS", workerId: "push-0", attempt: 1 });

    // The worker reports through the URL it was given, with no key.
    const report = await call("POST", new URL(p.json.urls.done).pathname + new URL(p.json.urls.done).search, { key: null, body: { output: "done" } });
    expect(report.status).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "done" });
  });

  it("a 200 carrying output or error finishes the job at once", async () => {
    const { ep } = await pausedPushEndpoint();
    const ok = await submit(ep);
    const bad = await submit(ep);
    mockWorker((n) => Response.json(n === 1 ? { output: { answer: 42 } } : { error: "model failed" }));
    await deliver(dispatchQueue, { endpointId: ep, jobId: ok, token: "a" });
    await deliver(dispatchQueue, { endpointId: ep, jobId: bad, token: "b" });
    expect(await json(await status(ep, ok))).toMatchObject({ status: "COMPLETED", output: { answer: 42 } });
    expect(await json(await status(ep, bad))).toMatchObject({ status: "FAILED", error: "model failed" });
  });

  it("issue 15, item 5: a 200 with an exit code ends the job ERROR (read COMPLETED); a progress answer is progress; a malformed exit code fails the attempt", async () => {
    const { ep } = await pausedPushEndpoint();
    const [errored, progress, initializing, malformed] = [await submit(ep), await submit(ep), await submit(ep), await submit(ep)];
    const answers = [{ output: { partial: true }, exitCode: 2 }, { status: "IN_PROGRESS", output: "halfway" }, { status: "INITIALIZING" }, { output: 1, exitCode: 1.5 }];
    mockWorker((n) => Response.json(answers[n - 1]));
    for (const [i, id] of [errored, progress, initializing, malformed].entries()) await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: `x${i}` });
    expect(await json(await status(ep, errored))).toMatchObject({ status: "COMPLETED", outcome: "error", exitCode: 2, error: "exit code 2", output: { partial: true } });
    // Before, a progress answer completed the job with its partial output: now it is read as progress, as on urls.done.
    expect(await json(await status(ep, progress))).toMatchObject({ status: "IN_PROGRESS", output: "halfway" });
    expect(await json(await status(ep, initializing))).toMatchObject({ status: "IN_PROGRESS", phase: "initializing" });
    const bad = await json<{ status: string; error: string }>(await status(ep, malformed));
    expect(bad.status).toBe("FAILED");
    expect(bad.error).toMatch(/exitCode must be an integer/);
  });

  it("a refusal or a network error releases the attempt and retries the message with a growing delay", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    mockWorker((n) => (n === 1 ? new Response("overloaded", { status: 503 }) : Promise.reject(new TypeError("connection refused"))));
    const first = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 1);
    expect(first.retryMessages).toEqual([expect.objectContaining({ msgId: "m1" })]);
    // Resumed, the endpoint still does not dispatch the job again: the queue's retry will.
    await call("POST", `/admin/endpoints/${ep}/resume`);
    const s = await json(await status(ep, id));
    expect(s).toMatchObject({ status: "IN_QUEUE", queue: { reason: "dispatch_retrying", lastError: expect.stringMatching(/HTTP 503/) } });
    const second = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 2);
    expect(second.retryMessages).toHaveLength(1);
    expect(await json(await status(ep, id))).toMatchObject({ queue: { lastError: expect.stringMatching(/connection refused/) } });
    expect(retryDelaySeconds(1, () => 0)).toBe(1);
    expect(retryDelaySeconds(4, () => 0)).toBe(8);
    expect(retryDelaySeconds(4, () => 0.999)).toBe(12);
    expect(retryDelaySeconds(20, () => 0)).toBe(300);
  });

  it("a copy of a message whose push may be in flight is retried later, not pushed twice; after the window a crashed claim pushes again", async () => {
    expect(PUSH_IN_FLIGHT_MS).toBeGreaterThan(PUSH_TIMEOUT_MS);
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    const stub = env.JOB.get(env.JOB.idFromString(id));
    const T0 = Date.now();
    await runInDurableObject(stub, (i: JobObject) => i.clock.freeze(T0));
    // The first consumer claims and crashes before pushing (the fault fires after the commit).
    await runInDurableObject(stub, (i: JobObject) => i.faults.arm("job:after-commit"));
    const pushed = mockWorker(() => new Response(null, { status: 202 }));
    const crashed = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 1, "m1");
    expect(crashed.retryMessages).toHaveLength(1);
    // A copy right away: the push may be under way, so it waits out PUSH_IN_FLIGHT_MS.
    const copy = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 2, "m2");
    expect(copy.retryMessages).toEqual([expect.objectContaining({ msgId: "m2" })]);
    expect(pushed).toHaveLength(0);
    // Past the window, the claim's consumer is known gone: the same attempt is pushed again.
    await runInDurableObject(stub, (i: JobObject) => i.clock.freeze(T0 + PUSH_IN_FLIGHT_MS));
    const later = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 3, "m3");
    expect(later.explicitAcks).toEqual(["m3"]);
    expect(pushed).toHaveLength(1);
    expect(pushed[0]!.json).toMatchObject({ id, attempt: 1 });
  });

  it("a duplicate delivery after acceptance starts no second attempt", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    const pushed = mockWorker(() => new Response(null, { status: 204 }));
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "once" });
    const again = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "once" }, 1, "m2");
    const other = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "another" }, 1, "m3");
    expect(again.explicitAcks).toEqual(["m2"]);
    expect(other.explicitAcks).toEqual(["m3"]);
    expect(pushed).toHaveLength(1);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS", attempt: 1 });
  });

  it("the dead-letter consumer fails the job with a clear reason", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    mockWorker(() => new Response("nope", { status: 500 }));
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "dl" }, 6);
    const dead = await deliver(deadLetterQueue, { endpointId: ep, jobId: id, token: "dl" });
    expect(dead.explicitAcks).toEqual(["m1"]);
    expect(await json(await status(ep, id))).toMatchObject({
      status: "FAILED",
      error: expect.stringMatching(/could not deliver the job to a worker URL after 1 try: HTTP 500/),
    });
  });

  it("defect 15: errors shown to client-key holders name a worker URL without its query, fragment or credentials", async () => {
    const secretUrl = `${WORKER_URL}?key=s3cret-query#s3cret-fragment`;
    const ep = await createEndpoint({ mode: "push", workerUrls: [secretUrl] });
    await call("POST", `/admin/endpoints/${ep}/pause`);
    const client = await createKey(ep, "client");
    const id = await submit(ep);
    mockWorker((n) =>
      n === 1
        ? new Response(`no such key; see ${secretUrl.replace("https://", "https://user:pw@")}`, { status: 503 })
        : Promise.reject(new TypeError(`fetch to ${secretUrl} failed: connection refused`)),
    );
    const lastError = async () => (await json<{ queue: { lastError: string } }>(await call("GET", `/v2/${ep}/status/${id}`, { key: client }))).queue.lastError;
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 1);
    await call("POST", `/admin/endpoints/${ep}/resume`); // a paused endpoint's queue shows no lastError
    const first = await lastError();
    expect(first).toMatch(/^HTTP 503 from https:\/\/worker\.example\.com\/jobs: no such key; see https:\/\/worker\.example\.com\/jobs$/);
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "t" }, 2);
    const second = await lastError();
    expect(second).toMatch(/could not reach https:\/\/worker\.example\.com\/jobs: .*connection refused/);
    // After the last retry the dead letter fails the job with the same, redacted, error.
    await deliver(deadLetterQueue, { endpointId: ep, jobId: id, token: "t" });
    const failed = await json<{ status: string; error: string }>(await call("GET", `/v2/${ep}/status/${id}`, { key: client }));
    expect(failed.status).toBe("FAILED");
    for (const shown of [first, second, failed.error, JSON.stringify(await json(await call("GET", `/v2/${ep}/history/${id}`, { key: client })))]) {
      expect(shown).toContain("worker.example.com/jobs");
      expect(shown).not.toMatch(/s3cret|user:pw|\?key=/);
    }
  });

  it("defect 17: a 2xx answer over the output limit fails the attempt, read no further than the limit, declared or streamed", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    const MiB = new Uint8Array(1024 * 1024).fill(0x20); // JSON whitespace
    let pulled = 0;
    // A body 8 MiB over the limit, without Content-Length, 1 MiB at a time as it is read (bounded
    // so that code reading it in full, as before the fix, finishes and fails here).
    const huge = () =>
      new ReadableStream<Uint8Array>(
        {
          pull: (c) => {
            if (pulled >= PUSH_ANSWER.maxBytes + 8 * MiB.byteLength) return c.close();
            pulled += MiB.byteLength;
            c.enqueue(MiB);
          },
        },
        { highWaterMark: 0 },
      );
    mockWorker((n) =>
      n === 1
        ? new Response(huge(), { status: 200 })
        : new Response(huge(), { status: 200, headers: { "content-length": String(PUSH_ANSWER.maxBytes + 1) } }),
    );
    const first = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "big" }, 1);
    expect(first.retryMessages).toHaveLength(1);
    // Read by bytes: no more than the limit and the chunk that crossed it, then cancelled.
    expect(pulled).toBeGreaterThan(PUSH_ANSWER.maxBytes);
    expect(pulled).toBeLessThanOrEqual(PUSH_ANSWER.maxBytes + 2 * MiB.byteLength);
    await call("POST", `/admin/endpoints/${ep}/resume`);
    const s = await json<{ status: string; queue: { lastError: string } }>(await status(ep, id));
    expect(s.status).toBe("IN_QUEUE");
    expect(s.queue.lastError).toMatch(new RegExp(`HTTP 200 answer from https://worker\\.example\\.com/jobs is larger than ${PUSH_ANSWER.maxBytes} bytes`));
    // A Content-Length over the limit is refused before a byte is read.
    await call("POST", `/admin/endpoints/${ep}/pause`);
    pulled = 0;
    const second = await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "big" }, 2);
    expect(second.retryMessages).toHaveLength(1);
    expect(pulled).toBeLessThanOrEqual(MiB.byteLength); // at most what the stream queued on its own
    expect(PUSH_ANSWER.maxBytes).toBe(20 * 1024 * 1024 + 64 * 1024);
  });

  it("a message that is not a dispatch is acked and dropped; a stale one changes nothing", async () => {
    const { ep } = await pausedPushEndpoint();
    expect((await deliver(dispatchQueue, { hello: "world" })).explicitAcks).toEqual(["m1"]);
    const id = await submit(ep);
    await call("POST", `/v2/${ep}/cancel/${id}`);
    const pushed = mockWorker(() => new Response("ok"));
    expect((await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "late" })).explicitAcks).toEqual(["m1"]);
    expect(pushed).toHaveLength(0);
    expect((await deliver(deadLetterQueue, { endpointId: ep, jobId: id, token: "late" })).explicitAcks).toEqual(["m1"]);
    expect(await json(await status(ep, id))).toMatchObject({ status: "CANCELLED" });
  });

  it("a report with a wrong token is a 401 and changes nothing", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    const pushed = mockWorker(() => new Response("ok"));
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "x" });
    const done = new URL(pushed[0]!.json.urls.done);
    const forged = `${done.pathname}?attempt=1&token=forged`;
    expect((await call("POST", forged, { key: null, body: { output: 1 } })).status).toBe(401);
    const otherAttempt = `${done.pathname}?attempt=2&token=${done.searchParams.get("token")}`;
    expect((await call("POST", otherAttempt, { key: null, body: { output: 1 } })).status).toBe(401);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS" });
  });
});

describe("report URLs", () => {
  it("defect 16: report URLs come from PUBLIC_URL; a forged Host header does not change them", async () => {
    const { ep } = await pausedPushEndpoint();
    // The request names another host, as `Host: evil.example` does under wrangler dev.
    const forged = await worker.fetch(
      new Request(`http://evil.example/v2/${ep}/run`, {
        method: "POST",
        headers: { host: "evil.example", authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ input: 1 }),
      }),
      env,
      createExecutionContext(),
    );
    expect(forged.status).toBe(200);
    const { id } = await json<{ id: string }>(forged);
    const pushed = mockWorker(() => new Response(null, { status: 202 }));
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "h" });
    expect(pushed).toHaveLength(1);
    expect(env.PUBLIC_URL).toBe("http://edge.test");
    for (const url of Object.values(pushed[0]!.json.urls)) expect(url.startsWith(`http://edge.test/v2/${ep}/`), url).toBe(true);
    expect(JSON.stringify(pushed[0]!.json)).not.toContain("evil.example");
  });

  it("defect 16: without PUBLIC_URL a push endpoint refuses submits with a 503 saying what to set, and a queued push fails with that reason", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep); // queued while PUBLIC_URL was set
    for (const PUBLIC_URL of ["", "not a url", "ftp://edge.example", "https://edge.example/prefix?x=1"]) {
      const bare = { ...env, PUBLIC_URL } as Env;
      const res = await worker.fetch(
        new Request(`http://edge.test/v2/${ep}/run`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ input: 1 }) }),
        bare,
        createExecutionContext(),
      );
      expect(res.status, PUBLIC_URL).toBe(503);
      expect((await json(res)).error).toMatch(/PUBLIC_URL/);
      // Pull endpoints need no report URLs and take submits as before.
      const pull = await createEndpoint();
      const ok = await worker.fetch(
        new Request(`http://edge.test/v2/${pull}/run`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ input: 1 }) }),
        bare,
        createExecutionContext(),
      );
      expect(ok.status, PUBLIC_URL).toBe(200);
    }
    const pushed = mockWorker(() => new Response(null, { status: 202 }));
    const batch = createMessageBatch(dispatchQueue, [{ id: "u1", timestamp: new Date(), attempts: 1, body: { endpointId: ep, jobId: id, token: "u" } }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, PUBLIC_URL: "" } as Env, ctx);
    expect((await getQueueResult(batch, ctx)).retryMessages).toHaveLength(1);
    expect(pushed).toHaveLength(0);
    await call("POST", `/admin/endpoints/${ep}/resume`);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE", queue: { lastError: expect.stringMatching(/PUBLIC_URL/) } });
  });
});

describe("report tokens across a secret rotation", () => {
  it("a token minted before rotate-secret still reports while the previous secret signs", async () => {
    const { ep } = await pausedPushEndpoint();
    const id = await submit(ep);
    const pushed = mockWorker(() => new Response(null, { status: 202 }));
    await deliver(dispatchQueue, { endpointId: ep, jobId: id, token: "r" });
    expect((await call("POST", `/admin/endpoints/${ep}/rotate-secret`)).status).toBe(200);
    const done = new URL(pushed[0]!.json.urls.done);
    const report = await call("POST", done.pathname + done.search, { key: null, body: { output: "after rotation" } });
    expect(report.status).toBe(200);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "after rotation" });
  });
});

describe("push endpoints", () => {
  it("a submit travels through the real local queue to the worker URL and back", async () => {
    const pushed = mockWorker(() => Response.json({ output: "via the queue" }));
    const ep = await createEndpoint({ mode: "push", workerUrls: [WORKER_URL] });
    const id = await submit(ep, { input: { n: 7 } });
    await vi.waitUntil(async () => (await json<{ status: string }>(await status(ep, id))).status === "COMPLETED", { timeout: 10_000, interval: 50 });
    expect(pushed.map((p) => p.json.id)).toEqual([id]);
    expect(await json(await status(ep, id))).toMatchObject({ output: "via the queue", workerId: "push-0" });
  });

  it("pull takes get nothing from a push endpoint", async () => {
    const { ep } = await pausedPushEndpoint();
    await call("POST", `/admin/endpoints/${ep}/resume`);
    mockWorker(() => new Response("ok"));
    await submit(ep);
    expect((await call("GET", `/v2/${ep}/job-take/w1`)).status).toBe(204);
  });

  it("worker URLs on private or loopback addresses are refused unless allowed", async () => {
    for (const url of ["http://127.0.0.1:9000/", "http://10.0.0.8/x", "http://localhost/", "http://[::1]/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/"]) {
      const res = await call("PUT", `/admin/endpoints/ssrf-${Math.random().toString(36).slice(2)}`, {
        body: { mode: "push", workerUrls: [url], allowPrivateUrls: false },
      });
      expect(res.status, url).toBe(400);
      expect((await json(res)).error).toMatch(/workerUrls/);
    }
    const allowed = await call("PUT", `/admin/endpoints/ssrf-ok`, { body: { mode: "push", workerUrls: ["http://127.0.0.1:9000/"], allowPrivateUrls: true } });
    expect(allowed.status).toBe(200);
  });
});
