/**
 * Issue 15, item 1: jobs of tasks. A job submitted with `tasks` hands each task to workers as a
 * job of its own once the tasks it depends on completed; its state derives from its tasks; a
 * failed task fails the job once nothing else can progress; requeue runs exactly the tasks that
 * did not complete; cancel and pause reach every task; a worker that fails `blocklistThreshold`
 * tasks is blocklisted from the whole job.
 */
import { describe, expect, it } from "vitest";
import { afterEach, vi } from "vitest";
import { call, createEndpoint, done, interceptFetch, json } from "./helpers";
import { drive, graphStub, submitTasks } from "./tasks-kit";
import { runInDurableObject } from "cloudflare:test";
import type { GraphObject } from "../../src/graphs/graph-object";
import { applyNote, markCreated, taskByName } from "../../src/graphs/store";

type Handed = { id: string; input: unknown; parentJobId?: string; taskName?: string };


async function takeTask(ep: string, worker: string): Promise<Handed | null> {
  const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=0`);
  if (res.status === 204) return null;
  expect(res.status).toBe(200);
  return json<Handed>(res);
}

async function statusOf(ep: string, id: string): Promise<Record<string, any>> {
  const res = await call("GET", `/v2/${ep}/status/${id}`);
  expect(res.status).toBe(200);
  return json(res);
}

async function tasksOf(ep: string, id: string, query = ""): Promise<Record<string, any>> {
  const res = await call("GET", `/v2/${ep}/tasks/${id}${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

/** Takes and finishes every task handed out until none is, `fail` deciding by task name. */
async function runAll(ep: string, id: string, worker: string, fail: (name: string) => boolean = () => false): Promise<string[]> {
  const ran: string[] = [];
  for (let i = 0; i < 200; i++) {
    const t = await takeTask(ep, worker);
    if (t === null) {
      await drive(id);
      const again = await takeTask(ep, worker);
      if (again === null) return ran;
      ran.push(again.taskName!);
      await done(ep, worker, again.id, fail(again.taskName!) ? { error: `boom ${again.taskName}` } : { output: { name: again.taskName, input: again.input } });
      await drive(id);
      continue;
    }
    ran.push(t.taskName!);
    await done(ep, worker, t.id, fail(t.taskName!) ? { error: `boom ${t.taskName}` } : { output: { name: t.taskName, input: t.input } });
    await drive(id);
  }
  return ran;
}

afterEach(() => vi.restoreAllMocks());

const diamond = {
  tasks: [
    { name: "a", input: { n: 1 } },
    { name: "b", input: { n: 2 }, dependsOn: ["a"] },
    { name: "c", input: { n: 3 }, dependsOn: ["a"] },
    { name: "d", input: { n: 4 }, dependsOn: ["b", "c"] },
  ],
};

describe("jobs of tasks", () => {
  it("a diamond runs in dependency order; workers get parentJobId and taskName; the job completes with outputs by name", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, diamond);
    expect(id).toMatch(/^tasks_[0-9a-f]{64}$/);
    expect(await statusOf(ep, id)).toMatchObject({ id, status: "IN_QUEUE", tasks: { total: 4, queued: 4 } });
    const first = await takeTask(ep, "w1");
    expect(first).toMatchObject({ parentJobId: id, taskName: "a", input: { n: 1 } });
    expect(await takeTask(ep, "w2")).toBeNull(); // b and c wait for a
    const waiting = await tasksOf(ep, id, "?state=queued");
    expect(waiting.tasks.map((t: any) => [t.name, t.waiting_for])).toEqual([["b", ["a"]], ["c", ["a"]], ["d", ["b", "c"]]]);
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_PROGRESS", tasks: { active: 1, queued: 3 } });
    await done(ep, "w1", first!.id, { output: "A" });
    await drive(id);
    const ran = await runAll(ep, id, "w1");
    expect(ran.slice(0, 2).sort()).toEqual(["b", "c"]);
    expect(ran[2]).toBe("d");
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "COMPLETED", tasks: { total: 4, completed: 4 } });
    expect(s.output).toEqual({ a: "A", b: { name: "b", input: { n: 2 } }, c: { name: "c", input: { n: 3 } }, d: { name: "d", input: { n: 4 } } });
    const all = await tasksOf(ep, id);
    expect(all.total).toBe(4);
    expect(all.tasks.map((t: any) => t.state)).toEqual(["completed", "completed", "completed", "completed"]);
    expect(all.tasks[0]).toMatchObject({ name: "a", output: "A", attempts: 1, workerId: "w1" });
    // A task's job names its job of tasks, and cannot be requeued on its own.
    const job = await json<Record<string, unknown>>(await call("GET", `/v2/${ep}/status/${first!.id}`));
    expect(job).toMatchObject({ parentJobId: id, taskName: "a" });
    expect((await call("POST", `/v2/${ep}/requeue/${first!.id}`)).status).toBe(409);
    expect(await graphStub(id).countsCheck()).toEqual({ kept: { completed: 4 }, recounted: { completed: 4 } });
  });

  it("bad graphs are a 400: cycles, unknown or repeated names, self-dependencies, fields that do not go with tasks", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const cases: Array<[unknown, string]> = [
      [{ tasks: [{ name: "a", input: {}, dependsOn: ["b"] }, { name: "b", input: {}, dependsOn: ["a"] }] }, "cycle"],
      [{ tasks: [{ name: "a", input: {}, dependsOn: ["zz"] }] }, "not a task of this job"],
      [{ tasks: [{ name: "a", input: {} }, { name: "a", input: {} }] }, "unique"],
      [{ tasks: [{ name: "a", input: {}, dependsOn: ["a"] }] }, "depends on itself"],
      [{ tasks: [{ name: "a", input: {} }], input: {} }, "cannot go with tasks"],
      [{ tasks: [] }, "tasks"],
      [{ tasks: [{ name: "has space", input: {} }] }, "not a valid task name"],
      [{ tasks: [{ name: "a" }] }, "input"],
      [{ tasks: [{ name: "a", input: {}, tags: ["bad tag"] }] }, "not a valid tag"],
      [{ tasks: "nope" }, "tasks"],
    ];
    for (const [body, message] of cases) {
      const res = await call("POST", `/v2/${ep}/run`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json<{ error: string }>(res)).error, JSON.stringify(body)).toContain(message);
    }
    expect((await call("POST", `/v2/${ep}/runsync`, { body: diamond })).status).toBe(400);
    // Prototype names are plain names.
    const id = await submitTasks(ep, { tasks: [{ name: "__proto__", input: 1 }, { name: "constructor", input: 2, dependsOn: ["__proto__"] }] });
    await runAll(ep, id, "w1");
    const s = await statusOf(ep, id);
    expect(s.status).toBe("COMPLETED");
    expect(Object.keys(s.output)).toEqual(["__proto__", "constructor"]);
  });

  it("a failed task fails the job once the rest finished; tasks waiting on it wait; requeue re-runs exactly the failed ones", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const tasks = [...Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, input: { i } })), { name: "join", input: {}, dependsOn: ["f0", "f1", "f2", "f3", "f4"] }];
    const id = await submitTasks(ep, { tasks, policy: { maxAttempts: 1 } });
    const ran = await runAll(ep, id, "w1", (n) => n === "f1" || n === "f3");
    expect(ran.sort()).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "FAILED", tasks: { completed: 3, failed: 2, queued: 1 } });
    expect(s.error).toMatch(/^task 'f1' failed: boom f1/);
    expect((await tasksOf(ep, id, "?state=queued")).tasks[0]).toMatchObject({ name: "join", waiting_for: ["f1", "f3"] });
    const r = await call("POST", `/v2/${ep}/requeue/${id}`);
    expect(r.status).toBe(200);
    expect(await json(r)).toMatchObject({ status: "IN_QUEUE", tasks: { completed: 3, queued: 3 } });
    await drive(id);
    const again = await runAll(ep, id, "w1");
    expect(again.slice(0, 2).sort()).toEqual(["f1", "f3"]);
    expect(again.slice(2)).toEqual(["join"]);
    expect(await statusOf(ep, id)).toMatchObject({ status: "COMPLETED", tasks: { completed: 6 } });
    expect((await call("POST", `/v2/${ep}/requeue/${id}`)).status).toBe(409); // every task completed
  });

  it("soft-failed: an error queues the task again for another worker; a worker failing 2 tasks (threshold 2) is blocklisted from all of them", async () => {
    const ep = await createEndpoint({ shards: 1, blocklistThreshold: 2 });
    const tasks = Array.from({ length: 4 }, (_, i) => ({ name: `t${i}`, input: { i } }));
    const id = await submitTasks(ep, { tasks });
    await call("GET", `/v2/${ep}/ping/good`); // a live worker that may take them: they wait for it
    const x = await takeTask(ep, "bad");
    await done(ep, "bad", x!.id, { error: "bad worker" });
    await drive(id);
    expect((await tasksOf(ep, id)).tasks.find((t: any) => t.name === x!.taskName)).toMatchObject({ state: "soft-failed", failedWorkers: ["bad"] });
    const y = await takeTask(ep, "bad");
    expect(y!.taskName).not.toBe(x!.taskName); // the failed one is offered to others first
    await done(ep, "bad", y!.id, { error: "bad worker" });
    await drive(id);
    expect(await statusOf(ep, id)).toMatchObject({ blocklisted: [{ workerId: "bad", failedTasks: 2 }], tasks: { "soft-failed": 2, queued: 2 } });
    expect(await takeTask(ep, "bad")).toBeNull(); // blocklisted from every task, even those it never failed
    const ran = await runAll(ep, id, "good");
    expect(ran.sort()).toEqual(["t0", "t1", "t2", "t3"]);
    expect(await statusOf(ep, id)).toMatchObject({ status: "COMPLETED", tasks: { completed: 4 } });
  });

  it("cancel: waiting tasks are cancelled, a running one is stopped; pause hands out nothing until resumed", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: {} }, { name: "b", input: {} }, { name: "c", input: {}, dependsOn: ["a"] }] });
    expect((await json(await call("POST", `/v2/${ep}/pause/${id}`))).paused).toBe(true);
    await drive(id);
    expect(await takeTask(ep, "w1")).toBeNull();
    expect(await statusOf(ep, id)).toMatchObject({ status: "IN_QUEUE", paused: true, tasks: { paused: 2, queued: 1 } });
    await call("POST", `/v2/${ep}/resume/${id}`);
    await drive(id);
    const a = await takeTask(ep, "w1");
    expect(a).not.toBeNull();
    const cancel = await call("POST", `/v2/${ep}/cancel/${id}`);
    expect(await json(cancel)).toMatchObject({ status: "CANCELLING" });
    await drive(id);
    // The running task's worker is told to stop; its report of stopping ends it.
    const stops = await call("GET", `/v2/${ep}/job-stop/w1`);
    expect(await stops.text()).toContain(a!.id);
    await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`);
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "CANCELLED", tasks: { canceled: 3 } });
    expect((await call("POST", `/v2/${ep}/pause/${id}`)).status).toBe(409);
  });

  it("a task's note that comes before its job is marked created (a worker took it at once) is kept; the late mark changes nothing", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const res = await call("POST", `/v2/${ep}/run`, { body: { tasks: [{ name: "a", input: {} }, { name: "b", input: {}, dependsOn: ["a"] }] } });
    const id = (await json<{ id: string }>(res)).id;
    const r = await runInDurableObject(graphStub(id) as DurableObjectStub<GraphObject>, (o: GraphObject) => {
      const a = taskByName(o.sql, "a")!;
      const note = { jobId: a.jobId, state: "COMPLETED" as const, version: 3, startedAt: 1, completedAt: 2, error: null, output: null, outputBytes: 0, workerId: "w1", attempt: 1, failedWorkers: [] };
      const effect = o.transact(() => applyNote(o.sql, "a", note, 3));
      const marked = o.transact(() => markCreated(o.sql, a, "IN_QUEUE", 1, { want: "run", blocked: 0, busy: 0 }, false));
      // A job that a requeue renamed meanwhile is not marked (the alarm cancels it).
      const renamed = markCreated(o.sql, { ...a, jobId: "0".repeat(64) }, "IN_QUEUE", 1, { want: "run", blocked: 0, busy: 0 }, false);
      // A task canceled while its job was being created stays canceled; its job is cancelled (found in review).
      const b = taskByName(o.sql, "b")!;
      o.sql.exec("UPDATE task SET bucket = 'canceled' WHERE idx = ?", b.idx);
      o.sql.exec("UPDATE task_count SET n = n - 1 WHERE bucket = 'ready'");
      o.sql.exec("INSERT INTO task_count (bucket, n) VALUES ('canceled', 1) ON CONFLICT (bucket) DO UPDATE SET n = n + 1");
      const canceled = markCreated(o.sql, b, "IN_QUEUE", 1, { want: "run", blocked: 0, busy: 0 }, false);
      return { effect, marked, renamed, canceled, a: taskByName(o.sql, "a")!.bucket, b: taskByName(o.sql, "b")!.bucket, counts: o.countsCheck() };
    });
    expect(r).toMatchObject({ effect: { changed: true }, marked: "created", renamed: "orphan", canceled: "orphan", a: "completed", b: "canceled" });
    expect(r.counts.kept).toEqual(r.counts.recounted);
  });

  it("a job of tasks' webhook: signed, sent once when it finishes, with its /status body and the outputs by name; /webhooks/{id} lists it", async () => {
    const hook = "https://receiver.example.com/tasks-hook";
    const got = interceptFetch(hook, () => new Response("ok"));
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }, { name: "b", input: 2, dependsOn: ["a"] }], webhook: hook });
    await runAll(ep, id, "w1");
    await drive(id);
    await vi.waitFor(() => expect(got.length).toBe(1), { timeout: 5_000 });
    expect(got[0]!.json).toMatchObject({ id, status: "COMPLETED", tasks: { completed: 2 }, output: { a: { name: "a", input: 1 }, b: { name: "b", input: 2 } } });
    expect(got[0]!.headers["webhook-signature"]).toMatch(/^v1,/);
    const log = await json<{ events: Array<{ state: string; attempts: number }> }>(await call("GET", `/v2/${ep}/webhooks/${id}`));
    expect(log.events).toHaveLength(1);
    expect(log.events[0]).toMatchObject({ state: "delivered", attempts: 1 });
    await drive(id);
    expect(got.length).toBe(1);
  });
});

describe("jobs of tasks: found from outside", () => {
  it("a worker blocklisted by the job (2 failed tasks) with no other live worker: its waiting tasks fail, and the job ends FAILED", async () => {
    const ep = await createEndpoint({ shards: 1, blocklistThreshold: 2 });
    const id = await submitTasks(ep, { tasks: [{ name: "A", input: {}, maxAttempts: 5 }, { name: "B", input: {}, maxAttempts: 5 }, { name: "C", input: {}, maxAttempts: 5 }, { name: "D", input: {}, dependsOn: ["A"] }] });
    for (let i = 0; i < 2; i++) {
      const t = await takeTask(ep, "w1");
      await done(ep, "w1", t!.id, { error: "w1 bad" });
      await drive(id);
    }
    await drive(id);
    expect(await takeTask(ep, "w1")).toBeNull();
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s).toMatchObject({ status: "FAILED", blocklisted: [{ workerId: "w1", failedTasks: 2 }], tasks: { failed: 3, queued: 1 } });
    expect(s.error).toContain("blocklisted");
  });

  it("a task's job failed as blocklisted right at creation (a worker blocklisted while the job was paused): the job still ends, and a cancel ends", async () => {
    const ep = await createEndpoint({ shards: 1, blocklistThreshold: 2 });
    const id = await submitTasks(ep, { tasks: [{ name: "C1", input: {}, maxAttempts: 5 }, { name: "C2", input: {}, maxAttempts: 5 }, { name: "A", input: {} }, { name: "B", input: {}, dependsOn: ["A"] }] });
    // As the outsider's worker did: three takes, each saying it runs nothing (so the earlier leases are lost: failures of w1).
    const got: Record<string, string> = {};
    for (let i = 0; i < 3; i++) {
      const j = await takeTask(ep, "w1");
      if (j) got[j.taskName!] = j.id;
    }
    await call("POST", `/v2/${ep}/pause/${id}`);
    await drive(id);
    for (const [name, jobId] of Object.entries(got)) await done(ep, "w1", jobId, name === "A" ? { output: "a" } : { error: "x" });
    await drive(id);
    await call("POST", `/v2/${ep}/resume/${id}`);
    await drive(id);
    await drive(id);
    // w1 is blocklisted and the only worker: nothing can run any more, and the job says so (it was stuck IN_PROGRESS).
    const s = await statusOf(ep, id);
    expect(s.status).toBe("FAILED");
    expect(s.tasks).toMatchObject({ active: 0, "soft-failed": 0, paused: 0 });
    expect((await call("POST", `/v2/${ep}/cancel/${id}`)).status).toBe(409);
  });

  it("an idempotency key is one job whatever its kind: a plain body after a job of tasks with the same key is a 422, and the other way round", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const tasksBody = { tasks: [{ name: "a", input: 1 }], idempotencyKey: "k1" };
    expect((await call("POST", `/v2/${ep}/run`, { body: tasksBody })).status).toBe(200);
    expect((await call("POST", `/v2/${ep}/run`, { body: { input: 1, idempotencyKey: "k1" } })).status).toBe(422);
    expect((await call("POST", `/v2/${ep}/run`, { body: { input: 1, idempotencyKey: "k2" } })).status).toBe(200);
    expect((await call("POST", `/v2/${ep}/run`, { body: { ...tasksBody, idempotencyKey: "k2" } })).status).toBe(422);
    expect((await call("POST", `/v2/${ep}/run`, { body: { replicas: 2, input: 1, idempotencyKey: "k2" } })).status).toBe(422);
  });

  it("/status?ttl=0 and /status-sync?ttl=0 of a finished job of tasks end its retention; limit=0 on /tasks is a 400; resume of a finished job changes nothing; a long cycle's message stays short", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }] });
    await runAll(ep, id, "w1");
    expect((await call("POST", `/v2/${ep}/resume/${id}`)).status).toBe(200);
    expect((await call("GET", `/v2/${ep}/tasks/${id}?limit=0`)).status).toBe(400);
    expect((await call("GET", `/v2/${ep}/status/${id}?ttl=0`)).status).toBe(200);
    expect((await call("GET", `/v2/${ep}/status/${id}`)).status).toBe(404);
    // /status-sync?ttl= too: the answer carries the finished job, and its retention ends.
    const synced = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }] });
    await runAll(ep, synced, "w1");
    const read = await call("GET", `/v2/${ep}/status-sync/${synced}?ttl=0&wait=1000`);
    expect(await json(read)).toMatchObject({ id: synced, status: "COMPLETED" });
    expect((await call("GET", `/v2/${ep}/status/${synced}`)).status).toBe(404);
    const cycle = Array.from({ length: 5_000 }, (_, i) => ({ name: `n${i}`, input: {}, dependsOn: [`n${(i + 1) % 5_000}`] }));
    const res = await call("POST", `/v2/${ep}/run`, { body: { tasks: cycle } });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toContain("5000 tasks in all");
    expect(text.length).toBeLessThan(1_000);
  });

  it("a task that ran with errors (exit code 2): the job reads COMPLETED with error and outcome error; a final failed attempt's worker counts against it", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }, { name: "b", input: 2, maxAttempts: 1 }], policy: { retryOnError: false } });
    const first = await takeTask(ep, "w1");
    await done(ep, "w1", first!.id, first!.taskName === "a" ? { output: "partial", exitCode: 2 } : { error: "no" });
    await drive(id);
    const second = await takeTask(ep, "w2");
    await done(ep, "w2", second!.id, second!.taskName === "a" ? { output: "partial", exitCode: 2 } : { error: "no" });
    await drive(id);
    const s = await statusOf(ep, id);
    expect(s.status).toBe("FAILED");
    const tasks = (await tasksOf(ep, id)).tasks;
    const b = tasks.find((t: any) => t.name === "b");
    expect(b.failedWorkers).toEqual([b.workerId]);
    expect(tasks.find((t: any) => t.name === "a")).toMatchObject({ state: "completed", outcome: "error", exitCode: 2 });

    const ok = await submitTasks(ep, { tasks: [{ name: "x", input: 1 }] });
    const x = await takeTask(ep, "w1");
    await done(ep, "w1", x!.id, { output: "partial", exitCode: 2 });
    await drive(ok);
    expect(await statusOf(ep, ok)).toMatchObject({ status: "COMPLETED", outcome: "error", error: "task 'x' ran with errors (exit code 2)" });
  });

  it("a finished job of tasks whose webhook is still being retried stays readable past its retention (as a job does)", async () => {
    const hook = "https://receiver.example.com/down";
    interceptFetch(hook, () => new Response("down", { status: 503 }));
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }], webhook: hook });
    await runAll(ep, id, "w1");
    await drive(id);
    expect((await call("GET", `/v2/${ep}/status/${id}?ttl=0`)).status).toBe(200);
    const again = await call("GET", `/v2/${ep}/status/${id}`);
    expect(again.status).toBe(200);
    expect((await json<{ events: Array<{ state: string }> }>(await call("GET", `/v2/${ep}/webhooks/${id}`))).events[0]!.state).toBe("pending");
  });
});
