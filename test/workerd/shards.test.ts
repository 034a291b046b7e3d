/**
 * Issue 12, item 3: an endpoint's ready index spread over shards (an endpoint created with N > 1
 * shards indexes its jobs on ShardObjects 1..N; shard 0, the endpoint object, only relays).
 * Placement, takes across shards, forwarding of idle polls, merged reads, fan-out of purge and
 * deletion, growth, a failing shard, index repair.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import type { ShardObject } from "../../src/endpoints/shard-object";
import { hashOf, queueOf, shardName } from "../../src/endpoints/shards";
import { loadJob } from "../../src/jobs/store";
import { takeJobs } from "../../src/flows/take";
import { joinPieces } from "../../src/shared/pieces";
import { call, createEndpoint, createKey, done, endpointStubOf, jobStubOf, json, status, submit, take } from "./helpers";

const shardOf = async (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job.shard);
const generationOf = async (ep: string) => (await endpointStubOf(ep).getConfig())!.generation;
const shardStub = (ep: string, generation: string, shard: number) =>
  env.SHARD.get(env.SHARD.idFromName(shardName({ endpointId: ep, generation, shard }))) as DurableObjectStub<ShardObject>;

/** A sequence key that lands on `shard` (1..n) of `n` (sequences are placed by their key's hash over shards 1..n). */
function keyFor(shard: number, n = 8, prefix = "k"): string {
  for (let i = 0; ; i++) if (1 + (hashOf(`${prefix}${i}`) % n) === shard) return `${prefix}${i}`;
}

/** A worker id whose home shard is `shard` (1..n). */
function workerFor(shard: number, n = 8, prefix = "w"): string {
  for (let i = 0; ; i++) if (1 + (hashOf(`${prefix}${i}`) % n) === shard) return `${prefix}${i}`;
}

