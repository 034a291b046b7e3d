/**
 * job-done?next=1 (issue 12, fewer hops): a final report answered with the worker's next job,
 * claimed at once, so a busy worker needs one request per job. RunPod workers never send it and
 * keep their `{}` answer.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, done, json, status, submit, take } from "./helpers";

const doneNext = (ep: string, w: string, id: string, body: unknown, next = "1") =>
  call("POST", `/v2/${ep}/job-done/${w}/${id}?next=${next}`, { body });

describe("job-done?next=1", () => {
  it("answers the next ready job, claimed by the same worker, and {next: null} when none is ready", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const jobs = [await submit(ep, { input: { n: 1 } }), await submit(ep, { input: { n: 2 } })];
    // With shards (the default) either may be handed out first; next=1 finds the other on any shard.
    const a = (await json<{ id: string }>(await take(ep, "w1"))).id;
    expect(jobs).toContain(a);
    const b = jobs.find((j) => j !== a)!;
    const first = await doneNext(ep, "w1", a, { output: "A" });
    expect(first.status).toBe(200);
    expect(await json(first)).toEqual({ next: { id: b, attempt: 1, input: { n: jobs.indexOf(b) + 1 } } });
    expect(await json(await status(ep, a))).toMatchObject({ status: "COMPLETED", output: "A" });
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_PROGRESS" });
    // The next job is the worker's: its own report is accepted; nothing is left to hand out.
    const second = await doneNext(ep, "w1", b, { error: "boom" });
    expect(await json(second)).toEqual({ next: null });
    expect(await json(await status(ep, b))).toMatchObject({ status: "FAILED", error: "boom" });
  });

  it("without next (RunPod workers) the answer stays {} and nothing is taken", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const jobs = [await submit(ep), await submit(ep)];
    const a = (await json<{ id: string }>(await take(ep, "w1"))).id; // either one, with shards
    const b = jobs.find((j) => j !== a)!;
    const res = await done(ep, "w1", a, { output: 1 });
    expect(await json(res)).toEqual({});
    expect(await json(await doneNext(ep, "w1", b, { output: 1 }, "0"))).toMatchObject({ error: expect.any(String) });
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_QUEUE" });
  });

  it("a refused report takes nothing: the next job stays queued for others", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const jobs = [await submit(ep), await submit(ep)];
    const a = (await json<{ id: string }>(await take(ep, "w1"))).id; // either one, with shards
    const b = jobs.find((j) => j !== a)!;
    // w2 does not hold a: its report is refused (409) and it is handed nothing.
    const res = await doneNext(ep, "w2", a, { output: 1 });
    expect(res.status).toBe(409);
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_QUEUE" });
    expect(await json(await take(ep, "w3"))).toMatchObject({ id: b });
  });

  it("bad uses are a 400 that changes nothing: next=2, next with a progress update", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    await submit(ep);
    await submit(ep);
    const a = (await json<{ id: string }>(await take(ep, "w1"))).id; // either one, with shards
    const bad = await doneNext(ep, "w1", a, { output: 1 }, "2");
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatch(/next must be 0 or 1/);
    const progress = await doneNext(ep, "w1", a, { status: "IN_PROGRESS", output: "half" });
    expect(progress.status).toBe(400);
    expect((await json(progress)).error).toMatch(/final report/);
    expect(await json(await status(ep, a))).toMatchObject({ status: "IN_PROGRESS" });
  });

  it("a paused endpoint answers next: null (running jobs finish, nothing new starts)", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: jobs handed out in submit order
    const jobs = [await submit(ep), await submit(ep)];
    const a = (await json<{ id: string }>(await take(ep, "w1"))).id; // either one, with shards
    const b = jobs.find((j) => j !== a)!;
    expect((await call("POST", `/admin/endpoints/${ep}/pause`)).status).toBe(200);
    expect(await json(await doneNext(ep, "w1", a, { output: 1 }))).toEqual({ next: null });
    expect(await json(await status(ep, b))).toMatchObject({ status: "IN_QUEUE" });
  });
});
