/**
 * Issue 15, item 3: worker tags. A job requiring tags is handed only to workers that declared
 * all of them; a worker takes untagged jobs and the tagged ones it matches, in take order; an
 * offer never steps over jobs its worker may not take (however many wait, keyed or not); a
 * waiting take that does not match leaves the job for one that does; a tagged job with no live
 * matching worker says so (queue.reason no_matching_workers).
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, json, submit } from "./helpers";
import { submitMany } from "./flow-keys-kit";
import { action, allCreated, batchEndpoint, createBatch } from "./batch-kit";
import { tagKey, tagsMatch } from "../../src/shared/tags";
import { livenessRef } from "../../src/shared/liveness";

/** One take by `worker` declaring `tags` (keeps what it holds): the job id, or null on a 204. */
async function takeTagged(ep: string, worker: string, tags: string | null, path = "job-take"): Promise<string | null> {
  const q = tags === null ? "" : `&tags=${encodeURIComponent(tags)}`;
  const res = await call("GET", `/v2/${ep}/${path}/${worker}?job_in_progress=1${q}`);
  if (res.status === 204) return null;
  if (res.status !== 200) throw new Error(`take by ${worker} (${tags}): ${res.status} ${await res.text()}`);
  return (await json<{ id: string }>(res)).id;
}

/** Takes by `worker` until one is handed a job or `tries` come back empty (a sharded endpoint may need a redirect). */
async function takeWithin(ep: string, worker: string, tags: string | null, tries = 6): Promise<string | null> {
  for (let i = 0; i < tries; i++) {
    const id = await takeTagged(ep, worker, tags);
    if (id !== null) return id;
  }
  return null;
}

async function queueReason(ep: string, id: string): Promise<Record<string, unknown> | undefined> {
  return (await json<{ queue?: Record<string, unknown> }>(await call("GET", `/v2/${ep}/status/${id}`))).queue;
}

describe("tags: the canonical form and matching", () => {
  it("a set is sorted and unique; a worker matches when it has every tag the job needs", () => {
    expect(tagKey(["gpu", "a100", "gpu"])).toBe("a100,gpu");
    expect(tagKey([])).toBe("");
    expect(tagsMatch("", "")).toBe(true);
    expect(tagsMatch("", "gpu")).toBe(true);
    expect(tagsMatch("gpu", "")).toBe(false);
    expect(tagsMatch("a100,gpu", "gpu")).toBe(false);
    expect(tagsMatch("a100,gpu", "a100,gpu,x")).toBe(true);
  });
});

describe("tags: bad input", () => {
  it("submit: a bad tag, too many, or tags on a push endpoint are 400s naming the field", async () => {
    const ep = await createEndpoint({ shards: 1 });
    for (const [tags, word] of [
      [["has space"], "not a valid tag"],
      [[""], "not a valid tag"],
      [["-lead"], "not a valid tag"],
      [["a,b"], "not a valid tag"],
      [Array.from({ length: 9 }, (_, i) => `t${i}`), "<=8"],
      [["x".repeat(65)], "tags"],
      ["gpu", "tags"],
      [["__proto__"], "not a valid tag"],
    ] as const) {
      const res = await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags } });
      expect(res.status, JSON.stringify(tags)).toBe(400);
      expect(await res.text()).toContain(word);
    }
    const batch = await call("POST", `/v2/${ep}/batch`, { body: { requests: [{ input: {} }, { input: {}, tags: ["bad tag"] }] } });
    expect(batch.status).toBe(400);
    expect(await batch.text()).toContain("requests[1].tags");
    const push = await createEndpoint({ mode: "push", workerUrls: ["https://push.example/run"], shards: 1 });
    const refused = await call("POST", `/v2/${push}/run`, { body: { input: {}, tags: ["gpu"] } });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("push");
    // No tags, or an empty list, are no tags.
    expect((await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags: [] } })).status).toBe(200);
  });

  it("take: a bad tag or more than 8 is a 400; a ping with bad tags keeps its heartbeat (200)", async () => {
    const ep = await createEndpoint({ shards: 1 });
    for (const tags of ["a b", "gpu,,-x", Array.from({ length: 9 }, (_, i) => `t${i}`).join(",")]) {
      const res = await call("GET", `/v2/${ep}/job-take/w1?tags=${encodeURIComponent(tags)}`);
      expect(res.status, tags).toBe(400);
      expect(await res.text()).toMatch(/tag/);
    }
    expect((await call("GET", `/v2/${ep}/ping/w1?tags=${encodeURIComponent("bad tag")}`)).status).toBe(200);
    // Empty items and spaces around commas are forgiven: "gpu, a100," declares gpu and a100.
    const id = await submit(ep, { input: {}, tags: ["a100", "gpu"] });
    expect(await takeTagged(ep, "w2", "gpu, a100,")).toBe(id);
  });
});

