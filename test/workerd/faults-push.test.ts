/**
 * Fault injection on push workers and the dispatch queue, counted like the pull suite: jobs
 * pushed through the real consumer (messages built with createMessageBatch, so every delivery
 * is under the suite's control) while faults are injected — the same message delivered twice
 * (one after the other, and both in one batch: never two pushes of one attempt at once), worker URLs that refuse or drop the first
 * pushes, a URL that never accepts (retries run out, the dead-letter consumer fails the job), a
 * consumer that crashes after claiming, workers killed after accepting (the lease is lost and
 * the job pushed again), late and duplicate reports to the report URL, an object evicted between
 * the push and the report, a worker's error, a cancel before delivery, and a flaky webhook receiver. Counters: lost, duplicated (two terminal
 * transitions or two accepted results), unexpected, late; FAULT_SEED replays.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, evictDurableObject, getQueueResult, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import worker from "../../src/index";
import { advance, BOUND_MS, choices, count, FlakyReceiver, freezeAt, type FaultJob, jobStubOf, POLICY, report, SEED, stillArmed, WEBHOOK_RETRY_TIMES } from "./fault-kit";
import { call, createEndpoint, submit } from "./helpers";

const JOBS = 600;
const WORKER_URL = "https://push-worker.example.com/jobs";
const HOOK = "https://fault-receiver.example.com/push-hook";
const DISPATCH = "edge-jobs-dispatch";
const DEAD_LETTERS = "edge-jobs-dispatch-dlq";
/** The dispatch consumer's max_retries in wrangler.toml: deliveries 1 … 6, then the dead-letter queue. */
const DELIVERIES = 6;
const FATES = [
  "accepted", "async", "duplicateDelivery", "concurrentDuplicate", "flakyWorker", "deadLettered",
  "consumerCrash", "killedAfterAccept", "lateReport", "duplicateReport", "workerError", "cancelled", "evicted",
] as const;
type Fate = (typeof FATES)[number];

interface Pushed {
  id: string;
  attempt: number;
  urls: { done: string };
  webhookId: string;
}

afterEach(() => vi.restoreAllMocks());

