/**
 * A pull worker: `concurrency` slots long-poll job-take, run the handler with an AbortSignal per
 * job, and report each result to job-done fenced with the attempt (asking for the next job in the
 * same request: `?next=1`). Beside them a heartbeat lists the running jobs and a job-stop
 * long-poll aborts the handlers of jobs the coordinator stopped (cancelled, timed out, lease
 * lost). `stop()` takes nothing more, lets running jobs finish for a grace period, then aborts
 * and fails the rest.
 */
import { EdgeJobsError, messageOf } from "./errors.ts";
import { apiOf, must, type Connection } from "./http.ts";
import { jobLog, type LogLevel } from "./job-log.ts";
import type { components } from "./schema.ts";

/** A job as a worker is handed it. */
export type WorkerJob = components["schemas"]["WorkerJob"];

export interface JobContext {
  /** Aborted when the coordinator stops the job (cancel, timeout, lost lease) or the worker stops past its grace. */
  signal: AbortSignal;
  /** A progress update (`/status` shows it as the job's output while it runs). Throws an EdgeJobsError (409) once the job was stopped. */
  progress(output: unknown): Promise<void>;
  /** One stream chunk, posted as `{"output": chunk}` and read from `/stream`. Throws an EdgeJobsError (409) once the job was stopped. */
  stream(chunk: unknown): Promise<void>;
  /**
   * A line of the job's log (read with GET /v2/{ep}/logs/{id}): batched, posted within 0.5 s and
   * before the result. Never throws; lines after the job was stopped or its log filled are dropped.
   */
  log(message: unknown, level?: LogLevel): void;
}

/** Runs one job: its return value is the job's output; a thrown error fails the job with its message. */
export type JobHandler = (job: WorkerJob, ctx: JobContext) => Promise<unknown>;

export interface WorkerOptions extends Connection {
  /** The worker's id: 1-64 letters, digits, '-' or '_'; stable across restarts of the same worker. */
  workerId: string;
  handler: JobHandler;
  /** Jobs run at once (default 1). */
  concurrency?: number;
  /**
   * The worker's tags (README "Worker tags"): it is handed untagged jobs and those whose tags it
   * has all of. At most 8; sent on every take, result with next job, and ping.
   */
  tags?: readonly string[];
  /** Heartbeat interval (default 10 s; keep it well under the endpoint's heartbeatTimeout, 45 s by default). */
  pingIntervalMs?: number;
  /** How long `stop()` lets running jobs finish before aborting them (default 30 s). */
  shutdownGraceMs?: number;
  /** Ask for the next job with each result (`job-done?next=1`): one request per job instead of two (default true). */
  takeNext?: boolean;
  /** Stop gracefully on SIGTERM and SIGINT (a second signal skips the rest of the grace). Default false. */
  handleSignals?: boolean;
  /** Told of every error the loops survive: network failures, 5xx, refused reports. Default: console.error. */
  onError?(error: unknown): void;
}

export interface RunningWorker {
  /** Takes no more jobs, waits up to shutdownGraceMs for running ones, aborts and fails the rest; resolves when every loop has ended. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped (after `stop()` or a handled signal). */
  done: Promise<void>;
  /** The ids of the jobs running now (their results not yet reported). */
  running(): string[];
}

/** The error a job is failed with when the worker stops before its handler finishes. */
export const WORKER_STOPPED_ERROR = "the worker stopped before the job finished";

/** The reason a handler's signal carries when the coordinator stopped its job. */
export const JOB_STOPPED_REASON = "the coordinator stopped the job (cancelled, timed out or lease lost)";

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 10_000;
/** Tries of a progress update or a stream chunk on 5xx and network errors. */
const REPORT_TRIES = 3;
/** Tries of a final report once the grace period is over (before it, it is retried until it goes through). */
const FINAL_TRIES_AFTER_GRACE = 3;

type ResultBody = { output: unknown } | { error: string };