for (const shards of [1, 8]) {
  describe(`tags: who is handed what (${shards} shard${shards > 1 ? "s" : ""})`, () => {
    it("a tagged job goes only to a worker that declared all its tags", async () => {
      const ep = await createEndpoint({ shards });
      const gpu = await submit(ep, { input: {}, tags: ["gpu"] });
      const both = await submit(ep, { input: {}, tags: ["gpu", "a100"] });
      expect(await takeTagged(ep, "plain", null)).toBeNull();
      expect(await takeTagged(ep, "cpu", "cpu")).toBeNull();
      const byGpu = await takeWithin(ep, "g1", "gpu");
      expect(byGpu).toBe(gpu);
      expect(await takeTagged(ep, "g2", "gpu")).toBeNull();
      expect(await takeWithin(ep, "big", "x,a100,gpu")).toBe(both);
    });

    it("a worker with tags takes untagged jobs too, in take order (priority first) across tag sets", async () => {
      const ep = await createEndpoint({ shards: 1 });
      const tagged = await submit(ep, { input: {}, tags: ["gpu"] });
      const urgent = await submit(ep, { input: {}, priority: 5 });
      const later = await submit(ep, { input: {} });
      expect(await takeTagged(ep, "g", "gpu")).toBe(urgent);
      expect(await takeTagged(ep, "g", "gpu")).toBe(tagged);
      expect(await takeTagged(ep, "g", "gpu")).toBe(later);
      const batch = await call("GET", `/v2/${ep}/job-take-batch/g?batch_size=4&tags=gpu&job_in_progress=1`);
      expect(batch.status).toBe(204);
    });
  });
}

describe("tags: an offer never steps over jobs its worker may not take", () => {
  it("300 GPU jobs ahead of one plain job: a plain worker's first take gets the plain job; a batch take of GPU jobs comes in order", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const gpuJobs = await submitMany(ep, 300, { tags: ["gpu"] });
    const plain = await submit(ep, { input: { plain: true } });
    expect(await takeTagged(ep, "cpu-1", null)).toBe(plain);
    expect(await takeTagged(ep, "cpu-2", "cpu")).toBeNull();
    const res = await call("GET", `/v2/${ep}/job-take-batch/g1?batch_size=5&tags=gpu&job_in_progress=1`);
    const got = (await json<Array<{ id: string }>>(res)).map((j) => j.id);
    expect(got).toEqual(gpuJobs.slice(0, 5));
  }, 60_000);

  it("with flow keys: 30 keys of GPU jobs open before a plain job's key, a plain worker still gets it at once", async () => {
    const ep = await createEndpoint({ shards: 1 });
    for (let k = 0; k < 30; k++) await submitMany(ep, 3, { tags: ["gpu"], concurrencyKey: `gpu-tenant-${k}` });
    const plain = await submit(ep, { input: {}, concurrencyKey: "cpu-tenant" });
    const unkeyedGpu = await submit(ep, { input: {}, tags: ["gpu"] });
    expect(await takeTagged(ep, "cpu-1", null)).toBe(plain);
    expect(await takeTagged(ep, "cpu-2", null)).toBeNull();
    // A GPU worker takes by turns: every key's first job, and the unkeyed one among them.
    const got = new Set<string>();
    for (let i = 0; i < 31; i++) got.add((await takeTagged(ep, `g${i}`, "gpu"))!);
    expect(got.size).toBe(31);
    expect(got.has(unkeyedGpu)).toBe(true);
  }, 60_000);

  it("a plain worker waiting first does not keep a GPU job from a GPU worker waiting behind it", async () => {
    const ep = await createEndpoint({ shards: 1 });
    // Both long-poll (300 ms in tests); the job arrives while they wait.
    const plainTake = call("GET", `/v2/${ep}/job-take/plain?job_in_progress=0`);
    await new Promise((r) => setTimeout(r, 30));
    const gpuTake = call("GET", `/v2/${ep}/job-take/gpu-w?job_in_progress=0&tags=gpu`);
    await new Promise((r) => setTimeout(r, 30));
    const id = await submit(ep, { input: {}, tags: ["gpu"] });
    const [p, g] = await Promise.all([plainTake, gpuTake]);
    expect(p.status).toBe(204);
    expect(g.status).toBe(200);
    expect((await json<{ id: string }>(g)).id).toBe(id);
  });
});

