/**
 * Defects found by a hostile outside probe of the real Worker (after issue 11's fixes), each
 * reduced to a regression test named "outsider: …". They fail on the branch they were found on;
 * the lead fixes src.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, freezeJob, json, submit, freezeEndpoint, takeId } from "./helpers";



async function stateOf(ep: string, id: string): Promise<Record<string, unknown>> {
  const res = await call("GET", `/v2/${ep}/status/${id}`);
  expect(res.status).toBe(200);
  return json(res);
}


describe("outsider probe", () => {
  it("outsider: a job-take or job-stop long-poll open while its endpoint is deleted is answered without a 5xx", async () => {
    const ep = await createEndpoint();
    // Both polls wait (nothing queued, nothing to stop) when the delete lands.
    const pendingTake = call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`);
    const pendingStop = call("GET", `/v2/${ep}/job-stop/w1`);
    await new Promise((r) => setTimeout(r, 50));
    const del = await call("DELETE", `/admin/endpoints/${ep}`);
    expect(del.status).toBe(200);
    const [t, s] = await Promise.all([pendingTake, pendingStop]);
    const tBody = await t.text();
    const sBody = await s.text();
    // Today both answer 500 ("no such table: worker": the poll's end writes to the wiped storage).
    expect(t.status, tBody).toBeLessThan(500);
    expect(s.status, sBody).toBeLessThan(500);
  });

  it("outsider: a cancelled job ends CANCELLED when its worker, told by the 409 to its report, pings without it", async () => {
    const ep = await createEndpoint({ cancelGraceMs: 600_000 });
    const a = await submit(ep, { input: { n: "a" }, sequenceKey: "k" });
    const b = await submit(ep, { input: { n: "b" }, sequenceKey: "k" });
    expect(await takeId(ep, "w1")).toBe(a);
    // The attempt is well past PING_LIST_GRACE_MS: a ping that does not list it is not a race.
    // (35 s: under the 45 s heartbeatTimeout, and the worker's ping listing it keeps it alive.)
    const later = Date.now() + 35_000;
    await freezeEndpoint(ep, later);
    await freezeJob(a, later);
    await freezeJob(b, later);
    const listing = await call("GET", `/v2/${ep}/ping/w1?job_id=${a}&runpod_version=1.12.0`);
    expect(listing.status).toBe(200);
    await listing.body?.cancel();
    expect((await stateOf(ep, a)).status).toBe("IN_PROGRESS");
    expect(await json(await call("POST", `/v2/${ep}/cancel/${a}`))).toMatchObject({ status: "CANCELLING" });
    // README: the worker learns of the cancel "from job-stop (and from the 409 to its next report)".
    const progress = await call("POST", `/v2/${ep}/job-done/w1/${a}`, { body: { status: "IN_PROGRESS", output: "half" } });
    expect(progress.status).toBe(409);
    await progress.body?.cancel();
    // It stops and its ping (RunPod's SDK, running nothing) no longer lists the job.
    const ping = await call("GET", `/v2/${ep}/ping/w1?runpod_version=1.12.0`);
    expect(ping.status).toBe(200);
    await ping.body?.cancel();
    // README: "the job ends CANCELLED as soon as the worker's ping no longer lists it". Today it
    // stays CANCELLING for the whole cancelGraceMs (the stop was never polled through job-stop),
    // and the next job of its sequence waits that long too.
    expect((await stateOf(ep, a)).status).toBe("CANCELLED");
    expect((await stateOf(ep, b)).status).toBe("IN_QUEUE");
  });

  it("outsider: a non-ASCII Idempotency-Key header is a 400 (header bytes are not UTF-8 text), not a key that never matches its body twin", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/run`, { body: { input: 1 }, headers: { "idempotency-key": "cl\u00e9" } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(/printable ASCII/);
  });

  it("outsider: the same idempotency key and body on /run then /runsync is a 422 that names the route, not the body", async () => {
    const ep = await createEndpoint();
    expect((await call("POST", `/v2/${ep}/run`, { body: { input: 1, idempotencyKey: "k" } })).status).toBe(200);
    const res = await call("POST", `/v2/${ep}/runsync?wait=1000`, { body: { input: 1, idempotencyKey: "k" } });
    expect(res.status).toBe(422);
    expect((await json(res)).error).toMatch(/\/run and \/runsync/);
  });
});
