/**
 * Issue 12 (one call to the worker's liveness object per take): a take of a worker this isolate
 * told a sign of life of lately lets the claim of the job it gets carry its sign (seen now, its
 * tags, and with job_in_progress=0 the release of what the worker held from older takes); it
 * sends `taking` itself only when it waits past SIGN_AFTER_MS or gets nothing. A worker's first
 * take sends its sign at once.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, done, json, submit } from "./helpers";

type Load = { objects: Array<{ kind: string; name: string; calls: { total: number; byMethod: Record<string, number> } }> };

/** Calls the endpoint's liveness objects served since the last reset, by method. */
async function livenessCalls(ep: string): Promise<Record<string, number>> {
  const load = await json<Load>(await call("GET", `/admin/endpoints/${ep}/load`));
  const out: Record<string, number> = {};
  for (const o of load.objects.filter((x) => x.kind === "liveness")) {
    for (const [m, n] of Object.entries(o.calls.byMethod)) out[m] = (out[m] ?? 0) + n;
  }
  return out;
}

const resetLoad = async (ep: string) => expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(200);

async function takeAs(ep: string, worker: string, query = "job_in_progress=0"): Promise<Response> {
  return call("GET", `/v2/${ep}/job-take/${worker}?${query}`);
}

async function workerRow(ep: string, worker: string): Promise<{ lastSeen: string; tags?: string[]; jobsTaken?: number } | undefined> {
  const body = await json<{ workers: Array<{ workerId: string; lastSeen: string; tags?: string[]; jobsTaken?: number }> }>(await call("GET", `/admin/endpoints/${ep}/workers`));
  return body.workers.find((w) => w.workerId === worker);
}

describe("a take's sign of life rides on its claim", () => {
  it("a worker's first take signs at once; its next take that claims at once makes one call to its liveness object, and still counts as a sign of life", async () => {
    const ep = await createEndpoint();
    const ids = [await submit(ep, { input: 1 }), await submit(ep, { input: 2 })];
    await resetLoad(ep);
    const a = (await json<{ id: string }>(await takeAs(ep, "s1"))).id;
    expect(ids).toContain(a);
    const b = ids.find((id) => id !== a)!;
    expect(await livenessCalls(ep)).toMatchObject({ taking: 1, hold: 1 });
    expect((await done(ep, "s1", a, { output: 1 })).status).toBe(200);
    const seenBefore = Date.parse((await workerRow(ep, "s1"))!.lastSeen);

    await new Promise((r) => setTimeout(r, 20));
    await resetLoad(ep);
    const second = await json<{ id: string }>(await takeAs(ep, "s1"));
    expect(second.id).toBe(b);
    const calls = await livenessCalls(ep);
    expect(calls.taking ?? 0).toBe(0);
    expect(calls.hold).toBe(1);
    const row = await workerRow(ep, "s1");
    expect(Date.parse(row!.lastSeen)).toBeGreaterThan(seenBefore);
    expect(row!.jobsTaken).toBe(2);
  });

  it("job_in_progress=0 on such a take releases the job the worker held from an older take (the release rides on the claim)", async () => {
    const ep = await createEndpoint();
    const ids = [await submit(ep, { input: 1 }), await submit(ep, { input: 2 })];
    const a = (await json<{ id: string }>(await takeAs(ep, "r1", "job_in_progress=1"))).id;
    expect(ids).toContain(a);
    const b = ids.find((id) => id !== a)!;
    await resetLoad(ep);
    // The worker says it runs nothing while it holds `a`: `a` is lost, `b` is its job now.
    expect((await json<{ id: string }>(await takeAs(ep, "r1", "job_in_progress=0"))).id).toBe(b);
    expect((await livenessCalls(ep)).taking ?? 0).toBe(0);
    const lost = await json<{ status: string; workerId?: string }>(await call("GET", `/v2/${ep}/status/${a}`));
    expect(lost.status).not.toBe("IN_PROGRESS");
    // Its result is refused: the lease went with the release.
    expect((await done(ep, "r1", a, { output: 1 })).status).toBe(409);
    expect((await done(ep, "r1", b, { output: 2 })).status).toBe(200);
  });

  it("tags declared on such a take are noted from the claim", async () => {
    const ep = await createEndpoint();
    const ids = [await submit(ep, { input: 1 }), await submit(ep, { input: 2 })];
    const a = (await json<{ id: string }>(await takeAs(ep, "t1"))).id;
    expect(ids).toContain(a);
    const b = ids.find((id) => id !== a)!;
    expect((await done(ep, "t1", a, { output: 1 })).status).toBe(200);
    expect((await json<{ id: string }>(await takeAs(ep, "t1", "job_in_progress=0&tags=gpu"))).id).toBe(b);
    expect((await workerRow(ep, "t1"))?.tags).toEqual(["gpu"]);
  });

  it("a take that waits and gets nothing signs exactly once; a take without wait that gets nothing (job-done?next=1) does not sign again", async () => {
    const ep = await createEndpoint();
    const a = await submit(ep, { input: 1 });
    expect((await json<{ id: string }>(await takeAs(ep, "e1"))).id).toBe(a);
    await resetLoad(ep);
    const next = await json<{ next: unknown }>(await call("POST", `/v2/${ep}/job-done/e1/${a}?isStream=false&next=1`, { raw: JSON.stringify({ output: 1 }) }));
    expect(next.next).toBeNull();
    expect((await livenessCalls(ep)).taking ?? 0).toBe(0);
    // The queue is empty: the take waits out TAKE_WAIT_MS (300 ms here), past SIGN_AFTER_MS.
    const empty = await takeAs(ep, "e1");
    expect(empty.status).toBe(204);
    expect((await livenessCalls(ep)).taking).toBe(1);
  });
});
