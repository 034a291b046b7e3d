/**
 * Issue 15, item 4: replicas (UCloud's). `replicas: N` hands one input to N distinct workers: the
 * job reads IN_QUEUE (queue.reason replicas_starting, `replicas.started`) until all N started,
 * then IN_PROGRESS; COMPLETED when all reported, with each replica's output (in order) and exit
 * code; one replica failing stops the others and fails the job; the whole job's time is its
 * executionTimeout from the first start (TIMED_OUT, reason execution_timeout).
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createEndpoint, done, json } from "./helpers";
import { graphObjectId } from "../../src/jobs/task-tell";
import type { GraphObject } from "../../src/graphs/graph-object";

type Handed = { id: string; input: unknown; parentJobId?: string; taskName?: string };
const graphStub = (id: string) => env.GRAPH.get(graphObjectId(env, id)!) as DurableObjectStub<GraphObject>;

async function drive(id: string): Promise<void> {
  for (let i = 0; i < 30; i++) if (!(await runDurableObjectAlarm(graphStub(id)))) return;
}

/** A take by `worker`, saying how many jobs it runs (0: it runs none, so any lease it holds is lost). */
async function take(ep: string, worker: string, batch = 0, running = 0): Promise<Handed[]> {
  const res = await call("GET", batch > 0 ? `/v2/${ep}/job-take-batch/${worker}?job_in_progress=${running}&batch_size=${batch}` : `/v2/${ep}/job-take/${worker}?job_in_progress=${running}`);
  if (res.status === 204) return [];
  expect(res.status).toBe(200);
  const body = await json<Handed | Handed[]>(res);
  return Array.isArray(body) ? body : [body];
}

async function statusOf(ep: string, id: string): Promise<Record<string, any>> {
  return json(await call("GET", `/v2/${ep}/status/${id}`));
}

async function submitReplicas(ep: string, body: Record<string, unknown>): Promise<string> {
  const res = await call("POST", `/v2/${ep}/run`, { body });
  expect(res.status, await res.clone().text()).toBe(200);
  const id = (await json<{ id: string }>(res)).id;
  await drive(id);
  return id;
}

