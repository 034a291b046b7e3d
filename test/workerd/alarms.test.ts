/**
 * The job's single alarm: always the earliest pending deadline, fired just before, at and after
 * each one with a frozen clock; idempotent; safe when the handler throws.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob, readHistory } from "../../src/jobs/store";
import { call, createEndpoint, done, freezeJob as freeze, jobStubOf as stubOf, json, status, submit, take, takeOne } from "./helpers";

async function record(id: string): Promise<{ job: JobRecord; alarm: number | null; history: string[] }> {
  return runInDurableObject(stubOf(id), async (instance: JobObject, state) => {
    const stored = loadJob(state.storage.sql)!;
    return {
      job: stored.job,
      alarm: await state.storage.getAlarm(),
      history: readHistory(state.storage.sql).map((e) => e.command),
    };
  });
}

/** An alarm set while the job's clock is frozen fires `ms` after the wall clock's now. */
function expectAlarmIn(alarm: number | null, ms: number): void {
  expect(alarm).not.toBeNull();
  expect(Math.abs(alarm! - Date.now() - ms)).toBeLessThan(2_000);
}

async function fireAlarmAt(id: string, at: number): Promise<void> {
  await freeze(id, at);
  await runDurableObjectAlarm(stubOf(id));
}

async function stateOf(ep: string, id: string): Promise<Record<string, unknown>> {
  const res = await status(ep, id);
  return res.status === 404 ? { status: 404 } : json(res);
}

describe("queue TTL", () => {
  it("keeps a waiting job just before its TTL and ends it TIMED_OUT (ttl) at and after it", async () => {
    const ep = await createEndpoint();
    const ids = await Promise.all([1, 2, 3].map(() => submit(ep, { input: 1, policy: { ttl: 10_000 } })));
    const { job } = await record(ids[0]!);
    expect(job.ttlAt - job.createdAt).toBe(10_000);

    await fireAlarmAt(ids[0]!, job.ttlAt - 1);
    expect(await stateOf(ep, ids[0]!)).toMatchObject({ status: "IN_QUEUE" });
    // Re-armed for the same deadline, 1 ms ahead on the job's (frozen) clock.
    expectAlarmIn((await record(ids[0]!)).alarm, 1);

    await fireAlarmAt(ids[0]!, job.ttlAt);
    expect(await stateOf(ep, ids[0]!)).toMatchObject({ status: "TIMED_OUT", reason: "ttl" });

    const late = await record(ids[1]!);
    await fireAlarmAt(ids[1]!, late.job.ttlAt + 60_000);
    expect(await stateOf(ep, ids[1]!)).toMatchObject({ status: "TIMED_OUT", reason: "ttl" });
  });

  it("a read past the TTL sees TIMED_OUT even if the alarm is late", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 10_000 } });
    const { job } = await record(id);
    await freeze(id, job.ttlAt + 5);
    expect(await stateOf(ep, id)).toMatchObject({ status: "TIMED_OUT", reason: "ttl" });
  });
});

describe("execution timeout", () => {
  it("keeps a running job just before the timeout and ends it TIMED_OUT (execution_timeout) at it", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { executionTimeout: 5_000 } });
    expect((await take(ep, "w1")).status).toBe(200);
    const { job, alarm } = await record(id);
    expect(job.state).toBe("IN_PROGRESS");
    expect(alarm).toBe(job.execDeadline);
    expect(job.execDeadline! - job.startedAt!).toBe(5_000);

    await fireAlarmAt(id, job.execDeadline! - 1);
    expect(await stateOf(ep, id)).toMatchObject({ status: "IN_PROGRESS" });
    await fireAlarmAt(id, job.execDeadline!);
    expect(await stateOf(ep, id)).toMatchObject({ status: "TIMED_OUT", reason: "execution_timeout" });
    // The worker's late result is refused and changes nothing.
    expect((await done(ep, "w1", id, { output: "late" })).status).toBe(409);
    const after = await stateOf(ep, id);
    expect(after).toMatchObject({ status: "TIMED_OUT" });
    expect(after.output).toBeUndefined();
    expect((await record(id)).history).toContain("refused report:complete");
  });

  it("after the deadline, too", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { executionTimeout: 5_000 } });
    await take(ep, "w1");
    const { job } = await record(id);
    await fireAlarmAt(id, job.execDeadline! + 30_000);
    expect(await stateOf(ep, id)).toMatchObject({ status: "TIMED_OUT", reason: "execution_timeout" });
  });
});

