/**
 * End to end, webhooks: the real Worker under wrangler dev, a pulling worker process, and a
 * receiver process on loopback that verifies every delivery with the standardwebhooks package,
 * fails each event's first attempt with 500 and lets its second time out. Every terminal job
 * reaches the receiver exactly once as a success.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually, jsonLines } from "./api";
import { freePort, spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000", WEBHOOK_TIMEOUT_MS: "2000" });
const procs = server.procs;

describe("webhooks over HTTP", () => {
  it("each terminal job reaches the receiver as exactly one verified success, through failures and a timeout", async () => {
    const ep = "e2e-webhooks";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const secret = (await api(server.base, "GET", `/admin/endpoints/${ep}`, server.adminKey)).body.webhookSecret as string;
    const port = await freePort();
    const log: string[] = [];
    procs.push(spawnNode("examples/webhook-receiver.mjs", { PORT: String(port), WEBHOOK_SECRET: secret, FAIL_EACH: "1", HANG_EACH: "1" }, log));
    await eventually("the receiver to listen", 10_000, async () => (log.join("").includes('"listening"') ? true : undefined));
    procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "wh-worker" }));

    const webhook = `http://127.0.0.1:${port}/hook`;
    const inputs = [{ n: 1 }, { n: 2 }, { fail: "bad input" }];
    const ids = await Promise.all(inputs.map(async (input) => (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input, webhook })).body.id as string));
    const cancelled = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { sleepMs: 60_000 }, webhook })).body.id as string;
    await eventually("the long job to start", 20_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${cancelled}`, keys.client);
      return s.body.status === "IN_PROGRESS" ? true : undefined;
    });
    await api(server.base, "POST", `/v2/${ep}/cancel/${cancelled}`, keys.client);

    const events = () => jsonLines(log);
    const all = [...ids, cancelled];
    await eventually("a verified success for every job", 60_000, async () => {
      const got = events().filter((e) => e.event === "received").map((e) => e.jobId);
      return all.every((id) => got.includes(id)) ? true : undefined;
    });
    const received = events().filter((e) => e.event === "received");
    expect(received.map((e) => e.jobId).sort()).toEqual([...all].sort());
    expect(events().some((e) => e.event === "rejected" || e.event === "repeat")).toBe(false);
    expect(Object.fromEntries(received.map((e) => [e.jobId, e.status]))).toEqual({
      [ids[0]!]: "COMPLETED",
      [ids[1]!]: "COMPLETED",
      [ids[2]!]: "FAILED",
      [cancelled]: "CANCELLED",
    });
    for (const e of received) expect(e.attempt).toBe(3);

    const one = await api(server.base, "GET", `/v2/${ep}/webhooks/${ids[0]}`, keys.client);
    const event = (one.body.events as Array<{ state: string; log: Array<{ status: number | null; error: string | null }> }>)[0]!;
    expect(event.state).toBe("delivered");
    expect(event.log.map((a) => a.status)).toEqual([500, null, 200]);
    expect(event.log[1]!.error).toMatch(/no answer within 2000 ms/);
    const status = await api(server.base, "GET", `/v2/${ep}/status/${ids[0]}`, keys.client);
    expect(status.body.webhook).toMatchObject({ state: "delivered", attempts: 3, lastStatus: 200 });
  });
});
