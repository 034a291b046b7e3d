/**
 * Issue 15, item 3: blocklists. A worker that failed `blocklistThreshold` attempts of one job
 * (errors it reported, leases it lost) is never handed that job again, even after the 30 s a
 * failed job waits for other workers; the job shows it (`blocklisted`) and its history says so.
 * When every live worker that may take the job (its tags counted) is blocklisted from it, the
 * job fails (reason "blocklisted"); while another may take it, it waits.
 */
import { afterEach, describe, expect, it } from "vitest";
import { call, createEndpoint, done, freezeEndpoint, json, submit, takeId } from "./helpers";
import { livenessRef } from "../../src/shared/liveness";

afterEach(async () => {
  for (const ep of frozen.splice(0)) await freezeEndpoint(ep, null);
});
const frozen: string[] = [];

/** Moves the endpoint's clocks (index, liveness) `ms` past the wall clock: the avoid grace passes. */
async function later(ep: string, ms: number): Promise<void> {
  frozen.push(ep);
  await freezeEndpoint(ep, Date.now() + ms);
}

async function statusOf(ep: string, id: string): Promise<Record<string, unknown>> {
  return json(await call("GET", `/v2/${ep}/status/${id}`));
}

/** `worker` takes the job (it must be handed `id`) and reports an error. */
async function takeAndFail(ep: string, worker: string, id: string, tags = ""): Promise<void> {
  const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=0${tags ? `&tags=${tags}` : ""}`);
  expect(res.status, `${worker} takes ${id}`).toBe(200);
  expect((await json<{ id: string }>(res)).id).toBe(id);
  expect((await done(ep, worker, id, { error: "boom" })).status).toBe(200);
}

const config = { shards: 1, maxAttempts: 6, retryOnError: true, blocklistThreshold: 2 };

describe("blocklists", () => {
  it("a worker that failed the job twice (threshold 2) never gets it again; another live worker does", async () => {
    const ep = await createEndpoint(config);
    expect((await call("GET", `/v2/${ep}/ping/w2`)).status).toBe(200); // w2 lives: the job waits for it
    const id = await submit(ep, { input: {} });
    await takeAndFail(ep, "w1", id);
    expect((await statusOf(ep, id)).blocklisted).toBeUndefined();
    await later(ep, 31_000); // past the 30 s a failed job waits for others
    await call("GET", `/v2/${ep}/ping/w2`);
    await takeAndFail(ep, "w1", id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "IN_QUEUE", attempt: 2, blocklisted: [{ workerId: "w1", failures: 2 }] });
    const history = await json<{ history: Array<{ command: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`));
    expect(history.history.at(-1)!.detail).toContain("w1 is blocklisted from this job (2 failed attempts)");
    await later(ep, 5 * 60_000); // long past any grace
    await call("GET", `/v2/${ep}/ping/w2`);
    expect(await takeId(ep, "w1")).toBeNull();
    expect(await takeId(ep, "w2")).toBe(id);
  });

  it("every live worker that may take it blocklisted: the job fails (reason blocklisted), naming them", async () => {
    const ep = await createEndpoint(config);
    const id = await submit(ep, { input: {} });
    await takeAndFail(ep, "w1", id);
    await later(ep, 31_000);
    await takeAndFail(ep, "w1", id);
    await expect.poll(async () => (await statusOf(ep, id)).status, { timeout: 5_000 }).toBe("FAILED");
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ reason: "blocklisted", attempt: 2, blocklisted: [{ workerId: "w1", failures: 2 }] });
    expect(String(s.error)).toBe("every live worker that may take this job is blocklisted from it (blocklisted: w1 (2 failed attempts)); its last error: boom");
  });

  it("only workers that may take it count: a live worker without the job's tags does not keep it waiting", async () => {
    const ep = await createEndpoint(config);
    await call("GET", `/v2/${ep}/ping/plain`); // alive, but has no "gpu"
    const id = await submit(ep, { input: {}, tags: ["gpu"] });
    await takeAndFail(ep, "g1", id, "gpu");
    await later(ep, 31_000);
    await call("GET", `/v2/${ep}/ping/plain`);
    await takeAndFail(ep, "g1", id, "gpu");
    await expect.poll(async () => (await statusOf(ep, id)).reason, { timeout: 5_000 }).toBe("blocklisted");
    // With a second GPU worker alive, the same story leaves the job waiting for it.
    const ep2 = await createEndpoint(config);
    await call("GET", `/v2/${ep2}/ping/g2?tags=gpu`);
    const id2 = await submit(ep2, { input: {}, tags: ["gpu"] });
    await takeAndFail(ep2, "g1", id2, "gpu");
    await later(ep2, 31_000);
    await call("GET", `/v2/${ep2}/ping/g2?tags=gpu`);
    await takeAndFail(ep2, "g1", id2, "gpu");
    expect(await statusOf(ep2, id2)).toMatchObject({ status: "IN_QUEUE", blocklisted: [{ workerId: "g1", failures: 2 }] });
  });

  it("the threshold is an endpoint setting, 1-20 (default 3: with 3 attempts a job fails by its attempts first)", async () => {
    for (const bad of [0, 21, 2.5, "3"]) {
      const res = await call("PUT", `/admin/endpoints/bl-bad-${String(bad).replace(".", "-")}`, { body: { blocklistThreshold: bad } });
      expect(res.status, String(bad)).toBe(400);
    }
    const ep = await createEndpoint({ shards: 1 });
    const cfg = await json<{ blocklistThreshold: number }>(await call("GET", `/admin/endpoints/${ep}`));
    expect(cfg.blocklistThreshold).toBe(3);
  });
});

