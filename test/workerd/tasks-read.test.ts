/**
 * Reading a job of tasks (issue 15, item 1): GET /tasks/{id} lists each task's output (copied ones
 * come with the page from the job of tasks, larger ones from the task's job), and /status-sync
 * waits in the job of tasks' object until the job finishes (woken by the note that finishes it).
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, done, json } from "./helpers";
import { submitTasks } from "./tasks-kit";
import { GRAPH } from "../../src/shared/limits";

async function takeAll(ep: string, worker: string): Promise<Array<{ id: string; taskName: string }>> {
  const res = await call("GET", `/v2/${ep}/job-take-batch/${worker}?batch_size=10&job_in_progress=0`);
  expect(res.status).toBe(200);
  return json(res);
}

describe("reading a job of tasks", () => {
  it("GET /tasks lists every output: copied ones with the page, one too large to copy from its job", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "small", input: 1 }, { name: "none", input: 2 }, { name: "big", input: 3 }] });
    const big = "x".repeat(GRAPH.outputCopyBytes + 1_000);
    const handed = await takeAll(ep, "w1");
    expect(handed.map((h) => h.taskName).sort()).toEqual(["big", "none", "small"]);
    for (const h of handed) {
      const body = h.taskName === "small" ? { output: { s: "S" } } : h.taskName === "big" ? { output: big } : {};
      expect((await done(ep, "w1", h.id, body)).status).toBe(200);
    }
    const page = await json<{ tasks: Array<{ name: string; state: string; output?: unknown }>; total: number; hasMore: boolean }>(await call("GET", `/v2/${ep}/tasks/${id}`));
    expect(page.tasks.map((t) => [t.name, t.state])).toEqual([["small", "completed"], ["none", "completed"], ["big", "completed"]]);
    expect(page.tasks[0]!.output).toEqual({ s: "S" });
    expect(page.tasks[1]!.output).toBeUndefined();
    expect(page.tasks[2]!.output).toBe(big);
    expect({ total: page.total, hasMore: page.hasMore }).toEqual({ total: 3, hasMore: false });
    // One task a page: the big one alone.
    const one = await json<{ tasks: Array<{ name: string; output?: unknown }>; hasMore: boolean }>(await call("GET", `/v2/${ep}/tasks/${id}?offset=2&limit=1`));
    expect(one.tasks.map((t) => [t.name, t.output === big])).toEqual([["big", true]]);
    // /status: the outputs together pass what it copies: it points to GET /tasks.
    const s = await json<Record<string, unknown>>(await call("GET", `/v2/${ep}/status/${id}`));
    expect(s).toMatchObject({ status: "COMPLETED", tasks: { completed: 3 } });
    expect(s.output).toBeUndefined();
    expect(String(s.outputs)).toContain(`/tasks/${id}`);
  });

  it("/status-sync waits in the object and answers as soon as the job finishes; without a finish, when its wait is over", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const id = await submitTasks(ep, { tasks: [{ name: "a", input: 1 }] });
    const t0 = Date.now();
    const short = await json<{ status: string }>(await call("GET", `/v2/${ep}/status-sync/${id}?wait=400`));
    expect(short.status).toBe("IN_QUEUE");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    const waiting = call("GET", `/v2/${ep}/status-sync/${id}?wait=20000`).then(async (r) => ({ at: Date.now(), body: await json<Record<string, unknown>>(r) }));
    const [h] = await takeAll(ep, "w1");
    await new Promise((r) => setTimeout(r, 200));
    const sent = Date.now();
    expect((await done(ep, "w1", h!.id, { output: "A" })).status).toBe(200);
    const got = await waiting;
    expect(got.body).toMatchObject({ id, status: "COMPLETED", output: { a: "A" } });
    expect(got.at - sent, "answered when the job finished, not at the end of its wait").toBeLessThan(5_000);
  });
});
