/**
 * A push worker for any fetch-style server (Node with a Request adapter, Deno, Bun, Cloudflare
 * Workers, Hono, …): edge-jobs POSTs each job to the worker URL, signed like a Standard Webhook
 * with the endpoint's secret, as `{"id", "attempt", "input", "urls": {"done", "stream", "log"}}`.
 * The handler verifies the signature and timestamp (401 otherwise), runs the job, and either answers
 * the result inline (`respond: "sync"`: 200 `{"output": …}` or `{"error": "…"}`) or accepts at
 * once (202, no body) and reports the result later to `urls.done` (`respond: "async"`, the
 * default). The report URLs carry a token for this job, attempt and worker: no API key is sent.
 */
import { EdgeJobsError, errorOf, messageOf } from "./errors.ts";
import { signerOf, verifySigned, WebhookVerificationError } from "./webhooks.ts";
import { jobLog } from "./job-log.ts";
import type { JobContext } from "./worker.ts";

/** A job as edge-jobs pushes it. */
export interface PushJob {
  id: string;
  attempt: number;
  input: unknown;
  /**
   * Where to report (`done`: result, failure or progress), stream (`stream`) and log (`log`,
   * absent from older servers), token included.
   */
  urls: { done: string; stream: string; log?: string };
}

export interface PushContext extends JobContext {
  /** The push's `webhook-id` (`push_<dispatch id>`): the same when a dispatch is delivered again. */
  webhookId: string;
}

/** Runs one pushed job: its return value is the output; a thrown error fails the job with its message. */
export type PushJobHandler = (job: PushJob, ctx: PushContext) => Promise<unknown>;

export interface PushHandlerOptions {
  /** The endpoint's `webhookSecret` (`whsec_…`, from `GET /admin/endpoints/{id}`): pushes are signed with it. */
  webhookSecret: string;
  handler: PushJobHandler;
  /**
   * "async" (default): answer 202 at once, report the result to `urls.done` when the handler ends.
   * "sync": answer the result inline (200); a handler still running after `syncTimeoutMs` is
   * answered 202 and reported later instead, since edge-jobs waits at most 30 s for an answer.
   */
  respond?: "sync" | "async";
  /** "sync": how long to hold the answer before falling back to a 202 and a later report (default 25 s). */
  syncTimeoutMs?: number;
  /**
   * Once accepted (202), a job must report within the endpoint's heartbeatTimeout (45 s by default)
   * and again within each after that, or it is pushed again: a progress update repeating the last
   * one (none: no output) is sent after this long without a report. Default 15 s; 0 disables.
   */
  keepAliveMs?: number;
  /** How far a push's timestamp may be from now (default 300 s). */
  toleranceSeconds?: number;
  /** Keeps the work after a 202 alive on platforms that end a request's work with its answer (Cloudflare's `ctx.waitUntil`). */
  waitUntil?(promise: Promise<unknown>): void;
  /** Another fetch for the reports (tests, proxies); the global one by default. */
  fetch?: typeof fetch;
  /** Told of reports that fail or are refused. Default: console.error. */
  onError?(error: unknown): void;
}

type ResultBody = { output: unknown } | { error: string };

interface Run {
  job: PushJob;
  controller: AbortController;
  result: Promise<ResultBody>;
  /** Answered 202: the result goes to urls.done. */
  deferred: boolean;
  finished: boolean;
  /** Stopped by the coordinator (a 409 to a report): a 409 to its result is expected. */
  stopped: boolean;
  lastReportAt: number;
  lastProgress: { output: unknown } | null;
}

const JOB_STOPPED_REASON = "the coordinator stopped the job (cancelled, timed out or lease lost)";
/** Tries of a final report on 5xx and network errors (1 s, 2 s, 4 s, … up to 10 s apart: about a minute). */
const DONE_TRIES = 9;
const SIDE_TRIES = 3;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}


