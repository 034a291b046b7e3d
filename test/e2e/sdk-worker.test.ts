/**
 * The SDK's worker side (packages/client) against the real Worker under wrangler dev: the pull
 * loop (runWorker: concurrency, results and failures, progress, streams, cancels, graceful and
 * forced stops), the push helper (pushHandler) served by node:http on loopback, and the webhook
 * verifier (verifyWebhook) on real deliveries.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, describe, expect, it } from "vitest";
import { pushHandler } from "../../packages/client/src/push.ts";
import { verifyWebhook, WebhookVerificationError } from "../../packages/client/src/webhooks.ts";
import { runWorker, WORKER_STOPPED_ERROR, type JobHandler, type RunningWorker } from "../../packages/client/src/worker.ts";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, stopProcess, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "1000" });

const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
const workers: RunningWorker[] = [];
/** Every worker's errors, with when and whose (printed when a job does not end in time). */
const workerErrors: string[] = [];
const httpServers: Server[] = [];

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(httpServers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A worker on `ep` whose errors are collected (a test asserts there were none). */
function startWorker(ep: string, key: string, workerId: string, handler: JobHandler, extra: { concurrency?: number; shutdownGraceMs?: number; baseUrl?: string } = {}) {
  const errors: unknown[] = [];
  const worker = runWorker({
    baseUrl: server.base,
    apiKey: key,
    endpointId: ep,
    workerId,
    handler,
    pingIntervalMs: 2_000,
    shutdownGraceMs: 2_000,
    onError: (e) => {
      errors.push(e);
      workerErrors.push(`${new Date().toISOString()} ${workerId}: ${String(e)}`);
    },
    ...extra,
  });
  workers.push(worker);
  return { worker, errors };
}

async function submit(ep: string, key: string, input: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api(server.base, "POST", `/v2/${ep}/run`, key, { input, ...extra });
  expect(r.status).toBe(200);
  return r.body.id as string;
}

const statusOf = async (ep: string, key: string, id: string) => (await api(server.base, "GET", `/v2/${ep}/status/${id}`, key)).body;

function statusWhere(ep: string, key: string, id: string, what: string, pred: (s: Record<string, unknown>) => boolean, ms = 20_000) {
  return eventually(`job ${id}: ${what}`, ms, async () => {
    const s = await statusOf(ep, key, id);
    return pred(s) ? s : undefined;
  });
}

/** Waits for the job to end; a timeout prints what it needs to be understood (the job's history, the endpoint's health, the server's log). */
const terminal = (ep: string, key: string, id: string, ms = 20_000) =>
  statusWhere(ep, key, id, "to end", (s) => TERMINAL.includes(s.status as string), ms).catch(async (e: unknown) => {
    console.log(`job ${id}:`, JSON.stringify((await api(server.base, "GET", `/v2/${ep}/history/${id}`, key)).body));
    console.log("health:", JSON.stringify((await api(server.base, "GET", `/v2/${ep}/health`, key)).body));
    console.log("workers' errors:\n" + workerErrors.join("\n"));
    console.log("server output (last 6,000 characters):\n" + server.log.join("").slice(-6_000));
    throw e;
  });

/** A promise and its resolver. */
function gate<T = void>() {
  let open!: (v: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** Waits for the signal; rejects with its reason. */
const aborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

/** Serves a fetch-style handler with node:http on a free loopback port. */
async function serveFetch(handle: (request: Request) => Promise<Response>): Promise<string> {
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      try {
        const headers = new Headers();
        for (const [name, value] of Object.entries(req.headers)) {
          if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
        }
        const body = chunks.length > 0 && req.method !== "GET" && req.method !== "HEAD" ? Buffer.concat(chunks) : undefined;
        const response = await handle(new Request(`http://127.0.0.1${req.url ?? "/"}`, { method: req.method, headers, body }));
        const out: Record<string, string> = {};
        response.headers.forEach((value, name) => (out[name] = value));
        res.writeHead(response.status, out);
        res.end(Buffer.from(await response.arrayBuffer()));
      } catch (e) {
        res.writeHead(500).end(String(e));
      }
    });
  });
  httpServers.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

