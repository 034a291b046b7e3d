/**
 * Fault injection, counted the way Jepsen counts: hundreds of jobs run by simulated workers while
 * faults are injected — workers killed mid-job, late and duplicate reports, results whose answer
 * is lost (the alarm or call throws after the commit) and are sent again, evicted objects, webhook
 * receivers that fail an event's first attempts. At the end: lost (accepted, never terminal), duplicated (two
 * terminal transitions or two accepted results for one attempt sequence, or a webhook event
 * succeeding twice), unexpected (a wrong final state or an unexplained error), and every job
 * terminal within TTL + attempts × timeout + slack. The seed is printed; FAULT_SEED replays it.
 */
import fc from "fast-check";
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob, readHistory } from "../../src/jobs/store";
import { createEndpoint, submit } from "./helpers";

const POLICY = { executionTimeout: 30_000, ttl: 600_000, heartbeatTimeout: 10_000, maxAttempts: 3, cancelGraceMs: 5_000, retentionMs: 86_400_000 };
const JOBS = 400;
const HOOK = "https://fault-receiver.example.com/hook";
const FATES = ["normal", "killed", "duplicate", "late", "lostAnswer", "evicted", "failed", "cancelled"] as const;
type Fate = (typeof FATES)[number];

const seedEnv = (env as unknown as Record<string, string | undefined>).FAULT_SEED;
const SEED = seedEnv ? Number(seedEnv) : Date.now() % 1_000_000;

afterEach(() => vi.restoreAllMocks());

