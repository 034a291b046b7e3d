/**
 * Cron schedules (issue 16, item 3) with frozen clocks: each alarm run is driven by freezing the
 * schedule object's clock at a chosen instant and running its alarm (twice per fire, where it
 * matters), so an hour of simulated time runs in a moment. DST: schedules-dst.test.ts; refusals:
 * schedules-input.test.ts.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ScheduleObject } from "../../src/schedules/schedule-object";
import { loadSchedule, type FireRow } from "../../src/schedules/store";
import { loadJob } from "../../src/jobs/store";
import type { JobObject } from "../../src/jobs/job-object";
import { SCHEDULES } from "../../src/shared/limits";
import { call, createEndpoint, jobStubOf, json, status } from "./helpers";
import { alarmAt, every, fired, fires, freeze, getSchedule, jobCount, MIN, putAt, T0 } from "./schedule-kit";

describe("firing", () => {
  it("fires once per minute for an hour with two alarm runs per fire: 60 jobs, none early", { timeout: 120_000 }, async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "hourly-minutes", every("* * * * *", { overlap: "allow" }), T0);
    // Just before the first fire: nothing is due.
    await alarmAt(stub, T0 + MIN - 1, 2);
    expect(await fires(stub)).toEqual([]);
    for (let i = 1; i <= 60; i++) {
      await alarmAt(stub, T0 + i * MIN, 2);
      // Re-armed for the next fire, a minute ahead on the (frozen) clock.
      const alarm = await runInDurableObject(stub, (_i: ScheduleObject, state) => state.storage.getAlarm());
      expect(Math.abs(alarm! - Date.now() - MIN)).toBeLessThan(5_000);
    }
    const all = await fires(stub);
    expect(all.map((f) => f.fireTime)).toEqual(Array.from({ length: 60 }, (_, i) => T0 + (i + 1) * MIN));
    expect(all.every((f) => f.outcome === "submitted" && !f.manual)).toBe(true);
    expect(new Set(all.map((f) => f.jobId)).size).toBe(60);
    expect(await jobCount(ep)).toBe(60);
    const view = await getSchedule(ep, "hourly-minutes");
    expect(view.lastFires).toHaveLength(SCHEDULES.lastFires);
    expect(view.lastFires[0]).toMatchObject({ fireTime: new Date(T0 + 60 * MIN).toISOString(), outcome: "IN_QUEUE" });
    expect(view.nextFires).toEqual([61, 62, 63, 64, 65].map((m) => new Date(T0 + m * MIN).toISOString()));
  });

  it("a fire retried after submitting but before recording creates no second job (the key is the fire)", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "retry", every("* * * * *"), T0);
    await alarmAt(stub, T0 + MIN);
    const [first] = await fires(stub);
    // As if the run had died between submit and record: the record and progress are gone.
    await runInDurableObject(stub, (_i: ScheduleObject, state) => {
      state.storage.sql.exec("DELETE FROM fire; UPDATE schedule SET last_handled = ?", T0);
    });
    await alarmAt(stub, T0 + MIN, 2);
    const again = await fires(stub);
    expect(again).toHaveLength(1);
    expect(again[0]!.jobId).toBe(first!.jobId);
    expect(await jobCount(ep)).toBe(1);
  });
});

describe("overlap", () => {
  it("skip: a fire while the previous job is unfinished is skipped; once it ends, the next fires", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "skipper", every("* * * * *", { overlap: "skip" }), T0);
    await alarmAt(stub, T0 + MIN);
    await alarmAt(stub, T0 + 2 * MIN, 2);
    let fs = await fires(stub);
    expect(fs.map((f) => f.outcome)).toEqual(["submitted", "skipped"]);
    expect(fs[1]!.detail).toContain(fs[0]!.jobId!);
    expect((await call("POST", `/v2/${ep}/cancel/${fs[0]!.jobId}`)).status).toBe(200);
    await alarmAt(stub, T0 + 3 * MIN);
    fs = await fires(stub);
    expect(fs.map((f) => f.outcome)).toEqual(["submitted", "skipped", "submitted"]);
    expect(await jobCount(ep)).toBe(2);
    const view = await getSchedule(ep, "skipper");
    expect(view.lastFires.map((f) => f.outcome)).toEqual(["IN_QUEUE", "skipped", "CANCELLED"]);
  });

  it("queue: fires run one at a time in order, on a sequence of the schedule", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "queued", every("* * * * *", { overlap: "queue" }), T0);
    await alarmAt(stub, T0 + MIN);
    await alarmAt(stub, T0 + 2 * MIN);
    const [a, b] = fired(await fires(stub));
    const second = await json<{ status: string; queue?: { reason: string; ahead?: string } }>(await status(ep, b!.jobId!));
    expect(second.queue).toMatchObject({ reason: "sequenced_behind", ahead: a!.jobId });
    const seq = await runInDurableObject(jobStubOf(b!.jobId!), (_i: JobObject, state) => loadJob(state.storage.sql)!.job.sequenceKey);
    expect(seq).toBe("schedule:queued");
  });

  it("queue with the job's own sequenceKey: the fires join that sequence", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "own-seq", { cron: "* * * * *", overlap: "queue", job: { input: 1, sequenceKey: "tenant-7" } }, T0);
    await alarmAt(stub, T0 + MIN);
    const [a] = fired(await fires(stub));
    const seq = await runInDurableObject(jobStubOf(a!.jobId!), (_i: JobObject, state) => loadJob(state.storage.sql)!.job.sequenceKey);
    expect(seq).toBe("tenant-7");
  });

  it("allow: every fire submits while earlier jobs are unfinished", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "allow", every("*/5 * * * * *", { overlap: "allow" }), T0);
    for (let s = 5; s <= 30; s += 5) await alarmAt(stub, T0 + s * 1000);
    expect(fired(await fires(stub))).toHaveLength(6);
    expect(await jobCount(ep)).toBe(6);
  });
});