function pushJobOf(payload: unknown): PushJob | null {
  if (typeof payload !== "object" || payload === null) return null;
  const p = payload as Record<string, unknown>;
  const urls = p.urls as Record<string, unknown> | undefined;
  if (typeof p.id !== "string" || typeof p.attempt !== "number" || !("input" in p)) return null;
  if (typeof urls !== "object" || urls === null || typeof urls.done !== "string" || typeof urls.stream !== "string") return null;
  const log = typeof urls.log === "string" ? { log: urls.log } : {};
  return { id: p.id, attempt: p.attempt, input: p.input, urls: { done: urls.done, stream: urls.stream, ...log } };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits `ms` or until `until` settles, whichever comes first; the timer does not outlive it. */
async function sleepUntil(ms: number, until: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), until]);
  clearTimeout(timer);
}

/** The result as it will be sent: an output that JSON cannot carry fails the job with the reason. */
function sendable(result: ResultBody): ResultBody {
  try {
    JSON.stringify(result);
    return result;
  } catch (e) {
    return { error: `the handler's output is not JSON: ${messageOf(e)}` };
  }
}

export function pushHandler(options: PushHandlerOptions): (request: Request) => Promise<Response> {
  const secret = options.webhookSecret;
  signerOf(secret); // a malformed secret fails here, not as a 401 to every push
  const respond = options.respond ?? "async";
  const syncTimeoutMs = options.syncTimeoutMs ?? 25_000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const fetchImpl = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const onError = options.onError ?? ((e: unknown) => console.error("edge-jobs push worker:", e));
  const report = (e: unknown) => {
    try {
      onError(e);
    } catch {
      // the caller's onError must not break the handler
    }
  };
  /** Runs by job and attempt: a push delivered again while its run goes on joins it. */
  const runs = new Map<string, Run>();

  async function post(url: string, text: string, what: string): Promise<void> {
    const res = await fetchImpl(url, { method: "POST", headers: { "content-type": "application/json" }, body: text });
    if (!res.ok) throw await errorOf(res, what);
    await res.body?.cancel().catch(() => undefined);
  }

  /** A progress update or a chunk; a 409 means the job was stopped: its signal aborts. */
  async function sideReport(run: Run, kind: "progress" | "stream", value: unknown): Promise<void> {
    const url = kind === "progress" ? run.job.urls.done : run.job.urls.stream;
    const text = JSON.stringify(kind === "progress" ? { status: "IN_PROGRESS", output: value } : { output: value }); // not JSON: throws to the handler
    for (let tries = 1; ; tries++) {
      try {
        await post(url, text, kind === "progress" ? `progress of job ${run.job.id}` : `stream chunk of job ${run.job.id}`);
        run.lastReportAt = Date.now();
        if (kind === "progress") run.lastProgress = { output: value };
        return;
      } catch (e) {
        if (e instanceof EdgeJobsError && e.status === 409) {
          run.stopped = true;
          run.controller.abort(new Error(JOB_STOPPED_REASON));
        }
        if ((e instanceof EdgeJobsError && e.status < 500 && e.status !== 429) || tries >= SIDE_TRIES) throw e;
        report(e);
      }
      await sleep(500 * tries);
    }
  }

  /** A job's log, posted to its `urls.log` (an older server sends none: lines are dropped). */
  const logOf = (job: PushJob) =>
    jobLog(async (lines) => {
      if (job.urls.log === undefined) return { truncated: true };
      const res = await fetchImpl(job.urls.log, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ lines }) });
      if (!res.ok) throw await errorOf(res, `log of job ${job.id}`);
      return (await res.json()) as { truncated: boolean };
    }, report);

  function start(job: PushJob, webhookId: string, key: string): Run {
    const controller = new AbortController();
    const logs = logOf(job);
    const run: Run = { job, controller, result: Promise.resolve({ output: null }), deferred: false, finished: false, stopped: false, lastReportAt: Date.now(), lastProgress: null };
    const ctx: PushContext = {
      signal: controller.signal,
      webhookId,
      progress: (output) => sideReport(run, "progress", output),
      stream: (chunk) => sideReport(run, "stream", chunk),
      log: logs.log,
    };
    // The job's log lines go before its result, inline or reported: once it has ended, later lines are refused.
    run.result = (async () => options.handler(job, ctx))()
      .then(
        (output): ResultBody => ({ output: output === undefined ? null : output }),
        (e: unknown): ResultBody => ({ error: messageOf(e) }),
      )
      .then(async (result) => (await logs.flush(), result));
    void run.result.then(() => {
      run.finished = true;
      if (!run.deferred) runs.delete(key); // answered inline
    });
    return run;
  }

  /** Keeps the lease of an accepted job while its handler runs. */
  async function keepAlive(run: Run): Promise<void> {
    if (keepAliveMs <= 0) return;
    while (!run.finished && !run.controller.signal.aborted) {
      const due = run.lastReportAt + keepAliveMs - Date.now();
      if (due > 0) {
        await sleepUntil(due, run.result);
        continue;
      }
      try {
        const body = run.lastProgress ? { status: "IN_PROGRESS", output: run.lastProgress.output } : { status: "IN_PROGRESS" };
        await post(run.job.urls.done, JSON.stringify(body), `keep-alive of job ${run.job.id}`);
        run.lastReportAt = Date.now();
      } catch (e) {
        if (e instanceof EdgeJobsError && e.status === 409) {
          run.stopped = true;
          run.controller.abort(new Error(JOB_STOPPED_REASON));
          return;
        }
        report(e);
        run.lastReportAt = Date.now() - keepAliveMs + 2_000; // try again in 2 s
      }
    }
  }

  /** The result of an accepted job, to urls.done; retried on 5xx and network errors. */
  async function reportLater(run: Run): Promise<void> {
    const alive = keepAlive(run);
    let body = sendable(await run.result);
    await alive;
    for (let tries = 1; ; tries++) {
      try {
        await post(run.job.urls.done, JSON.stringify(body), `result of job ${run.job.id}`);
        return;
      } catch (e) {
        if (e instanceof EdgeJobsError && e.status === 413 && "output" in body) {
          body = { error: `the handler's output was refused: ${e.message}` };
          continue;
        }
        if (e instanceof EdgeJobsError && e.status === 409 && run.stopped) return; // cancelled or lost: expected
        if ((e instanceof EdgeJobsError && e.status < 500 && e.status !== 429) || tries >= DONE_TRIES) {
          report(e);
          return;
        }
        report(e);
      }
      await sleep(Math.min(10_000, 1_000 * 2 ** (tries - 1)));
    }
  }

  function defer(run: Run, key: string): void {
    if (run.deferred) return;
    run.deferred = true;
    run.lastReportAt = Date.now(); // the 202 starts the lease
    const work = reportLater(run)
      .catch(report)
      .finally(() => runs.delete(key));
    options.waitUntil?.(work);
  }

  return async (request: Request): Promise<Response> => {
    if (request.method !== "POST") return json(405, { error: "edge-jobs pushes jobs with POST" }, { allow: "POST" });
    const body = await request.text();
    let payload: unknown;
    try {
      payload = verifySigned(secret, request.headers, body, { toleranceSeconds: options.toleranceSeconds });
    } catch (e) {
      if (e instanceof WebhookVerificationError) return json(401, { error: `push not verified: ${e.message}` });
      throw e;
    }
    const job = pushJobOf(payload);
    if (!job) return json(400, { error: "the push body is not a job: expected id, attempt, input and urls.done/urls.stream" });
    const webhookId = request.headers.get("webhook-id") ?? "";
    const key = `${job.id}:${job.attempt}`;
    let run = runs.get(key);
    if (!run) {
      run = start(job, webhookId, key);
      runs.set(key, run);
    }
    if (respond === "async" || run.deferred) {
      defer(run, key);
      return new Response(null, { status: 202 });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), syncTimeoutMs)));
    const result = await Promise.race([run.result, timedOut]);
    clearTimeout(timer);
    if (result !== null && !run.deferred) return json(200, sendable(result));
    defer(run, key);
    return new Response(null, { status: 202 });
  };
}
