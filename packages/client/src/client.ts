/**
 * The client side of an endpoint: submit, run synchronously, read, wait, follow the stream, and
 * cancel, retry or requeue. Typed from the server's OpenAPI document (schema.ts); every refusal
 * is an EdgeJobsError with the HTTP status and the server's JSON body.
 */
import { EdgeJobsError, errorOf } from "./errors.ts";
import { apiOf, must, type Connection } from "./http.ts";
import type { components } from "./schema.ts";

export type JobStatus = components["schemas"]["JobStatusBody"];
export type JobState = components["schemas"]["JobStatus"];
export type Health = components["schemas"]["EndpointHealth"];
export type SubmitRequest = components["schemas"]["RunRequest"];
/** What a submit or a job action answers: the job's id and status (and `paused: true` for a paused job). */
export type Submitted = components["schemas"]["JobRef"];

/** Everything of a submit but the input. */
export type SubmitOptions = Omit<SubmitRequest, "input">;
/** A job of tasks (issue 15): its tasks, and what the job takes beside them. */
export type TasksRequest = components["schemas"]["TasksRequest"];
export type TaskSpec = TasksRequest["tasks"][number];
export type TasksOptions = Omit<TasksRequest, "tasks">;
export type ReplicasOptions = Omit<components["schemas"]["ReplicasRequest"], "replicas" | "input">;
/** A page of a job of tasks' tasks (GET /tasks/{id}). */
export type TaskPage = { id: string; tasks: Array<Record<string, unknown>>; total: number; offset: number; limit: number; hasMore: boolean };

export type LogLine = components["schemas"]["LogLine"];
export type LogPage = components["schemas"]["LogPage"];

/** One event of a job's followed log. */
export type LogEvent = { type: "log"; line: LogLine } | { type: "end"; status: JobState; truncated: boolean } | { type: "error"; error: string };

/** A stream connection that ends sooner than this with no event is a failed one (see stream). */
const QUIET_CUT_MS = 5_000;

export const TERMINAL_STATES: readonly JobState[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

/** One event of a job's live stream. */
export type StreamEvent =
  | { type: "chunk"; seq: number; chunk: unknown }
  | { type: "status"; job: JobStatus }
  | { type: "error"; error: string };

export interface EdgeJobsClient {
  submit(input: unknown, options?: SubmitOptions): Promise<Submitted>;
  /** /runsync: waits up to `waitMs` (server default 90 s) for the job to end; answers its status either way. */
  runSync(input: unknown, options?: SubmitOptions & { waitMs?: number }): Promise<JobStatus>;
  /** A job of tasks (a DAG by `dependsOn`): each task runs as a job of its own once its dependencies completed. Read it with status, wait, tasks. */
  submitTasks(tasks: TaskSpec[], options?: TasksOptions): Promise<Submitted>;
  /** A job of replicas: `input` run by `replicas` distinct workers at once. */
  submitReplicas(replicas: number, input: unknown, options?: ReplicasOptions): Promise<Submitted>;
  /** A page of a job of tasks' tasks, in submit order (`state`: comma-separated task states). */
  tasks(id: string, options?: { offset?: number; limit?: number; state?: string }): Promise<TaskPage>;
  status(id: string): Promise<JobStatus>;
  /** Waits until the job ends (status-sync polls of up to `pollMs`), or throws after `timeoutMs`. */
  wait(id: string, options?: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal }): Promise<JobStatus>;
  cancel(id: string): Promise<Submitted>;
  retry(id: string): Promise<Submitted>;
  requeue(id: string): Promise<Submitted>;
  /** Holds a waiting job out of line (`paused: true`) until `resume`; a running job finishes, and waits paused if it is retried. */
  pause(id: string): Promise<Submitted>;
  resume(id: string): Promise<Submitted>;
  /** Makes a job waiting for its time (a delay, runAt, a retry's backoff) ready now. */
  promote(id: string): Promise<Submitted>;
  /** Moves such a job's time: `{ delay }` ms from now or `{ runAt }` (RFC 3339), one of them. */
  reschedule(id: string, when: { delay: number } | { runAt: string }): Promise<Submitted>;
  health(): Promise<Health>;
  /**
   * The job's stream as Server-Sent Events: each chunk as it arrives, then the final status.
   * Resumes after `lastEventId` (a chunk number), and reconnects by itself after a dropped
   * connection from the last chunk it saw. Reading it consumes nothing.
   */
  stream(id: string, options?: { lastEventId?: number; signal?: AbortSignal }): AsyncGenerator<StreamEvent>;
  /** A page of the job's log: up to `limit` lines after line `after`; `next` is the `after` of the next page (null: the end so far). */
  logs(id: string, options?: { after?: number; limit?: number }): Promise<LogPage>;
  /** The job's log as it is written (SSE), from after line `after`, until the job has ended (`end`); reconnects after a dropped connection. */
  followLogs(id: string, options?: { after?: number; signal?: AbortSignal }): AsyncGenerator<LogEvent>;
}