async function takeAll(ep: string, worker: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let tries = 0; ids.length < count && tries < count * 4; tries++) {
    // job_in_progress=1: the worker still runs what it took (0 would release those jobs).
    const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=1`);
    if (res.status === 200) ids.push((await json<{ id: string }>(res)).id);
  }
  return ids;
}

describe("sharded ready index", () => {
  it("spreads jobs over the default 8 shards, evenly, and every one is taken once", async () => {
    const ep = await createEndpoint();
    expect((await endpointStubOf(ep).getConfig())!).toMatchObject({ shards: 8, firstShard: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 160; i++) ids.push(await submit(ep));
    const counts = new Array<number>(8).fill(0);
    // Shards 1..8 (ShardObjects); the endpoint object (shard 0) indexes none of them.
    for (const id of ids) counts[(await shardOf(id)) - 1]! += 1;
    console.log(`placement of 160 jobs over 8 shards: ${JSON.stringify(counts)} (max/mean ${(Math.max(...counts) / 20).toFixed(2)})`);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...counts)).toBeLessThanOrEqual(30);
    // Two workers at once never get the same job, and every job is handed out.
    const [a, b] = await Promise.all([takeAll(ep, "wa", 80), takeAll(ep, "wb", 80)]);
    const all = [...a, ...b];
    expect(new Set(all).size).toBe(all.length);
    expect(new Set(all)).toEqual(new Set(ids));
  }, 120_000);

  it("an idle worker's open poll gets a job submitted to any shard", async () => {
    const ep = await createEndpoint();
    const latencies: number[] = [];
    for (let shard = 1; shard <= 8; shard++) {
      const worker = workerFor(((shard + 2) % 8) + 1); // parked on another shard than the job's
      // The take flow itself, with a 5 s poll (the routes' TAKE_WAIT_MS is 300 ms in tests, too
      // short to tell a forwarded job from a later poll on a busy machine).
      const config = (await endpointStubOf(ep).getConfig())!;
      const poll = takeJobs(env, config, { workerId: worker, max: 1, waitMs: 5_000, jobInProgress: null });
      await new Promise((r) => setTimeout(r, 30));
      const submitted = Date.now();
      const id = await submit(ep, { input: shard, sequenceKey: keyFor(shard) });
      expect(await shardOf(id)).toBe(shard);
      const got = await poll;
      latencies.push(Date.now() - submitted);
      expect(got, `job on shard ${shard}`).toHaveLength(1);
      expect(JSON.parse(new TextDecoder().decode(joinPieces(got[0]!)))).toMatchObject({ id });
      // Handed out while the poll was open, not at its end.
      expect(Date.now() - submitted, `job on shard ${shard}`).toBeLessThan(5_000);
      await done(ep, worker, id, { output: 1 });
    }
    console.log(`submit → open poll answered, per shard (ms): ${JSON.stringify(latencies)}`);
  });

  it("keeps FIFO per sequence key exact over several shards", async () => {
    const ep = await createEndpoint();
    const keys = [keyFor(1, 8, "a"), keyFor(4, 8, "b"), keyFor(6, 8, "c")];
    const submitted = new Map<string, string[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < 4; i++) for (const k of keys) submitted.get(k)!.push(await submit(ep, { input: { k, i }, sequenceKey: k }));
    const order = new Map<string, string[]>(keys.map((k) => [k, []]));
    const keyOf = new Map([...submitted].flatMap(([k, ids]) => ids.map((id) => [id, k] as const)));
    for (let round = 0; round < 60 && [...order.values()].flat().length < 12; round++) {
      const held: string[] = [];
      for (const w of ["x1", "x2", "x3"]) {
        const res = await take(ep, w);
        if (res.status === 200) held.push(`${w}:${(await json<{ id: string }>(res)).id}`);
      }
      // At most one job of a key runs at a time.
      const running = held.map((h) => keyOf.get(h.split(":")[1]!));
      expect(new Set(running).size).toBe(running.length);
      for (const h of held) {
        const [w, id] = h.split(":") as [string, string];
        order.get(keyOf.get(id)!)!.push(id);
        await done(ep, w, id, { output: 1 });
      }
    }
    for (const k of keys) expect(order.get(k)).toEqual(submitted.get(k));
    expect(new Set(await Promise.all(keys.map(async (k) => shardOf(submitted.get(k)![0]!)))).size).toBe(3);
  }, 60_000);

  it("priority is strict within a shard", async () => {
    const ep = await createEndpoint({ shards: 2 });
    const gen = await generationOf(ep);
    const normal = [await submit(ep), await submit(ep)];
    const high = [await submit(ep, { input: 1, priority: 10 }), await submit(ep, { input: 1, priority: 10 })];
    for (const shard of [1, 2]) {
      const here = async (ids: string[]) => (await Promise.all(ids.map(async (id) => ((await shardOf(id)) === shard ? id : null)))).filter((x) => x !== null);
      const [n, h] = [await here(normal), await here(high)];
      expect(n.length).toBe(1);
      expect(h.length).toBe(1);
      const offer = await queueOf(env, ep, gen, shard).take({ workerId: "p1", max: 1, waitMs: 0, generation: gen });
      // Ready at once: claimed by the shard itself (one hop).
      expect((offer.jobs ?? []).map((j) => j.id)).toEqual(h);
    }
  });

  it("health, counters, metrics and the jobs list merge the shards", async () => {
    const ep = await createEndpoint();
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await submit(ep));
    expect(new Set(await Promise.all(ids.map(shardOf))).size).toBe(8);
    const taken = await takeAll(ep, "m1", 6);
    for (const id of taken) await done(ep, "m1", id, { output: 1 });
    const health = await json<{ jobs: Record<string, number>; workers: Record<string, number> }>(await call("GET", `/v2/${ep}/health`));
    expect(health.jobs).toMatchObject({ completed: 6, inQueue: 10, inProgress: 0 });
    expect(health.workers).toMatchObject({ idle: 1 });
    const counters = await json<{ counters: Record<string, number> }>(await call("GET", `/admin/endpoints/${ep}/counters`));
    expect(counters.counters).toMatchObject({ submitted: 16, completed: 6 });
    const metrics = await json<{ total: { requests: Record<string, number>; executionTime: { count: number }; coldStarts: number } }>(
      await call("GET", `/v2/${ep}/metrics?window=1h`, { key: await createKey(ep, "client") }),
    );
    expect(metrics.total.requests).toMatchObject({ total: 16, completed: 6 });
    expect(metrics.total.executionTime.count).toBe(6);
    expect(metrics.total.coldStarts).toBe(1);
    const list = await json<{ jobs: Array<{ jobId: string; state: string }> }>(await call("GET", `/admin/endpoints/${ep}/jobs?limit=50`));
    expect(new Set(list.jobs.map((j) => j.jobId))).toEqual(new Set(ids));
  }, 60_000);

  it("purge-queue and deletion reach every shard", async () => {
    const ep = await createEndpoint();
    const purged: string[] = [];
    for (let i = 0; i < 16; i++) purged.push(await submit(ep));
    expect((await call("POST", `/v2/${ep}/purge-queue`)).status).toBe(200);
    for (const id of purged) expect((await json<{ status: string }>(await status(ep, id))).status).toBe("CANCELLED");
    const left: string[] = [];
    for (let i = 0; i < 16; i++) left.push(await submit(ep));
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    for (const id of left) {
      const state = await runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job.state);
      expect(state, id).toBe("CANCELLED");
    }
  }, 60_000);

  it("growing the shard count keeps existing jobs reachable; it never shrinks", async () => {
    const ep = await createEndpoint({ shards: 2 });
    const before = [await submit(ep), await submit(ep), await submit(ep), await submit(ep)];
    expect(new Set(await Promise.all(before.map(shardOf)))).toEqual(new Set([1, 2]));
    expect((await json(await call("PUT", `/admin/endpoints/${ep}`, { body: { shards: 8 } }))).shards).toBe(8);
    const after: string[] = [];
    for (let i = 0; i < 8; i++) after.push(await submit(ep));
    expect(Math.max(...(await Promise.all(after.map(shardOf))))).toBeGreaterThan(2);
    const taken = await takeAll(ep, "g1", 12);
    expect(new Set(taken)).toEqual(new Set([...before, ...after]));
    const shrink = await call("PUT", `/admin/endpoints/${ep}`, { body: { shards: 4 } });
    expect(shrink.status).toBe(400);
    expect((await json<{ error: string }>(shrink)).error).toMatch(/cannot shrink/);
    // A concurrency cap counts in one place: a new capped endpoint gets one shard, and asking for more is a 400.
    expect((await endpointStubOf(await createEndpoint({ concurrency: 2 })).getConfig())!.shards).toBe(1);
    expect((await call("PUT", `/admin/endpoints/cap-${Date.now()}`, { body: { concurrency: 2, shards: 4 } })).status).toBe(400);
  }, 60_000);

  it("a shard that throws mid-take loses nothing: the take falls back, the job stays reachable", async () => {
    const ep = await createEndpoint();
    const gen = await generationOf(ep);
    const broken = shardStub(ep, gen, 5);
    const worker = workerFor(5);
    const id = await submit(ep, { input: 1, sequenceKey: keyFor(5) });
    const other = await submit(ep, { input: 2, sequenceKey: keyFor(2) });
    await runInDurableObject(broken, (i: ShardObject) => {
      const queue = (i as unknown as { queue: { take: unknown } }).queue;
      const take = queue.take;
      queue.take = async () => {
        throw new Error("shard evicted mid-take");
      };
      (i as unknown as { restore: () => void }).restore = () => (queue.take = take);
    });
    // The worker's home shard fails: its take still reaches the job on shard 2.
    expect(await takeAll(ep, worker, 1)).toEqual([other]);
    await runInDurableObject(broken, (i: ShardObject) => (i as unknown as { restore: () => void }).restore());
    expect(await takeAll(ep, worker, 1)).toEqual([id]);
  });

  it("an index update lost on a shard is repaired from the job by its own alarm", async () => {
    const ep = await createEndpoint();
    const gen = await generationOf(ep);
    const id = await submit(ep, { input: 1, sequenceKey: keyFor(3) });
    await runInDurableObject(shardStub(ep, gen, 3), (_i: ShardObject, s) => s.storage.sql.exec("DELETE FROM job_index WHERE job_id = ?", id));
    expect((await take(ep, "r1")).status).toBe(204);
    const stored = await runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!);
    await runInDurableObject(jobStubOf(id), (i: JobObject) => i.clock.freeze(stored.indexDueAt!));
    await runDurableObjectAlarm(jobStubOf(id));
    expect(await json(await take(ep, "r1"))).toMatchObject({ id });
  });

  it("found by the endpoint model (seed 46283 on wt-shards): an idle worker's poll gets a job placed on a shard it visited in vain", async () => {
    // Y failed J1 (it waits 30 s for others); Y's take is sent to J1's shard by hints, finds
    // nothing it may take there, and parks at home. A job Y may take then arrives on that shard:
    // its hint must reach Y (the shard hinted a moment ago, and Y skips that shard's old hints).
    // The poll waits TAKE_WAIT_MS (300 ms here): on a loaded machine it may end before the job is
    // placed, which is not this case; then the case is set up again (at most 5 times). A poll
    // that answers 204 after the job was placed fails the test.
    for (let round = 1; ; round++) {
      const ep = await createEndpoint({ shards: 2, retryOnError: true, maxAttempts: 3 });
      const y = workerFor(1, 2, "y");
      const j1 = await submit(ep, { input: 1, sequenceKey: keyFor(2, 2, "k") });
      expect(await shardOf(j1)).toBe(2);
      expect(await json(await take(ep, y))).toMatchObject({ id: j1 });
      expect((await done(ep, y, j1, { error: "boom" })).status).toBe(200);
      expect(await json(await status(ep, j1))).toMatchObject({ status: "IN_QUEUE" });
      const poll = call("GET", `/v2/${ep}/job-take/${y}?job_in_progress=1`).then((res) => ({ res, at: Date.now() }));
      await new Promise((r) => setTimeout(r, 80));
      const j2 = await submit(ep, { input: 2, sequenceKey: keyFor(2, 2, "m") });
      const placedAt = Date.now();
      expect(await shardOf(j2)).toBe(2);
      const { res, at } = await poll;
      if (res.status === 204 && at < placedAt && round < 5) continue;
      expect(res.status).toBe(200);
      expect(await json(res)).toMatchObject({ id: j2 });
      return;
    }
  });

  it("load: 80 jobs' submit, take and done on 8 shards spread the calls (busiest object's calls per job printed)", async () => {
    const ep = await createEndpoint();
    // Warm the edge's authorization cache (client and worker scope), then count from zero.
    await call("GET", `/v2/${ep}/health`);
    await call("GET", `/v2/${ep}/ping/w0`);
    expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) ids.push(await submit(ep));
    const workers = ["l1", "l2", "l3", "l4"];
    const handed: string[] = [];
    await Promise.all(
      workers.map(async (w) => {
        for (let misses = 0; misses < 3 && handed.length < 80; ) {
          const res = await call("GET", `/v2/${ep}/job-take/${w}?job_in_progress=0`);
          if (res.status !== 200) {
            misses++;
            continue;
          }
          const id = (await json<{ id: string }>(res)).id;
          handed.push(id);
          expect((await done(ep, w, id, { output: 1 })).status).toBe(200);
        }
      }),
    );
    expect(new Set(handed)).toEqual(new Set(ids));
    expect(handed).toHaveLength(80);
    const r = await json<{ objects: Array<{ kind: string; name: string; calls: { total: number; byMethod: Record<string, number> } }> }>(
      await call("GET", `/admin/endpoints/${ep}/load`),
    );
    const index = r.objects.filter((o) => o.kind === "endpoint" || o.kind === "shard");
    expect(index.filter((o) => o.kind === "shard")).toHaveLength(8);
    for (const o of r.objects) console.log(`load ${o.kind} ${o.name}: ${o.calls.total} calls ${JSON.stringify(o.calls.byMethod)}`);
    const busiest = index.reduce((a, b) => (b.calls.total > a.calls.total ? b : a));
    const all = r.objects.reduce((a, b) => (b.calls.total > a.calls.total ? b : a));
    console.log(`busiest index object ${busiest.name}: ${(busiest.calls.total / 80).toFixed(2)} calls per job; busiest of all ${all.kind} ${all.name}: ${(all.calls.total / 80).toFixed(2)}`);
    // Every shard took part, and none carried the whole endpoint's 3 syncs + 1 take per job; the
    // endpoint object indexes none of these jobs (it relays between shards).
    for (const o of index.filter((x) => x.kind === "shard")) expect(o.calls.byMethod.sync ?? 0, o.name).toBeGreaterThan(0);
    expect(index.find((o) => o.kind === "endpoint")?.calls.byMethod.sync ?? 0).toBe(0);
    expect(busiest.calls.total / 80).toBeLessThan(2); // one index object: 3 syncs + 1 take per job at least
  }, 120_000);

  it("shards is a whole number from 1 to 64 (README config table): anything else is a 400 that creates nothing", async () => {
    for (const bad of [0, 65, 1.5, "8", null]) {
      const id = `bad-shards-${Date.now().toString(36)}-${String(bad)}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const res = await call("PUT", `/admin/endpoints/${id}`, { body: { shards: bad } });
      expect(res.status, String(bad)).toBe(400);
      expect(await json(res)).toMatchObject({ error: expect.any(String) });
      expect((await call("GET", `/admin/endpoints/${id}`)).status).toBe(404);
    }
    const ep = await createEndpoint({ shards: 64 });
    expect((await endpointStubOf(ep).getConfig())!.shards).toBe(64);
    expect((await call("GET", `/v2/${ep}/health`)).status).toBe(200);
  });
});