/** Posts a body with the given headers to a URL; answers the status and body text. */
async function postRaw(url: string, headers: Record<string, string>, body: string) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return { status: res.status, text: await res.text() };
}

describe("runWorker", () => {
  it("runs jobs two at a time: outputs, a thrown error, progress while running, stream chunks", async () => {
    const ep = "sdk-worker-a";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    let active = 0;
    let peak = 0;
    const progressed = gate();
    const release = gate();
    const { worker, errors } = startWorker(
      ep,
      keys.worker,
      "sdk-a",
      async (job, ctx) => {
        active++;
        peak = Math.max(peak, active);
        try {
          const input = job.input as { n?: number; fail?: string; progress?: boolean; stream?: number };
          if (input.fail) throw new Error(input.fail);
          if (input.progress) {
            await ctx.progress({ pct: 50 });
            progressed.open();
            await release.promise;
            return { finished: true };
          }
          if (input.stream) {
            for (let i = 1; i <= input.stream; i++) await ctx.stream({ i });
            return { chunks: input.stream };
          }
          await new Promise((r) => setTimeout(r, 300));
          return { doubled: input.n! * 2, attempt: job.attempt };
        } finally {
          active--;
        }
      },
      { concurrency: 2 },
    );

    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => submit(ep, keys.client, { n })));
    for (const [i, id] of ids.entries()) {
      expect(await terminal(ep, keys.client, id)).toMatchObject({ status: "COMPLETED", workerId: "sdk-a", output: { doubled: (i + 1) * 2, attempt: 1 } });
    }
    expect(peak).toBe(2);

    const failing = await submit(ep, keys.client, { fail: "the model is not loaded" });
    expect(await terminal(ep, keys.client, failing)).toMatchObject({ status: "FAILED", error: "the model is not loaded" });

    const slow = await submit(ep, keys.client, { progress: true });
    await progressed.promise;
    expect(await statusWhere(ep, keys.client, slow, "to show its progress", (s) => s.status === "IN_PROGRESS" && s.output !== undefined)).toMatchObject({
      status: "IN_PROGRESS",
      output: { pct: 50 },
    });
    expect(worker.running()).toEqual([slow]);
    release.open();
    expect(await terminal(ep, keys.client, slow)).toMatchObject({ status: "COMPLETED", output: { finished: true } });

    const streamed = await submit(ep, keys.client, { stream: 3 });
    expect(await terminal(ep, keys.client, streamed)).toMatchObject({ status: "COMPLETED", output: { chunks: 3 } });
    const chunks = await api(server.base, "GET", `/v2/${ep}/stream/${streamed}`, keys.client);
    expect(chunks.body).toMatchObject({ status: "COMPLETED", stream: [{ output: { i: 1 } }, { output: { i: 2 } }, { output: { i: 3 } }] });

    expect(worker.running()).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("two slots whose takes reach the coordinator out of order: the job one was handed runs to its end (found by CI)", async () => {
    // A take saying job_in_progress=0 releases the jobs claimed by the worker's takes that reached
    // the coordinator before it. With two slots, the other slot's take may overtake it in transit:
    // this proxy holds every `0` for 500 ms, so a job submitted beforehand goes to the other slot
    // first. A worker of several slots never says 0 (its pings release what it truly lost).
    const ep = "sdk-worker-order";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const id = await submit(ep, keys.client, { n: 21 });
    const saidZero: string[] = [];
    const proxy = await serveFetch(async (request) => {
      const url = new URL(request.url);
      if (url.searchParams.get("job_in_progress") === "0") {
        saidZero.push(url.pathname);
        await new Promise((r) => setTimeout(r, 500));
      }
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      const headers = new Headers(request.headers);
      for (const h of ["host", "connection", "content-length", "keep-alive", "transfer-encoding"]) headers.delete(h);
      const res = await fetch(`${server.base}${url.pathname}${url.search}`, { method: request.method, headers, body });
      const type = res.headers.get("content-type");
      return new Response(res.status === 204 ? null : await res.arrayBuffer(), { status: res.status, headers: type ? { "content-type": type } : {} });
    });
    const { worker, errors } = startWorker(ep, keys.worker, "sdk-order", async (job) => {
      await new Promise((r) => setTimeout(r, 1_000)); // long enough for a held 0 to arrive meanwhile
      return { doubled: (job.input as { n: number }).n * 2 };
    }, { concurrency: 2, baseUrl: proxy });
    expect(await terminal(ep, keys.client, id, 10_000)).toMatchObject({ status: "COMPLETED", attempt: 1, output: { doubled: 42 } });
    await worker.stop();
    expect(saidZero, "a worker of two slots never says job_in_progress=0").toEqual([]);
    expect(errors).toEqual([]);
  });

  it("a job cancelled while its handler runs aborts the handler's signal, and the loop goes on", async () => {
    const ep = "sdk-worker-b";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const started = gate();
    let abortedAfterMs = -1;
    let cancelledAt = 0;
    const { errors } = startWorker(ep, keys.worker, "sdk-b", async (job, ctx) => {
      if ((job.input as { wait?: boolean }).wait) {
        started.open();
        try {
          return await aborted(ctx.signal);
        } finally {
          abortedAfterMs = Date.now() - cancelledAt;
        }
      }
      return { after: job.input };
    });

    const id = await submit(ep, keys.client, { wait: true });
    await started.promise;
    cancelledAt = Date.now();
    const cancel = await api(server.base, "POST", `/v2/${ep}/cancel/${id}`, keys.client);
    expect(cancel.status).toBe(200);
    expect(await terminal(ep, keys.client, id, 10_000)).toMatchObject({ status: "CANCELLED" });
    expect(abortedAfterMs).toBeGreaterThanOrEqual(0);
    expect(abortedAfterMs).toBeLessThan(5_000);

    const next = await submit(ep, keys.client, "next one");
    expect(await terminal(ep, keys.client, next)).toMatchObject({ status: "COMPLETED", output: { after: "next one" } });
    expect(errors).toEqual([]);
  });

  it("stop() lets a running job finish within the grace, then resolves and takes nothing more", async () => {
    const ep = "sdk-worker-c";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const started = gate();
    const { worker, errors } = startWorker(
      ep,
      keys.worker,
      "sdk-c",
      async (job) => {
        started.open();
        await new Promise((r) => setTimeout(r, 1_500));
        return { slept: job.input };
      },
      { shutdownGraceMs: 15_000 },
    );
    const id = await submit(ep, keys.client, "long");
    await started.promise;
    const t0 = Date.now();
    await worker.stop();
    const took = Date.now() - t0;
    expect(took).toBeLessThan(5_000);
    await worker.done;
    expect((await statusOf(ep, keys.client, id))).toMatchObject({ status: "COMPLETED", output: { slept: "long" } });

    // Stopped: a new job stays in the queue (no take is left open to claim it).
    const later = await submit(ep, keys.client, "after the stop");
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await statusOf(ep, keys.client, later)).toMatchObject({ status: "IN_QUEUE" });
    expect(errors).toEqual([]);
  });

  it("stop() with a tiny grace aborts running handlers and fails their jobs with the stop message", async () => {
    const ep = "sdk-worker-d";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const startedA = gate();
    const startedB = gate();
    const sawAbort: string[] = [];
    const { worker } = startWorker(
      ep,
      keys.worker,
      "sdk-d",
      async (job, ctx) => {
        const input = job.input as string;
        ctx.signal.addEventListener("abort", () => sawAbort.push(input));
        if (input === "polite") {
          startedA.open();
          return aborted(ctx.signal); // ends when aborted
        }
        startedB.open();
        return new Promise(() => undefined); // ignores the signal: never ends
      },
      { concurrency: 2, shutdownGraceMs: 300 },
    );
    const polite = await submit(ep, keys.client, "polite");
    const stubborn = await submit(ep, keys.client, "stubborn");
    await Promise.all([startedA.promise, startedB.promise]);
    const t0 = Date.now();
    await worker.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(sawAbort.sort()).toEqual(["polite", "stubborn"]);
    for (const id of [polite, stubborn]) {
      expect(await statusOf(ep, keys.client, id)).toMatchObject({ status: "FAILED", error: WORKER_STOPPED_ERROR });
    }
  });
});

