/**
 * Cron schedules across DST changes in Europe/Berlin and America/New_York, walked alarm by alarm
 * with the schedule object's clock frozen at each fire.
 */
import { describe, expect, it } from "vitest";
import { createEndpoint } from "./helpers";
import { alarmAt, fired, fires, getSchedule, putAt, stubOf } from "./schedule-kit";

/** Walks the schedule alarm by alarm from `from` for `steps` fires; returns the UTC fire times. */
async function walk(ep: string, name: string, body: Record<string, unknown>, from: number, steps: number): Promise<string[]> {
  const stub = await putAt(ep, name, { ...body, overlap: "allow" }, from);
  for (let i = 0; i < steps; i++) {
    const next = (await getSchedule(ep, name)).nextFires[0]!;
    await alarmAt(stub, Date.parse(next), 2);
  }
  return (await fires(stub)).map((f) => new Date(f.fireTime).toISOString());
}

describe("DST", () => {
  it("Europe/Berlin spring forward (2026-03-29): 02:30 does not exist; a fixed-time cron fires once at 03:00 CEST", async () => {
    const ep = await createEndpoint();
    const got = await walk(ep, "berlin-spring", { cron: "30 2 * * *", timezone: "Europe/Berlin", job: { input: 1 } }, Date.parse("2026-03-28T12:00:00Z"), 3);
    expect(got).toEqual(["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"]);
  });

  it("Europe/Berlin fall back (2026-10-25): 02:30 happens twice; a fixed-time cron fires once, at the first (CEST)", async () => {
    const ep = await createEndpoint();
    const got = await walk(ep, "berlin-fall", { cron: "30 2 * * *", timezone: "Europe/Berlin", job: { input: 1 } }, Date.parse("2026-10-24T12:00:00Z"), 2);
    expect(got).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
    // Running an alarm at the second 02:30 (CET) fires nothing more.
    const stub = await stubOf(ep, "berlin-fall");
    await alarmAt(stub, Date.parse("2026-10-25T01:30:00Z"), 2);
    expect(fired(await fires(stub))).toHaveLength(2);
  });

  it("Europe/Berlin: an interval cron fires every 30 real minutes through both changes", async () => {
    const ep = await createEndpoint();
    const spring = await walk(ep, "berlin-i-spring", { cron: "*/30 * * * *", timezone: "Europe/Berlin", job: { input: 1 } }, Date.parse("2026-03-29T00:10:00Z"), 3);
    // 01:30 CET, then 03:00 and 03:30 CEST: the local 02:00 and 02:30 do not exist.
    expect(spring).toEqual(["2026-03-29T00:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T01:30:00.000Z"]);
    const fall = await walk(ep, "berlin-i-fall", { cron: "*/30 * * * *", timezone: "Europe/Berlin", job: { input: 1 } }, Date.parse("2026-10-24T23:50:00Z"), 5);
    // 02:00 and 02:30 local happen twice (CEST, then CET): both fire.
    expect(fall).toEqual(["2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T01:30:00.000Z", "2026-10-25T02:00:00.000Z"]);
  });

  it("America/New_York spring forward (2026-03-08): 02:30 fires once at 03:00 EDT", async () => {
    const ep = await createEndpoint();
    const got = await walk(ep, "ny-spring", { cron: "30 2 * * *", timezone: "America/New_York", job: { input: 1 } }, Date.parse("2026-03-07T12:00:00Z"), 2);
    expect(got).toEqual(["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  it("America/New_York fall back (2026-11-01): 01:30 happens twice and fires once (EDT); hourly fires on both 01:00s", async () => {
    const ep = await createEndpoint();
    const got = await walk(ep, "ny-fall", { cron: "30 1 * * *", timezone: "America/New_York", job: { input: 1 } }, Date.parse("2026-10-31T12:00:00Z"), 2);
    expect(got).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    const hourly = await walk(ep, "ny-hourly", { cron: "0 * * * *", timezone: "America/New_York", job: { input: 1 } }, Date.parse("2026-11-01T04:30:00Z"), 3);
    // 01:00 EDT, 01:00 EST, 02:00 EST.
    expect(hourly).toEqual(["2026-11-01T05:00:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T07:00:00.000Z"]);
  });
});
