/**
 * Jobs of tasks over the client API (issue 15, item 1), and of replicas (item 4): /run with
 * `tasks` or `replicas` creates one; /status,
 * /status-sync, /cancel, /pause, /resume, /requeue and /retry with its id (`tasks_…`) act on it
 * (client.ts hands such ids here); GET /tasks/{id} lists its tasks.
 */
import type { Context, Hono } from "hono";
import type { EndpointConfig } from "../../endpoints/config";
import type { GraphAnswer, GraphRef } from "../../graphs/graph-object";
import { BUCKETS, type Bucket } from "../../graphs/record";
import { checkTasks, NOT_WITH_REPLICAS, NOT_WITH_TASKS, ReplicasBody, TasksBody } from "../../graphs/validate";
import type { NewTask } from "../../graphs/store";
import { graphFields, taskFields, type GraphRead } from "../../graphs/view";
import { submitGraph } from "../../graphs/submit";
import { jobAt, refOf } from "../../flows/stubs";
import { graphObjectId } from "../../jobs/task-tell";
import { clientStatus } from "../../jobs/states";
import { GRAPH, PAYLOAD } from "../../shared/limits";
import { publicOrigin } from "../../shared/urls";
import { requireEndpoint } from "../auth";
import { jsonBytes, validate } from "../body";
import { ApiError, badRequest, conflict } from "../errors";
import { jsonResponse, renderWithOutput } from "../render";
import { endpointParam, jobNotFound } from "../stubs";
import type { AppEnv } from "../types";
import type { Redelivery } from "../../webhooks/outbox";
import { route } from "./route";
import * as docs from "../openapi/docs-client";
import { submitTagsRefusal } from "../../flows/submit";
import { checkOutboundUrl } from "../../shared/urls";

/** Whether a job id names a job of tasks. */
export const isGraphId = (id: string | undefined) => id !== undefined && id.startsWith("tasks_");

/** Whether a /run body asks for a job of tasks or of replicas. */
export const asksFor = (raw: unknown, field: "tasks" | "replicas") => raw !== null && typeof raw === "object" && !Array.isArray(raw) && Object.hasOwn(raw, field);

/** /run with `tasks`: checks the body and its tasks, then creates the job of tasks. */
export async function submitTasks(c: Context<AppEnv>, config: EndpointConfig, raw: unknown, key: string | null, sync: boolean): Promise<Response> {
  if (sync) throw badRequest("a job of tasks is submitted with /run, not /runsync (its tasks run as workers free up; poll /status or /status-sync)");
  const given = NOT_WITH_TASKS.filter((k) => Object.hasOwn(raw as object, k));
  if (given.length > 0) throw badRequest(`${given.join(", ")} cannot go with tasks: each task has its own input, and its job is handed out as soon as it is ready`);
  const body = validate(TasksBody, raw);
  const checked = checkTasks(body);
  if (!checked.ok) throw badRequest(checked.message);
  const bad = submitTagsRefusal(body, config) ?? checked.tasks.map((t, i) => (t.tags === null ? null : submitTagsRefusal({ tags: t.tags }, config, `tasks[${i}].`))).find((m) => m !== null) ?? null;
  if (bad !== null) throw badRequest(bad);
  checkWebhook(body.webhook, config);
  const tasks: NewTask[] = checked.tasks.map((t, i) => ({ idx: t.idx, name: t.name, deps: t.deps, tags: t.tags, maxAttempts: t.maxAttempts, input: jsonBytes(t.input, `tasks[${i}].input`) }));
  return created(c, await submitGraph(c.env, config, body, tasks, null, key, originOf(c)), key);
}

/** /run with `replicas` (issue 15, item 4): one input, handed to that many distinct workers. */
export async function submitReplicas(c: Context<AppEnv>, config: EndpointConfig, raw: unknown, key: string | null, sync: boolean): Promise<Response> {
  if (sync) throw badRequest("a job of replicas is submitted with /run, not /runsync (its replicas start as workers take them; poll /status or /status-sync)");
  const given = NOT_WITH_REPLICAS.filter((k) => Object.hasOwn(raw as object, k));
  if (given.length > 0) throw badRequest(`${given.join(", ")} cannot go with replicas: a job of replicas runs one input on that many workers at once`);
  const body = validate(ReplicasBody, raw);
  const bad = submitTagsRefusal(body, config);
  if (bad !== null) throw badRequest(bad);
  if (config.mode === "push") throw badRequest("replicas: this endpoint pushes its jobs; replicas run on distinct pulling workers (job-take)");
  checkWebhook(body.webhook, config);
  const input = jsonBytes(body.input, "input");
  if (input.byteLength > PAYLOAD.runInputBytes) throw badRequest(`input is ${input.byteLength} bytes; the limit on /run is ${PAYLOAD.runInputBytes}`);
  const tasks: NewTask[] = Array.from({ length: body.replicas }, (_, i) => ({ idx: i, name: `replica-${i}`, deps: [], tags: null, maxAttempts: null, input: i === 0 ? input : null }));
  return created(c, await submitGraph(c.env, config, body, tasks, body.replicas, key, originOf(c)), key);
}

function originOf(c: Context<AppEnv>): string | null {
  const pub = publicOrigin(c.env);
  return pub.ok ? pub.origin : null;
}

function checkWebhook(webhook: string | undefined, config: EndpointConfig): void {
  if (webhook === undefined) return;
  const check = checkOutboundUrl(webhook, config.allowPrivateUrls);
  if (!check.ok) throw badRequest(`webhook: ${check.reason}`);
}

