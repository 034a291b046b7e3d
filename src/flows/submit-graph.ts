/**
 * The submit flow of a job of tasks (issue 15, item 1): its object is created with its tasks
 * (checked by graphs/validate) and creates their jobs itself as they become ready. With an
 * idempotency key the object is named after (endpoint incarnation, key), so repeats reach the
 * same job of tasks.
 */
import type { EndpointConfig } from "../endpoints/config";
import { sha256Hex } from "../endpoints/keys";
import type { GraphAnswer } from "../graphs/graph-object";
import type { NewTask } from "../graphs/store";
import type { CheckedTask, TasksBody } from "../graphs/validate";
import type { GraphRead } from "../graphs/view";
import { graphIdOf } from "../jobs/task-tell";
import { resolvePolicy } from "../jobs/policy";
import { BLOCKLIST } from "../shared/limits";

export async function submitGraph(env: Env, config: EndpointConfig, body: TasksBody, tasks: readonly CheckedTask[], inputs: readonly Uint8Array[], key: string | null, origin: string | null): Promise<GraphAnswer<GraphRead>> {
  const scope = config.generation === "" ? config.id : `${config.id}:${config.generation}`;
  const doId = key !== null ? env.GRAPH.idFromName(`idempotency:${scope}:${key}`) : env.GRAPH.newUniqueId();
  const { idempotencyKey: _key, webhook, tasks: _tasks, ...template } = body;
  const idempotency = key === null ? null : { key, bodyHash: await sha256Hex(`tasks\n${JSON.stringify({ ...body, idempotencyKey: undefined })}`) };
  const newTasks: NewTask[] = tasks.map((t, i) => ({ idx: t.idx, name: t.name, deps: t.deps, tags: t.tags, maxAttempts: t.maxAttempts, input: inputs[i]! }));
  return env.GRAPH.get(doId).create(
    {
      id: graphIdOf(doId),
      endpointId: config.id,
      endpointGen: config.generation,
      template: JSON.stringify(template),
      webhook: webhook ?? null,
      idempotency,
      origin,
      retentionMs: resolvePolicy({ input: {} }, config, "run").retentionMs,
      blocklistThreshold: config.blocklistThreshold ?? BLOCKLIST.threshold.default,
    },
    newTasks,
  );
}
