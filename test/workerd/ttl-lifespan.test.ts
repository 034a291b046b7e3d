/**
 * Issue 14, item 6: RunPod's TTL as the job's whole lifespan (opt-in, `ttlMode: "lifespan"`),
 * today's queue TTL as the default, RunPod's `/status?ttl=` (shortens a finished job's
 * retention), and what a client's `s3Config`/`webhookV2` become (handed to workers, never echoed).
 * Clocks are frozen per job and alarms fired by hand.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { JobRecord } from "../../src/jobs/record";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, createKey, done, freezeJob as freeze, jobStubOf as stubOf, json, status, submit, takeOne } from "./helpers";

async function record(id: string): Promise<JobRecord | null> {
  return runInDurableObject(stubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)?.job ?? null);
}

async function fireAlarmAt(id: string, at: number): Promise<void> {
  await freeze(id, at);
  await runDurableObjectAlarm(stubOf(id));
}

const LIFESPAN = { ttl: 10_000, ttlMode: "lifespan" };

describe("TTL as lifespan (ttlMode: lifespan)", () => {
  it("a waiting job is there just before its lifespan ends and gone (404) at its end, its storage deleted", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: LIFESPAN });
    const job = (await record(id))!;
    expect(job.policy.ttlMode).toBe("lifespan");
    expect(job.ttlAt - job.createdAt).toBe(10_000);
    await fireAlarmAt(id, job.ttlAt - 1);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE" });
    await fireAlarmAt(id, job.ttlAt);
    expect((await status(ep, id)).status).toBe(404);
    // Its index row ended too (no job waits in /health), and the object is emptied.
    const health = await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs.inQueue).toBe(0);
    await runDurableObjectAlarm(stubOf(id));
    expect(await record(id)).toBeNull();
  });

  it("a running job is stopped at the end of its lifespan: 404 to the client, its worker's report 404, the worker told to stop", async () => {
    const ep = await createEndpoint();
    const workerKey = await createKey(ep, "worker");
    const id = await submit(ep, { input: 1, policy: { ...LIFESPAN, executionTimeout: 600_000 } });
    const taken = await json<{ id: string }>(await takeOne(ep, "w1"));
    expect(taken.id).toBe(id);
    const job = (await record(id))!;
    await fireAlarmAt(id, job.ttlAt - 1);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS" });
    await fireAlarmAt(id, job.ttlAt);
    expect((await status(ep, id)).status).toBe(404);
    const after = await record(id);
    // Kept only until its index update and stop are out: TIMED_OUT for the lifespan.
    if (after) expect(after).toMatchObject({ state: "TIMED_OUT", reason: "ttl" });
    expect((await done(ep, "w1", id, { output: "late" })).status).toBe(404);
    const res = await call("GET", `/v2/${ep}/job-stop/w1`, { key: workerKey });
    expect(res.status).toBe(200);
    expect((await json<{ jobsToStop: string[] }>(res)).jobsToStop).toEqual([id]);
  });

  it("a finished job stays readable only until its lifespan ends, however long its retention", async () => {
    const ep = await createEndpoint({ retentionMs: 3_600_000 });
    const id = await submit(ep, { input: 1, policy: LIFESPAN });
    await takeOne(ep, "w1");
    expect((await done(ep, "w1", id, { output: "ok" })).status).toBe(200);
    const job = (await record(id))!;
    expect(job.purgeAt).toBe(job.ttlAt);
    await fireAlarmAt(id, job.ttlAt - 1);
    expect(await json(await status(ep, id))).toMatchObject({ status: "COMPLETED", output: "ok" });
    await fireAlarmAt(id, job.ttlAt);
    expect((await status(ep, id)).status).toBe(404);
  });

  it("a retry keeps the lifespan's end (counted from submission); a queue TTL starts again", async () => {
    const ep = await createEndpoint({ maxAttempts: 1 });
    const ids = [await submit(ep, { input: 1, policy: LIFESPAN }), await submit(ep, { input: 1, policy: { ttl: 10_000 } })];
    for (let i = 0; i < ids.length; i++) {
      const taken = await json<{ id: string }>(await takeOne(ep, "w1"));
      expect((await done(ep, "w1", taken.id, { error: "boom" })).status).toBe(200);
    }
    const before = await Promise.all(ids.map(async (id) => (await record(id))!));
    for (const id of ids) {
      await freeze(id, before[0]!.createdAt + 5_000);
      expect((await call("POST", `/v2/${ep}/retry/${id}`)).status).toBe(200);
    }
    const lifespan = (await record(ids[0]!))!;
    const queue = (await record(ids[1]!))!;
    expect(lifespan.ttlAt).toBe(before[0]!.ttlAt);
    expect(queue.ttlAt).toBe(before[0]!.createdAt + 5_000 + 10_000);
  });

  it("is opt-in: by default a running job outlives its TTL (the TTL bounds the queue); an endpoint may make lifespan its default", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1, policy: { ttl: 10_000 } });
    await takeOne(ep, "w1");
    const job = (await record(id))!;
    expect(job.policy.ttlMode).toBe("queue");
    await fireAlarmAt(id, job.ttlAt + 1_000);
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_PROGRESS" });

    const ep2 = await createEndpoint({ ttlMode: "lifespan", ttl: 20_000 });
    const id2 = await submit(ep2, { input: 1 });
    expect((await record(id2))!.policy).toMatchObject({ ttlMode: "lifespan", ttl: 20_000 });
    const id3 = await submit(ep2, { input: 1, policy: { ttlMode: "queue" } });
    expect((await record(id3))!.policy.ttlMode).toBe("queue");
    expect((await call("PUT", `/admin/endpoints/${ep2}`, { body: { ttlMode: "forever" } })).status).toBe(400);
    expect((await call("POST", `/v2/${ep2}/run`, { body: { input: 1, policy: { ttlMode: "LIFESPAN" } } })).status).toBe(400);
  });
});

describe("/status?ttl= (RunPod: shorten a finished job's retention)", () => {
  it("answers with the job, then keeps it only that much longer; never lengthens; leaves unfinished jobs alone", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1 });
    // Not finished: nothing changes.
    expect((await call("GET", `/v2/${ep}/status/${id}?ttl=0`)).status).toBe(200);
    expect((await record(id))!.purgeAt).toBeNull();
    await takeOne(ep, "w1");
    await done(ep, "w1", id, { output: "x" });
    const before = (await record(id))!;
    // Longer than what is left: unchanged.
    expect((await call("GET", `/v2/${ep}/status/${id}?ttl=604800000`)).status).toBe(200);
    expect((await record(id))!.purgeAt).toBe(before.purgeAt);
    await freeze(id, before.completedAt! + 1_000);
    const res = await call("POST", `/v2/${ep}/status/${id}?ttl=6000`);
    expect(await json(res)).toMatchObject({ status: "COMPLETED", output: "x" });
    expect((await record(id))!.purgeAt).toBe(before.completedAt! + 7_000);
    await fireAlarmAt(id, before.completedAt! + 6_999);
    expect((await status(ep, id)).status).toBe(200);
    await fireAlarmAt(id, before.completedAt! + 7_000);
    expect((await status(ep, id)).status).toBe(404);
  });

  it("ttl=0 on status-sync: the answer carries the job, the next read is a 404", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1 });
    await takeOne(ep, "w1");
    await done(ep, "w1", id, { output: 7 });
    expect(await json(await call("GET", `/v2/${ep}/status-sync/${id}?ttl=0&wait=1000`))).toMatchObject({ status: "COMPLETED", output: 7 });
    expect((await status(ep, id)).status).toBe(404);
  });

  it("refuses a malformed ttl with a 400 and changes nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: 1 });
    for (const bad of ["-1", "abc", "1e3", "1.5", "", "604800001", "99999999999999999999", "__proto__"]) {
      const res = await call("GET", `/v2/${ep}/status/${id}?ttl=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(((await json<{ error: string }>(res)).error)).toMatch(/ttl/);
    }
    expect(await json(await status(ep, id))).toMatchObject({ status: "IN_QUEUE" });
  });
});

describe("s3Config and webhookV2", () => {
  it("hands s3Config to the worker as sent, never echoes it; keeps a string webhookV2 and ignores any other", async () => {
    const ep = await createEndpoint();
    const s3Config = { accessId: "AKIA", accessSecret: "s3cr3t", bucketName: "b", endpointUrl: "https://s3.example.com", __proto__x: 1, constructor: "c" };
    const id = await submit(ep, { input: { a: 1 }, s3Config, webhookV2: "https://example.com/v2" });
    const handed = await json<Record<string, unknown>>(await takeOne(ep, "w1"));
    expect(handed).toMatchObject({ id, input: { a: 1 }, s3Config });
    expect(handed).not.toHaveProperty("batchId");
    const seen = await (await status(ep, id)).text();
    expect(seen).not.toContain("s3cr3t");
    expect((await record(id))!.extras).toEqual({ s3Config: JSON.stringify(s3Config), webhookV2: "https://example.com/v2" });
    // A webhookV2 that is not a string is kept out, never refused.
    const id2 = await submit(ep, { input: 1, webhookV2: { url: 1 } });
    expect((await record(id2))!.extras).toBeNull();
    const plain = await json<Record<string, unknown>>(await takeOne(ep, "w2"));
    expect(plain.id).toBe(id2);
    expect(plain).not.toHaveProperty("s3Config");
  });

  it("refuses an s3Config that is not an object or is over 16 KiB of JSON, with a 400", async () => {
    const ep = await createEndpoint();
    for (const s3Config of ["creds", [1], null, 5]) {
      expect((await call("POST", `/v2/${ep}/run`, { body: { input: 1, s3Config } })).status).toBe(400);
    }
    const big = await call("POST", `/v2/${ep}/run`, { body: { input: 1, s3Config: { accessSecret: "x".repeat(16 * 1024) } } });
    expect(big.status).toBe(400);
    expect((await json<{ error: string }>(big)).error).toMatch(/s3Config is \d+ bytes/);
    const fits = await call("POST", `/v2/${ep}/run`, { body: { input: 1, s3Config: { k: "x".repeat(16 * 1024 - 20) } } });
    expect(fits.status).toBe(200);
  });
});
