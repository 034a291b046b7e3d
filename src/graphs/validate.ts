/**
 * A job of tasks' submit body (issue 15, item 1): its schema, and the checks of its tasks beyond
 * it: unique names, known dependencies, no cycle, the limits in GRAPH. Returns the tasks in
 * submit order with their dependencies as places, or why not (a 400's message).
 */
import { z } from "zod";
import { SubmitBody } from "../jobs/policy";
import { GRAPH, LIMITS, WORKER_TAGS } from "../shared/limits";
import { tagKey, tagsOf, tagsRefusal } from "../shared/tags";

const TaskSpec = z
  .object({
    name: z.string().min(1).max(GRAPH.nameChars).meta({ pattern: GRAPH.namePattern.source, description: `1-${GRAPH.nameChars} letters, digits, '_', '-', '.' or ':', unique in its job.` }),
    input: SubmitBody.shape.input,
    dependsOn: z.array(z.string().max(GRAPH.nameChars)).max(GRAPH.dependsOn).meta({ description: "Names of the tasks that must complete before this one is handed out." }).optional(),
    tags: SubmitBody.shape.tags.meta({ description: "Tags a worker must have declared to be handed this task (default: the job's tags)." }),
    maxAttempts: z.number().int().min(LIMITS.maxAttempts.min).max(LIMITS.maxAttempts.max).meta({ description: `Attempts of this task in all (default: the job's policy.maxAttempts, else ${GRAPH.attempts}).` }).optional(),
  })
  .strict();

/** What a job of tasks or of replicas takes of a plain submit's fields (each task's job is submitted with them). */
const SHARED = SubmitBody.pick({ webhook: true, policy: true, priority: true, tags: true, idempotencyKey: true });

export const TasksBody = z
  .object({ tasks: z.array(TaskSpec).min(1).max(GRAPH.tasks), ...SHARED.shape })
  .strict();
export type TasksBody = z.infer<typeof TasksBody>;

/** /run with `replicas` (issue 15, item 4): one input, run by N distinct workers at once. */
export const ReplicasBody = z
  .object({
    replicas: z.number().int().min(1).max(GRAPH.replicas).meta({ description: `How many distinct workers run the job at once (1-${GRAPH.replicas}).` }),
    input: SubmitBody.shape.input,
    ...SHARED.shape,
  })
  .strict();
export type ReplicasBody = z.infer<typeof ReplicasBody>;

/** Submit fields a job of replicas does not take (its replicas start as workers take them, all at once). */
export const NOT_WITH_REPLICAS = ["tasks", "delay", "runAt", "sequenceKey", "concurrencyKey", "rateLimitKey", "s3Config", "webhookV2"] as const;

/** Submit fields a job of tasks does not take (each task is a job of its own, placed and timed as it becomes ready). */
export const NOT_WITH_TASKS = ["input", "replicas", "delay", "runAt", "sequenceKey", "concurrencyKey", "rateLimitKey", "s3Config", "webhookV2"] as const;

export interface CheckedTask {
  idx: number;
  name: string;
  deps: number[];
  /** Canonical, or null: the job's. */
  tags: string[] | null;
  maxAttempts: number | null;
  input: unknown;
}

export type GraphCheck = { ok: true; tasks: CheckedTask[] } | { ok: false; message: string };

/** Checks the tasks of a schema-valid body: names, tags, dependencies, cycles. */
export function checkTasks(body: TasksBody): GraphCheck {
  const places = new Map<string, number>();
  for (const [i, t] of body.tasks.entries()) {
    if (!GRAPH.namePattern.test(t.name)) return { ok: false, message: `tasks[${i}].name '${t.name.slice(0, 80)}' is not a valid task name: use 1-${GRAPH.nameChars} letters, digits, '_', '-', '.' or ':', starting with a letter, digit or '_'` };
    if (places.has(t.name)) return { ok: false, message: `tasks[${i}].name '${t.name}' is already the name of tasks[${places.get(t.name)}]: task names are unique in a job` };
    places.set(t.name, i);
    if (t.tags !== undefined) {
      const bad = tagsRefusal(t.tags, WORKER_TAGS.perJob, `tasks[${i}].tags`);
      if (bad !== null) return { ok: false, message: bad };
    }
  }
  let edges = 0;
  const tasks: CheckedTask[] = [];
  for (const [i, t] of body.tasks.entries()) {
    const deps = new Set<number>();
    for (const d of t.dependsOn ?? []) {
      const at = places.get(d);
      if (at === undefined) return { ok: false, message: `tasks[${i}].dependsOn names '${d.slice(0, 80)}', which is not a task of this job` };
      if (at === i) return { ok: false, message: `tasks[${i}] ('${t.name}') depends on itself` };
      deps.add(at);
    }
    edges += deps.size;
    if (edges > GRAPH.edges) return { ok: false, message: `the tasks have more than ${GRAPH.edges} dependencies in all` };
    tasks.push({ idx: i, name: t.name, deps: [...deps], tags: t.tags === undefined ? null : tagsOf(tagKey(t.tags)), maxAttempts: t.maxAttempts ?? null, input: t.input });
  }
  const cycle = cycleOf(tasks);
  if (cycle !== null) {
    // A long cycle is named by its first tasks (a 10,000-long one would be a 100 KB message: found from outside).
    const shown = cycle.length > 12 ? [...cycle.slice(0, 10).map((i) => `'${tasks[i]!.name}'`), `… (${cycle.length - 1} tasks in all)`] : cycle.map((i) => `'${tasks[i]!.name}'`);
    return { ok: false, message: `the tasks' dependencies form a cycle: ${shown.join(" → ")}` };
  }
  return { ok: true, tasks };
}

/** A cycle among the tasks (places, its first repeated at the end), or null: none (Kahn's algorithm, then a walk). */
export function cycleOf(tasks: readonly Pick<CheckedTask, "deps">[]): number[] | null {
  const left = tasks.map((t) => t.deps.length);
  const dependents: number[][] = tasks.map(() => []);
  tasks.forEach((t, i) => t.deps.forEach((d) => dependents[d]!.push(i)));
  const ready = left.flatMap((n, i) => (n === 0 ? [i] : []));
  let done = 0;
  while (ready.length > 0) {
    const i = ready.pop()!;
    done++;
    for (const j of dependents[i]!) if (--left[j]! === 0) ready.push(j);
  }
  if (done === tasks.length) return null;
  // Every task left waits on another one left: walking back along dependencies must repeat.
  let at = left.findIndex((n) => n > 0);
  const seen = new Map<number, number>();
  const path: number[] = [];
  while (!seen.has(at)) {
    seen.set(at, path.length);
    path.push(at);
    at = tasks[at]!.deps.find((d) => left[d]! > 0)!;
  }
  return [...path.slice(seen.get(at)!), at].reverse();
}