describe("pushHandler", () => {
  it("completes pushed jobs inline (sync) and through urls.done (async), and refuses a bad signature with 401", async () => {
    let calls = 0;
    const handler = async (job: { id: string; attempt: number; input: unknown }, ctx: { progress(o: unknown): Promise<void>; stream(c: unknown): Promise<void>; webhookId: string }) => {
      calls++;
      const input = job.input as { n: number; stream?: boolean; fail?: string };
      if (input.fail) throw new Error(input.fail);
      if (input.stream) {
        await ctx.progress({ step: "streaming" });
        await ctx.stream({ part: 1 });
        await ctx.stream({ part: 2 });
      }
      return { squared: input.n * input.n, attempt: job.attempt, pushed: ctx.webhookId.startsWith("push_") };
    };

    // Two push endpoints, each with its own worker URL served by pushHandler.
    const endpoints: Record<string, { url: string; secret: string }> = {};
    for (const respond of ["sync", "async"] as const) {
      const ep = `sdk-push-${respond}`;
      let handle: ((request: Request) => Promise<Response>) | undefined;
      const url = `${await serveFetch((request) => handle!(request))}/jobs`;
      const put = await api(server.base, "PUT", `/admin/endpoints/${ep}`, server.adminKey, { mode: "push", workerUrls: [url] });
      expect(put.status).toBe(200);
      const secret = put.body.webhookSecret as string;
      handle = pushHandler({ webhookSecret: secret, handler, respond });
      endpoints[respond] = { url, secret };
    }

    for (const respond of ["sync", "async"] as const) {
      const ep = `sdk-push-${respond}`;
      const key = server.adminKey;
      const plain = await submit(ep, key, { n: 7 });
      const streamed = await submit(ep, key, { n: 3, stream: true });
      const failing = await submit(ep, key, { n: 0, fail: "no such model" });
      expect(await terminal(ep, key, plain, 30_000)).toMatchObject({ status: "COMPLETED", workerId: "push-0", output: { squared: 49, attempt: 1, pushed: true } });
      expect(await terminal(ep, key, streamed, 30_000)).toMatchObject({ status: "COMPLETED", output: { squared: 9 } });
      expect(await terminal(ep, key, failing, 30_000)).toMatchObject({ status: "FAILED", error: "no such model" });
      const chunks = await api(server.base, "GET", `/v2/${ep}/stream/${streamed}`, key);
      expect(chunks.body.stream).toEqual([{ output: { part: 1 } }, { output: { part: 2 } }]);
    }
    expect(calls).toBe(6);

    // Forged pushes: a well-formed signature under another secret, none at all, a replayed old one.
    const { url, secret } = endpoints.sync!;
    const body = JSON.stringify({ id: "forged", attempt: 1, input: { n: 1 }, urls: { done: "http://127.0.0.1:9/x", stream: "http://127.0.0.1:9/y" } });
    const now = new Date();
    const sign = (s: string, at: Date) => ({
      "webhook-id": "push_forged",
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": new Webhook(s).sign("push_forged", at, body),
    });
    const other = `whsec_${Buffer.from("another secret, not the endpoint's").toString("base64")}`;
    const wrong = await postRaw(url, sign(other, now), body);
    expect(wrong.status).toBe(401);
    expect(wrong.text).toMatch(/no matching signature/);
    expect((await postRaw(url, {}, body)).status).toBe(401);
    const old = await postRaw(url, sign(secret, new Date(now.getTime() - 3_600_000)), body);
    expect(old.status).toBe(401);
    expect(old.text).toMatch(/too old/);
    expect(calls).toBe(6);
  });
});

