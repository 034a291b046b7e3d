/** What the tests of jobs of tasks share: the object of a job of tasks, running its work, submitting one. */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { expect } from "vitest";
import { graphObjectId } from "../../src/jobs/task-tell";
import { call, json } from "./helpers";

export function graphStub(id: string) {
  return env.GRAPH.get(graphObjectId(env, id)!);
}

/** Runs the job of tasks' alarm until it has no work due (its ready tasks' jobs created, its tells sent). */
export async function drive(id: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (!(await runDurableObjectAlarm(graphStub(id)))) return;
  }
}

/** Submits a job of tasks (or of replicas) and runs its work. */
export async function submitTasks(ep: string, body: Record<string, unknown>): Promise<string> {
  const res = await call("POST", `/v2/${ep}/run`, { body });
  expect(res.status, await res.clone().text()).toBe(200);
  const id = (await json<{ id: string }>(res)).id;
  await drive(id);
  return id;
}