describe("blocklists and a user's retry", () => {
  it("a job FAILED because every live worker was blocklisted runs again on /retry (the blocklist starts clean)", async () => {
    const ep = await createEndpoint(config);
    const id = await submit(ep, { input: {} });
    await takeAndFail(ep, "w1", id);
    await later(ep, 31_000);
    await takeAndFail(ep, "w1", id);
    await expect.poll(async () => (await statusOf(ep, id)).reason, { timeout: 5_000 }).toBe("blocklisted");
    expect((await call("POST", `/v2/${ep}/retry/${id}`)).status).toBe(200);
    const s = await statusOf(ep, id);
    expect(s.status).toBe("IN_QUEUE");
    expect(s.blocklisted).toBeUndefined();
    expect(await takeId(ep, "w1")).toBe(id);
  });
});

describe("blocklists and new workers (found by the end-to-end test)", () => {
  it("a worker seen for the first time moments before counts as live: the job waits for it (confirmed with the worker shards, whose summary lags)", async () => {
    const ep = await createEndpoint(config);
    const gen = (await json<{ generation: string }>(await call("GET", `/admin/endpoints/${ep}`))).generation;
    // A newcomer on the same liveness shard as w1, whose summary was told moments ago.
    const shard = livenessRef(ep, gen, "w1").shard;
    let newcomer = "";
    for (let i = 0; newcomer === ""; i++) if (livenessRef(ep, gen, `new-${i}`).shard === shard) newcomer = `new-${i}`;
    const id = await submit(ep, { input: {} });
    await takeAndFail(ep, "w1", id);
    await later(ep, 31_000);
    await call("GET", `/v2/${ep}/ping/w1`);
    await call("GET", `/v2/${ep}/ping/${newcomer}`);
    await takeAndFail(ep, "w1", id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", blocklisted: [{ workerId: "w1", failures: 2 }] });
    expect(await takeId(ep, newcomer)).toBe(id);
  });
});

describe("blocklists on a sharded endpoint", () => {
  it("the shard itself asks the worker shards before it fails the job (8 shards)", async () => {
    const ep = await createEndpoint({ ...config, shards: 8 });
    const id = await submit(ep, { input: {} });
    await takeAndFail(ep, "w1", id);
    await later(ep, 31_000);
    await takeAndFail(ep, "w1", id);
    await expect.poll(async () => (await statusOf(ep, id)).reason, { timeout: 5_000 }).toBe("blocklisted");
  });
});