describe("verifyWebhook", () => {
  it("accepts a real delivery, and rejects it with a changed body or an old timestamp", async () => {
    const ep = "sdk-webhook";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const secret = (await api(server.base, "GET", `/admin/endpoints/${ep}`, server.adminKey)).body.webhookSecret as string;
    const deliveries: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(200).end();
      });
    });
    httpServers.push(receiver);
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", () => resolve()));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    startWorker(ep, keys.worker, "sdk-wh", async (job) => ({ echo: job.input }));

    const id = await submit(ep, keys.client, { prompt: "héllo ✓" }, { webhook: hook });
    const got = await eventually("the webhook delivery", 20_000, async () => deliveries.find((d) => d.body.includes(id)));

    const event = verifyWebhook(secret, got.headers, got.body);
    expect(event).toMatchObject({ id, status: "COMPLETED", seq: 1, webhook: hook, input: { prompt: "héllo ✓" }, output: { echo: { prompt: "héllo ✓" } }, workerId: "sdk-wh" });
    // The same with the headers as a fetch Headers object.
    const asHeaders = new Headers(Object.entries(got.headers).map(([k, v]) => [k, String(v)] as [string, string]));
    expect(verifyWebhook(secret, asHeaders, got.body).id).toBe(id);

    const changed = got.body.replace('"COMPLETED"', '"FAILED"');
    expect(changed).not.toBe(got.body);
    expect(() => verifyWebhook(secret, asHeaders, changed)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(secret, asHeaders, changed)).toThrow(/no matching signature/);

    // The real headers with their timestamp moved back an hour: refused for its age.
    const staleHeaders = new Headers(asHeaders);
    staleHeaders.set("webhook-timestamp", String(Number(asHeaders.get("webhook-timestamp")) - 3_600));
    expect(() => verifyWebhook(secret, staleHeaders, got.body)).toThrow(/too old/);
    // A genuine signature made an hour ago: too old by default, accepted with a larger tolerance.
    const hourAgo = new Date(Date.now() - 3_600_000);
    const webhookId = asHeaders.get("webhook-id")!;
    const signedThen = {
      "webhook-id": webhookId,
      "webhook-timestamp": String(Math.floor(hourAgo.getTime() / 1000)),
      "webhook-signature": new Webhook(secret).sign(webhookId, hourAgo, got.body),
    };
    expect(() => verifyWebhook(secret, signedThen, got.body)).toThrow(WebhookVerificationError);
    expect(verifyWebhook(secret, signedThen, got.body, { toleranceSeconds: 7_200 }).id).toBe(id);
    // Another secret: refused.
    expect(() => verifyWebhook(`whsec_${Buffer.from("not it").toString("base64")}`, asHeaders, got.body)).toThrow(WebhookVerificationError);
  });
});

