/**
 * Issue 12, items 2 and 3 (the endpoint object off every job's path): the shard that offers a job
 * claims it in the job's object and indexes the claim itself (2 index calls per job besides the
 * take: submit and result); a take's own release passes over what it claimed (its take id goes
 * with the claim's tell to the worker's liveness object); an input over 1 MiB is read from the job
 * by its lease holder only; a job submitted while a take of the same isolate waits goes to that
 * take's shard, and the endpoint object serves none of it.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LivenessObject } from "../../src/endpoints/liveness-object";
import { hashOf, homeShard, queueOf, shardStub } from "../../src/endpoints/shards";
import type { ShardObject } from "../../src/endpoints/shard-object";
import { takeJobs } from "../../src/flows/take";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { MEMORY_BOUNDS } from "../../src/shared/limits";
import type { HoldTell } from "../../src/shared/liveness";
import { joinPieces } from "../../src/shared/pieces";
import { call, createEndpoint, done, endpointStubOf, jobStubOf, json, livenessRefOf, livenessStubAt, submit } from "./helpers";

type Load = { objects: Array<{ kind: string; name: string; calls: { total: number; byMethod: Record<string, number> } }> };
const load = async (ep: string) => json<Load>(await call("GET", `/admin/endpoints/${ep}/load`));
const shardOf = async (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job.shard);

describe("one hop from the index to the job", () => {
  it("a take's claim is indexed by the shard that offered it: 2 syncs per job, none on the endpoint object", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/health`);
    expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(200);
    const n = 24;
    for (let i = 0; i < n; i++) {
      const id = await submit(ep, { input: i });
      const res = await call("GET", `/v2/${ep}/job-take/h1?job_in_progress=0`);
      expect(res.status).toBe(200);
      const job = await json<{ id: string }>(res);
      expect(job.id).toBe(id);
      // The index knows the claim as soon as the take answers (no sync from the job on its way).
      const status = await json<{ status: string; workerId?: string }>(await call("GET", `/v2/${ep}/status/${id}`));
      expect(status.status).toBe("IN_PROGRESS");
      const health = await json<{ jobs: Record<string, number> }>(await call("GET", `/v2/${ep}/health`));
      expect(health.jobs).toMatchObject({ inProgress: 1, inQueue: 0 });
      expect((await done(ep, "h1", id, { output: i })).status).toBe(200);
    }
    const r = await load(ep);
    const shards = r.objects.filter((o) => o.kind === "shard");
    const syncs = shards.reduce((a, o) => a + (o.calls.byMethod.sync ?? 0), 0);
    console.log(`one hop: ${syncs / n} syncs per job over the shards; endpoint object ${JSON.stringify(r.objects.find((o) => o.kind === "endpoint")?.calls.byMethod ?? {})}`);
    expect(syncs).toBe(2 * n); // submit and result; the claim is applied by the shard that took it
    const root = r.objects.find((o) => o.kind === "endpoint");
    expect(root?.calls.byMethod.sync ?? 0).toBe(0);
    expect(root?.calls.byMethod.take ?? 0).toBe(0);
  });

  it("a take's release of what the worker held passes over the job this very take claimed, whichever tell arrives first", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/ping/t9`);
    const ref = await livenessRefOf(ep, "t9");
    const tell = (jobId: string, takeId?: string): HoldTell => ({ jobId, workerId: "t9", version: 2, attempt: 1, state: "IN_PROGRESS", stop: false, failure: null, ...(takeId ? { takeId } : {}) });
    const lost = await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject) => {
      await i.hold(ref, [tell("old-job"), tell("this-take", "T1")]);
      const byThisTake = await i.taking(ref, 45_000, { workerId: "t9", jobInProgress: false, pollUntil: Date.now() + 1000, takeId: "T1", tags: null });
      const byAnother = await i.taking(ref, 45_000, { workerId: "t9", jobInProgress: false, pollUntil: Date.now() + 1000, takeId: "T2", tags: null });
      // A later tell of the same attempt (CANCELLING) keeps the claiming take.
      await i.hold(ref, [{ ...tell("this-take"), version: 3, state: "CANCELLING" }]);
      const afterCancel = await i.taking(ref, 45_000, { workerId: "t9", jobInProgress: false, pollUntil: Date.now() + 1000, takeId: "T1", tags: null });
      return { byThisTake, byAnother: byAnother.sort(), afterCancel };
    });
    expect(lost.byThisTake).toEqual(["old-job"]);
    expect(lost.byAnother).toEqual(["old-job", "this-take"]);
    expect(lost.afterCancel).toEqual(["old-job"]);
  });

  it("a worker that says it runs nothing loses what it held, and keeps the job its take claims", async () => {
    const ep = await createEndpoint();
    const first = await submit(ep, { input: 1 });
    expect(await json(await call("GET", `/v2/${ep}/job-take/r1?job_in_progress=1`))).toMatchObject({ id: first });
    const second = await submit(ep, { input: 2 });
    // A restarted worker: runs nothing; its take releases `first` (back to the queue) and claims one job.
    const res = await call("GET", `/v2/${ep}/job-take/r1?job_in_progress=0`);
    expect(res.status).toBe(200);
    const got = await json<{ id: string }>(res);
    const state = async (id: string) => (await json<{ status: string; workerId?: string }>(await call("GET", `/v2/${ep}/status/${id}`))).status;
    expect(await state(got.id)).toBe("IN_PROGRESS");
    const other = got.id === first ? second : first;
    expect(["IN_QUEUE", "IN_PROGRESS"]).toContain(await state(other));
    if (got.id === second) expect(await state(first)).toBe("IN_QUEUE"); // released, not handed back at once (it waits for others)
    expect((await done(ep, "r1", got.id, { output: 1 })).status).toBe(200);
  });

  it("an input over the inline limit is read from the job by its lease holder, and by nobody else", async () => {
    const ep = await createEndpoint();
    const big = "x".repeat(MEMORY_BOUNDS.inlineClaimBytes + 1000);
    const id = await submit(ep, { input: { big } });
    const res = await call("GET", `/v2/${ep}/job-take/b1?job_in_progress=0`);
    expect(res.status).toBe(200);
    const job = await json<{ id: string; attempt: number; input: { big: string } }>(res);
    expect(job.id).toBe(id);
    expect(job.input.big.length).toBe(big.length);
    const config = (await endpointStubOf(ep).getConfig())!;
    const ref = { id: config.id, generation: config.generation };
    const stub = jobStubOf(id);
    expect(await stub.claimedInput(ref, { workerId: "b2", attempt: job.attempt })).toBeNull();
    expect(await stub.claimedInput(ref, { workerId: "b1", attempt: job.attempt + 1 })).toBeNull();
    expect(await stub.claimedInput({ id: `${ep}-other`, generation: config.generation }, { workerId: "b1", attempt: job.attempt })).toBeNull();
    expect((await stub.claimedInput(ref, { workerId: "b1", attempt: job.attempt }))!.byteLength).toBeGreaterThan(MEMORY_BOUNDS.inlineClaimBytes);
    expect((await done(ep, "b1", id, { output: 1 })).status).toBe(200);
    expect(await stub.claimedInput(ref, { workerId: "b1", attempt: job.attempt })).toBeNull();
  });

  it("a job submitted while a take of this isolate waits goes to that take's shard; the endpoint object relays nothing", async () => {
    const ep = await createEndpoint();
    const config = (await endpointStubOf(ep).getConfig())!;
    await call("GET", `/v2/${ep}/health`);
    expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const worker = `s${i}`;
      const poll = takeJobs(env, config, { workerId: worker, max: 1, waitMs: 5_000, jobInProgress: null });
      await new Promise((r) => setTimeout(r, 30));
      const id = await submit(ep, { input: i });
      expect(await shardOf(id), `job ${i}`).toBe(homeShard(config, worker));
      const got = await poll;
      expect(got).toHaveLength(1);
      expect(JSON.parse(new TextDecoder().decode(joinPieces(got[0]!)))).toMatchObject({ id });
      expect((await done(ep, worker, id, { output: 1 })).status).toBe(200);
    }
    const root = (await load(ep)).objects.find((o) => o.kind === "endpoint");
    expect(root?.calls.byMethod.hint ?? 0).toBe(0);
  });

  it("a job that comes while a take waits is offered, not claimed by the shard: a worker gone meanwhile does not hold it", async () => {
    const ep = await createEndpoint({ shards: 2 });
    const config = (await endpointStubOf(ep).getConfig())!;
    const home = homeShard(config, "gone");
    // The take itself, as the edge sends it: nobody claims what it is offered (its worker went away).
    const waiting = queueOf(env, ep, config.generation, home).take({ workerId: "gone", max: 1, waitMs: 5_000, generation: config.generation, takeId: "T-gone" });
    await new Promise((r) => setTimeout(r, 30));
    // A sequence key placed on the take's shard (keys go by their hash over shards 1..2).
    let key = 0;
    while (1 + (hashOf(`k${key}`) % 2) !== home) key++;
    const id = await submit(ep, { input: 1, sequenceKey: `k${key}` });
    const shard = await shardOf(id);
    expect(shard).toBe(home);
    const answer = await waiting;
    expect(answer.ids).toEqual([id]);
    expect(answer.jobs ?? []).toEqual([]);
    expect((await json<{ status: string }>(await call("GET", `/v2/${ep}/status/${id}`))).status).toBe("IN_QUEUE");
    // Once the offer lapses, the job goes to a worker that is there.
    const stub = shardStub(env, { endpointId: ep, generation: config.generation, shard }) as DurableObjectStub<ShardObject>;
    await runInDurableObject(stub, (i: ShardObject) => i.clock.freeze(Date.now() + 11_000));
    const res = await call("GET", `/v2/${ep}/job-take/present?job_in_progress=0`);
    await runInDurableObject(stub, (i: ShardObject) => i.clock.thaw());
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ id });
  });
});
