/**
 * An outsider's attack on worker liveness in LivenessObjects (issue 12, item 4): two workers on
 * one job, ids of the same shard, tells and pings out of order, prototype names as worker ids,
 * huge ping lists, frozen clocks, the per-shard registry cap. Tests named `defect:` failed before
 * their fix; the others record what held.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LivenessObject } from "../../src/endpoints/liveness-object";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { LIVENESS, PING_LIST_GRACE_MS, WORKER_BOUNDS } from "../../src/shared/limits";
import { livenessShard } from "../../src/shared/liveness";
import { call, createEndpoint, done, freezeEndpoint, freezeJob, jobStubOf, json, livenessRefOf, livenessStubAt, submit, takeId } from "./helpers";

const jobState = (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);

async function jobAlarmAt(id: string, at: number): Promise<void> {
  await freezeJob(id, at);
  await runInDurableObject(jobStubOf(id), (i: JobObject) => i.alarm());
}

/** `n` worker ids other than `like` that hash to its liveness shard. */
function sameShardIds(like: string, n: number): string[] {
  const shard = livenessShard(like);
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (livenessShard(`x${i}`) === shard) out.push(`x${i}`);
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe("outsider: worker liveness", () => {
  it("defect: a stop for an attempt a worker no longer runs is not delivered once it runs a newer attempt of the same job", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    // The worker restarts and asks for work saying it runs nothing: attempt 1 is lost, and a stop
    // for it is queued on w1 (w1 never polls job-stop in between, like a pre-1.10 SDK).
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`)).status).toBe(204);
    expect((await jobState(id)).state).toBe("IN_QUEUE");
    // Past the avoidance grace, the only worker gets the job again: attempt 2.
    await freezeEndpoint(ep, Date.now() + 31_000);
    expect(await takeId(ep, "w1")).toBe(id);
    await freezeEndpoint(ep, null);
    expect((await jobState(id)).attempt).toBe(2);
    // job-stop names jobs, not attempts: delivering attempt 1's stop now would stop attempt 2.
    expect((await call("GET", `/v2/${ep}/job-stop/w1`)).status).toBe(204);
    expect((await done(ep, "w1", id, { output: "ok" })).status).toBe(200);
    expect(await json(await call("GET", `/v2/${ep}/status/${id}`))).toMatchObject({ status: "COMPLETED" });
  });

  it("defect: a late, retried release tell of attempt 1 queues no stop for the worker that now runs attempt 2", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/ping/w9`);
    const ref = await livenessRefOf(ep, "w9");
    const stops = await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject, s) => {
      const base = { jobId: "j1", workerId: "w9", failure: null };
      await i.hold(ref, [{ ...base, version: 2, attempt: 1, state: "IN_PROGRESS", stop: false }]);
      await i.hold(ref, [{ ...base, version: 5, attempt: 2, state: "IN_PROGRESS", stop: false }]);
      // The release of attempt 1 (version 3, with its stop) arrives last, retried by the alarm.
      await i.hold(ref, [{ ...base, version: 3, attempt: 1, state: "RELEASED", stop: true, failure: "lease_lost" }]);
      return s.storage.sql.exec("SELECT COUNT(*) AS n FROM stop_signal WHERE delivered_at IS NULL").one().n;
    });
    expect(stops).toBe(0);
    expect((await call("GET", `/v2/${ep}/job-stop/w9`)).status).toBe(204);
  });

  it("a stop is still delivered exactly once per attempt taken away (cancel mid-flight)", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200);
    expect(await json(await call("GET", `/v2/${ep}/job-stop/w1`))).toEqual({ jobsToStop: [id] });
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200); // a repeated cancel
    expect((await call("GET", `/v2/${ep}/job-stop/w1`)).status).toBe(204);
    // The worker stops and its ping no longer lists the job: CANCELLED.
    expect((await call("GET", `/v2/${ep}/ping/w1?job_id=&runpod_version=1.10`)).status).toBe(200);
    expect(await json(await call("GET", `/v2/${ep}/status/${id}`))).toMatchObject({ status: "CANCELLED" });
  });

  it("defect: a worker holding a job is not evicted by new ids of its shard (its lease survives the registry cap)", async () => {
    const ep = await createEndpoint({ heartbeatTimeout: 45_000 });
    const id = await submit(ep);
    const t0 = Date.now();
    await freezeEndpoint(ep, t0);
    await freezeJob(id, t0);
    expect(await takeId(ep, "w1")).toBe(id);
    const ref = await livenessRefOf(ep, "w1");
    const shardRows = Math.ceil(WORKER_BOUNDS.registryRows / LIVENESS.shards);
    const others = sameShardIds("w1", shardRows);
    await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject) => {
      i.clock.freeze(t0 + 10_000);
      await i.ping(ref, 45_000, "w1", { jobIds: [id], sdkVersion: "1.10", unhealthy: null });
      // Anyone with the worker key can name new workers; these all land in w1's shard.
      i.clock.freeze(t0 + 11_000);
      for (const w of others) await i.ping(ref, 45_000, w, { jobIds: null, sdkVersion: null, unhealthy: null });
    });
    const n = await runInDurableObject(livenessStubAt(ref), (_i: LivenessObject, s) => s.storage.sql.exec("SELECT COUNT(*) AS n FROM worker").one().n);
    expect(n).toBeLessThanOrEqual(shardRows + 1);
    // The lease check at claim + 45 s: w1 pinged at +10 s, so it keeps its lease.
    await runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => i.clock.freeze(t0 + 45_000));
    await jobAlarmAt(id, t0 + 45_000);
    expect((await jobState(id)).state).toBe("IN_PROGRESS");
    await freezeEndpoint(ep, null);
  });

  it("two workers on one job: the second claim and the loser's reports and pings change nothing", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    const [a, b] = await Promise.all([takeId(ep, "wa"), takeId(ep, "wb")]);
    expect([a, b].filter((x) => x === id)).toHaveLength(1);
    const winner = a === id ? "wa" : "wb";
    const loser = a === id ? "wb" : "wa";
    expect((await done(ep, loser, id, { output: "theirs" })).status).toBe(409);
    expect((await call("GET", `/v2/${ep}/ping/${loser}?job_id=${id}`)).status).toBe(200);
    expect((await call("GET", `/v2/${ep}/job-take/${loser}?job_in_progress=0`)).status).toBe(204);
    expect((await jobState(id)).workerId).toBe(winner);
    expect((await done(ep, winner, id, { output: "mine" })).status).toBe(200);
    expect(await json(await call("GET", `/v2/${ep}/status/${id}`))).toMatchObject({ status: "COMPLETED", output: "mine" });
  });

  it("a ping that does not list a job claimed a moment ago does not lose it (grace), nor does one sent before the claim tell", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await call("GET", `/v2/${ep}/ping/w1?job_id=&runpod_version=1.10`)).status).toBe(200);
    expect((await jobState(id)).state).toBe("IN_PROGRESS");
    // Once the attempt is older than the grace, the same ping does release it.
    const ref = await livenessRefOf(ep, "w1");
    const later = Date.now() + PING_LIST_GRACE_MS + 1000;
    await runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => i.clock.freeze(later));
    await freezeJob(id, later);
    expect((await call("GET", `/v2/${ep}/ping/w1?job_id=&runpod_version=1.10`)).status).toBe(200);
    expect((await jobState(id)).state).toBe("IN_QUEUE");
  });

  it("prototype names as worker ids are ordinary workers (`__proto__` is refused by the id pattern)", async () => {
    const ep = await createEndpoint();
    const refused = await call("GET", `/v2/${ep}/ping/__proto__`);
    expect(refused.status).toBe(400);
    expect(await json(refused)).toMatchObject({ error: expect.stringContaining("not a valid worker id") });
    const names = ["constructor", "toString", "hasOwnProperty", "valueOf", "proto__"];
    for (const _ of names) await submit(ep);
    for (const w of names) {
      const jid = await takeId(ep, w);
      expect(jid).not.toBeNull();
      expect((await call("GET", `/v2/${ep}/ping/${w}?job_id=${jid}`)).status).toBe(200);
      expect((await call("GET", `/v2/${ep}/job-stop/${w}`)).status).toBe(204);
      expect((await done(ep, w, jid!, { output: w })).status).toBe(200);
    }
    const res = await call("GET", `/admin/endpoints/${ep}/workers`);
    expect(res.status).toBe(200);
    const body = await json<{ workers: Array<{ workerId: string; jobsTaken: number }> }>(res);
    expect(body.workers.map((w) => w.workerId).sort()).toEqual([...names].sort());
    for (const w of body.workers) expect(w.jobsTaken).toBe(1);
    expect((await call("GET", `/v2/${ep}/health`)).status).toBe(200);
  });

  it("a ping with a huge job_id list is answered (no 5xx) and keeps the listed job", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    const list = [id, ...Array.from({ length: 2000 }, (_, i) => `junk-${i}`)].join(",");
    const res = await call("GET", `/v2/${ep}/ping/w1?job_id=${list}`);
    expect(res.status).toBeLessThan(500);
    expect((await jobState(id)).state).toBe("IN_PROGRESS");
  });

  it("an endpoint deleted and re-created under the same name: old workers' polls and pings do not touch the new one's jobs", async () => {
    const ep = await createEndpoint();
    const old = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(old);
    const stop = call("GET", `/v2/${ep}/job-stop/w1`);
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    expect([200, 204, 404]).toContain((await stop).status);
    await createEndpoint({}, ep);
    const fresh = await submit(ep);
    // w1 still runs the old job and says so; a take saying it runs nothing must not lose the new job.
    expect((await call("GET", `/v2/${ep}/ping/w1?job_id=${old}`)).status).toBe(200);
    expect(await takeId(ep, "w1")).toBe(fresh);
    expect((await call("GET", `/v2/${ep}/ping/w1?job_id=${fresh}`)).status).toBe(200);
    expect((await jobState(fresh)).state).toBe("IN_PROGRESS");
    expect((await done(ep, "w1", fresh, { output: 1 })).status).toBe(200);
  });

  it("a job_in_progress=0 take never loses the job it claims itself (immediate offer, or one arriving mid-poll)", async () => {
    for (let i = 0; i < 4; i++) {
      const ep = await createEndpoint();
      const id = await submit(ep);
      const res = await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`);
      expect(await json(res)).toMatchObject({ id });
      expect((await jobState(id)).state).toBe("IN_PROGRESS");
      // Mid-poll: the take waits, the job arrives, the same take claims it.
      const polling = call("GET", `/v2/${ep}/job-take/w2?job_in_progress=0`);
      const late = await submit(ep);
      const got = await polling;
      expect(await json(got)).toMatchObject({ id: late });
      expect((await jobState(late)).state).toBe("IN_PROGRESS");
      expect((await done(ep, "w1", id, { output: i })).status).toBe(200);
    }
  });
});
