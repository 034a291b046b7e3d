/**
 * Issue 16, items 1 and 2: delayed and run-at jobs (SCHEDULED, read by clients as IN_QUEUE with
 * queue.reason "scheduled"), a /retry or /requeue with a delay, and retry backoff after errors
 * and lost leases. Clocks are frozen per job and alarms fired by hand.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { backoffMs } from "../../src/jobs/backoff";
import { call, createEndpoint, done, freezeEndpoint, freezeJob as freeze, jobStubOf as stubOf, json, status, submit, takeId, takeOne } from "./helpers";

async function record(id: string): Promise<JobRecord> {
  const r = await runInDurableObject(stubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)?.job ?? null);
  if (!r) throw new Error(`job ${id} has no record`);
  return r;
}

async function fireAlarmAt(id: string, at: number): Promise<void> {
  await freeze(id, at);
  await runDurableObjectAlarm(stubOf(id));
}

type Queue = { position: number | null; reason: string; runAt?: string };
async function statusOf(ep: string, id: string) {
  return json<{ status: string; queue?: Queue; delayTime?: number; error?: string }>(await status(ep, id));
}

async function fail(ep: string, worker: string, id: string, error = "boom"): Promise<void> {
  expect((await done(ep, worker, id, { error })).status).toBe(200);
}

describe("delayed and run-at jobs", () => {
  it("a delayed job waits SCHEDULED (clients read IN_QUEUE, reason scheduled, runAt) and becomes takeable at its time, not before", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/run`, { body: { input: 1, delay: 60_000 } });
    expect(res.status).toBe(200);
    const { id, status: st } = await json<{ id: string; status: string }>(res);
    expect(st).toBe("IN_QUEUE");
    const job = await record(id);
    expect(job.state).toBe("SCHEDULED");
    expect(job.readyAt! - job.createdAt).toBe(60_000);
    const seen = await statusOf(ep, id);
    expect(seen.status).toBe("IN_QUEUE");
    expect(seen.queue).toEqual({ position: null, reason: "scheduled", runAt: new Date(job.readyAt!).toISOString() });
    expect(await takeId(ep, "w1")).toBeNull();
    await fireAlarmAt(id, job.readyAt! - 1);
    expect((await record(id)).state).toBe("SCHEDULED");
    expect(await takeId(ep, "w1")).toBeNull();
    await fireAlarmAt(id, job.readyAt!);
    expect((await record(id)).state).toBe("IN_QUEUE");
    expect((await statusOf(ep, id)).queue?.reason).not.toBe("scheduled");
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id });
    // Its delay time counts from when it became ready, not from submission.
    expect((await record(id)).queuedAt).toBe(job.readyAt);
  });

  it("the alarm is set for runAt; a past runAt is ready at once", async () => {
    const ep = await createEndpoint();
    const at = Date.now() + 3_600_000;
    const id = await submit(ep, { input: 1, runAt: new Date(at).toISOString() });
    const job = await record(id);
    expect(job).toMatchObject({ state: "SCHEDULED", readyAt: at });
    const alarm = await runInDurableObject(stubOf(id), (_i: JobObject, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(at);
    // RFC 3339 allows a lowercase t and z (found by an outsider: refused before), and any offset.
    const lower = new Date(at).toISOString().replace("T", "t").replace("Z", "z");
    expect(await record(await submit(ep, { input: 3, runAt: lower }))).toMatchObject({ state: "SCHEDULED", readyAt: at });
    const plusOne = new Date(at + 3_600_000).toISOString().replace("Z", "+01:00");
    expect(await record(await submit(ep, { input: 4, runAt: plusOne }))).toMatchObject({ state: "SCHEDULED", readyAt: at });
    const past = await submit(ep, { input: 2, runAt: new Date(Date.now() - 60_000).toISOString() });
    expect((await record(past)).state).toBe("IN_QUEUE");
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: past });
  });

  it("the queue TTL counts from runAt: the job expires ttl after its time, not after submission", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 120_000, policy: { ttl: 30_000 } });
    const job = await record(id);
    expect(job.ttlAt).toBe(job.readyAt! + 30_000);
    await fireAlarmAt(id, job.readyAt!);
    await fireAlarmAt(id, job.readyAt! + 29_999);
    expect((await record(id)).state).toBe("IN_QUEUE");
    await fireAlarmAt(id, job.readyAt! + 30_000);
    expect(await record(id)).toMatchObject({ state: "TIMED_OUT", reason: "ttl" });
  });

  it("a lifespan TTL counts from submission, and ends a job still waiting for its time", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 20_000, policy: { ttl: 30_000, ttlMode: "lifespan" } });
    const job = await record(id);
    expect(job.ttlAt).toBe(job.createdAt + 30_000);
    const late = await call("POST", `/v2/${ep}/run`, { body: { input: 1, delay: 30_000, policy: { ttl: 30_000, ttlMode: "lifespan" } } });
    expect(late.status).toBe(400);
    expect((await json<{ error: string }>(late)).error).toMatch(/lifespan/);
  });

  it("cancel works while it waits for its time; the alarm then hands nothing out", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 60_000 });
    const res = await call("POST", `/v2/${ep}/cancel/${id}`);
    expect(await json(res)).toMatchObject({ id, status: "CANCELLED" });
    const job = await record(id);
    expect(job).toMatchObject({ state: "CANCELLED", readyAt: null });
    await fireAlarmAt(id, job.createdAt + 60_000);
    expect((await record(id)).state).toBe("CANCELLED");
    expect(await takeId(ep, "w1")).toBeNull();
  });

  it("purge-queue ends scheduled jobs too; /health counts them in inQueue, /requests lists them as IN_QUEUE", async () => {
    const ep = await createEndpoint();
    const ids = [await submit(ep, { input: 1, delay: 60_000 }), await submit(ep, { input: 2, delay: 60_000 }), await submit(ep, { input: 3 })];
    const health = await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs.inQueue).toBe(3);
    const listed = await json<{ requests: Array<{ id: string; status: string }> }>(await call("GET", `/v2/${ep}/requests?status=IN_QUEUE`));
    expect(listed.requests.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(new Set(listed.requests.map((r) => r.status))).toEqual(new Set(["IN_QUEUE"]));
    const only = await json<{ requests: Array<{ id: string }> }>(await call("GET", `/v2/${ep}/requests?status=SCHEDULED`));
    expect(only.requests.map((r) => r.id).sort()).toEqual(ids.slice(0, 2).sort());
    const purged = await json<{ removed: number }>(await call("POST", `/v2/${ep}/purge-queue`));
    expect(purged.removed).toBe(3);
    for (const id of ids) expect(await record(id)).toMatchObject({ state: "CANCELLED", reason: "purged" });
  });

  it("a sequenced job with a delay enters its sequence at its time: one submitted after it but ready first runs first", async () => {
    const ep = await createEndpoint();
    const a = await submit(ep, { input: "a", sequenceKey: "k" });
    const b = await submit(ep, { input: "b", sequenceKey: "k", delay: 60_000 });
    const c = await submit(ep, { input: "c", sequenceKey: "k" });
    expect((await record(c)).state).toBe("SEQUENCED");
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: a });
    const jb = await record(b);
    await fireAlarmAt(b, jb.readyAt!);
    // a still runs and c is ahead: b waits its turn behind them.
    expect((await record(b)).state).toBe("SEQUENCED");
    expect((await done(ep, "w1", a, { output: 1 })).status).toBe(200);
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: c });
    expect((await done(ep, "w1", c, { output: 1 })).status).toBe(200);
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id: b });
  });

  it("promote runs a delayed job now (its queue TTL from now); a sequenced one enters its sequence; anything not waiting for its time is a 409", async () => {
    const ep = await createEndpoint();
    const at = Date.now() + 3_600_000;
    const id = await submit(ep, { input: 1, runAt: new Date(at).toISOString(), policy: { ttl: 60_000 } });
    expect(await takeId(ep, "w1")).toBeNull();
    const before = Date.now();
    expect(await json(await call("POST", `/v2/${ep}/promote/${id}`))).toEqual({ id, status: "IN_QUEUE" });
    const job = await record(id);
    expect(job).toMatchObject({ state: "IN_QUEUE", readyAt: null });
    expect(job.ttlAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(job.ttlAt).toBeLessThan(at);
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id });
    // The history says it was promoted, then made ready (two lines: the promote keeps the state).
    const lines = (await json<{ history: Array<{ command: string; from: string; to: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history;
    expect(lines.map((l) => l.command)).toEqual(["submit", "promote", "ready", "claim"]);
    expect(lines[1]).toMatchObject({ from: "SCHEDULED", to: "SCHEDULED", detail: `run now (it was due ${new Date(at).toISOString()})` });
    // Not waiting for its time: running now, and then finished.
    const again = await call("POST", `/v2/${ep}/promote/${id}`);
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ id, status: "IN_PROGRESS" });
    // A delayed job of a sequence whose key has an unfinished job enters the sequence behind it.
    const head = await submit(ep, { input: "head", sequenceKey: "k" });
    const later = await submit(ep, { input: "later", sequenceKey: "k", delay: 3_600_000 });
    expect(await json(await call("POST", `/v2/${ep}/promote/${later}`))).toEqual({ id: later, status: "SEQUENCED" });
    expect((await record(head)).state).toBe("IN_QUEUE");
    // A paused delayed job is paused, not waiting for its time: resume it first.
    const paused = await submit(ep, { input: 2, delay: 3_600_000 });
    await call("POST", `/v2/${ep}/pause/${paused}`);
    expect((await call("POST", `/v2/${ep}/promote/${paused}`)).status).toBe(409);
    expect((await call("POST", `/v2/${ep}/promote/no-such-job`)).status).toBe(404);
    expect((await call("GET", `/v2/${ep}/promote/${paused}`)).status).toBe(405);
  });

  it("reschedule moves a delayed job's time (its queue TTL from the new time; the old time's alarm does nothing); a past time is at once; anything not waiting for its time is a 409", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 3_600_000, policy: { ttl: 60_000 } });
    const old = (await record(id)).readyAt!;
    const before = Date.now();
    const res = await call("POST", `/v2/${ep}/reschedule/${id}`, { body: { delay: 7_200_000 } });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ id, status: "IN_QUEUE" });
    const moved = await record(id);
    expect(moved.state).toBe("SCHEDULED");
    expect(moved.readyAt!).toBeGreaterThanOrEqual(before + 7_200_000);
    expect(moved.ttlAt).toBe(moved.readyAt! + 60_000);
    expect((await statusOf(ep, id)).queue).toMatchObject({ reason: "scheduled", runAt: new Date(moved.readyAt!).toISOString() });
    const lines = (await json<{ history: Array<{ command: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history;
    expect(lines.at(-1)).toMatchObject({ command: "reschedule", detail: `ready at ${new Date(moved.readyAt!).toISOString()} (it was due ${new Date(old).toISOString()})` });
    // The old time passes: nothing happens; the new one comes: ready, and taken.
    await fireAlarmAt(id, old + 1);
    expect((await record(id)).state).toBe("SCHEDULED");
    await fireAlarmAt(id, moved.readyAt!);
    expect((await record(id)).state).toBe("IN_QUEUE");
    await runInDurableObject(stubOf(id), (i: JobObject) => i.clock.thaw());
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id });
    const running = await call("POST", `/v2/${ep}/reschedule/${id}`, { body: { delay: 1_000 } });
    expect(running.status).toBe(409);
    expect(await json(running)).toMatchObject({ id, status: "IN_PROGRESS", error: expect.stringContaining("cannot reschedule") });
    // A time already past (runAt, lowercase RFC 3339): ready at once.
    const soon = await submit(ep, { input: 2, delay: 3_600_000 });
    const past = new Date(Date.now() - 60_000).toISOString().toLowerCase();
    expect(await json(await call("POST", `/v2/${ep}/reschedule/${soon}`, { body: { runAt: past } }))).toEqual({ id: soon, status: "IN_QUEUE" });
    expect((await record(soon)).state).toBe("IN_QUEUE");
    expect((await call("POST", `/v2/${ep}/reschedule/no-such-job`, { body: { delay: 1 } })).status).toBe(404);
  });

  it("reschedule refuses a bad time with a 400 and a time past a lifespan with a 409, changing nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, delay: 10_000, policy: { ttl: 60_000, ttlMode: "lifespan" } });
    const before = await record(id);
    const far = new Date(Date.now() + 8 * 24 * 3_600_000).toISOString();
    const bad: Array<unknown> = [{}, { delay: 1, runAt: new Date().toISOString() }, { delay: -1 }, { delay: 1.5 }, { delay: "1000" }, { delay: 8 * 24 * 3_600_000 }, { runAt: far }, { runAt: "tomorrow" }, { delay: 1, extra: 1 }, JSON.parse('{"__proto__": {"delay": 1}}'), [], null];
    for (const body of bad) {
      const res = await call("POST", `/v2/${ep}/reschedule/${id}`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await json(res)).toMatchObject({ error: expect.any(String) });
    }
    expect((await call("POST", `/v2/${ep}/reschedule/${id}`, { raw: "" })).status).toBe(400);
    expect((await call("POST", `/v2/${ep}/reschedule/${id}`, { raw: "{" })).status).toBe(400);
    const past = await call("POST", `/v2/${ep}/reschedule/${id}`, { body: { delay: 120_000 } });
    expect(past.status).toBe(409);
    expect(await json(past)).toMatchObject({ id, status: "IN_QUEUE", error: expect.stringContaining("lifespan") });
    expect(await record(id)).toEqual(before);
    // Within the lifespan: moved, its TTL still from submission.
    expect((await call("POST", `/v2/${ep}/reschedule/${id}`, { body: { delay: 30_000 } })).status).toBe(200);
    expect((await record(id)).ttlAt).toBe(before.ttlAt);
  });

  it("refuses bad delays and run-at times with a clear 400, and creates nothing", async () => {
    const ep = await createEndpoint();
    const bad: unknown[] = [
      { input: 1, delay: 1000, runAt: new Date().toISOString() },
      { input: 1, delay: -1 },
      { input: 1, delay: 1.5 },
      { input: 1, delay: "1000" },
      { input: 1, delay: 8 * 24 * 3_600_000 },
      { input: 1, runAt: "tomorrow" },
      { input: 1, runAt: "2026-13-01T00:00:00Z" },
      { input: 1, runAt: "2026-12-01T10:00:00" },
      { input: 1, runAt: "2026-12-01 10:00:00Z" },
      { input: 1, runAt: "" },
      { input: 1, runAt: 1_900_000_000_000 },
      { input: 1, runAt: new Date(Date.now() + 8 * 24 * 3_600_000).toISOString() },
      { input: 1, policy: { retryBackoff: { type: "linear", delay: 1000 } } },
      { input: 1, policy: { retryBackoff: { type: "fixed", delay: -5 } } },
      { input: 1, policy: { retryBackoff: { type: "fixed", delay: 1000, extra: 1 } } },
      { input: 1, policy: { retryBackoff: { type: "exponential", delay: 1000, maxDelay: 2 * 24 * 3_600_000 } } },
      // Found by an outsider: a maxDelay below delay was accepted and ignored.
      { input: 1, policy: { retryBackoff: { type: "exponential", delay: 2000, maxDelay: 500 } } },
    ];
    for (const body of bad) {
      const res = await call("POST", `/v2/${ep}/run`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(typeof (await json<{ error: string }>(res)).error).toBe("string");
    }
    const health = await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs.inQueue).toBe(0);
    // A zero delay is no delay.
    const id = await submit(ep, { input: 1, delay: 0 });
    expect((await record(id)).state).toBe("IN_QUEUE");
  });
});

describe("/retry and /requeue with a delay", () => {
  it("waits SCHEDULED that long (query or body), its queue TTL from then; without one it is at once (RunPod)", async () => {
    const ep = await createEndpoint({ maxAttempts: 1 });
    const ids = [await submit(ep, { input: 1 }), await submit(ep, { input: 2 }), await submit(ep, { input: 3 })];
    for (let i = 0; i < ids.length; i++) {
      const taken = await json<{ id: string }>(await takeOne(ep, "w1"));
      await fail(ep, "w1", taken.id);
    }
    const q = await call("POST", `/v2/${ep}/retry/${ids[0]}?delay=5000`);
    expect(await json(q)).toMatchObject({ id: ids[0], status: "IN_QUEUE" });
    const b = await call("POST", `/v2/${ep}/retry/${ids[1]}`, { body: { delay: 7000 } });
    expect(await json(b)).toMatchObject({ id: ids[1], status: "IN_QUEUE" });
    const now = await call("POST", `/v2/${ep}/retry/${ids[2]}`);
    expect(await json(now)).toMatchObject({ status: "IN_QUEUE" });
    const r0 = await record(ids[0]!);
    const r1 = await record(ids[1]!);
    expect(r0.state).toBe("SCHEDULED");
    expect(r1.state).toBe("SCHEDULED");
    expect(r0.ttlAt).toBe(r0.readyAt! + r0.policy.ttl);
    expect((await record(ids[2]!)).state).toBe("IN_QUEUE");
    expect((await statusOf(ep, ids[0]!)).queue?.reason).toBe("scheduled");
    expect(await json<{ id: string }>(await takeOne(ep, "w2"))).toMatchObject({ id: ids[2] });
    expect(await takeId(ep, "w2")).toBeNull();
    await fireAlarmAt(ids[0]!, r0.readyAt!);
    expect(await json<{ id: string }>(await takeOne(ep, "w2"))).toMatchObject({ id: ids[0] });
    // History says when it was due.
    const history = await json<{ history: Array<{ command: string; to: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${ids[0]}`));
    expect(history.history.find((e) => e.command === "retry")).toMatchObject({ to: "SCHEDULED", detail: expect.stringMatching(/^ready at /) });
    expect(history.history.find((e) => e.command === "ready")).toMatchObject({ to: "IN_QUEUE" });
  });

  it("a requeue with a delay of a completed job; bad delays are refused and change nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1 });
    await takeOne(ep, "w1");
    expect((await done(ep, "w1", id, { output: 1 })).status).toBe(200);
    for (const [query, body] of [["?delay=100&delay=200", undefined], ["?delay=-1", undefined], ["?delay=abc", undefined], ["?delay=99999999999", undefined], ["", { delay: "5" }], ["", { delay: 5, other: 1 }], ["?delay=5", { delay: 6 }], ["", "not json"]] as const) {
      const res = await call("POST", `/v2/${ep}/requeue/${id}${query}`, body === undefined ? {} : typeof body === "string" ? { raw: body } : { body });
      expect(res.status, `${query} ${JSON.stringify(body)}`).toBe(400);
    }
    expect((await record(id)).state).toBe("COMPLETED");
    const res = await call("POST", `/v2/${ep}/requeue/${id}?delay=1000`);
    expect(await json(res)).toMatchObject({ status: "IN_QUEUE" });
    expect((await record(id)).state).toBe("SCHEDULED");
  });
});

describe("delays against a lifespan", () => {
  it("a retry whose delay ends at or past the job's lifespan is refused (it could never run); a shorter one is taken", async () => {
    const ep = await createEndpoint({ maxAttempts: 1 });
    const id = await submit(ep, { input: 1, policy: { ttl: 60_000, ttlMode: "lifespan" } });
    await takeOne(ep, "w1");
    await fail(ep, "w1", id);
    const job = await record(id);
    const left = job.ttlAt - Date.now();
    const res = await call("POST", `/v2/${ep}/retry/${id}?delay=${left + 5_000}`);
    expect(res.status).toBe(409);
    expect((await json<{ error: string }>(res)).error).toMatch(/lifespan/);
    expect((await record(id)).state).toBe("FAILED");
    expect(await json(await call("POST", `/v2/${ep}/retry/${id}?delay=1000`))).toMatchObject({ status: "IN_QUEUE" });
    expect((await record(id)).state).toBe("SCHEDULED");
  });
});

describe("retry backoff", () => {
  it("exponential: each retry after an error waits delay × 2^retries (capped), SCHEDULED meanwhile", async () => {
    const ep = await createEndpoint();
    const backoff = { type: "exponential", delay: 1000, maxDelay: 3000 };
    const id = await submit(ep, { input: 1, policy: { retryOnError: true, maxAttempts: 4, retryBackoff: backoff } });
    const waits: number[] = [];
    // A new worker each time: the one that failed the job is passed over for 30 s.
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(await json<{ id: string }>(await takeOne(ep, `w${attempt}`))).toMatchObject({ id });
      await fail(ep, `w${attempt}`, id);
      const r = await record(id);
      expect(r.state).toBe("SCHEDULED");
      const failedAt = (await json<{ history: Array<{ at: string; command: string }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history.filter((e) => e.command === "fail").at(-1)!;
      waits.push(r.readyAt! - Date.parse(failedAt.at));
      expect(await takeId(ep, "w9")).toBeNull();
      await fireAlarmAt(id, r.readyAt!);
      expect((await record(id)).state).toBe("IN_QUEUE");
    }
    expect(waits).toEqual([1000, 2000, 3000]);
    expect(await json<{ id: string }>(await takeOne(ep, "w4"))).toMatchObject({ id });
    await fail(ep, "w4", id, "last");
    expect(await record(id)).toMatchObject({ state: "FAILED", error: "last" });
  }, 30_000);

  it("the endpoint's backoff applies to lost leases too; a job's null turns it off", async () => {
    const ep = await createEndpoint({ retryBackoff: { type: "fixed", delay: 10_000 } });
    const id = await submit(ep, { input: 1 });
    const off = await submit(ep, { input: 2, policy: { retryBackoff: null } });
    const holders = new Map<string, string>();
    for (const w of ["w1", "w2"]) holders.set((await json<{ id: string }>(await takeOne(ep, w))).id, w);
    expect([...holders.keys()].sort()).toEqual([id, off].sort());
    // Each worker asks for work saying it runs nothing: its lease is lost (the take's answer may
    // come first: wait for the job to change).
    await Promise.all([takeId(ep, "w1"), takeId(ep, "w2")]);
    const settled = async (x: string) => {
      let r = await record(x);
      for (let i = 0; i < 100 && r.state === "IN_PROGRESS"; i++) {
        await new Promise((res) => setTimeout(res, 20));
        r = await record(x);
      }
      return r;
    };
    const r = await settled(id);
    expect(r.state).toBe("SCHEDULED");
    const lost = (await json<{ history: Array<{ at: string; command: string }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history.find((e) => e.command === "loseLease")!;
    expect(r.readyAt! - Date.parse(lost.at)).toBe(10_000);
    expect(r.policy.retryBackoff).toEqual({ type: "fixed", delay: 10_000 });
    const o = await record(off);
    expect(o.policy.retryBackoff).toBeNull();
    // Back in the queue at once (the other worker's take may have got it since).
    const offHistory = (await json<{ history: Array<{ command: string; to: string }> }>(await call("GET", `/v2/${ep}/history/${off}`))).history;
    expect(offHistory.find((e) => e.command === "loseLease")).toMatchObject({ to: "IN_QUEUE" });
    expect(o.retries).toBe(1);
  });

  it("the failed-worker grace (30 s) counts from the failure: after a 40 s backoff the worker that failed the job may take it at once", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: 1, policy: { retryOnError: true, maxAttempts: 3, retryBackoff: { type: "fixed", delay: 40_000 } } });
    expect(await json<{ id: string }>(await takeOne(ep, "w1"))).toMatchObject({ id });
    await fail(ep, "w1", id);
    const r = await record(id);
    expect(r.state).toBe("SCHEDULED");
    try {
      await freezeEndpoint(ep, r.readyAt! + 1);
      await fireAlarmAt(id, r.readyAt!);
      expect((await record(id)).state).toBe("IN_QUEUE");
      expect(await takeId(ep, "w1")).toBe(id);
    } finally {
      await freezeEndpoint(ep, null);
    }
  });

  it("jitter stays within 50–100% of the delay and is the same for the same job and attempt", () => {
    const b = { type: "exponential" as const, delay: 1000, maxDelay: 60_000, jitter: true };
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffMs(b, 2, `job-${i}:3`);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
      expect(backoffMs(b, 2, `job-${i}:3`)).toBe(d);
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(100);
    expect(backoffMs(null, 5, "x")).toBe(0);
    expect(backoffMs({ type: "fixed", delay: 500 }, 9, "x")).toBe(500);
    expect(backoffMs({ type: "exponential", delay: 1000 }, 100, "x")).toBe(3_600_000);
  });
});