describe("retention", () => {
  async function completedJob(ep: string, path: "run" | "runsync"): Promise<string> {
    if (path === "run") {
      const id = await submit(ep, { input: 1 });
      await take(ep, "w1");
      await done(ep, "w1", id, { output: 42 });
      return id;
    }
    const pending = call("POST", `/v2/${ep}/runsync?wait=5000`, { body: { input: 1 } });
    const t = await takeOne(ep, "w1");
    const { id } = await json<{ id: string }>(t);
    await done(ep, "w1", id, { output: 42 });
    expect(await json(await pending)).toMatchObject({ id, status: "COMPLETED", output: 42 });
    return id;
  }

  it("deletes a /run job 30 min after it ended (readable just before), then answers 404", async () => {
    const ep = await createEndpoint();
    const id = await completedJob(ep, "run");
    const { job, alarm } = await record(id);
    expect(job.purgeAt! - job.completedAt!).toBe(30 * 60_000);
    expect(alarm).toBe(job.purgeAt);
    await fireAlarmAt(id, job.purgeAt! - 1);
    expect(await stateOf(ep, id)).toMatchObject({ status: "COMPLETED", output: 42 });
    await fireAlarmAt(id, job.purgeAt!);
    expect(await stateOf(ep, id)).toEqual({ status: 404 });
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(false); // nothing left scheduled
  });

  it("deletes a /runsync job 1 min after it ended", async () => {
    const ep = await createEndpoint();
    const id = await completedJob(ep, "runsync");
    const { job } = await record(id);
    expect(job.purgeAt! - job.completedAt!).toBe(60_000);
    await fireAlarmAt(id, job.purgeAt! + 1);
    expect(await stateOf(ep, id)).toEqual({ status: 404 });
  });

  it("uses the endpoint's configured retention", async () => {
    const ep = await createEndpoint({ retentionMs: 5_000, syncRetentionMs: 2_000 });
    const id = await completedJob(ep, "run");
    const { job } = await record(id);
    expect(job.purgeAt! - job.completedAt!).toBe(5_000);
  });
});

describe("cancel grace", () => {
  it("a cancelled running job is CANCELLING until the grace period ends, then CANCELLED", async () => {
    const ep = await createEndpoint({ cancelGraceMs: 10_000 });
    const id = await submit(ep);
    await take(ep, "w1");
    const c = await call("POST", `/v2/${ep}/cancel/${id}`);
    expect(await json(c)).toEqual({ id, status: "CANCELLING" });
    const { job, alarm } = await record(id);
    expect(alarm).toBe(job.cancelDeadline);
    await fireAlarmAt(id, job.cancelDeadline! - 1);
    expect(await stateOf(ep, id)).toMatchObject({ status: "CANCELLING" });
    await fireAlarmAt(id, job.cancelDeadline!);
    expect(await stateOf(ep, id)).toMatchObject({ status: "CANCELLED" });
  });
});

describe("alarm robustness", () => {
  it("is idempotent: a repeated alarm does not transition twice", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 10_000 } });
    const { job } = await record(id);
    await fireAlarmAt(id, job.ttlAt);
    const once = await record(id);
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.alarm());
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.alarm());
    const twice = await record(id);
    expect(twice.job.version).toBe(once.job.version);
    expect(twice.history.filter((c) => c === "expire")).toHaveLength(1);
  });

  it("a handler that throws inside the transaction leaves the job as it was; the retry finishes", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 10_000 } });
    const before = await record(id);
    await freeze(id, before.job.ttlAt);
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.faults.arm("job:in-transaction"));
    await expect(runDurableObjectAlarm(stubOf(id))).rejects.toThrow(/injected fault/);
    const mid = await record(id);
    expect(mid.job).toEqual(before.job); // rolled back: nothing half-written
    // The platform retries a throwing alarm; do what it would.
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.alarm({ isRetry: true, retryCount: 1, scheduledTime: before.job.ttlAt }));
    const after = await record(id);
    expect(after.job).toMatchObject({ state: "TIMED_OUT", reason: "ttl", version: before.job.version + 1 });
    expect(after.history.filter((c) => c === "expire")).toHaveLength(1);
  });

  it("a handler that throws after the commit keeps the transition and re-tells the endpoint on retry", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 10_000 } });
    const before = await record(id);
    await freeze(id, before.job.ttlAt);
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.faults.arm("job:after-commit"));
    await expect(runDurableObjectAlarm(stubOf(id))).rejects.toThrow(/injected fault/);
    const mid = await record(id);
    expect(mid.job.state).toBe("TIMED_OUT");
    // The endpoint was not told yet: it still counts the job as queued.
    expect(await json(await call("GET", `/v2/${ep}/health`))).toMatchObject({ jobs: { inQueue: 1 } });
    expect(mid.alarm).not.toBeNull(); // the index retry is scheduled
    await freeze(id, before.job.ttlAt + 10_000);
    await runInDurableObject(stubOf(id), (instance: JobObject) => instance.alarm({ isRetry: true, retryCount: 1, scheduledTime: before.job.ttlAt }));
    expect(await json(await call("GET", `/v2/${ep}/health`))).toMatchObject({ jobs: { inQueue: 0 } });
    const after = await record(id);
    expect(after.job.version).toBe(mid.job.version);
    expectAlarmIn(after.alarm, after.job.purgeAt! - (before.job.ttlAt + 10_000));
  });

  it("the alarm follows the earliest deadline through the lifecycle", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 20_000, executionTimeout: 7_000 } });
    let r = await record(id);
    expect(r.alarm).toBe(r.job.ttlAt);
    await take(ep, "w1");
    r = await record(id);
    expect(r.alarm).toBe(r.job.execDeadline);
    await done(ep, "w1", id, { output: 1 });
    r = await record(id);
    expect(r.alarm).toBe(r.job.purgeAt);
  });
});
