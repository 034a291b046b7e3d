/**
 * The submit flow of a job of tasks (issue 15, item 1) or of replicas (item 4): its object is
 * created with its tasks (checked by graphs/validate) and creates their jobs itself as they
 * become ready. With an idempotency key the object is named after (endpoint incarnation, key),
 * so repeats reach the same job.
 */
import type { EndpointConfig } from "../endpoints/config";
import { sha256Hex } from "../endpoints/keys";
import type { GraphAnswer } from "./graph-object";
import type { NewTask } from "./store";
import type { ReplicasBody, TasksBody } from "./validate";
import type { GraphRead } from "./view";
import { graphIdOf } from "../jobs/task-tell";
import { resolvePolicy } from "../jobs/policy";
import { BLOCKLIST } from "../shared/limits";

export async function submitGraph(
  env: Env,
  config: EndpointConfig,
  body: TasksBody | ReplicasBody,
  tasks: NewTask[],
  replicas: number | null,
  key: string | null,
  origin: string | null,
): Promise<GraphAnswer<GraphRead>> {
  const scope = config.generation === "" ? config.id : `${config.id}:${config.generation}`;
  const doId = key !== null ? env.GRAPH.idFromName(`idempotency:${scope}:${key}`) : env.GRAPH.newUniqueId();
  // An idempotency key already used by a plain job (another body): refused as any other body is.
  if (key !== null && (await env.JOB.get(env.JOB.idFromName(`idempotency:${scope}:${key}`)).state(config.id)) !== null) return { ok: false, code: "IDEMPOTENCY_MISMATCH" };
  // What each task's job is submitted with: the body less what belongs to the whole job.
  const { idempotencyKey: _key, webhook, ...rest } = body;
  const { tasks: _tasks, input: _input, replicas: _replicas, ...template } = rest as Partial<TasksBody & ReplicasBody>;
  const idempotency = key === null ? null : { key, bodyHash: await sha256Hex(`${replicas === null ? "tasks" : "replicas"}\n${JSON.stringify({ ...rest, webhook })}`) };
  const policy = resolvePolicy({ input: {}, ...(body.policy ? { policy: body.policy } : {}) }, config, "run");
  return env.GRAPH.get(doId).create(
    {
      id: graphIdOf(doId),
      replicas,
      replicaAttempts: body.policy?.maxAttempts ?? 1,
      executionTimeout: policy.executionTimeout,
      endpointId: config.id,
      endpointGen: config.generation,
      template: JSON.stringify(template),
      webhook: webhook ?? null,
      idempotency,
      origin,
      retentionMs: policy.retentionMs,
      blocklistThreshold: config.blocklistThreshold ?? BLOCKLIST.threshold.default,
    },
    tasks,
  );
}