let messageSeq = 0;
async function deliver(queue: string, body: { endpointId: string; jobId: string; token: string }, attempts: number, copies = 1) {
  const messages = Array.from({ length: copies }, () => ({ id: `m${++messageSeq}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch(queue, messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { retried: result.retryMessages.length, acked: result.explicitAcks.length };
}

describe("fault injection: push workers and queue deliveries", () => {
  it(`${JOBS} push jobs under faults: 0 lost, 0 duplicated, 0 unexpected (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const next = choices(SEED + 1, JOBS * 4);
    const fateOf = new Map<string, Fate>();
    const refusalsOf = new Map<string, number>();
    const pushes = new Map<string, Pushed[]>();
    const receiver = new FlakyReceiver(HOOK, () => next(4));

    // The push worker: what it answers depends on the job's fate and on how often it was pushed.
    const answer = (p: Pushed): Response => {
      const fate = fateOf.get(p.id)!;
      const n = pushes.get(p.id)!.length;
      const result = () => Response.json({ output: { echo: p.id, attempt: p.attempt } });
      switch (fate) {
        case "flakyWorker":
          if (n <= refusalsOf.get(p.id)!) {
            if (n % 2 === 0) throw new TypeError("connection reset by push worker");
            return new Response("warming up", { status: 503 });
          }
          return result();
        case "deadLettered":
          return new Response("always down", { status: 503 });
        case "workerError":
          return Response.json({ error: "handler raised" });
        case "async":
        case "duplicateReport":
        case "evicted":
          return new Response(null, { status: 202 });
        case "killedAfterAccept":
        case "lateReport":
          return n === 1 ? new Response(null, { status: 202 }) : result();
        default:
          return result();
      }
    };
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (req.url.startsWith(HOOK)) return receiver.answer(req);
      if (!req.url.startsWith(WORKER_URL)) throw new TypeError(`unexpected fetch to ${req.url}`);
      const body = (await req.json()) as Omit<Pushed, "webhookId">;
      const p = { ...body, webhookId: req.headers.get("webhook-id")! };
      pushes.set(p.id, [...(pushes.get(p.id) ?? []), p]);
      return answer(p);
    });

    const ep = await createEndpoint({ ...POLICY, mode: "push", workerUrls: [WORKER_URL] });
    // Paused, the endpoint puts nothing on the real queue: every delivery below is the suite's.
    expect((await call("POST", `/admin/endpoints/${ep}/pause`)).status).toBe(200);
    const jobs: FaultJob<Fate>[] = [];
    for (let i = 0; i < JOBS; i++) {
      const fate = FATES[next(FATES.length)]!;
      const id = await submit(ep, { input: { i }, webhook: HOOK });
      fateOf.set(id, fate);
      if (fate === "flakyWorker") refusalsOf.set(id, 1 + next(3));
      jobs.push({ id, fate, stub: jobStubOf(id), createdAt: 0, settled: false });
    }
    const T0 = Date.now();
    await freezeAt(jobs, T0);

    const unexpected: string[] = [];
    const tally = { alarmFaults: 0, unexpected };
    const message = (j: FaultJob<Fate>, dispatch = 1) => ({ endpointId: ep, jobId: j.id, token: `${j.id.slice(0, 16)}-${dispatch}` });
    const reportTo = (url: string, body: unknown) => {
      const u = new URL(url);
      return call("POST", u.pathname + u.search, { key: null, body });
    };
    /** Delivers one message until the consumer stops asking for a retry; returns the deliveries made. */
    const deliverUntilDone = async (j: FaultJob<Fate>, dispatch: number) => {
      for (let attempts = 1; attempts <= DELIVERIES; attempts++) {
        if ((await deliver(DISPATCH, message(j, dispatch), attempts)).retried === 0) return attempts;
      }
      return DELIVERIES;
    };

    // Round 1: each job's first dispatch meets its fate.
    for (const j of jobs) {
      switch (j.fate) {
        case "accepted":
        case "async":
        case "evicted":
        case "workerError":
        case "killedAfterAccept":
        case "lateReport":
        case "duplicateReport":
          await deliver(DISPATCH, message(j), 1);
          break;
        case "duplicateDelivery":
          await deliver(DISPATCH, message(j), 1);
          if ((await deliver(DISPATCH, message(j), 1)).acked !== 1) unexpected.push(`${j.id}: a duplicate delivery was not acked`);
          break;
        case "concurrentDuplicate": {
          // Both copies in one batch: one pushes, the other waits out the push in flight.
          const both = await deliver(DISPATCH, message(j), 1, 2);
          if (both.retried !== 1 || both.acked !== 1) unexpected.push(`${j.id}: copies in one batch: ${both.acked} acked, ${both.retried} retried`);
          if ((await deliver(DISPATCH, message(j), 2)).acked !== 1) unexpected.push(`${j.id}: the retried copy was not acked`);
          break;
        }
        case "flakyWorker":
          if ((await deliverUntilDone(j, 1)) !== refusalsOf.get(j.id)! + 1) unexpected.push(`${j.id}: not accepted after its refusals`);
          break;
        case "deadLettered":
          if ((await deliverUntilDone(j, 1)) !== DELIVERIES) unexpected.push(`${j.id}: retries stopped early`);
          await deliver(DEAD_LETTERS, message(j), 1);
          break;
        case "consumerCrash":
          // The claim commits, then the consumer's call fails: the queue redelivers the message.
          await runInDurableObject(j.stub, (i: JobObject) => i.faults.arm("job:after-commit"));
          if ((await deliver(DISPATCH, message(j), 1)).retried !== 1) unexpected.push(`${j.id}: a crashed dispatch was not retried`);
          // Redelivered at once, the claim may still be pushing: it is retried again, later.
          if ((await deliver(DISPATCH, message(j), 2)).retried !== 1) unexpected.push(`${j.id}: a redelivery during the push was not retried`);
          break;
        case "cancelled":
          await j.stub.cancel(ep);
          await deliver(DISPATCH, message(j), 1);
          break;
      }
      const first = pushes.get(j.id)?.[0];
      if (j.fate === "async") {
        const r = await reportTo(first!.urls.done, { output: "later" });
        if (r.status !== 200) unexpected.push(`${j.id}: report to its URL answered ${r.status}`);
      }
      if (j.fate === "evicted") {
        // The job's object is evicted between the accepted push and the worker's report.
        await evictDurableObject(j.stub);
        await runInDurableObject(j.stub, (i: JobObject) => i.clock.freeze(T0));
        const r = await reportTo(first!.urls.done, { output: "after eviction" });
        if (r.status !== 200) unexpected.push(`${j.id}: report after eviction answered ${r.status}`);
      }
      if (j.fate === "duplicateReport") {
        const a = await reportTo(first!.urls.done, { output: "twice" });
        const b = await reportTo(first!.urls.done, { output: "twice" });
        if (a.status !== 200 || b.status !== 200) unexpected.push(`${j.id}: a repeated report answered ${a.status}/${b.status}`);
      }
    }

    // Workers that accepted and went silent, and claims whose consumer crashed, lose their lease;
    // the job waits for a new dispatch (or, after a crash, the queue's next retry of the message).
    await advance(jobs, T0, POLICY.heartbeatTimeout + 1_000, tally);
    for (const j of jobs.filter((x) => x.fate === "killedAfterAccept" || x.fate === "lateReport" || x.fate === "consumerCrash")) {
      if (j.fate === "lateReport") {
        const late = await reportTo(pushes.get(j.id)![0]!.urls.done, { output: "too late" });
        if (late.status !== 409) unexpected.push(`${j.id}: a late report from the lost attempt answered ${late.status}`);
      }
      if (j.fate === "consumerCrash") await deliver(DISPATCH, message(j), 3);
      else await deliver(DISPATCH, message(j, 2), 1);
    }
    for (const ms of WEBHOOK_RETRY_TIMES) await advance(jobs, T0, ms, tally);

    const wanted = (j: FaultJob<Fate>) =>
      j.fate === "deadLettered" || j.fate === "workerError" ? "FAILED" : j.fate === "cancelled" ? "CANCELLED" : "COMPLETED";
    const c = await count(jobs, wanted, BOUND_MS, receiver, unexpected);

    // Pushes: how many each fate must have made, and repeats of one attempt (same webhook-id).
    const expectedPushes: Partial<Record<Fate, number>> = { deadLettered: DELIVERIES, killedAfterAccept: 2, lateReport: 2, cancelled: 0 };
    let repeatedPushes = 0;
    for (const j of jobs) {
      const got = pushes.get(j.id) ?? [];
      const want = j.fate === "flakyWorker" ? refusalsOf.get(j.id)! + 1 : (expectedPushes[j.fate] ?? 1);
      const ids = new Set(got.map((p) => p.webhookId));
      repeatedPushes += got.length - new Set(got.map((p) => `${p.webhookId}/${p.attempt}`)).size;
      if (got.length !== want || (want > 0 && ids.size !== (j.fate === "killedAfterAccept" || j.fate === "lateReport" ? 2 : 1))) {
        unexpected.push(`${j.id} (${j.fate}): pushed ${got.length} times`);
      }
    }
    const armed = await stillArmed(jobs);
    console.log(report("faults, push", jobs, c, { "pushes repeated within one attempt": repeatedPushes }));
    expect(repeatedPushes).toBe(0);
    expect(armed).toEqual([]);
    expect(unexpected).toEqual([]);
    expect({ lost: c.lost, duplicated: c.duplicated, late: c.late }).toEqual({ lost: 0, duplicated: 0, late: 0 });
    expect(c.webhooksDelivered).toBe(JOBS);
    expect(c.webhookRepeats.size).toBe(0);
  });
});
