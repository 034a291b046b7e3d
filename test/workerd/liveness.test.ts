/**
 * Issue 12, item 4: worker liveness lives in liveness objects (one per endpoint generation and
 * worker shard), which jobs tell directly. Pings, stop polls and lease checks never reach the
 * endpoint object; tells are ordered by the job's version; a deletion ends the shards' polls.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EndpointObject } from "../../src/endpoints/endpoint-object";
import { LivenessObject } from "../../src/endpoints/liveness-object";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { PING_LIST_GRACE_MS } from "../../src/shared/limits";
import type { HoldTell } from "../../src/shared/liveness";
import { newTakeId, takeStartOf } from "../../src/shared/take-ids";
import { call, createEndpoint, done, endpointStubOf, freezeEndpoint, freezeJob, jobStubOf, json, livenessRefOf, livenessStubAt, submit, takeId } from "./helpers";

/** Counts the endpoint object's method calls from now on (authorize aside: auth caching is not liveness). */
function countEndpointCalls(): () => Record<string, number> {
  const proto = EndpointObject.prototype as unknown as Record<string, unknown>;
  const names = Object.getOwnPropertyNames(proto).filter((n) => n !== "constructor" && n !== "authorize" && typeof proto[n] === "function");
  const spies = names.map((n) => [n, vi.spyOn(proto as Record<string, () => unknown>, n)] as const);
  return () => Object.fromEntries(spies.map(([n, s]) => [n, s.mock.calls.length]).filter(([, c]) => (c as number) > 0));
}

const jobState = (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, s) => loadJob(s.storage.sql)!.job);

/** Runs the job's alarm as if at `at` (its clock frozen there). */
async function jobAlarmAt(id: string, at: number): Promise<void> {
  await freezeJob(id, at);
  await runInDurableObject(jobStubOf(id), (i: JobObject) => i.alarm());
}

afterEach(() => vi.restoreAllMocks());