function created(c: Context<AppEnv>, r: GraphAnswer<GraphRead>, key: string | null): Response {
  if (!r.ok) {
    if (r.code === "IDEMPOTENCY_MISMATCH") throw new ApiError(422, `idempotency key '${key}' was already used with a different request body`, { idempotencyKey: key });
    throw new ApiError(500, "the job could not be created");
  }
  return c.json({ id: r.value.graph.id, status: clientStatus(r.value.state), tasks: r.value.tasks, ...(r.value.replicas ? { replicas: { requested: r.value.replicas.requested, started: r.value.replicas.started, completed: r.value.replicas.completed } } : {}) });
}

/** The endpoint and job of tasks in the path, the caller authorized as a client; 404 for an id that is not one. */
export async function graphFor(c: Context<AppEnv>) {
  const endpointId = endpointParam(c);
  const config = await requireEndpoint(c, endpointId, "client");
  const ref: GraphRef = { id: config.id, generation: config.generation };
  const id = c.req.param("id")!;
  const doId = graphObjectId(c.env, id);
  if (doId === null) throw jobNotFound(id);
  return { config, ref, id, stub: c.env.GRAPH.get(doId) };
}

/** POST /webhooks/{id}/redeliver of a job of tasks. */
export async function redeliverGraph(c: Context<AppEnv>): Promise<Redelivery | null> {
  const { ref, stub } = await graphFor(c);
  return stub.redeliverWebhook(ref);
}

function statusResponse(r: GraphRead): Response {
  return jsonResponse(renderWithOutput(graphFields(r), r.output));
}

/** /status and /status-sync (`waitMs`: how long to wait for the job to finish). */
export async function graphStatus(c: Context<AppEnv>, waitMs = 0, keepForMs: number | null = null): Promise<Response> {
  const { ref, id, stub } = await graphFor(c);
  // /status-sync waits in the object, woken when the job finishes; one call with `?ttl=` too.
  const r = waitMs > 0 || keepForMs !== null ? await stub.readFinished(ref, waitMs, keepForMs) : await stub.read(ref);
  if (r === null) throw jobNotFound(id);
  return statusResponse(r);
}

/** A user's command on a job of tasks; /retry is its requeue. */
export async function graphAction(c: Context<AppEnv>, action: "cancel" | "pause" | "resume" | "requeue" | "retry"): Promise<Response> {
  const { ref, id, stub } = await graphFor(c);
  const r: GraphAnswer<GraphRead> = await stub[action === "retry" ? "requeue" : action](ref);
  if (r.ok) return c.json({ id, status: clientStatus(r.value.state), ...(r.value.graph.want === "pause" ? { paused: true } : {}), tasks: r.value.tasks });
  if (r.code === "WRONG_STATE") throw conflict(r.message, { id, status: clientStatus(r.state) });
  throw jobNotFound(id);
}

const dec = new TextDecoder();

/** `?state=queued,failed`: Flamenco's task states (queued covers tasks waiting on others). */
function bucketsParam(raw: string | undefined): Bucket[] | null {
  if (raw === undefined || raw === "") return null;
  const out = new Set<Bucket>();
  for (const s of raw.split(",")) {
    if (s === "queued") ["blocked", "ready", "queued"].forEach((b) => out.add(b as Bucket));
    else if ((BUCKETS as readonly string[]).includes(s) && s !== "blocked" && s !== "ready") out.add(s as Bucket);
    else throw badRequest(`state: '${s.slice(0, 40)}' is not a task state; use queued, soft-failed, paused, active, completed, failed or canceled (comma-separated)`);
  }
  return [...out];
}

function intParam(c: Context<AppEnv>, name: string, dflt: number, min: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === "") return dflt;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, got '${raw.slice(0, 40)}'`);
  return Number(raw);
}

export function taskRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/tasks/:id", {
    GET: async (c) => {
      const offset = intParam(c, "offset", 0, 0, GRAPH.tasks);
      const limit = intParam(c, "limit", GRAPH.page.default, 1, GRAPH.page.max);
      const buckets = bucketsParam(c.req.query("state"));
      const { config, ref, id, stub } = await graphFor(c);
      const page = await stub.tasks(ref, offset, limit, buckets);
      if (page === null) throw jobNotFound(id);
      // Outputs: copied ones come with the page, larger ones from the task's job, within the page's budget.
      const parts: string[] = [];
      let bytes = 0;
      for (const t of page.tasks) {
        let out: Uint8Array | null = null;
        if (t.outputBytes > 0 && t.bucket === "completed") {
          out = t.outputBytes <= GRAPH.outputCopyBytes ? t.output : await readJobOutput(c.env, config, t.jobId);
          bytes += out?.byteLength ?? 0;
          if (bytes > GRAPH.pageOutputBytes && parts.length > 0) break;
        }
        const fields = JSON.stringify(taskFields(t));
        parts.push(out === null ? fields : `${fields.slice(0, -1)},"output":${dec.decode(out)}}`);
      }
      const shown = parts.length;
      return new Response(`{"id":${JSON.stringify(id)},"tasks":[${parts.join(",")}],"total":${page.total},"offset":${offset},"limit":${limit},"hasMore":${offset + shown < page.total}}`, {
        headers: { "content-type": "application/json" },
      });
    },
  }, { GET: docs.TASKS_DOC });
}

async function readJobOutput(env: Env, config: EndpointConfig, jobId: string): Promise<Uint8Array | null> {
  const r = await jobAt(env, jobId).read(refOf(config));
  return r.ok ? r.output : null;
}

