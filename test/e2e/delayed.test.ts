/**
 * Delayed jobs and retry backoff under the real Worker (`npm start`), with a real worker process
 * (examples/worker.mjs) long-polling: jobs submitted with a delay or a run-at time are not handed
 * out before their time, and how late after it they start (their delayTime, which counts from the
 * time they became due) is measured and printed. A job that fails once waits out its backoff.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

describe("delayed jobs under npm start", () => {
  it("start no earlier than their time; how late after it is measured; a backoff is waited out", async () => {
    const ep = "e2e-delayed";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { retryOnError: true, maxAttempts: 2 });
    const log: string[] = [];
    server.procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "delay-worker", RUNPOD_PING_INTERVAL: "1000" }, log));

    const jobs: Array<{ id: string; due: number }> = [];
    for (let i = 0; i < 20; i++) {
      const delay = 1_000 + 150 * i;
      const body = i % 2 === 0 ? { input: { i }, delay } : { input: { i }, runAt: new Date(Date.now() + delay).toISOString() };
      const before = Date.now();
      const res = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, body);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe("IN_QUEUE");
      jobs.push({ id: res.body.id as string, due: before + delay });
    }
    const first = await api(server.base, "GET", `/v2/${ep}/status/${jobs[19]!.id}`, keys.client);
    expect(first.body).toMatchObject({ status: "IN_QUEUE", queue: { reason: "scheduled", runAt: expect.any(String) } });

    const late: number[] = [];
    for (const j of jobs) {
      const s = await eventually(`job ${j.id} COMPLETED`, 60_000, async () => {
        const r = await api(server.base, "GET", `/v2/${ep}/status/${j.id}`, keys.client);
        return r.body.status === "COMPLETED" ? r.body : undefined;
      });
      // Started after its time: the worker could not have taken it before.
      const history = await api(server.base, "GET", `/v2/${ep}/history/${j.id}`, keys.client);
      const claimed = (history.body.history as Array<{ command: string; at: string }>).find((e) => e.command === "claim")!;
      expect(Date.parse(claimed.at)).toBeGreaterThanOrEqual(j.due - 5);
      late.push(s.delayTime as number);
    }
    late.sort((a, b) => a - b);
    console.log(`[delayed] 20 jobs, 1.0–3.9 s delays, one pulling worker: start after due time (delayTime) ms min ${late[0]} p50 ${quantile(late, 0.5)} p90 ${quantile(late, 0.9)} max ${late.at(-1)}`);
    expect(late[0]).toBeGreaterThanOrEqual(0);

    // A job that fails once waits its backoff (2 s) before the second attempt, which a second
    // worker takes (the one that failed it gets it back only 30 s after its failure).
    server.procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "delay-worker-2", RUNPOD_PING_INTERVAL: "1000" }, log));
    const failing = await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { fail: "once" }, policy: { retryBackoff: { type: "fixed", delay: 2_000 } } });
    const failedId = failing.body.id as string;
    const hist = await eventually("two attempts", 60_000, async () => {
      const r = await api(server.base, "GET", `/v2/${ep}/history/${failedId}`, keys.client);
      const h = r.body.history as Array<{ command: string; at: string; to: string }>;
      return h.filter((e) => e.command === "claim").length >= 2 ? h : undefined;
    });
    const failAt = Date.parse(hist.find((e) => e.command === "fail")!.at);
    expect(hist.find((e) => e.command === "fail")!.to).toBe("SCHEDULED");
    const second = Date.parse(hist.filter((e) => e.command === "claim")[1]!.at);
    console.log(`[delayed] backoff 2000 ms: second attempt claimed ${second - failAt} ms after the failure`);
    expect(second - failAt).toBeGreaterThanOrEqual(2_000);
  }, 180_000);
});