describe("tags: why a tagged job waits", () => {
  it("no_matching_workers while only other workers live; all_workers_busy once a matching one shows (take or ping)", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: {}, tags: ["gpu", "a100"] });
    expect((await queueReason(ep, id))?.reason).toBe("no_workers");
    expect(await takeTagged(ep, "cpu", "cpu")).toBeNull();
    expect(await queueReason(ep, id)).toMatchObject({ reason: "no_matching_workers", tags: ["a100", "gpu"] });
    // A worker with only one of the two does not match either.
    expect((await call("GET", `/v2/${ep}/ping/half?tags=gpu`)).status).toBe(200);
    expect((await queueReason(ep, id))?.reason).toBe("no_matching_workers");
    expect((await call("GET", `/v2/${ep}/ping/full?tags=a100,gpu,nvme`)).status).toBe(200);
    expect((await queueReason(ep, id))?.reason).toBe("all_workers_busy");
  });

  it("on a sharded endpoint too (the liveness shards tell their workers' tag sets)", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: {}, tags: ["tpu"] });
    expect((await call("GET", `/v2/${ep}/ping/plain-1`)).status).toBe(200);
    expect((await queueReason(ep, id))?.reason).toBe("no_matching_workers");
    expect((await call("GET", `/v2/${ep}/ping/tpu-1?tags=tpu`)).status).toBe(200);
    expect((await queueReason(ep, id))?.reason).toBe("all_workers_busy");
  });

  it("the admin worker list shows what each worker declared", async () => {
    const ep = await createEndpoint({ shards: 1 });
    await call("GET", `/v2/${ep}/ping/w-tags?tags=gpu,a100`);
    await call("GET", `/v2/${ep}/ping/w-none`);
    const res = await call("GET", `/admin/endpoints/${ep}/workers`);
    expect(res.status).toBe(200);
    const body = await json<{ workers: Array<{ workerId: string; tags: string[] }> }>(res);
    const byId = Object.fromEntries(body.workers.map((w) => [w.workerId, w.tags]));
    expect(byId["w-tags"]).toEqual(["a100", "gpu"]);
    expect(byId["w-none"]).toEqual([]);
  });

  it("status shows the tags a job requires", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: {}, tags: ["gpu", "a100", "gpu"] });
    const body = await json<{ tags?: string[] }>(await call("GET", `/v2/${ep}/status/${id}`));
    expect(body.tags).toEqual(["a100", "gpu"]);
    const plain = await submit(ep, { input: {} });
    expect((await json<{ tags?: string[] }>(await call("GET", `/v2/${ep}/status/${plain}`))).tags).toBeUndefined();
  });
});