describe("examples/sdk-worker.mjs", () => {
  it("a worker process built on the SDK runs jobs (and fails the one that asks to), then stops on SIGTERM", async () => {
    const ep = "sdk-example";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const ids: string[] = [];
    for (const input of [{ n: 1 }, { n: 2, sleepMs: 200 }, { fail: "asked to" }]) ids.push((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input })).body.id as string);
    const log: string[] = [];
    const child = spawnNode("examples/sdk-worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "sdk-example-1" }, log);
    try {
      const ended = await eventually("the example's jobs to end", 30_000, async () => {
        const all = await Promise.all(ids.map((id) => api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)));
        return all.every((s) => ["COMPLETED", "FAILED"].includes(s.body.status as string)) ? all.map((s) => s.body) : undefined;
      }).catch(async (e: unknown) => {
        // What a failure needs to be understood: each job's history, the endpoint's health, the worker's output.
        for (const id of ids) console.log(`job ${id}:`, JSON.stringify((await api(server.base, "GET", `/v2/${ep}/history/${id}`, keys.client)).body));
        console.log("health:", JSON.stringify((await api(server.base, "GET", `/v2/${ep}/health`, keys.client)).body));
        console.log("worker output:\n" + log.join(""));
        console.log("server output (last 6,000 characters):\n" + server.log.join("").slice(-6_000));
        throw e;
      });
      expect(ended[0]).toMatchObject({ status: "COMPLETED", workerId: "sdk-example-1", output: { echo: { n: 1 }, worker: "sdk-example-1" } });
      expect(ended[1]).toMatchObject({ status: "COMPLETED", output: { echo: { n: 2, sleepMs: 200 } } });
      expect(ended[2]).toMatchObject({ status: "FAILED", error: "asked to" });
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      await stopProcess(child);
      expect(await exited).toBe(0);
    }
    expect(log.join("")).toContain('"event":"stopped"');
  });
});