export function createClient(connection: Connection): EdgeJobsClient {
  const api = apiOf(connection);
  const ep = connection.endpointId;
  const job = (id: string) => ({ params: { path: { ep, id } } });
  const headersFor = (o?: SubmitOptions) => (o?.idempotencyKey ? { "Idempotency-Key": o.idempotencyKey } : {});
  const fetchImpl = connection.fetch ?? fetch;
  const base = connection.baseUrl.replace(/\/+$/, "");

  const client: EdgeJobsClient = {
    submit: (input, options) =>
      must(api.POST("/v2/{ep}/run", { params: { path: { ep }, header: headersFor(options) }, body: { ...options, input } }), "submit") as Promise<Submitted>,
    runSync: (input, { waitMs, ...options } = {}) =>
      must(
        api.POST("/v2/{ep}/runsync", {
          params: { path: { ep }, header: headersFor(options), query: waitMs === undefined ? {} : { wait: waitMs } },
          body: { ...options, input },
        }),
        "runsync",
      ),
    submitTasks: (tasks, options) =>
      must(api.POST("/v2/{ep}/run", { params: { path: { ep }, header: headersFor(options) }, body: { ...options, tasks } }), "submit tasks") as Promise<Submitted>,
    submitReplicas: (replicas, input, options) =>
      must(api.POST("/v2/{ep}/run", { params: { path: { ep }, header: headersFor(options) }, body: { ...options, replicas, input } }), "submit replicas") as Promise<Submitted>,
    tasks: (id, query = {}) => must(api.GET("/v2/{ep}/tasks/{id}", { params: { path: { ep, id }, query } }), `tasks of ${id}`) as Promise<TaskPage>,
    status: (id) => must(api.GET("/v2/{ep}/status/{id}", job(id)), `status of ${id}`),
    async wait(id, { timeoutMs = 10 * 60_000, pollMs = 60_000, signal } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        signal?.throwIfAborted();
        const left = deadline - Date.now();
        const wait = Math.max(1_000, Math.min(pollMs, left));
        const s = await must(api.GET("/v2/{ep}/status-sync/{id}", { params: { path: { ep, id }, query: { wait } }, signal }), `wait for ${id}`);
        if (TERMINAL_STATES.includes(s.status)) return s;
        if (Date.now() >= deadline) throw new Error(`job ${id} is still ${s.status} after ${timeoutMs} ms`);
      }
    },
    cancel: (id) => must(api.POST("/v2/{ep}/cancel/{id}", job(id)), `cancel ${id}`) as Promise<Submitted>,
    retry: (id) => must(api.POST("/v2/{ep}/retry/{id}", job(id)), `retry ${id}`) as Promise<Submitted>,
    requeue: (id) => must(api.POST("/v2/{ep}/requeue/{id}", job(id)), `requeue ${id}`) as Promise<Submitted>,
    pause: (id) => must(api.POST("/v2/{ep}/pause/{id}", job(id)), `pause ${id}`) as Promise<Submitted>,
    resume: (id) => must(api.POST("/v2/{ep}/resume/{id}", job(id)), `resume ${id}`) as Promise<Submitted>,
    promote: (id) => must(api.POST("/v2/{ep}/promote/{id}", job(id)), `promote ${id}`) as Promise<Submitted>,
    reschedule: (id, when) => must(api.POST("/v2/{ep}/reschedule/{id}", { ...job(id), body: when }), `reschedule ${id}`) as Promise<Submitted>,
    health: () => must(api.GET("/v2/{ep}/health", { params: { path: { ep } } }), "health"),
    async *stream(id, { lastEventId = 0, signal } = {}) {
      let after = lastEventId;
      let failures = 0;
      for (;;) {
        signal?.throwIfAborted();
        let res: Response;
        try {
          res = await fetchImpl(`${base}/v2/${encodeURIComponent(ep)}/stream/${encodeURIComponent(id)}`, {
            headers: { authorization: `Bearer ${connection.apiKey}`, accept: "text/event-stream", "last-event-id": String(after) },
            signal,
          });
        } catch (e) {
          if (signal?.aborted || ++failures > 5) throw e;
          await new Promise((r) => setTimeout(r, 250 * failures));
          continue;
        }
        if (!res.ok) throw await errorOf(res, `stream of ${id}`);
        let ended = false;
        let events = 0;
        let threw = false;
        const opened = Date.now();
        try {
          for await (const event of sseEvents(res.body!)) {
            events++;
            failures = 0;
            if (event.event === "chunk") {
              after = Number(event.id);
              yield { type: "chunk", seq: after, chunk: JSON.parse(event.data) as unknown };
            } else if (event.event === "status") {
              ended = true;
              yield { type: "status", job: JSON.parse(event.data) as JobStatus };
              return;
            } else if (event.event === "error") {
              ended = true;
              yield { type: "error", error: (JSON.parse(event.data) as { error: string }).error };
              return;
            }
          }
        } catch (e) {
          threw = true;
          if (signal?.aborted || ++failures > 5) throw e;
        }
        if (ended) return;
        // The connection ended without the final status: resume after the last chunk seen. One that
        // ended at once without any event counts as a failure (backing off), so a connection cut
        // again and again ends the stream with an error rather than a tight loop; a long quiet one
        // (a proxy's idle cut while the job runs) does not.
        const cutAtOnce = events === 0 && !threw && Date.now() - opened < QUIET_CUT_MS;
        if (cutAtOnce && ++failures > 5) throw new Error(`stream of ${id}: the connection kept ending at once without an event`);
        if (cutAtOnce) await new Promise((r) => setTimeout(r, 250 * failures));
      }
    },
    logs: (id, { after, limit } = {}) => must(api.GET("/v2/{ep}/logs/{id}", { params: { path: { ep, id }, query: { after, limit } } }), `logs of ${id}`) as Promise<LogPage>,
    async *followLogs(id, { after = 0, signal } = {}) {
      let failures = 0;
      for (;;) {
        signal?.throwIfAborted();
        let events = 0;
        try {
          const res = await fetchImpl(`${base}/v2/${encodeURIComponent(ep)}/logs/${encodeURIComponent(id)}?follow=1`, {
            headers: { authorization: `Bearer ${connection.apiKey}`, accept: "text/event-stream", "last-event-id": String(after) },
            signal,
          });
          if (!res.ok) throw await errorOf(res, `logs of ${id}`);
          for await (const event of sseEvents(res.body!)) {
            events++;
            failures = 0;
            const data = JSON.parse(event.data) as Record<string, unknown>;
            if (event.event === "log") {
              after = (data as LogLine).seq;
              yield { type: "log", line: data as LogLine };
            } else if (event.event === "end") {
              yield { type: "end", status: data.status as JobState, truncated: data.truncated === true };
              return;
            } else if (event.event === "error") {
              yield { type: "error", error: String(data.error) };
              return;
            }
          }
        } catch (e) {
          if (e instanceof EdgeJobsError || signal?.aborted) throw e;
          if (++failures > 5) throw e;
        }
        // Cut before `end`: resume after the last line seen; one that brought nothing counts as a failure.
        if (events === 0 && ++failures > 5) throw new Error(`logs of ${id}: the connection kept ending without an event`);
        await new Promise((r) => setTimeout(r, 250 * Math.max(1, failures)));
      }
    },
  };
  return client;
}

/** Server-Sent Events from a body (fields per the HTML standard: event, data, id; comments skipped). */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string; id: string | null }> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  let id: string | null = null;
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let nl: number;
    // A CR at the end of what came may be the first half of a CRLF: wait for the next bytes.
    while ((nl = buffer.search(/\r\n|\n|\r(?!$)/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) yield { event, data: data.join("\n"), id };
        event = "message";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
  }
}

export { EdgeJobsError };