describe("issue 12: worker liveness off the endpoint object", () => {
  it("a take saying it runs nothing keeps the jobs claimed by the worker's takes that started no earlier (found by CI: an SDK worker's second take loop was handed a job before its first loop's job_in_progress=0 was read)", async () => {
    const ep = await createEndpoint();
    const before = Date.now();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    const after = Date.now();
    const ref = await livenessRefOf(ep, "w1");
    const liveness = livenessStubAt(ref);
    // The claiming take's id reached the liveness object, carrying when that take reached the edge.
    const claimedBy = await runInDurableObject(liveness, (_i: LivenessObject, s) => s.storage.sql.exec<{ take_id: string }>("SELECT take_id FROM held WHERE job_id = ?", id).one().take_id);
    const start = takeStartOf(claimedBy)!;
    expect(start).toBeGreaterThanOrEqual(before);
    expect(start).toBeLessThanOrEqual(after);
    const pollUntil = Date.now() + 1_000;
    // A take that started before the claiming one, or in the same ms, says nothing of that job.
    expect(await liveness.taking(ref, 45_000, { workerId: "w1", jobInProgress: false, pollUntil, takeId: newTakeId(start - 1), tags: null })).toEqual([]);
    expect(await liveness.taking(ref, 45_000, { workerId: "w1", jobInProgress: false, pollUntil, takeId: newTakeId(start), tags: null })).toEqual([]);
    expect(await json(await call("GET", `/v2/${ep}/status/${id}`))).toMatchObject({ status: "IN_PROGRESS", workerId: "w1" });
    // One that started later, saying the same, shows it lost (the worker restarted); so does an id without a time.
    expect(await liveness.taking(ref, 45_000, { workerId: "w1", jobInProgress: false, pollUntil, takeId: newTakeId(start + 1), tags: null })).toEqual([id]);
    expect(await liveness.taking(ref, 45_000, { workerId: "w1", jobInProgress: false, pollUntil, takeId: crypto.randomUUID(), tags: null })).toEqual([id]);
    // A real one releases it (the job goes back to the queue; w1 lost it, so others get it first).
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`)).status).toBe(204);
    expect(await json(await call("GET", `/v2/${ep}/status/${id}`))).toMatchObject({ status: "IN_QUEUE" });
    // Take ids read back exactly; anything else has no time.
    expect(takeStartOf(newTakeId(1_764_583_200_123))).toBe(1_764_583_200_123);
    for (const bad of ["", "x", "zz.not-a-uuid", `${crypto.randomUUID()}`, `-1.${crypto.randomUUID()}`]) expect(takeStartOf(bad), bad).toBeNull();
  });

  it("pings keep a lease alive and the lease check asks the liveness shard: no endpoint call on either path", async () => {
    const ep = await createEndpoint({ heartbeatTimeout: 20_000 });
    const id = await submit(ep);
    const t0 = Date.now();
    await freezeEndpoint(ep, t0);
    await freezeJob(id, t0);
    expect(await takeId(ep, "w1")).toBe(id);
    await call("GET", `/v2/${ep}/ping/w1?job_id=${id}`); // warms the auth cache; the shard told the endpoint at the take
    const ref = await livenessRefOf(ep, "w1");
    const freezeShard = (at: number) => runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => i.clock.freeze(at));
    const calls = countEndpointCalls();
    for (let s = 1; s <= 9; s++) {
      await freezeShard(t0 + s * 1000);
      expect((await call("GET", `/v2/${ep}/ping/w1?job_id=${id}&runpod_version=1.0`)).status).toBe(200);
    }
    // The lease check is due at claim + 20 s; the last ping (t0 + 9 s) keeps it.
    await freezeShard(t0 + 21_000);
    await jobAlarmAt(id, t0 + 21_000);
    const job = await jobState(id);
    expect(job.state).toBe("IN_PROGRESS");
    expect(job.leaseCheckAt).toBe(t0 + 9_000 + 20_000);
    expect(calls()).toEqual({});
    const served = await runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => i.load()!.calls.byMethod);
    expect(served).toMatchObject({ lastSeen: 1 });
    expect(served.ping).toBeGreaterThanOrEqual(10);
    // Silent past the heartbeat timeout: the lease is lost, still without the endpoint's help for liveness.
    await freezeEndpoint(ep, t0 + 30_000);
    await jobAlarmAt(id, t0 + 30_000);
    expect((await jobState(id)).state).toBe("IN_QUEUE");
    await freezeEndpoint(ep, null);
  });

  it("a second stop of the same job on the same worker is kept and delivered by the liveness shard", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    // Attempt 1 is cancelled (a stop), ends when its result comes in, and the job is requeued;
    // attempt 2 on the same worker is cancelled too: a second stop, for the later attempt.
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200);
    expect((await done(ep, "w1", id, { output: 1 })).status).toBe(200);
    expect(await json(await call("POST", `/v2/${ep}/requeue/${id}`))).toMatchObject({ status: "IN_QUEUE" });
    expect(await takeId(ep, "w1")).toBe(id);
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200);
    const ref = await livenessRefOf(ep, "w1");
    const rows = await runInDurableObject(livenessStubAt(ref), (_i: LivenessObject, s) =>
      s.storage.sql.exec<{ attempt: number }>("SELECT attempt FROM stop_signal WHERE job_id = ? ORDER BY attempt", id).toArray().map((r) => r.attempt),
    );
    expect(rows).toEqual([1, 2]);
    const endpointRows = await runInDurableObject(endpointStubOf(ep), (_i: EndpointObject, s) => s.storage.sql.exec("SELECT COUNT(*) AS n FROM stop_signal").one().n);
    expect(endpointRows).toBe(0);
    const res = await call("GET", `/v2/${ep}/job-stop/w1`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ jobsToStop: [id] });
  });

  it("a stale tell (an older version of the job) undoes nothing newer; a stop it carries is still kept", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/ping/w9`);
    const ref = await livenessRefOf(ep, "w9");
    const tell = (version: number, state: HoldTell["state"], stop = false): HoldTell => ({ jobId: "j1", workerId: "w9", version, attempt: 1, state, stop, failure: null });
    const held = await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject, s) => {
      const now = Date.now();
      i.clock.freeze(now);
      await i.hold(ref, [tell(2, "IN_PROGRESS")]);
      await i.hold(ref, [tell(4, "RELEASED", true)]);
      await i.hold(ref, [tell(3, "CANCELLING")]); // late, older: must not bring the job back
      await i.hold(ref, [tell(2, "IN_PROGRESS")]); // a retried claim tell: same
      i.clock.freeze(now + PING_LIST_GRACE_MS + 1);
      const reply = await i.ping(ref, 45_000, "w9", { jobIds: [], sdkVersion: null, unhealthy: null });
      i.clock.thaw();
      const rows = s.storage.sql.exec("SELECT version, state FROM held").toArray();
      const stops = s.storage.sql.exec("SELECT COUNT(*) AS n FROM stop_signal").one().n;
      return { reply, rows, stops };
    });
    expect(held.rows).toEqual([{ version: 4, state: "RELEASED" }]);
    expect(held.reply).toEqual({ quiet: [], unlisted: [] });
    expect(held.stops).toBe(1);
  });

  it("quiet and unlisted jobs come from the shard's held table as they came from the index", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/ping/w7`);
    const ref = await livenessRefOf(ep, "w7");
    const t = (jobId: string, version: number, state: HoldTell["state"], stop = false): HoldTell => ({ jobId, workerId: "w7", version, attempt: 1, state, stop, failure: null });
    const out = await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject) => {
      const t0 = Date.now();
      i.clock.freeze(t0);
      // old: running since t0; listed: running and listed; told/untold: cancelling, stop delivered or not.
      await i.hold(ref, [t("old", 2, "IN_PROGRESS"), t("listed", 2, "IN_PROGRESS"), t("told", 2, "IN_PROGRESS"), t("untold", 2, "IN_PROGRESS")]);
      await i.hold(ref, [t("told", 3, "CANCELLING", true)]);
      await i.takeStops(ref, 45_000, "w7", 0); // delivers the stop of "told"
      await i.hold(ref, [t("untold", 3, "CANCELLING")]);
      i.clock.freeze(t0 + PING_LIST_GRACE_MS - 1);
      await i.hold(ref, [t("young", 2, "IN_PROGRESS")]);
      const early = await i.ping(ref, 45_000, "w7", { jobIds: ["listed"], sdkVersion: null, unhealthy: null });
      i.clock.freeze(t0 + PING_LIST_GRACE_MS);
      const late = await i.ping(ref, 45_000, "w7", { jobIds: ["listed"], sdkVersion: null, unhealthy: null });
      const silent = await i.ping(ref, 45_000, "w7", { jobIds: null, sdkVersion: null, unhealthy: null });
      i.clock.thaw();
      return { early, late, silent };
    });
    const quiet = [
      { jobId: "told", told: true },
      { jobId: "untold", told: false },
    ];
    expect(out.early).toEqual({ quiet, unlisted: [] });
    expect({ ...out.late, unlisted: [...out.late.unlisted].sort() }).toEqual({ quiet, unlisted: ["old"] });
    expect(out.silent).toEqual({ quiet: [], unlisted: [] });
  });

  it("deleting the endpoint ends its workers' job-stop polls at once and drops their shards", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/ping/w1`);
    const ref = await livenessRefOf(ep, "w1");
    const started = Date.now();
    const poll = runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => i.takeStops(ref, 45_000, "w1", 20_000));
    await new Promise((r) => setTimeout(r, 50));
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    expect(await poll).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
    const after = await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject, s) => ({
      rows: s.storage.sql.exec("SELECT COUNT(*) AS n FROM worker").one().n,
      ping: await i.ping(ref, 45_000, "w1", { jobIds: null, sdkVersion: null, unhealthy: null }),
      rowsAfterPing: s.storage.sql.exec("SELECT COUNT(*) AS n FROM worker").one().n,
    }));
    expect(after).toEqual({ rows: 0, ping: { quiet: [], unlisted: [] }, rowsAfterPing: 0 });
  });

  it("a tell the shard did not get is sent again by the job's alarm", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect(await takeId(ep, "w1")).toBe(id);
    const hold = vi.spyOn(LivenessObject.prototype, "hold").mockRejectedValueOnce(new Error("shard unreachable"));
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(200);
    expect(hold).toHaveBeenCalledTimes(1);
    expect((await call("GET", `/v2/${ep}/job-stop/w1`)).status).toBe(204);
    const pending = await runInDurableObject(jobStubOf(id), (_i: JobObject, s) => s.storage.sql.exec("SELECT index_due_at FROM job").one().index_due_at as number | null);
    expect(pending).not.toBeNull();
    await jobAlarmAt(id, pending!);
    const res = await call("GET", `/v2/${ep}/job-stop/w1`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ jobsToStop: [id] });
  });
});
