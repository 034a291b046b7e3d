/**
 * Streaming: job-stream chunks kept in order; /stream hands each out once with `stream` always an
 * array; SSE reads without consuming, resumes after Last-Event-ID, and ends with the final status.
 */
import { describe, expect, it } from "vitest";
import { PAYLOAD } from "../../src/shared/limits";
import { call, createEndpoint, done, json, parseSse, submit, take } from "./helpers";

const chunk = (ep: string, w: string, id: string, body: unknown) =>
  call("POST", `/v2/${ep}/job-stream/${w}/${id}?isStream=false`, {
    raw: JSON.stringify(body),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });

async function streamingJob() {
  const ep = await createEndpoint();
  const id = await submit(ep, { input: { prompt: "count" } });
  await take(ep, "w1");
  return { ep, id };
}

describe("stream", () => {
  it("hands out each chunk once, in order, as RunPod's clients expect", async () => {
    const { ep, id } = await streamingJob();
    const empty = await json(await call("GET", `/v2/${ep}/stream/${id}?wait=0`));
    expect(empty).toEqual({ status: "IN_PROGRESS", stream: [] });
    for (const n of [1, 2, 3]) expect((await chunk(ep, "w1", id, { output: { token: n } })).status).toBe(200);
    expect(await json(await call("GET", `/v2/${ep}/stream/${id}`))).toEqual({
      status: "IN_PROGRESS",
      stream: [{ output: { token: 1 } }, { output: { token: 2 } }, { output: { token: 3 } }],
    });
    await chunk(ep, "w1", id, { output: { token: 4 }, metrics: { tps: 9 } });
    await done(ep, "w1", id, { output: [] });
    expect(await json(await call("POST", `/v2/${ep}/stream/${id}`))).toEqual({
      status: "COMPLETED",
      stream: [{ output: { token: 4 }, metrics: { tps: 9 } }],
    });
    expect(await json(await call("GET", `/v2/${ep}/stream/${id}`))).toEqual({ status: "COMPLETED", stream: [] });
  });

  it("a poll with nothing new waits for the next chunk", async () => {
    const { ep, id } = await streamingJob();
    const pending = call("GET", `/v2/${ep}/stream/${id}?wait=10000`);
    await chunk(ep, "w1", id, { output: "a" });
    expect(await json(await pending)).toEqual({ status: "IN_PROGRESS", stream: [{ output: "a" }] });
  });

  it("refuses chunks from another worker, after the job ended, and over 1 MB", async () => {
    const { ep, id } = await streamingJob();
    expect((await chunk(ep, "w2", id, { output: "x" })).status).toBe(409);
    expect((await chunk(ep, "w1", id, { output: "y".repeat(PAYLOAD.streamChunkBytes) })).status).toBe(413);
    await done(ep, "w1", id, { output: [] });
    expect((await chunk(ep, "w1", id, { output: "late" })).status).toBe(409);
    expect(await json(await call("GET", `/v2/${ep}/stream/${id}`))).toEqual({ status: "COMPLETED", stream: [] });
  });

  it("SSE streams without consuming, resumes after Last-Event-ID, and ends with the final status", async () => {
    const { ep, id } = await streamingJob();
    await chunk(ep, "w1", id, { output: "a" });
    await chunk(ep, "w1", id, { output: "b" });
    const sse = call("GET", `/v2/${ep}/stream/${id}`, { headers: { accept: "text/event-stream" } });
    await chunk(ep, "w1", id, { output: "c" });
    await done(ep, "w1", id, { output: "abc" });
    const res = await sse;
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = parseSse(await res.text());
    expect(events.filter((e) => e.event === "chunk").map((e) => [e.id, JSON.parse(e.data!)])).toEqual([
      ["1", { output: "a" }],
      ["2", { output: "b" }],
      ["3", { output: "c" }],
    ]);
    expect(events.at(-1)?.event).toBe("status");
    expect(JSON.parse(events.at(-1)!.data!)).toMatchObject({ id, status: "COMPLETED", output: "abc" });

    const resumed = parseSse(await (await call("GET", `/v2/${ep}/stream/${id}`, { headers: { accept: "text/event-stream", "last-event-id": "2" } })).text());
    expect(resumed.filter((e) => e.event === "chunk").map((e) => e.id)).toEqual(["3"]);
    // SSE consumed nothing: RunPod's /stream still hands out all three.
    expect((await json<{ stream: unknown[] }>(await call("GET", `/v2/${ep}/stream/${id}`))).stream).toHaveLength(3);
  });

  it("an unknown job is a 404 in both modes", async () => {
    const ep = await createEndpoint();
    expect((await call("GET", `/v2/${ep}/stream/${"0".repeat(64)}`)).status).toBe(404);
    expect((await call("GET", `/v2/${ep}/stream/${"0".repeat(64)}`, { headers: { accept: "text/event-stream" } })).status).toBe(404);
  });
});
