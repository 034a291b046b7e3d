/**
 * Cron schedules: what the admin routes refuse (bad crons, zones, fields, names, sizes, keys), and
 * what they store and show.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadJob } from "../../src/jobs/store";
import type { JobObject } from "../../src/jobs/job-object";
import { SCHEDULES } from "../../src/shared/limits";
import { call, createEndpoint, jobStubOf, json } from "./helpers";
import { alarmAt, every, fired, fires, MIN, putAt, T0 } from "./schedule-kit";

describe("bad input", () => {
  const bad: Array<[string, unknown, string]> = [
    ["4 fields", every("* * * *"), "cron"],
    ["7 fields", every("* * * * * * *"), "cron"],
    ["minute 61", every("61 * * * *"), "cron"],
    ["step 0", every("*/0 * * * *"), "cron"],
    ["a day that never comes", every("0 0 30 2 *"), "never fires"],
    ["words", every("every minute please"), "cron"],
    ["empty cron", every(""), "cron"],
    ["cron too long", every(`${"1,".repeat(70)}1 * * * *`), "cron"],
    ["unknown zone", every("* * * * *", { timezone: "Mars/Olympus_Mons" }), "time zone"],
    ["an offset, not a zone", every("* * * * *", { timezone: "+05:00" }), "IANA"],
    ["empty zone", every("* * * * *", { timezone: "" }), "timezone"],
    ["unknown field", every("* * * * *", { every: "minute" }), "every"],
    ["unknown job field", { cron: "* * * * *", job: { input: 1, color: "red" } }, "color"],
    ["an idempotencyKey in the job", { cron: "* * * * *", job: { input: 1, idempotencyKey: "k" } }, "idempotencyKey"],
    ["null input", { cron: "* * * * *", job: { input: null } }, "input"],
    ["no job", { cron: "* * * * *" }, "job"],
    ["bad overlap", every("* * * * *", { overlap: "sometimes" }), "overlap"],
    ["bad catchUp", every("* * * * *", { catchUp: "most" }), "catchUp"],
    ["paused not a boolean", every("* * * * *", { paused: "yes" }), "paused"],
    ["bad priority", { cron: "* * * * *", job: { input: 1, priority: 1.5 } }, "priority"],
    ["__proto__ key", JSON.parse('{"cron":"* * * * *","job":{"input":1},"__proto__":{"paused":true}}'), "__proto__"],
    ["constructor key in job", { cron: "* * * * *", job: { input: 1, constructor: 1 } }, "constructor"],
    ["a JSON array", [every("* * * * *")], "object"],
    // Issue 16: the fire time is the job's time; a job has one flow key, and none with a sequence.
    ["a delay in the job", { cron: "* * * * *", job: { input: 1, delay: 1000 } }, "delay"],
    ["a runAt in the job", { cron: "* * * * *", job: { input: 1, runAt: "2030-01-01T00:00:00Z" } }, "runAt"],
    ["two different flow keys", { cron: "* * * * *", job: { input: 1, concurrencyKey: "a", rateLimitKey: "b" } }, "flow key"],
    ["a flow key with a sequenceKey", { cron: "* * * * *", job: { input: 1, concurrencyKey: "a", sequenceKey: "s" } }, "sequenceKey"],
    ["a flow key with overlap queue", every("* * * * *", { overlap: "queue", job: { input: 1, concurrencyKey: "a" } }), "overlap"],
  ];
  for (const [what, body, says] of bad) {
    it(`refuses ${what} with a 400 that says why`, async () => {
      const ep = await createEndpoint();
      const res = await call("PUT", `/admin/endpoints/${ep}/schedules/x`, { body });
      expect(res.status).toBe(400);
      expect((await json<{ error: string }>(res)).error).toContain(says);
      expect(await json(await call("GET", `/admin/endpoints/${ep}/schedules`))).toEqual({ schedules: [] });
    });
  }

  it("refuses bad names, bodies too large, malformed JSON, a private webhook, and callers without the admin key", async () => {
    const ep = await createEndpoint({ allowPrivateUrls: false });
    for (const name of ["__proto__", "-dash-first", "a".repeat(65), "sp%20ace", "dot.ted"]) {
      const res = await call("PUT", `/admin/endpoints/${ep}/schedules/${name}`, { body: every("* * * * *") });
      expect(res.status, name).toBe(400);
    }
    expect((await call("GET", `/admin/endpoints/${ep}/schedules/__proto__`)).status).toBe(400);
    // "constructor" is an ordinary name.
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/constructor`, { body: every("* * * * *") })).status).toBe(200);
    expect((await call("GET", `/admin/endpoints/${ep}/schedules/constructor`)).status).toBe(200);
    const big = { cron: "* * * * *", job: { input: "x".repeat(SCHEDULES.bodyBytes) } };
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/big`, { body: big })).status).toBe(413);
    const input = await call("PUT", `/admin/endpoints/${ep}/schedules/big`, { body: { cron: "* * * * *", job: { input: "x".repeat(SCHEDULES.inputBytes) } } });
    expect(input.status).toBe(400);
    expect((await json<{ error: string }>(input)).error).toContain(`limit for a schedule is ${SCHEDULES.inputBytes}`);
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/big`, { raw: "{not json", headers: { "content-type": "application/json" } })).status).toBe(400);
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/big`, { raw: "" })).status).toBe(400);
    const hook = await call("PUT", `/admin/endpoints/${ep}/schedules/hook`, { body: { cron: "* * * * *", job: { input: 1, webhook: "http://127.0.0.1/hook" } } });
    expect(hook.status).toBe(400);
    expect((await json<{ error: string }>(hook)).error).toContain("job.webhook");
    expect((await call("PUT", `/admin/endpoints/${ep}/schedules/x`, { body: every("* * * * *"), key: null })).status).toBe(401);
    expect((await call("GET", `/admin/endpoints/${ep}/schedules`, { key: "wrong" })).status).toBe(401);
    expect((await call("GET", `/admin/endpoints/nope-${ep}/schedules`)).status).toBe(404);
    expect((await call("PUT", `/admin/endpoints/nope-${ep}/schedules/x`, { body: every("* * * * *") })).status).toBe(404);
    expect((await call("PATCH", `/admin/endpoints/${ep}/schedules/x`, { body: {} })).status).toBe(405);
    const names = (await json<{ schedules: Array<{ name: string }> }>(await call("GET", `/admin/endpoints/${ep}/schedules`))).schedules.map((s) => s.name);
    expect(names).toEqual(["constructor"]);
  });

  it("an s3Config is handed to the fire's job but never echoed", async () => {
    const ep = await createEndpoint();
    const s3Config = { accessId: "AKIA-test", accessSecret: "very-secret", bucketName: "b", endpointUrl: "https://s3.example.com" };
    const stub = await putAt(ep, "s3", { cron: "* * * * *", job: { input: 1, s3Config } }, T0);
    const text = await (await call("GET", `/admin/endpoints/${ep}/schedules/s3`)).text();
    expect(text).not.toContain("very-secret");
    expect(JSON.parse(text).job).toEqual({ input: 1, s3Config: "(set; not shown)" });
    await alarmAt(stub, T0 + MIN);
    const [f] = fired(await fires(stub));
    const extras = await runInDurableObject(jobStubOf(f!.jobId!), (_i: JobObject, state) => loadJob(state.storage.sql)!.job.extras);
    expect(JSON.parse(extras!.s3Config!)).toEqual(s3Config);
  });

  it("defaults: UTC, overlap skip, catchUp none, not paused; the job is stored as sent", async () => {
    const ep = await createEndpoint();
    const res = await call("PUT", `/admin/endpoints/${ep}/schedules/defaults`, { body: { cron: "0 12 * * *", job: { input: { a: [1, 2] }, priority: 5, policy: { ttl: 60_000 } } } });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({
      name: "defaults",
      endpointId: ep,
      timezone: "UTC",
      overlap: "skip",
      catchUp: "none",
      paused: false,
      job: { input: { a: [1, 2] }, priority: 5, policy: { ttl: 60_000 } },
      lastFires: [],
      missedUnlisted: 0,
    });
  });
});
