/**
 * The SDK's client (packages/client) against the real Worker: submit, status, wait, runsync,
 * idempotency and sequence keys, cancel/retry/requeue, the live stream with a resume, and its
 * errors, with a worker speaking the protocol over HTTP beside it.
 */
import { describe, expect, it } from "vitest";
import { createClient, EdgeJobsError, type StreamEvent } from "../../packages/client/src/index.ts";
import { api, endpointWithKeys } from "./api";
import { useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "1000" });

/** Takes one job as `worker` (a few polls) and answers it with `body`. */
async function work(ep: string, key: string, worker: string, answer: (job: { id: string; attempt: number; input: unknown }) => Promise<unknown> | unknown): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const t = await api(server.base, "GET", `/v2/${ep}/job-take/${worker}?job_in_progress=0`, key);
    if (t.status === 204) continue;
    const job = t.body as { id: string; attempt: number; input: unknown };
    const body = await answer(job);
    expect((await api(server.base, "POST", `/v2/${ep}/job-done/${worker}/${job.id}?attempt=${job.attempt}`, key, body)).status).toBe(200);
    return job.id;
  }
  throw new Error("no job came");
}

describe("the SDK client", () => {
  it("submits, reads, waits and runs synchronously; keys and sequences hold; errors are EdgeJobsError", async () => {
    const ep = "sdk-client";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });

    const a = await client.submit({ n: 1 }, { idempotencyKey: "order-1" });
    expect(a.status).toBe("IN_QUEUE");
    expect((await client.submit({ n: 1 }, { idempotencyKey: "order-1" })).id).toBe(a.id);
    const refused = await client.submit({ n: 2 }, { idempotencyKey: "order-1" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgeJobsError);
    expect((refused as EdgeJobsError).status).toBe(422);
    expect((refused as EdgeJobsError).body.error).toMatch(/idempotency key/);
    expect((await client.status(a.id)).status).toBe("IN_QUEUE");

    const waited = client.wait(a.id, { pollMs: 1_000, timeoutMs: 20_000 });
    await work(ep, keys.worker, "w1", (job) => ({ output: { doubled: (job.input as { n: number }).n * 2 } }));
    expect(await waited).toMatchObject({ id: a.id, status: "COMPLETED", output: { doubled: 2 } });

    // Sequences: the second job of a key waits for the first.
    const s1 = await client.submit({ step: 1 }, { sequenceKey: "user-7" });
    const s2 = await client.submit({ step: 2 }, { sequenceKey: "user-7" });
    expect(s1.status).toBe("IN_QUEUE");
    expect(s2.status).toBe("SEQUENCED");
    expect((await client.cancel(s2.id)).status).toBe("CANCELLED");
    const c = await client.cancel(s2.id);
    expect(c.status).toBe("CANCELLED");
    expect((await client.requeue(s2.id)).status).toBe("SEQUENCED");
    await work(ep, keys.worker, "w1", () => ({ error: "first try fails" }));
    expect((await client.status(s1.id)).status).toBe("FAILED");
    expect((await client.retry(s1.id)).status).toMatch(/IN_QUEUE|SEQUENCED/);

    // runsync, answered by a worker meanwhile; health adds up.
    const sync = client.runSync({ n: 21 }, { waitMs: 20_000 });
    const drain = async () => {
      for (let i = 0; i < 3; i++) await work(ep, keys.worker, "w2", (job) => ({ output: { got: job.input } }));
    };
    const [answer] = await Promise.all([sync, drain()]);
    expect(answer).toMatchObject({ status: "COMPLETED", output: { got: { n: 21 } } });
    expect((await client.health()).jobs.completed).toBeGreaterThanOrEqual(3);

    const missing = await client.status("no-such-job").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(EdgeJobsError);
    expect((missing as EdgeJobsError).status).toBe(404);
    const wrongKey = createClient({ baseUrl: server.base, apiKey: "not-a-key", endpointId: ep });
    expect(((await wrongKey.status(a.id).catch((e: unknown) => e)) as EdgeJobsError).status).toBe(401);
  });

  it("pauses, resumes, reschedules and promotes a job; a promote of a job not waiting for its time is an EdgeJobsError 409", async () => {
    const ep = "sdk-pause";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });
    const later = await client.submit({ n: 1 }, { delay: 600_000 });
    expect((await client.status(later.id)).queue).toMatchObject({ reason: "scheduled" });
    const paused = await client.pause(later.id);
    expect(paused).toMatchObject({ id: later.id, status: "IN_QUEUE", paused: true });
    expect((await client.status(later.id)).queue).toMatchObject({ reason: "job_paused" });
    // The admin jobs list shows it with the same queue info, as its OpenAPI schema says (api() checks every answer).
    const listed = await api(server.base, "GET", `/admin/endpoints/${ep}/jobs?limit=10`, server.adminKey);
    expect(listed.body.jobs).toEqual([expect.objectContaining({ jobId: later.id, state: "PAUSED", queue: expect.objectContaining({ reason: "job_paused" }) })]);
    expect((await client.resume(later.id)).status).toBe("IN_QUEUE");
    expect((await client.status(later.id)).queue).toMatchObject({ reason: "scheduled" });
    const runAt = new Date(Date.now() + 1_200_000).toISOString();
    expect(await client.reschedule(later.id, { runAt })).toEqual({ id: later.id, status: "IN_QUEUE" });
    expect((await client.status(later.id)).queue).toMatchObject({ reason: "scheduled", runAt });
    const scheduled = await api(server.base, "GET", `/admin/endpoints/${ep}/jobs?limit=10`, server.adminKey);
    expect(scheduled.body.jobs).toEqual([expect.objectContaining({ jobId: later.id, state: "SCHEDULED" })]);
    // Neither or both of delay and runAt: a 400 that says what to send.
    for (const when of [{}, { delay: 1, runAt }]) {
      const refused = await api(server.base, "POST", `/v2/${ep}/reschedule/${later.id}`, keys.client, when);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatch(/one of delay .* or runAt/);
    }
    const refusedTime = await client.reschedule(later.id, { delay: -5 }).catch((e: unknown) => e);
    expect((refusedTime as EdgeJobsError).status).toBe(400);
    expect(await client.promote(later.id)).toEqual({ id: later.id, status: "IN_QUEUE" });
    expect(await work(ep, keys.worker, "w1", () => ({ output: "ran" }))).toBe(later.id);
    const refused = await client.promote(later.id).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgeJobsError);
    expect((refused as EdgeJobsError).status).toBe(409);
    expect((await client.status(later.id)).status).toBe("COMPLETED");
  });

  it("follows a job's live stream to its final status, and resumes after a chunk", async () => {
    const ep = "sdk-stream";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });
    const { id } = await client.submit({ words: 3 });
    const events: StreamEvent[] = [];
    const reading = (async () => {
      for await (const e of client.stream(id)) events.push(e);
    })();
    await work(ep, keys.worker, "w1", async (job) => {
      for (const word of ["one", "two", "three"]) {
        expect((await api(server.base, "POST", `/v2/${ep}/job-stream/w1/${job.id}?attempt=${job.attempt}`, keys.worker, { output: word })).status).toBe(200);
      }
      return { output: "done" };
    });
    await reading;
    expect(events.filter((e) => e.type === "chunk").map((e) => (e as { chunk: { output: string } }).chunk.output)).toEqual(["one", "two", "three"]);
    expect(events.at(-1)).toMatchObject({ type: "status", job: { status: "COMPLETED", output: "done" } });
    // Resuming after chunk 1 gives the rest (reading consumes nothing).
    const rest: StreamEvent[] = [];
    const first = events.find((e) => e.type === "chunk") as { seq: number };
    for await (const e of client.stream(id, { lastEventId: first.seq })) rest.push(e);
    expect(rest.filter((e) => e.type === "chunk").map((e) => (e as { chunk: { output: string } }).chunk.output)).toEqual(["two", "three"]);
    expect(rest.at(-1)?.type).toBe("status");
  });

  it("resumes by itself from the last chunk seen when the connection drops mid-stream", async () => {
    const ep = "sdk-stream-cut";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const setup = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });
    const { id } = await setup.submit({ words: 3 });
    await work(ep, keys.worker, "w1", async (job) => {
      for (const word of ["one", "two", "three"]) await api(server.base, "POST", `/v2/${ep}/job-stream/w1/${job.id}?attempt=${job.attempt}`, keys.worker, { output: word });
      return { output: "done" };
    });
    // The first connection is cut right after its first chunk event; later ones pass through.
    const asked: Array<string | null> = [];
    const cutting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const lastEventId = new Headers(init?.headers).get("last-event-id");
      asked.push(lastEventId);
      if (asked.length > 1 || !res.body) return res;
      let seen = "";
      const cut = res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(bytes, controller) {
            seen += new TextDecoder().decode(bytes);
            const end = seen.indexOf("\n\n", seen.indexOf("event: chunk"));
            if (seen.includes("event: chunk") && end >= 0) {
              controller.enqueue(new TextEncoder().encode(seen.slice(0, end + 2)));
              controller.terminate();
              return;
            }
          },
        }),
      );
      return new Response(cut, { status: res.status, headers: res.headers });
    };
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep, fetch: cutting });
    const events: StreamEvent[] = [];
    for await (const e of client.stream(id)) events.push(e);
    expect(asked.length).toBe(2);
    expect(asked[0]).toBe("0");
    expect(asked[1]).toBe(String((events[0] as { seq: number }).seq));
    expect(events.filter((e) => e.type === "chunk").map((e) => (e as { chunk: { output: string } }).chunk.output)).toEqual(["one", "two", "three"]);
    expect(events.at(-1)).toMatchObject({ type: "status", job: { status: "COMPLETED" } });
  });

  it("a stream whose connections keep ending at once with no event ends with an error, after a few tries, not a tight loop", async () => {
    const ep = "sdk-stream-empty";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const { id } = await createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep }).submit({ n: 1 });
    let connections = 0;
    const empty: typeof fetch = async () => {
      connections++;
      return new Response("", { status: 200, headers: { "content-type": "text/event-stream" } });
    };
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep, fetch: empty });
    const started = Date.now();
    const error = await (async () => {
      for await (const _ of client.stream(id)) throw new Error("no event was sent");
    })().catch((e: unknown) => e);
    expect(String(error)).toMatch(/kept ending at once without an event/);
    expect(connections).toBe(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000); // backed off between tries
  });

  it("a job of tasks and a job of replicas: submitted, listed, waited for (issue 15)", async () => {
    const ep = "sdk-client-tasks";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, {});
    const client = createClient({ baseUrl: server.base, apiKey: keys.client, endpointId: ep });
    const sub = await client.submitTasks([{ name: "a", input: { n: 1 } }, { name: "b", input: { n: 2 }, dependsOn: ["a"] }], { priority: 1 });
    expect(sub.id).toMatch(/^tasks_/);
    expect(sub.tasks).toMatchObject({ total: 2, queued: 2 });
    const page = await client.tasks(sub.id, { state: "queued" });
    expect(page.tasks.map((t) => [t.name, t.waiting_for ?? null])).toEqual([["a", null], ["b", ["a"]]]);
    for (const name of ["a", "b"]) await work(ep, keys.worker, "sdk-w", (job) => ({ output: { ran: name, input: job.input } }));
    const done = await client.wait(sub.id, { timeoutMs: 20_000, pollMs: 2_000 });
    expect(done).toMatchObject({ status: "COMPLETED", tasks: { completed: 2 }, output: { a: { ran: "a" }, b: { ran: "b" } } });
    const reps = await client.submitReplicas(2, { model: "m" });
    expect(reps.replicas).toMatchObject({ requested: 2, started: 0 });
    await work(ep, keys.worker, "sdk-r1", () => ({ output: 1 }));
    await work(ep, keys.worker, "sdk-r2", () => ({ output: 2 }));
    expect(await client.wait(reps.id, { timeoutMs: 20_000, pollMs: 2_000 })).toMatchObject({ status: "COMPLETED", output: [1, 2] });
    await expect(client.submitTasks([{ name: "x", input: 1, dependsOn: ["x"] }])).rejects.toBeInstanceOf(EdgeJobsError);
  });
});