describe("catch-up after a pause", () => {
  /** Fires every 5 minutes: at +5 min, then pauses, and resumes at `resumeAt`, running the alarm there (twice). */
  async function pausedUntil(catchUp: string, resumeAt: number, name = `cu-${catchUp}`, cron = "*/5 * * * *") {
    const ep = await createEndpoint();
    const stub = await putAt(ep, name, every(cron, { overlap: "allow", catchUp }), T0);
    const first = cron === "*/5 * * * *" ? 5 : 1;
    await alarmAt(stub, T0 + first * MIN);
    await freeze(stub, T0 + first * MIN + 10_000);
    const paused = await call("POST", `/admin/endpoints/${ep}/schedules/${name}/pause`);
    expect(await json(paused)).toMatchObject({ paused: true, nextFires: [] });
    // Paused: no alarm at all.
    expect(await runInDurableObject(stub, (_i: ScheduleObject, state) => state.storage.getAlarm())).toBeNull();
    await freeze(stub, resumeAt);
    expect((await call("POST", `/admin/endpoints/${ep}/schedules/${name}/resume`)).status).toBe(200);
    await alarmAt(stub, resumeAt, 2);
    return { ep, stub, fs: await fires(stub) };
  }

  const times = (fs: FireRow[], outcome: string) => fs.filter((f) => f.outcome === outcome).map((f) => (f.fireTime - T0) / MIN);

  it("none: the newest due fire fires when on time (≤ 60 s old), the missed ones are recorded missed", async () => {
    const { fs } = await pausedUntil("none", T0 + 30 * MIN + 30_000);
    expect(times(fs, "submitted")).toEqual([5, 30]);
    expect(times(fs, "missed")).toEqual([10, 15, 20, 25]);
  });

  it("none: a resume more than a minute after the newest fire fires nothing", async () => {
    const { fs, ep } = await pausedUntil("none", T0 + 30 * MIN + 90_000, "cu-none-late");
    expect(times(fs, "submitted")).toEqual([5]);
    expect(times(fs, "missed")).toEqual([10, 15, 20, 25, 30]);
    expect(await jobCount(ep)).toBe(1);
  });

  it("latest: only the newest missed fire fires, late", async () => {
    const { fs, ep } = await pausedUntil("latest", T0 + 30 * MIN + 90_000);
    expect(times(fs, "submitted")).toEqual([5, 30]);
    expect(times(fs, "missed")).toEqual([10, 15, 20, 25]);
    expect(await jobCount(ep)).toBe(2);
  });

  it("all: each missed fire fires in order, 20 per alarm run, the rest in the next run", { timeout: 60_000 }, async () => {
    const { fs, stub, ep } = await pausedUntil("all", T0 + 40 * MIN + 5_000, "cu-all", "* * * * *");
    // Two runs at the resume instant: 20, then 19 more (2..40), each once.
    expect(times(fs, "submitted")).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(times(fs, "missed")).toEqual([]);
    await alarmAt(stub, T0 + 41 * MIN, 2);
    expect(fired(await fires(stub))).toHaveLength(41);
    expect(await jobCount(ep)).toBe(41);
  });

  it("all: past the catch-up window only the newest 100 fire; the older are counted missed", { timeout: 60_000 }, async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "window", every("* * * * * *", { overlap: "allow", catchUp: "all", paused: true }), T0);
    const resumeAt = T0 + 150_000;
    await freeze(stub, resumeAt);
    expect((await call("POST", `/admin/endpoints/${ep}/schedules/window/resume`)).status).toBe(200);
    for (let i = 0; i < 6; i++) await runDurableObjectAlarm(stub);
    const fs = await fires(stub);
    expect(fs.map((f) => (f.fireTime - T0) / 1000)).toEqual(Array.from({ length: 100 }, (_, i) => 51 + i));
    expect((await getSchedule(ep, "window")).missedUnlisted).toBeGreaterThanOrEqual(1);
  });
});

