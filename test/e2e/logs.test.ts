/**
 * Job logs end to end (issue 14) against the real Worker under wrangler dev: a real worker
 * process (examples/worker.mjs, RunPod's protocol) logs while its job runs and a client following
 * `logs?follow=1` sees each line live, before the job ends; the SDK's pull loop (ctx.log) and
 * its push helper (urls.log) forward a handler's lines; the SDK client reads pages and follows.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createClient, sseEvents, type LogEvent } from "../../packages/client/src/client.ts";
import { pushHandler } from "../../packages/client/src/push.ts";
import { runWorker, type RunningWorker } from "../../packages/client/src/worker.ts";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "1000" });
const workers: RunningWorker[] = [];
const closers: Array<() => Promise<void>> = [];

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(closers.map((c) => c()));
});

const statusOf = async (ep: string, key: string, id: string) => (await api(server.base, "GET", `/v2/${ep}/status/${id}`, key)).body.status as string;

describe("job logs over HTTP", () => {
  it("a worker process's lines appear live on logs?follow=1 while its job runs, then `end`", async () => {
    const ep = "e2e-logs-live";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const run = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { log: ["loading model", "step 1 of 2", "step 2 of 2"], logEveryMs: 1500 } });
    const id = run.body.id as string;
    const child = spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "logger", RUNPOD_PING_INTERVAL: "1000" });
    server.procs.push(child);

    const seen: Array<{ event: string; data: Record<string, unknown>; id: string | null; statusThen: string; at: number }> = [];
    // wrangler dev reloads when a source file changes, which cuts open connections: resume after
    // the last line seen with Last-Event-ID, as an SSE client does.
    for (let connection = 1; seen.at(-1)?.event !== "end"; connection++) {
      if (connection > 5) throw new Error("the follow connection kept being cut");
      const lastId = seen.filter((e) => e.event === "log").at(-1)?.id ?? "0";
      const res = await fetch(`${server.base}/v2/${ep}/logs/${id}?follow=1`, { headers: { authorization: `Bearer ${keys.client}`, "last-event-id": lastId } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      try {
        for await (const e of sseEvents(res.body!)) {
          // The job's state the moment each line arrives: lines must come while it still runs.
          const statusThen = e.event === "log" ? await statusOf(ep, keys.client, id) : "";
          seen.push({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown>, id: e.id, statusThen, at: Date.now() });
          if (e.event === "end") break;
        }
      } catch {
        // cut: reconnect
      }
    }
    const logs = seen.filter((e) => e.event === "log");
    expect(logs.map((e) => [e.id, e.data.message, e.data.level, e.data.workerId, e.data.attempt])).toEqual([
      ["1", "loading model", "INFO", "logger", 1],
      ["2", "step 1 of 2", "INFO", "logger", 1],
      ["3", "step 2 of 2", "INFO", "logger", 1],
    ]);
    expect(logs.map((e) => e.statusThen)).toEqual(["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS"]);
    // Live: the first line came well before the last (the handler logs 1.5 s apart).
    expect(logs[2]!.at - logs[0]!.at).toBeGreaterThan(2_000);
    for (const e of logs) expect(typeof e.data.ts).toBe("string");
    expect(seen.at(-1)).toMatchObject({ event: "end", data: { id, status: "COMPLETED", truncated: false } });

    // The paged read (checked against the OpenAPI document by `api`).
    const page = await api(server.base, "GET", `/v2/${ep}/logs/${id}?limit=2`, keys.client);
    expect(page.body).toMatchObject({ id, status: "COMPLETED", next: 2, truncated: false });
    const rest = await api(server.base, "GET", `/v2/${ep}/logs/${id}?after=2`, keys.client);
    expect(rest.body).toMatchObject({ next: null, lines: [expect.objectContaining({ seq: 3, message: "step 2 of 2" })] });
    // Late lines from the worker that held the job are refused now that it ended.
    const late = await api(server.base, "POST", `/v2/${ep}/job-log/logger/${id}`, keys.worker, { lines: ["too late"] });
    expect(late.status).toBe(409);
  });

  it("the SDK: runWorker's ctx.log reaches followLogs live; logs() pages", async () => {
    const ep = "e2e-logs-sdk";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const errors: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    workers.push(
      runWorker({
        baseUrl: server.base,
        apiKey: keys.worker,
        endpointId: ep,
        workerId: "sdk-logger",
        pingIntervalMs: 2_000,
        onError: (e) => errors.push(e),
        handler: async (job, ctx) => {
          ctx.log("started");
          ctx.log({ step: 1 }, "DEBUG");
          await gate; // held until the follower has seen the first lines
          ctx.log(new Error("recoverable"), "WARN");
          ctx.log("x".repeat(5000), "ERROR");
          return { ok: job.id };
        },
      }),
    );
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });
    const { id } = await client.submit({ n: 1 });
    const events: LogEvent[] = [];
    for await (const e of client.followLogs(id)) {
      events.push(e);
      if (events.length === 2) {
        expect(await statusOf(ep, keys.client, id)).toBe("IN_PROGRESS");
        release();
      }
      if (e.type === "end") break;
    }
    const lines = events.flatMap((e) => (e.type === "log" ? [e.line] : []));
    expect(lines.map((l) => [l.level, l.workerId])).toEqual([
      ["INFO", "sdk-logger"],
      ["DEBUG", "sdk-logger"],
      ["WARN", "sdk-logger"],
      ["ERROR", "sdk-logger"],
    ]);
    expect(lines.map((l) => l.message.slice(0, 20))).toEqual(["started", '{"step":1}', "Error: recoverable\n ", "x".repeat(20)]);
    expect(lines[3]!.message).toContain("\n...TRUNCATED 904 CHARACTERS...\n");
    expect(events.at(-1)).toEqual({ type: "end", status: "COMPLETED", truncated: false });
    const page = await client.logs(id, { limit: 3 });
    expect(page).toMatchObject({ id, status: "COMPLETED", next: 3 });
    expect((await client.logs(id, { after: 3 })).lines.map((l) => l.seq)).toEqual([4]);
    expect(errors).toEqual([]);
  });

  it("a push worker's lines go to urls.log (SDK pushHandler), before its result", async () => {
    const ep = "e2e-logs-push";
    let handle: ((request: Request) => Promise<Response>) | undefined;
    const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
        const response = await handle!(new Request(`http://127.0.0.1${req.url ?? "/"}`, { method: req.method, headers, body: Buffer.concat(chunks) }));
        const out: Record<string, string> = {};
        response.headers.forEach((v, k) => (out[k] = v));
        res.writeHead(response.status, out);
        res.end(Buffer.from(await response.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
    closers.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/jobs`;
    const put = await api(server.base, "PUT", `/admin/endpoints/${ep}`, server.adminKey, { mode: "push", workerUrls: [url] });
    expect(put.status).toBe(200);
    const errors: unknown[] = [];
    handle = pushHandler({
      webhookSecret: put.body.webhookSecret as string,
      respond: "async",
      onError: (e) => errors.push(e),
      handler: async (job, ctx) => {
        ctx.log("pushed and running");
        ctx.log("about to answer", "WARN");
        return { n: job.attempt };
      },
    });
    const run = await api(server.base, "POST", `/v2/${ep}/run`, server.adminKey, { input: {} });
    const id = run.body.id as string;
    await eventually("the push job to complete", 30_000, async () => ((await statusOf(ep, server.adminKey, id)) === "COMPLETED" ? true : undefined));
    const page = await api(server.base, "GET", `/v2/${ep}/logs/${id}`, server.adminKey);
    expect((page.body.lines as Array<Record<string, unknown>>).map((l) => [l.workerId, l.level, l.message])).toEqual([
      ["push-0", "INFO", "pushed and running"],
      ["push-0", "WARN", "about to answer"],
    ]);
    expect(errors).toEqual([]);
  });
});