describe("replicas", () => {
  it("replicas: 3 is IN_QUEUE (replicas_starting) until the third distinct worker takes it, then IN_PROGRESS; COMPLETED with every output in order", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 3, input: { model: "x" } });
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", queue: { reason: "replicas_starting" }, replicas: { requested: 3, started: 0 } });
    const held: Array<[string, Handed]> = [];
    for (const [i, w] of ["w1", "w2", "w3"].entries()) {
      // A worker asking for many gets one replica: the others are for other workers.
      const got = await take(ep, w, 10);
      expect(got, `${w} takes one replica`).toHaveLength(1);
      expect(got[0]).toMatchObject({ parentJobId: id, taskName: `replica-${i}`, input: { model: "x" } });
      held.push([w, got[0]!]);
      // The worker that took one is handed no other.
      await drive(id);
      expect(await take(ep, w, 10, 1), `${w} gets no second replica`).toEqual([]);
      const s = await statusOf(ep, id);
      if (i < 2) expect(s, `after ${i + 1} started`).toMatchObject({ status: "IN_QUEUE", queue: { reason: "replicas_starting" }, replicas: { requested: 3, started: i + 1 } });
      else expect(s).toMatchObject({ status: "IN_PROGRESS", replicas: { requested: 3, started: 3 } });
    }
    for (const [w, job] of held.reverse()) await done(ep, w, job.id, { output: { from: w }, exitCode: w === "w2" ? 3 : 0 });
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "COMPLETED", replicas: { requested: 3, started: 3, completed: 3, exitCodes: [0, 3, 0] } });
    expect(s.output).toEqual([{ from: "w1" }, { from: "w2" }, { from: "w3" }]);
  });

  it("one replica failing stops the others (job-stop) and fails the job; requeue runs all of them again", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 2, input: {} });
    const [a] = await take(ep, "w1");
    await drive(id);
    const [b] = await take(ep, "w2");
    await drive(id);
    expect((await statusOf(ep, id)).status).toBe("IN_PROGRESS");
    await done(ep, "w1", a!.id, { error: "replica crashed" });
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_PROGRESS" }); // stopping the other
    expect(await (await call("GET", `/v2/${ep}/job-stop/w2`)).text()).toContain(b!.id);
    await take(ep, "w2"); // w2 stopped: it asks for work saying it runs none
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "FAILED", tasks: { failed: 1, canceled: 1 } });
    expect(s.error).toContain("replica crashed");
    expect((await call("POST", `/v2/${ep}/requeue/${id}`)).status).toBe(200);
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", replicas: { requested: 2, started: 0 }, tasks: { queued: 2 } });
  });

  it("the whole job's time is its executionTimeout from the first start: TIMED_OUT, reason execution_timeout, replicas stopped", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 2, input: {}, policy: { executionTimeout: 5_000 } });
    const [a] = await take(ep, "w1");
    await drive(id);
    expect(a).toBeDefined();
    await runInDurableObject(graphStub(id), (o: GraphObject) => o.clock.freeze(Date.now() + 6_000));
    await runDurableObjectAlarm(graphStub(id));
    await drive(id);
    expect(await (await call("GET", `/v2/${ep}/job-stop/w1`)).text()).toContain(a!.id);
    await take(ep, "w1");
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "TIMED_OUT", reason: "execution_timeout" });
    expect(s.error).toContain("executionTimeout (5000 ms)");
  });

  it("policy.maxAttempts 2: a failed replica gets a fresh job, never handed to a worker that took one; the job completes", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 2, input: {}, policy: { maxAttempts: 2 } });
    const [a] = await take(ep, "w1");
    await drive(id);
    await done(ep, "w1", a!.id, { error: "first try failed" });
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", replicas: { requested: 2, started: 0 } });
    expect(await take(ep, "w1", 0, 0), "w1 took a replica once: it gets none again").toEqual([]);
    const [x] = await take(ep, "w2");
    await drive(id);
    expect(await take(ep, "w1", 0, 0)).toEqual([]);
    const [y] = await take(ep, "w3");
    await drive(id);
    expect([x!.taskName, y!.taskName].sort()).toEqual(["replica-0", "replica-1"]);
    expect([x!.id, y!.id]).not.toContain(a!.id); // replica-0 runs again under a fresh job
    expect((await statusOf(ep, id)).status).toBe("IN_PROGRESS");
    await done(ep, "w2", x!.id, { output: x!.taskName });
    await done(ep, "w3", y!.id, { output: y!.taskName });
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "COMPLETED", output: ["replica-0", "replica-1"] });
    const tasks = await json<{ tasks: Array<{ name: string; workerId: string }> }>(await call("GET", `/v2/${ep}/tasks/${id}`));
    expect(tasks.tasks.map((t) => t.workerId).sort()).toEqual(["w2", "w3"]);
  });

  it("found in review: a replica's IN_PROGRESS note lost, its worker is still busy for the others (from its later note)", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 2, input: {} });
    await runInDurableObject(graphStub(id), (o: GraphObject) => o.faults.arm("graph:note"));
    const [a] = await take(ep, "w1");
    await done(ep, "w1", a!.id, { output: "a" });
    await drive(id);
    expect(await take(ep, "w1", 0, 0), "w1 ran replica-0: it gets no other").toEqual([]);
    const [b] = await take(ep, "w2");
    expect(b).toMatchObject({ taskName: "replica-1" });
  });

  it("found in review: a requeue after a replica got a fresh job that was never created runs it, tracked", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitReplicas(ep, { replicas: 3, input: {}, policy: { maxAttempts: 2, executionTimeout: 5_000 } });
    const [a] = await take(ep, "w1");
    await drive(id);
    const [b] = await take(ep, "w2");
    await drive(id);
    await done(ep, "w1", a!.id, { error: "boom" }); // replica-0 gets a fresh job, not created while replica-2 waits
    await drive(id);
    await runInDurableObject(graphStub(id), (o: GraphObject) => o.clock.freeze(Date.now() + 6_000));
    await runDurableObjectAlarm(graphStub(id));
    await runInDurableObject(graphStub(id), (o: GraphObject) => o.clock.thaw());
    await drive(id);
    await take(ep, "w2"); // w2 stopped
    await drive(id);
    expect((await statusOf(ep, id)).status).toBe("TIMED_OUT");
    expect(b).toBeDefined();
    expect((await call("POST", `/v2/${ep}/requeue/${id}`)).status).toBe(200);
    await drive(id);
    const [c] = await take(ep, "w9");
    expect(c).toMatchObject({ taskName: "replica-0" });
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", replicas: { started: 1 } });
    const counts = await graphStub(id).countsCheck();
    expect(counts.kept).toEqual(counts.recounted);
  });

  it("bad replicas are a 400", async () => {
    const ep = await createEndpoint({ shards: 1 });
    for (const [body, message] of [
      [{ replicas: 0, input: {} }, "replicas"],
      [{ replicas: 65, input: {} }, "replicas"],
      [{ replicas: 2 }, "input"],
      [{ replicas: 2, input: {}, tasks: [] }, "cannot go with"],
      [{ replicas: 2, input: {}, sequenceKey: "s" }, "cannot go with replicas"],
      [{ replicas: "2", input: {} }, "replicas"],
    ] as Array<[unknown, string]>) {
      const res = await call("POST", `/v2/${ep}/run`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json<{ error: string }>(res)).error, JSON.stringify(body)).toContain(message);
    }
  });
});
