/**
 * End to end, push mode: the real Worker under wrangler dev with its local Queues, and real push
 * worker processes on loopback that verify every push with the standardwebhooks package — one
 * that answers at once, one that reports later through its job-done URL, and one that fails the
 * first two deliveries.
 */
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { api, eventually, jsonLines } from "./api";
import { freePort, spawnNode, useServer } from "./harness";

const server = useServer();
const procs = server.procs;

/** Starts a push worker for a new push endpoint; returns the endpoint id and the worker's log. */
async function pushEndpoint(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const put = await api(server.base, "PUT", `/admin/endpoints/${name}`, server.adminKey, { mode: "push", workerUrls: [`http://127.0.0.1:${port}/jobs`] });
  expect(put.status).toBe(200);
  const log: string[] = [];
  procs.push(spawnNode("examples/push-worker.mjs", { PORT: String(port), WEBHOOK_SECRET: put.body.webhookSecret as string, ...env }, log));
  await eventually("the push worker to listen", 10_000, async () => (log.join("").includes('"listening"') ? true : undefined));
  return { ep: name, events: () => jsonLines(log) };
}

const statusOf = (ep: string, id: string) => api(server.base, "GET", `/v2/${ep}/status/${id}`, server.adminKey);
const completed = (ep: string, id: string, ms = 30_000) =>
  eventually(`job ${id} to complete`, ms, async () => {
    const s = await statusOf(ep, id);
    return s.body.status === "COMPLETED" ? s.body : undefined;
  });

describe("push mode over HTTP", () => {
  it("jobs are pushed, signed, to the worker URL, and its answers complete them", async () => {
    const { ep, events } = await pushEndpoint("e2e-push");
    const ids = await Promise.all([1, 2, 3].map(async (n) => (await api(server.base, "POST", `/v2/${ep}/run`, server.adminKey, { input: { n } })).body.id as string));
    for (const [i, id] of ids.entries()) {
      expect(await completed(ep, id)).toMatchObject({ status: "COMPLETED", workerId: "push-0", output: { echo: { n: i + 1 }, attempt: 1 } });
    }
    expect(events().filter((e) => e.event === "push").map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(events().some((e) => e.event === "bad-signature")).toBe(false);
  });

  it("a worker that accepts and reports later through its job-done URL", async () => {
    const { ep, events } = await pushEndpoint("e2e-push-async", { ASYNC: "1" });
    const id = (await api(server.base, "POST", `/v2/${ep}/run`, server.adminKey, { input: "later" })).body.id as string;
    expect(await completed(ep, id)).toMatchObject({ output: { echo: "later" } });
    expect(events()).toContainEqual({ event: "reported", id, status: 200 });
  });

  it("defect 16: a submit with a forged Host header still has its worker report to PUBLIC_URL", async () => {
    const { ep, events } = await pushEndpoint("e2e-push-host", { ASYNC: "1" });
    // node:http sends the Host header as written (fetch would not let a caller choose it).
    const submitted = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.base}/v2/${ep}/run`, {
        method: "POST",
        headers: { host: "evil.example", authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end(JSON.stringify({ input: "host" }));
    });
    expect(submitted.status).toBe(200);
    const id = (JSON.parse(submitted.body) as { id: string }).id;
    // The worker reports through urls.done; had it named evil.example, the job would never complete.
    expect(await completed(ep, id)).toMatchObject({ output: { echo: "host" } });
    const reported = await eventually("the worker's report", 10_000, async () => events().find((e) => e.event === "reported" && e.id === id));
    expect(reported).toEqual({ event: "reported", id, status: 200 });
  });

  it("a worker that fails the first two deliveries gets the job on the third, with growing delays", async () => {
    const { ep, events } = await pushEndpoint("e2e-push-flaky", { FAIL_FIRST: "2" });
    const id = (await api(server.base, "POST", `/v2/${ep}/run`, server.adminKey, { input: "retry me" })).body.id as string;
    const waiting = await eventually("the first refusal", 15_000, async () => {
      const s = await statusOf(ep, id);
      return (s.body.queue as { reason?: string } | undefined)?.reason === "dispatch_retrying" ? s.body : undefined;
    });
    expect(waiting).toMatchObject({ status: "IN_QUEUE", queue: { lastError: expect.stringMatching(/HTTP 503/) } });
    expect(await completed(ep, id, 60_000)).toMatchObject({ status: "COMPLETED", attempt: 3, output: { attempt: 3 } });
    const pushes = events().filter((e) => e.event === "push" && e.id === id);
    expect(pushes.map((p) => p.attempt)).toEqual([1, 2, 3]);
    const gaps = pushes.slice(1).map((p, i) => (p.receivedAt as number) - (pushes[i]!.receivedAt as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(900);
    expect(gaps[1]).toBeGreaterThanOrEqual(1_900);
    const history = await api(server.base, "GET", `/v2/${ep}/history/${id}`, server.adminKey);
    expect((history.body.history as Array<{ command: string }>).map((e) => e.command)).toEqual([
      "submit", "claim", "pushFailed", "claim", "pushFailed", "claim", "complete",
    ]);
  });
});