describe("tags: batches and schedules carry them to their jobs", () => {
  it("a batch request's tags, and a schedule's job.tags, are its jobs' (a GPU worker takes them, a plain one does not)", async () => {
    const e = await batchEndpoint({ shards: 1 });
    const batch = await createBatch(e, [{ input: { n: 1 }, tags: ["gpu"] }]);
    expect((await action(e, batch, "finalize")).status).toBe(200);
    const [child] = await allCreated(e, batch, 1);
    const st = await json<{ tags?: string[] }>(await call("GET", `/v2/${e.ep}/status/${child}`, { key: e.client }));
    expect(st.tags).toEqual(["gpu"]);
    expect(await takeTagged(e.ep, "plain", null)).toBeNull();
    expect(await takeTagged(e.ep, "g", "gpu")).toBe(child);

    const put = await call("PUT", `/admin/endpoints/${e.ep}/schedules/gpu-nightly`, { body: { cron: "0 3 * * *", job: { input: {}, tags: ["gpu", "a100"] } } });
    expect(put.status).toBe(200);
    const bad = await call("PUT", `/admin/endpoints/${e.ep}/schedules/bad`, { body: { cron: "0 3 * * *", job: { input: {}, tags: ["no spaces"] } } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("job.tags");
    const fired = await json<{ fire: { jobId: string } }>(await call("POST", `/admin/endpoints/${e.ep}/schedules/gpu-nightly/trigger`));
    const job = await json<{ tags?: string[] }>(await call("GET", `/v2/${e.ep}/status/${fired.fire.jobId}`, { key: e.client }));
    expect(job.tags).toEqual(["a100", "gpu"]);
  });
});

describe("tags: the relay between shards", () => {
  /** Take calls served by the endpoint's objects (endpoint and shards) since the load reset. */
  async function takeCalls(ep: string): Promise<number> {
    const load = await json<{ objects: Array<{ kind: string; calls: { byMethod: Record<string, number> } }> }>(await call("GET", `/admin/endpoints/${ep}/load`));
    return load.objects.filter((o) => o.kind === "endpoint" || o.kind === "shard").reduce((n, o) => n + (o.calls.byMethod.take ?? 0), 0);
  }

  it("jobs no live worker matches send no waiting worker to their shard in vain (take calls counted); a matching worker is sent there", async () => {
    const ep = await createEndpoint({ shards: 4 });
    for (let i = 0; i < 8; i++) await submit(ep, { input: { i }, tags: ["tpu"] });
    expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(200);
    // 12 polls by plain workers (300 ms each in tests), 3 at a time.
    for (let round = 0; round < 4; round++) {
      const polls = await Promise.all([0, 1, 2].map((k) => takeTagged(ep, `plain-${round}-${k}`, null)));
      expect(polls).toEqual([null, null, null]);
    }
    const calls = await takeCalls(ep);
    console.log(`12 plain polls beside 8 TPU jobs on 4 shards: ${calls} take calls`);
    // Each poll: its probe (if its isolate saw a deep shard) and its home wait; no redirects.
    expect(calls).toBeLessThanOrEqual(24);
    // A TPU worker waiting on another shard is sent to them.
    const got = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const id = await takeWithin(ep, `tpu-${i}`, "tpu");
      expect(id, `TPU take ${i}`).not.toBeNull();
      got.add(id!);
    }
    expect(got.size).toBe(8);
  });
});

describe("tags: no starvation across shards (found from outside)", () => {
  for (const [others, mine, worker] of [[["gpu"], [], null], [["cpu"], ["gpu"], "gpu"]] as const) {
    it(`20 jobs needing ${others.join("+")} no worker takes, then 3 ${mine.length ? mine.join("+") : "plain"} ones: a ${worker ?? "plain"} worker polling gets all 3 without empty polls`, async () => {
      const ep = await createEndpoint(); // 8 shards
      await submitMany(ep, 20, { tags: others });
      const wanted = await submitMany(ep, 3, mine.length ? { tags: mine } : {});
      const got: string[] = [];
      let empty = 0;
      for (let i = 0; i < 12 && got.length < 3; i++) {
        const id = await takeTagged(ep, "w1", worker);
        if (id === null) empty++;
        else got.push(id);
      }
      console.log(`3 jobs for a ${worker ?? "plain"} worker beside 20 it may not take, 8 shards: ${empty} empty poll(s) before all 3 were taken`);
      expect(got.sort()).toEqual([...wanted].sort());
      expect(empty).toBeLessThanOrEqual(1);
    });
  }
});

describe("tags: more found from outside", () => {
  it("an idempotency key repeated with the same tags in another order, repeated, or [] for none, is the same job", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const first = await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags: ["a100", "gpu"], idempotencyKey: "k1" } });
    const id = (await json<{ id: string }>(first)).id;
    for (const tags of [["gpu", "a100"], ["gpu", "gpu", "a100"]]) {
      const again = await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags, idempotencyKey: "k1" } });
      expect(again.status, JSON.stringify(tags)).toBe(200);
      expect((await json<{ id: string }>(again)).id).toBe(id);
    }
    const none = (await json<{ id: string }>(await call("POST", `/v2/${ep}/run`, { body: { input: {}, idempotencyKey: "k2" } }))).id;
    const empty = await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags: [], idempotencyKey: "k2" } });
    expect(empty.status).toBe(200);
    expect((await json<{ id: string }>(empty)).id).toBe(none);
    // Different tags are a different body.
    expect((await call("POST", `/v2/${ep}/run`, { body: { input: {}, tags: ["gpu"], idempotencyKey: "k1" } })).status).toBe(422);
  });

  it("tags given twice in a take URL count both; repeats count once", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: {}, tags: ["a", "b"] });
    expect(await takeTagged(ep, "w-a", "a")).toBeNull();
    const res = await call("GET", `/v2/${ep}/job-take/w-ab?tags=a&tags=b&job_in_progress=0`);
    expect(res.status).toBe(200);
    expect((await json<{ id: string }>(res)).id).toBe(id);
    const repeats = await call("GET", `/v2/${ep}/job-take/w-r?tags=${Array(9).fill("a").join(",")}&job_in_progress=0`);
    expect(repeats.status).toBe(204);
  });

  it("job-done?next=1 with bad tags keeps the result (the next take goes without tags)", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: {} });
    expect(await takeTagged(ep, "w1", null)).toBe(id);
    const res = await call("POST", `/v2/${ep}/job-done/w1/${id}?next=1&tags=${encodeURIComponent("bad tag")}`, { body: { output: 1 } });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ next: null });
    expect((await json<{ status: string }>(await call("GET", `/v2/${ep}/status/${id}`))).status).toBe("COMPLETED");
  });

  it("a take without tags declares none: tags only on the ping do not hide no_matching_workers", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submit(ep, { input: {}, tags: ["gpu"] });
    await call("GET", `/v2/${ep}/ping/qg?tags=gpu`);
    expect((await queueReason(ep, id))?.reason).toBe("all_workers_busy");
    expect(await takeTagged(ep, "qg", null)).toBeNull();
    expect((await queueReason(ep, id))?.reason).toBe("no_matching_workers");
    const list = await json<{ workers: Array<{ workerId: string; tags: string[] }> }>(await call("GET", `/admin/endpoints/${ep}/workers`));
    expect(list.workers.find((w) => w.workerId === "qg")?.tags).toEqual([]);
  });

  it("past 64 tag sets on one liveness shard, a set it did not name is not said to have no matching worker", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const config = (await json<{ generation: string }>(await call("GET", `/admin/endpoints/${ep}`))).generation;
    const target = livenessRef(ep, config, "probe-0").shard;
    const ids: string[] = [];
    for (let i = 0; ids.length < 70; i++) if (livenessRef(ep, config, `probe-${i}`).shard === target) ids.push(`probe-${i}`);
    for (const [i, w] of ids.entries()) expect((await call("GET", `/v2/${ep}/ping/${w}?tags=set${i}`)).status).toBe(200);
    const first = await submit(ep, { input: {}, tags: ["set0"] });
    expect((await queueReason(ep, first))?.reason).toBe("all_workers_busy");
    const nobody = await submit(ep, { input: {}, tags: ["set999"] });
    // Some of the shard's sets were not named: it may be any of them.
    expect((await queueReason(ep, nobody))?.reason).toBe("all_workers_busy");
  });
});