describe("long gaps", () => {
  it("an every-second schedule paused for a year resumes at once: the newest fire fires, 20 missed are listed, the rest counted", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "year", every("* * * * * *", { paused: true }), T0);
    const resumeAt = T0 + 365 * 24 * 60 * MIN + 500;
    await freeze(stub, resumeAt);
    const started = Date.now();
    expect((await call("POST", `/admin/endpoints/${ep}/schedules/year/resume`)).status).toBe(200);
    await alarmAt(stub, resumeAt, 2);
    expect(Date.now() - started).toBeLessThan(3_000);
    const fs = await fires(stub);
    expect(fired(fs).map((f) => f.fireTime)).toEqual([resumeAt - 500]);
    expect(fs.filter((f) => f.outcome === "missed")).toHaveLength(SCHEDULES.missedRows);
    expect((await getSchedule(ep, "year")).missedUnlisted).toBeGreaterThan(0);
    expect(await jobCount(ep)).toBe(1);
  });
});

describe("admin actions", () => {
  it("trigger now: fires at once with its own key, paused or not, and overlap skip does not refuse it", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "manual", every("0 0 1 1 *", { paused: true }), T0);
    const r1 = await json<{ fire: { jobId: string; manual: boolean; outcome: string; fireTime: string } }>(await call("POST", `/admin/endpoints/${ep}/schedules/manual/trigger`));
    expect(r1.fire).toMatchObject({ manual: true, outcome: "IN_QUEUE", fireTime: new Date(T0).toISOString() });
    await freeze(stub, T0 + 1);
    const r2 = await json<{ fire: { jobId: string } }>(await call("POST", `/admin/endpoints/${ep}/schedules/manual/trigger`));
    expect(r2.fire.jobId).not.toBe(r1.fire.jobId);
    expect(await jobCount(ep)).toBe(2);
    expect((await getSchedule(ep, "manual")).lastFires.map((f) => f.jobId)).toEqual([r2.fire.jobId, r1.fire.jobId]);
  });

  it("a trigger, a replace and alarm runs at once: each scheduled fire once, the trigger once", async () => {
    const ep = await createEndpoint();
    const body = every("* * * * *", { overlap: "allow" });
    const stub = await putAt(ep, "racy", body, T0);
    await freeze(stub, T0 + MIN);
    await Promise.all([
      runDurableObjectAlarm(stub),
      call("POST", `/admin/endpoints/${ep}/schedules/racy/trigger`),
      call("PUT", `/admin/endpoints/${ep}/schedules/racy`, { body }),
      runInDurableObject(stub, (i: ScheduleObject) => i.alarm()),
      runInDurableObject(stub, (i: ScheduleObject) => i.alarm()),
    ]);
    const fs = await fires(stub);
    expect(fs.filter((f) => !f.manual).map((f) => f.fireTime)).toEqual([T0 + MIN]);
    expect(fs.filter((f) => f.manual)).toHaveLength(1);
    expect(await jobCount(ep)).toBe(2);
  });

  it("delete: the schedule fires no more, is not found and not listed", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "doomed", every("* * * * *"), T0);
    await putAt(ep, "kept", every("* * * * *"), T0);
    expect((await call("DELETE", `/admin/endpoints/${ep}/schedules/doomed`)).status).toBe(200);
    await freeze(stub, T0 + MIN);
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    expect(await fires(stub)).toEqual([]);
    expect(await jobCount(ep)).toBe(0);
    expect((await call("GET", `/admin/endpoints/${ep}/schedules/doomed`)).status).toBe(404);
    expect((await call("DELETE", `/admin/endpoints/${ep}/schedules/doomed`)).status).toBe(404);
    for (const a of ["pause", "resume", "trigger"]) expect((await call("POST", `/admin/endpoints/${ep}/schedules/doomed/${a}`)).status).toBe(404);
    const list = await json<{ schedules: Array<{ name: string; nextFire: string | null }> }>(await call("GET", `/admin/endpoints/${ep}/schedules`));
    expect(list.schedules.map((s) => s.name)).toEqual(["kept"]);
    expect(list.schedules[0]!.nextFire).toBe(new Date(T0 + MIN).toISOString());
  });

  it("a replace with another cron starts from now; with the same cron it keeps its place", async () => {
    const ep = await createEndpoint();
    const stub = await putAt(ep, "changing", every("* * * * *", { overlap: "allow", catchUp: "all" }), T0);
    await alarmAt(stub, T0 + MIN);
    // The same cron, replaced 5 minutes later: the 4 fires since are still due (catch-up all).
    await freeze(stub, T0 + 5 * MIN + 1000);
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/changing`, { body: every("* * * * *", { overlap: "allow", catchUp: "all" }) })).status).toBe(200);
    await alarmAt(stub, T0 + 5 * MIN + 1000);
    expect(fired(await fires(stub))).toHaveLength(5);
    // Another cron: nothing before the replace is due.
    await freeze(stub, T0 + 9 * MIN + 1000);
    const res = await call("PUT", `/admin/endpoints/${ep}/schedules/changing`, { body: every("*/2 * * * *", { overlap: "allow", catchUp: "all" }) });
    expect((await json<{ nextFires: string[] }>(res)).nextFires[0]).toBe(new Date(T0 + 10 * MIN).toISOString());
    await alarmAt(stub, T0 + 9 * MIN + 1000);
    expect(fired(await fires(stub))).toHaveLength(5);
  });

  it("an endpoint deleted and re-created: its old schedule never fires into the new one", async () => {
    const ep = await createEndpoint();
    const old = await putAt(ep, "legacy", every("* * * * *"), T0);
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    await createEndpoint({}, ep);
    await alarmAt(old, T0 + MIN, 2);
    expect(await fires(old)).toEqual([]);
    expect(await runInDurableObject(old, (_i: ScheduleObject, state) => loadSchedule(state.storage.sql))).toBeNull();
    expect(await jobCount(ep)).toBe(0);
    expect((await call("GET", `/admin/endpoints/${ep}/schedules/legacy`)).status).toBe(404);
    expect(await json(await call("GET", `/admin/endpoints/${ep}/schedules`))).toEqual({ schedules: [] });
  });

  it(`at most ${SCHEDULES.perEndpoint} schedules per endpoint; replacing one at the limit still works`, { timeout: 60_000 }, async () => {
    const ep = await createEndpoint();
    for (let i = 0; i < SCHEDULES.perEndpoint; i++) {
      const res = await call("PUT", `/admin/endpoints/${ep}/schedules/s${i}`, { body: every("0 0 * * *") });
      expect(res.status).toBe(200);
    }
    const over = await call("PUT", `/admin/endpoints/${ep}/schedules/one-more`, { body: every("0 0 * * *") });
    expect(over.status).toBe(409);
    expect((await json<{ error: string }>(over)).error).toContain("limit");
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/s7`, { body: every("0 1 * * *") })).status).toBe(200);
    expect((await json<{ schedules: unknown[] }>(await call("GET", `/admin/endpoints/${ep}/schedules`))).schedules).toHaveLength(SCHEDULES.perEndpoint);
    expect((await call("DELETE", `/admin/endpoints/${ep}/schedules/s0`)).status).toBe(200);
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/one-more`, { body: every("0 0 * * *") })).status).toBe(200);
  });
});
