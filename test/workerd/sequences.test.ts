/**
 * FIFO sequences: jobs with the same sequenceKey run one at a time in submit order; later ones
 * wait SEQUENCED and are released when the one ahead ends, however it ends.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { call, createEndpoint, done, jobStubOf as stubOf, json, status, submit, take } from "./helpers";

const stateOf = async (ep: string, id: string) => (await json<{ status: string }>(await status(ep, id))).status;

describe("sequences", () => {
  it("run one at a time in submit order; other keys are not held up", async () => {
    // One shard: both keys' heads in one batch (with shards, each key's jobs live on its key's shard).
    const ep = await createEndpoint({ shards: 1 });
    const a1 = await submit(ep, { input: "a1", sequenceKey: "a" });
    const a2 = await submit(ep, { input: "a2", sequenceKey: "a" });
    const a3 = await submit(ep, { input: "a3", sequenceKey: "a" });
    const b1 = await submit(ep, { input: "b1", sequenceKey: "b" });
    expect(await stateOf(ep, a2)).toBe("SEQUENCED");
    expect(await json(await status(ep, a3))).toMatchObject({ status: "SEQUENCED", queue: { reason: "sequenced_behind", ahead: a2 } });
    const batch = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=10`));
    expect(batch.map((j) => j.id)).toEqual([a1, b1]);
    await done(ep, "w1", a1, { output: 1 });
    expect(await stateOf(ep, a2)).toBe("IN_QUEUE");
    expect(await stateOf(ep, a3)).toBe("SEQUENCED");
    expect(await json(await take(ep, "w2"))).toMatchObject({ id: a2 });
    await done(ep, "w2", a2, { error: "failed too" });
    expect(await json(await take(ep, "w2"))).toMatchObject({ id: a3 });
  });

  it("a cancelled or timed-out job releases its successor", async () => {
    const ep = await createEndpoint();
    const first = await submit(ep, { input: 1, sequenceKey: "k", policy: { ttl: 10_000 } });
    const second = await submit(ep, { input: 2, sequenceKey: "k" });
    const third = await submit(ep, { input: 3, sequenceKey: "k" });
    // The first times out in the queue.
    const job = await runInDurableObject(stubOf(first), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);
    await runInDurableObject(stubOf(first), (i: JobObject) => i.clock.freeze(job.ttlAt));
    await runDurableObjectAlarm(stubOf(first));
    expect(await stateOf(ep, first)).toBe("TIMED_OUT");
    expect(await stateOf(ep, second)).toBe("IN_QUEUE");
    // The second is cancelled while waiting.
    await call("POST", `/v2/${ep}/cancel/${second}`);
    expect(await stateOf(ep, third)).toBe("IN_QUEUE");
  });

  it("cancelling a job in the middle does not release the one behind it early", async () => {
    const ep = await createEndpoint();
    const head = await submit(ep, { input: 1, sequenceKey: "m" });
    const middle = await submit(ep, { input: 2, sequenceKey: "m" });
    const tail = await submit(ep, { input: 3, sequenceKey: "m" });
    await call("POST", `/v2/${ep}/cancel/${middle}`);
    expect(await stateOf(ep, tail)).toBe("SEQUENCED");
    expect(await json(await status(ep, tail))).toMatchObject({ queue: { reason: "sequenced_behind", ahead: head } });
    await take(ep, "w1");
    await done(ep, "w1", head, { output: 1 });
    expect(await stateOf(ep, tail)).toBe("IN_QUEUE");
  });

  it("the TTL runs for a SEQUENCED job", async () => {
    const ep = await createEndpoint();
    await submit(ep, { input: 1, sequenceKey: "t" });
    const waiting = await submit(ep, { input: 2, sequenceKey: "t", policy: { ttl: 10_000 } });
    const job = await runInDurableObject(stubOf(waiting), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);
    await runInDurableObject(stubOf(waiting), (i: JobObject) => i.clock.freeze(job.ttlAt));
    await runDurableObjectAlarm(stubOf(waiting));
    expect(await json(await status(ep, waiting))).toMatchObject({ status: "TIMED_OUT", reason: "ttl" });
  });

  it("a SEQUENCED job whose release was lost releases itself on its own check", async () => {
    // The sequence is kept on shard 0 here, the endpoint object whose storage the test edits.
    const ep = await createEndpoint({ shards: 1 });
    const head = await submit(ep, { input: 1, sequenceKey: "lost" });
    const next = await submit(ep, { input: 2, sequenceKey: "lost" });
    const job = await runInDurableObject(stubOf(next), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);
    // Its check while the head still waits finds the head ahead: it checks again later.
    await runInDurableObject(stubOf(next), (i: JobObject) => i.clock.freeze(job.sequenceCheckAt!));
    await runDurableObjectAlarm(stubOf(next));
    const rechecked = await runInDurableObject(stubOf(next), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);
    expect(rechecked).toMatchObject({ state: "SEQUENCED", sequenceCheckAt: job.sequenceCheckAt! + 30_000 });
    // The head ends but its release of `next` is lost: simulate by ending the head's index row only.
    const endpoint = env.ENDPOINT.get(env.ENDPOINT.idFromName(ep));
    await runInDurableObject(endpoint, (_i, s) => s.storage.sql.exec("DELETE FROM sequence_member WHERE job_id = ?", head));
    await runInDurableObject(stubOf(next), (i: JobObject) => i.clock.freeze(rechecked.sequenceCheckAt!));
    await runDurableObjectAlarm(stubOf(next));
    expect(await stateOf(ep, next)).toBe("IN_QUEUE");
  });
});