describe("fault injection", () => {
  it(`${JOBS} jobs under faults: 0 lost, 0 duplicated, 0 unexpected (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const rand = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { seed: SEED, numRuns: JOBS * 4 });
    let r = 0;
    const next = (n: number) => rand[r++ % rand.length]! % n;

    // A flaky webhook receiver: each event's first 0–3 attempts fail (503 or a dropped
    // connection), then it answers 200; it counts successes per webhook-id.
    const successes = new Map<string, number>();
    const failuresLeft = new Map<string, number>();
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (!req.url.startsWith(HOOK)) throw new TypeError(`unexpected fetch to ${req.url}`);
      const id = req.headers.get("webhook-id")!;
      if (!failuresLeft.has(id)) failuresLeft.set(id, next(4));
      const left = failuresLeft.get(id)!;
      if (left > 0) {
        failuresLeft.set(id, left - 1);
        if (left % 2 === 0) throw new TypeError("connection reset");
        return new Response("flaky", { status: 503 });
      }
      successes.set(id, (successes.get(id) ?? 0) + 1);
      return new Response("ok");
    });

    const ep = await createEndpoint(POLICY);
    const jobs: Array<{ id: string; fate: Fate; stub: DurableObjectStub<JobObject>; createdAt: number }> = [];
    for (let i = 0; i < JOBS; i++) {
      const fate = FATES[next(FATES.length)]!;
      const id = await submit(ep, { input: { i }, webhook: HOOK });
      const stub = env.JOB.get(env.JOB.idFromString(id)) as DurableObjectStub<JobObject>;
      jobs.push({ id, fate, stub, createdAt: 0 });
    }
    // Every job runs on its own frozen clock starting at its creation.
    const T0 = Date.now();
    for (const j of jobs) j.createdAt = await runInDurableObject(j.stub, (i: JobObject, s) => (i.clock.freeze(T0), loadJob(s.storage.sql)!.job.createdAt));

    const unexpected: string[] = [];
    const expectError = async (what: string, p: Promise<unknown>) => {
      try {
        await p;
        unexpected.push(`${what}: expected an injected error`);
      } catch (e) {
        if (!/injected fault/.test(String(e))) unexpected.push(`${what}: ${String(e)}`);
      }
    };
    const fence = (workerId: string) => ({ workerId, attempt: null });
    const out = new TextEncoder().encode('"result"');
    const advance = async (ms: number) => {
      for (const j of jobs) {
        await runInDurableObject(j.stub, async (i: JobObject) => {
          i.clock.freeze(T0 + ms);
          for (let k = 0; k < 6; k++) await i.alarm();
        });
      }
    };

    // Round 1: every job is claimed by w1 and meets its fate.
    for (const j of jobs) {
      const claim = await j.stub.claim(ep, "w1");
      if (!claim.ok) {
        unexpected.push(`${j.id}: first claim refused (${claim.code})`);
        continue;
      }
      switch (j.fate) {
        case "normal":
          await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
          break;
        case "duplicate": {
          const a = await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
          const b = await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
          if (!a.ok || !b.ok) unexpected.push(`${j.id}: a repeated result was refused`);
          break;
        }
        case "lostAnswer":
          // The result commits but the call fails after the commit; the worker sends it again.
          await runInDurableObject(j.stub, (i: JobObject) => i.faults.arm("job:after-commit"));
          await expectError(`${j.id} result`, j.stub.report(ep, fence("w1"), { kind: "complete" }, out));
          if (!(await j.stub.report(ep, fence("w1"), { kind: "complete" }, out)).ok) unexpected.push(`${j.id}: the resent result was refused`);
          break;
        case "evicted":
          await evictDurableObject(j.stub);
          await runInDurableObject(j.stub, (i: JobObject) => i.clock.freeze(T0));
          await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
          break;
        case "failed":
          await j.stub.report(ep, fence("w1"), { kind: "fail", error: "handler error" }, null);
          break;
        case "cancelled":
          await j.stub.cancel(ep);
          break;
        case "killed":
        case "late":
          break; // w1 dies (or stalls): it reports nothing now
      }
    }

    // Time passes: stalled leases are lost, cancels run out their grace, webhooks are retried.
    await advance(POLICY.heartbeatTimeout + 1_000);
    // Round 2: a second worker takes what went back to the queue; the stalled w1 wakes up late.
    for (const j of jobs.filter((x) => x.fate === "killed" || x.fate === "late")) {
      const claim = await j.stub.claim(ep, "w2");
      if (!claim.ok) unexpected.push(`${j.id}: not back in the queue after its worker died (${claim.code})`);
      if (j.fate === "late") {
        const late = await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
        if (late.ok) unexpected.push(`${j.id}: a late result from the old lease was accepted`);
      }
      await j.stub.report(ep, fence("w2"), { kind: "complete" }, out);
    }
    // Let every webhook retry run (the schedule's first eight retries fit in ~8 hours).
    for (const ms of [20_000, 60_000, 200_000, 600_000, 2_400_000, 6_000_000, 14_000_000, 30_000_000]) await advance(ms);

    // The counters.
    let lost = 0;
    let duplicated = 0;
    let late = 0;
    const bound = POLICY.ttl + POLICY.maxAttempts * POLICY.executionTimeout + 60_000;
    const wanted: Record<Fate, string> = {
      normal: "COMPLETED", duplicate: "COMPLETED", lostAnswer: "COMPLETED", evicted: "COMPLETED", killed: "COMPLETED", late: "COMPLETED", failed: "FAILED", cancelled: "CANCELLED",
    };
    const deliveredIds = new Set<string>();
    for (const j of jobs) {
      const { job, history, events } = await runInDurableObject(j.stub, (_i: JobObject, s) => ({
        job: loadJob(s.storage.sql)!.job,
        history: readHistory(s.storage.sql),
        events: s.storage.sql.exec<{ event_id: string; state: string }>("SELECT event_id, state FROM webhook_event").toArray(),
      }));
      if (!["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(job.state)) lost++;
      const terminal = history.filter((e) => ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(e.to) && e.from !== e.to);
      const accepted = history.filter((e) => e.command === "complete" || e.command === "fail");
      if (terminal.length > 1 || accepted.length > 1) duplicated++;
      if (job.state !== wanted[j.fate]) unexpected.push(`${j.id} (${j.fate}): ended ${job.state}`);
      if (job.completedAt !== null && job.completedAt - j.createdAt > bound) late++;
      if (events.length !== 1) unexpected.push(`${j.id}: ${events.length} webhook events`);
      for (const e of events) {
        if (e.state === "delivered") deliveredIds.add(e.event_id);
        else unexpected.push(`${j.id}: webhook ${e.state}`);
      }
    }
    const twice = [...successes.values()].filter((n) => n > 1).length;
    duplicated += twice;
    const counts = Object.fromEntries(FATES.map((f) => [f, jobs.filter((j) => j.fate === f).length]));
    console.log(
      `faults (seed ${SEED}): ${JOBS} jobs ${JSON.stringify(counts)}; lost ${lost}, duplicated ${duplicated}, unexpected ${unexpected.length}, ` +
        `late ${late}; webhooks delivered ${deliveredIds.size}/${JOBS} with ${successes.size} distinct successful ids`,
    );
    expect(unexpected).toEqual([]);
    expect({ lost, duplicated, late }).toEqual({ lost: 0, duplicated: 0, late: 0 });
    expect(deliveredIds.size).toBe(JOBS);
  });
});