interface Running {
  job: WorkerJob;
  controller: AbortController;
  /** The coordinator stopped it (job-stop, or a 409 to a progress update or chunk): a 409 to its result is expected. */
  stopped: boolean;
}

/** Waits `ms`, or less when `signal` aborts (never rejects). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** 1 s, 2 s, 4 s, … up to 10 s; back to 1 s after a success. */
function backoff() {
  let next = BACKOFF_MIN_MS;
  return {
    next(): number {
      const ms = next;
      next = Math.min(BACKOFF_MAX_MS, next * 2);
      return ms;
    },
    reset(): void {
      next = BACKOFF_MIN_MS;
    },
  };
}


/** Worth another try: the server or the network failed, or it asked to slow down. */
function retryable(e: unknown): boolean {
  return !(e instanceof EdgeJobsError) || e.status >= 500 || e.status === 429;
}

function isWorkerJob(v: unknown): v is WorkerJob {
  if (typeof v !== "object" || v === null) return false;
  const j = v as Record<string, unknown>;
  return typeof j.id === "string" && typeof j.attempt === "number" && "input" in j;
}

function positive(name: string, value: number, integer: boolean): number {
  if (!(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new TypeError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
  return value;
}

export function runWorker(options: WorkerOptions): RunningWorker {
  const api = apiOf(options);
  const ep = options.endpointId;
  const w = options.workerId;
  const handler = options.handler;
  const concurrency = positive("concurrency", options.concurrency ?? 1, true);
  const pingIntervalMs = positive("pingIntervalMs", options.pingIntervalMs ?? 10_000, false);
  const shutdownGraceMs = Math.max(0, options.shutdownGraceMs ?? 30_000);
  const takeNext = options.takeNext ?? true;
  const tagQuery = options.tags !== undefined && options.tags.length > 0 ? { tags: options.tags.join(",") } : {};
  const onError = options.onError ?? ((e: unknown) => console.error(`edge-jobs worker ${w}:`, e));

  /** Jobs handed to this worker whose result is not reported yet. */
  const running = new Map<string, Running>();
  /** Requests that may be handed a job right now (takes, reports with next=1). */
  let claiming = 0;
  let stopping = false;
  /** Aborts the takes (and the slots' back-offs) when stopping. */
  const takes = new AbortController();
  /** Fires when the grace period ends: the remaining handlers are abandoned. */
  const graceOver = new AbortController();
  /** Ends the heartbeat and the job-stop poll, once every slot has ended. */
  const ending = new AbortController();

  const report = (e: unknown) => {
    try {
      onError(e);
    } catch {
      // the caller's onError must not take the loops down
    }
  };

  /** A job the worker was just handed: running from now on (synchronously, so no take can say otherwise). */
  function admit(job: WorkerJob): Running {
    const entry: Running = { job, controller: new AbortController(), stopped: false };
    running.set(job.id, entry);
    return entry;
  }

  /**
   * One take. `job_in_progress=0` makes the coordinator release every job it believes this worker
   * holds but those claimed by takes that reached it no earlier, so it is sent only by a worker of
   * one slot (its takes and reports follow one another) when nothing runs and no report with
   * next=1 may be handed a job. With several slots their takes may reach the coordinator in
   * another order than they were sent: a `0` read after another slot's take was handed a job
   * would release that job while it runs (found by CI: its result refused, the job back in the
   * queue, avoiding this worker for 30 s). Those workers send `1`; a job one of them truly lost is
   * released by the pings, which list what it runs.
   */
  async function take(): Promise<Running | null> {
    const busy = concurrency > 1 || running.size > 0 || claiming > 0;
    claiming++;
    try {
      const job = await must(
        api.GET("/v2/{ep}/job-take/{w}", { params: { path: { ep, w }, query: { job_in_progress: busy ? "1" : "0", ...tagQuery } }, signal: takes.signal }),
        "job-take",
      );
      if (job === undefined) return null; // 204: nothing came within the long-poll
      if (!isWorkerJob(job)) throw new Error(`job-take answered something that is not a job: ${JSON.stringify(job).slice(0, 200)}`);
      return admit(job);
    } finally {
      claiming--;
    }
  }

  /** Posts a progress update or a stream chunk; a refusal (409) means the job was stopped. */
  async function sideReport(entry: Running, kind: "progress" | "stream", body: unknown): Promise<void> {
    const { id, attempt } = entry.job;
    const progress = { status: "IN_PROGRESS", output: body };
    const chunk = { output: body };
    const text = JSON.stringify(kind === "progress" ? progress : chunk); // not JSON: throws to the handler, untried
    const call = () =>
      kind === "progress"
        ? api.POST("/v2/{ep}/job-done/{w}/{id}", { params: { path: { ep, w, id }, query: { attempt } }, body: progress, bodySerializer: () => text })
        : api.POST("/v2/{ep}/job-stream/{w}/{id}", { params: { path: { ep, w, id }, query: { attempt } }, body: chunk, bodySerializer: () => text });
    for (let tries = 1; ; tries++) {
      try {
        await must(call(), kind === "progress" ? `progress of job ${id}` : `stream chunk of job ${id}`);
        return;
      } catch (e) {
        if (e instanceof EdgeJobsError && e.status === 409) {
          entry.stopped = true;
          entry.controller.abort(new Error(JOB_STOPPED_REASON));
        }
        if (!retryable(e) || tries >= REPORT_TRIES) throw e;
        report(e);
      }
      await sleep(500 * tries);
    }
  }

  /** Reports a job's result; with `wantNext`, answers the next job (already admitted) or null. */
  async function reportResult(entry: Running, result: ResultBody, wantNext: boolean): Promise<Running | null> {
    const { id, attempt } = entry.job;
    let body: ResultBody = result;
    let text: string;
    try {
      text = JSON.stringify(body);
    } catch (e) {
      body = { error: `the handler's output is not JSON: ${messageOf(e)}` };
      text = JSON.stringify(body);
    }
    const wait = backoff();
    for (let tries = 1; ; tries++) {
      if (wantNext) claiming++;
      try {
        const query = wantNext ? { attempt, next: "1" as const, ...tagQuery } : { attempt };
        const answer = await must(
          api.POST("/v2/{ep}/job-done/{w}/{id}", { params: { path: { ep, w, id }, query }, body, bodySerializer: () => text }),
          `job-done of job ${id}`,
        );
        const next = answer?.next;
        return wantNext && isWorkerJob(next) ? admit(next) : null;
      } catch (e) {
        if (e instanceof EdgeJobsError && e.status === 413 && "output" in body) {
          // Too large to keep: fail the job with the reason rather than leave it to time out.
          body = { error: `the handler's output was refused: ${e.message}` };
          text = JSON.stringify(body);
          continue;
        }
        if (!retryable(e)) {
          // 409: the job was cancelled, timed out or its lease lost; nothing more to do for it.
          if (!(e instanceof EdgeJobsError && e.status === 409 && entry.stopped)) report(e);
          return null;
        }
        report(e);
        if (graceOver.signal.aborted && tries >= FINAL_TRIES_AFTER_GRACE) return null;
      } finally {
        if (wantNext) claiming--;
      }
      await sleep(wait.next());
    }
  }

  /** Runs a job and reports it; answers the next job when the report brought one. */
  async function run(entry: Running): Promise<Running | null> {
    const { job, controller } = entry;
    const logs = jobLog(
      (lines) => must(api.POST("/v2/{ep}/job-log/{w}/{id}", { params: { path: { ep, w, id: job.id }, query: { attempt: job.attempt } }, body: { lines } }), `log of job ${job.id}`),
      report,
    );
    const ctx: JobContext = {
      signal: controller.signal,
      progress: (output) => sideReport(entry, "progress", output),
      stream: (chunk) => sideReport(entry, "stream", chunk),
      log: logs.log,
    };
    const handled: Promise<ResultBody> = (async () => handler(job, ctx))().then(
      (output) => ({ output: output === undefined ? null : output }),
      (e: unknown) => ({ error: messageOf(e) }),
    );
    // Past the grace period the handler is abandoned: its signal aborts, the job fails at once.
    let onGraceOver: (() => void) | undefined;
    const abandoned = new Promise<null>((resolve) => {
      onGraceOver = () => resolve(null);
      if (graceOver.signal.aborted) resolve(null);
      else graceOver.signal.addEventListener("abort", onGraceOver, { once: true });
    });
    let result = await Promise.race([handled, abandoned]);
    graceOver.signal.removeEventListener("abort", onGraceOver!);
    if (result === null) {
      controller.abort(new Error(WORKER_STOPPED_ERROR));
      result = { error: WORKER_STOPPED_ERROR };
    }
    // The job's lines go before its result: once it has ended, later lines are refused.
    await logs.flush();
    try {
      return await reportResult(entry, result, takeNext && !stopping);
    } finally {
      if (running.get(job.id) === entry) running.delete(job.id);
    }
  }

  async function slot(): Promise<void> {
    const wait = backoff();
    let next: Running | null = null;
    for (;;) {
      let entry = next;
      next = null;
      if (entry === null) {
        if (stopping) return;
        try {
          entry = await take();
          wait.reset();
        } catch (e) {
          if (stopping) return;
          report(e);
          await sleep(wait.next(), takes.signal);
          continue;
        }
        if (entry === null) continue; // re-poll at once
      }
      try {
        next = await run(entry);
      } catch (e) {
        report(e); // not expected: run reports its own failures
      }
    }
  }

  async function heartbeat(): Promise<void> {
    while (!ending.signal.aborted) {
      try {
        // `job_id` always says what runs, empty when nothing does: a ping without it says nothing about jobs.
        const job_id = [...running.keys()].join(",");
        await must(api.GET("/v2/{ep}/ping/{w}", { params: { path: { ep, w }, query: { job_id, ...tagQuery } }, signal: ending.signal }), "ping");
      } catch (e) {
        if (ending.signal.aborted) return;
        report(e);
      }
      await sleep(pingIntervalMs, ending.signal);
    }
  }

  async function stopPoll(): Promise<void> {
    const wait = backoff();
    while (!ending.signal.aborted) {
      try {
        const answer = await must(api.GET("/v2/{ep}/job-stop/{w}", { params: { path: { ep, w } }, signal: ending.signal }), "job-stop");
        wait.reset();
        for (const id of answer?.jobsToStop ?? []) {
          const entry = running.get(id);
          if (!entry || entry.controller.signal.aborted) continue;
          entry.stopped = true;
          entry.controller.abort(new Error(JOB_STOPPED_REASON));
        }
      } catch (e) {
        if (ending.signal.aborted) return;
        report(e);
        await sleep(wait.next(), ending.signal);
      }
    }
  }

  const slots = Array.from({ length: concurrency }, () => slot());
  const side = [heartbeat(), stopPoll()];

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopped: Promise<void> | null = null;

  const abandonNow = () => {
    if (!graceOver.signal.aborted) graceOver.abort();
  };

  function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      takes.abort();
      const timer = setTimeout(abandonNow, shutdownGraceMs);
      await Promise.allSettled(slots);
      clearTimeout(timer);
      ending.abort();
      await Promise.allSettled(side);
      removeSignalHandlers();
      resolveDone();
    })();
    return stopped;
  }

  const onSignal = () => {
    if (stopping) abandonNow();
    else void stop();
  };
  const proc = options.handleSignals ? globalThis.process : undefined;
  proc?.on("SIGTERM", onSignal);
  proc?.on("SIGINT", onSignal);
  function removeSignalHandlers(): void {
    proc?.off("SIGTERM", onSignal);
    proc?.off("SIGINT", onSignal);
  }

  return { stop, done, running: () => [...running.keys()] };
}
