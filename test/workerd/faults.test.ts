/**
 * Fault injection on pull workers, counted the way Jepsen counts: jobs run by simulated workers
 * while faults are injected — workers killed mid-job, late and duplicate reports, results whose
 * answer is lost (the call throws after the commit) and are sent again, evicted objects, alarms
 * that throw (in the transaction, and after sending a webhook), webhook receivers that fail an
 * event's first attempts. At the end: lost (accepted, never terminal), duplicated (two terminal
 * transitions or two accepted results), unexpected (a wrong final state or an unexplained
 * error), and every job terminal within TTL + attempts × timeout + slack. The seed is printed;
 * FAULT_SEED replays it. Push workers and queue deliveries: faults-push.test.ts.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { advance, BOUND_MS, choices, count, FlakyReceiver, freezeAt, type FaultJob, jobStubOf, POLICY, report, SEED, stillArmed, WEBHOOK_RETRY_TIMES } from "./fault-kit";
import { createEndpoint, submit } from "./helpers";

const JOBS = 1000;
const HOOK = "https://fault-receiver.example.com/hook";
const FATES = ["normal", "killed", "duplicate", "late", "lostAnswer", "evicted", "failed", "cancelled", "alarmThrows", "webhookCrash"] as const;
type Fate = (typeof FATES)[number];

afterEach(() => vi.restoreAllMocks());

describe("fault injection: pull workers", () => {
  it(`${JOBS} jobs under faults: 0 lost, 0 duplicated, 0 unexpected (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const next = choices(SEED, JOBS * 4);
    const fateOf = new Map<string, Fate>();
    // Each event's first 0–3 attempts fail; a job whose alarm crashes after sending gets a
    // receiver that answers at once, so the crash falls after a success.
    const receiver = new FlakyReceiver(HOOK, (_id, body) => (fateOf.get((JSON.parse(body) as { id: string }).id) === "webhookCrash" ? 0 : next(4)));
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (!req.url.startsWith(HOOK)) throw new TypeError(`unexpected fetch to ${req.url}`);
      return receiver.answer(req);
    });

    const ep = await createEndpoint(POLICY);
    const jobs: FaultJob<Fate>[] = [];
    for (let i = 0; i < JOBS; i++) {
      const fate = FATES[next(FATES.length)]!;
      const id = await submit(ep, { input: { i }, webhook: HOOK });
      fateOf.set(id, fate);
      jobs.push({ id, fate, stub: jobStubOf(id), createdAt: 0, settled: false });
    }
    // Every job runs on its own frozen clock starting at T0.
    const T0 = Date.now();
    await freezeAt(jobs, T0);

    const unexpected: string[] = [];
    const tally = { alarmFaults: 0, unexpected };
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
        case "webhookCrash":
          // The result commits; the alarm that sends its webhook throws after the send.
          await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
          await runInDurableObject(j.stub, (i: JobObject) => i.faults.arm("webhook:after-send"));
          break;
        case "alarmThrows":
          // w1 dies, and the alarm that finds its lease lost throws inside its transaction.
          await runInDurableObject(j.stub, (i: JobObject) => i.faults.arm("job:in-transaction"));
          break;
        case "killed":
        case "late":
          break; // w1 dies (or stalls): it reports nothing now
      }
    }

    // Time passes: stalled leases are lost, cancels run out their grace, webhooks are retried.
    await advance(jobs, T0, POLICY.heartbeatTimeout + 1_000, tally);
    // Round 2: a second worker takes what went back to the queue; the stalled w1 wakes up late.
    for (const j of jobs.filter((x) => x.fate === "killed" || x.fate === "late" || x.fate === "alarmThrows")) {
      const claim = await j.stub.claim(ep, "w2");
      if (!claim.ok) unexpected.push(`${j.id}: not back in the queue after its worker died (${claim.code})`);
      if (j.fate === "late") {
        const late = await j.stub.report(ep, fence("w1"), { kind: "complete" }, out);
        if (late.ok) unexpected.push(`${j.id}: a late result from the old lease was accepted`);
      }
      await j.stub.report(ep, fence("w2"), { kind: "complete" }, out);
    }
    // Let every webhook retry run (the schedule's first eight retries fit in ~8 hours).
    for (const ms of WEBHOOK_RETRY_TIMES) await advance(jobs, T0, ms, tally);

    const wanted = (j: FaultJob<Fate>) => (j.fate === "failed" ? "FAILED" : j.fate === "cancelled" ? "CANCELLED" : "COMPLETED");
    const c = await count(jobs, wanted, BOUND_MS, receiver, unexpected);
    const crashed = jobs.filter((j) => j.fate === "webhookCrash").length;
    const throwing = jobs.filter((j) => j.fate === "alarmThrows" || j.fate === "webhookCrash").length;
    console.log(report("faults, pull", jobs, c, { "alarms that threw": tally.alarmFaults }));
    expect(unexpected).toEqual([]);
    expect({ lost: c.lost, duplicated: c.duplicated, late: c.late }).toEqual({ lost: 0, duplicated: 0, late: 0 });
    expect(c.webhooksDelivered).toBe(JOBS);
    // Every armed fault fired (in the suite's alarm calls or the platform's own) and was recovered from.
    expect(await stillArmed(jobs)).toEqual([]);
    expect(tally.alarmFaults).toBeLessThanOrEqual(throwing);
    // At least once: only a send whose alarm crashed afterwards is repeated, under the same webhook-id.
    expect(c.webhookRepeats.size).toBe(crashed);
    for (const id of c.webhookRepeats) expect(receiver.successes.get(id)).toBe(2);
  });
});
