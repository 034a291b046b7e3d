/**
 * The world of the endpoint-level model (endpoint-model.test.ts): one real endpoint in workerd
 * driven through the Worker's HTTP routes, several jobs and workers on it, every object on one
 * simulated clock, and what the model knows and expects. The model does not re-implement the
 * scheduler: after every step it reads every job's /status (a snapshot) and derives from the
 * change what the system owes (stop signals, avoided workers, ready times); the invariants in
 * endpoint-checks.ts then hold the real system to that.
 */
import { tagKey, tagsMatch } from "../../src/shared/tags";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { JobObject } from "../../src/jobs/job-object";
import { call, createKey, json } from "./helpers";
import { LIVENESS, WORKER_BOUNDS } from "../../src/shared/limits";
import type { GraphObject } from "../../src/graphs/graph-object";
import type { MGraph } from "./endpoint-graphs";

export const HOUR = 3_600_000;
/** How long an idempotency key answers with its first job (src/jobs/record.ts IDEMPOTENCY_MS). */
export const IDEMPOTENCY_MS = 24 * HOUR;
/** A job a worker failed or lost is offered to that worker again only after this (ready-index.ts). */
export const AVOID_GRACE_MS = 30_000;
/** A ping that leaves out a job releases it only if its attempt started at least this long before. */
export const PING_RELEASE_MS = 30_000;

export const WORKERS = ["w1", "w2", "w3"] as const;
/** The tags each worker declares on its takes (issue 15, item 3; canonical): w1 none, w2 a GPU, w3 an A100 GPU. */
export const WORKER_TAGS: Record<string, string> = { w1: "", w2: "gpu", w3: "a100,gpu" };
export type WorkerId = (typeof WORKERS)[number];
export const RUNNING = ["IN_PROGRESS", "CANCELLING"];
export const WAITING = ["IN_QUEUE", "SEQUENCED"];
export const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

export interface Config {
  concurrency: number | null;
  /** Most jobs of one flow key (concurrencyKey) running at once (issue 16, item 4). */
  keyConcurrency: number | null;
  /** Shards flow keys are spread over (only without a cap: a capped endpoint has one shard). */
  flowShards?: number;
  maxAttempts: number;
  retryOnError: true;
  executionTimeout: number;
  ttl: number;
  heartbeatTimeout: number;
  retentionMs: number;
  cancelGraceMs: number;
}

export function configOf(concurrency: number | null, maxAttempts: number, flowShards = 1): Config {
  return { concurrency, keyConcurrency: 1, ...(concurrency === null ? { flowShards } : {}), maxAttempts, retryOnError: true, executionTimeout: 120_000, ttl: 600_000, heartbeatTimeout: 20_000, retentionMs: HOUR, cancelGraceMs: 5_000 };
}

/** One job's /status as the model reads it. */
export interface Snap {
  state: string;
  attempt: number;
  retries: number;
  workerId: string | null;
  reason: string | null;
  queueReason: string | null;
  ahead: string | null;
  /** "error" for a job that ended ERROR (read COMPLETED). */
  outcome: string | null;
  /** Paused (per-job pause, or its job of tasks paused): a running one finishes, and an attempt that goes back waits paused. */
  paused: boolean;
  createdAt: number;
  startedAt: number | null;
}

/** A final report: a result, a handler error, or a result with a non-zero exit code (issue 15, item 5: ERROR, read COMPLETED). */
export type FinalKind = "complete" | "fail" | "exit";

export interface MJob {
  id: string;
  /** The endpoint generation it was submitted to (a delete and re-create starts a new one). */
  gen: number;
  idemKey: string | null;
  body: Record<string, unknown>;
  seq: string | null;
  /** Its flow key (concurrencyKey), or null. */
  flow: string | null;
  /** The tags it requires (canonical; '' for none). */
  tags: string;
  priority: number;
  createdAt: number;
  snap: Snap | null;
  /** Past its retention (404), or superseded by a fresh job under the same id. */
  gone: boolean;
  terminalSince: number | null;
  /** When it last entered IN_QUEUE (the index's ready_since). */
  queuedSince: number | null;
  /** Workers that failed or lost an attempt of it (the queue passes them over for a while). */
  avoid: Set<string>;
  /** Highest attempt a take handed out. */
  handed: number;
  /** Final reports that took effect since the job last went back to the queue by retry/requeue. */
  finals: Array<{ w: string; attempt: number; kind: FinalKind }>;
  /** A task's (or replica's) job: its job of tasks and task name (issue 15); null: a plain job. */
  task: { graph: string; name: string; run: number } | null;
  /** Its policy: attempts, whether an error is retried, and how long it stays readable once ended. */
  maxAttempts: number;
  retryOnError: boolean;
  retentionMs: number;
}

export interface MWorker {
  /** The jobs it believes it runs: job id → attempt. */
  held: Map<string, number>;
  /** Jobs it took and forgot (a lost take): never reported, never listed in pings. */
  forgot: Set<string>;
  lastSeen: number | null;
  lastFinal: { job: string; attempt: number; kind: FinalKind } | null;
  /**
   * It declared its tags (WORKER_TAGS) to this endpoint generation: on a take, or a ping that
   * names them. null: it did, but was silent long enough since to have been forgotten (its
   * liveness object forgets silent workers, their tags with them; README "Worker liveness").
   */
  declared: boolean | null;
}

/** A stop the system owes a worker: its attempt was taken away while it ran it. */
export interface Owed {
  job: string;
  attempt: number;
  worker: string;
  delivered: number;
}

export interface World {
  ep: string;
  gen: number;
  cfg: Config;
  clientKey: string;
  workerKey: string;
  now: number;
  jobs: MJob[];
  workers: Record<string, MWorker>;
  owed: Owed[];
  keys: number;
  /** Jobs of tasks and of replicas submitted (issue 15; ./endpoint-graphs). */
  graphs: MGraph[];
  /**
   * Whether a worker was alive when the last snapshot read the jobs' queue reasons; null within
   * the liveness summary's lag before the last heartbeat timeout runs out (either answer is right).
   */
  aliveAtSnapshot: boolean | null;
}

const time = (iso: unknown) => (typeof iso === "string" ? Date.parse(iso) : null);

export async function createEndpointGen(w: World): Promise<void> {
  const res = await call("PUT", `/admin/endpoints/${w.ep}`, { body: w.cfg });
  expect(res.status, `create endpoint ${w.ep}`).toBe(200);
  w.clientKey = await createKey(w.ep, "client");
  w.workerKey = await createKey(w.ep, "worker");
  for (const id of WORKERS) w.workers[id] = { held: new Map(), forgot: new Set(), lastSeen: null, lastFinal: null, declared: false };
}

export const current = (w: World) => w.jobs.filter((j) => j.gen === w.gen && !j.gone);
export const isRunning = (s: Snap | null) => s !== null && RUNNING.includes(s.state);
export const isTerminal = (s: Snap | null) => s !== null && TERMINAL.includes(s.state);

/** Would the job's object have been deleted by now (retention over and its idempotency day over)? */
export function deleted(w: World, j: MJob): boolean {
  return j.terminalSince !== null && w.now >= j.terminalSince + j.retentionMs && w.now >= j.createdAt + IDEMPOTENCY_MS;
}

/**
 * Is any worker alive for the endpoint: heard from (take, ping, stop poll) within the heartbeat
 * timeout? The endpoint learns of signs of life from the worker shards' summaries, which lag by
 * less than min(LIVENESS.flushMs, heartbeat / 2): within that lag of the timeout it may say either.
 */
export function anyWorkerAlive(w: World): boolean | null {
  return aliveSince(w, Object.values(w.workers));
}

/** As anyWorkerAlive, among the workers that declared every tag of `tags` (canonical, not ''). */
export function matchingWorkerAlive(w: World, tags: string): boolean | null {
  const matching = Object.entries(w.workers).filter(([id]) => tagsMatch(tags, WORKER_TAGS[id]!)).map(([, mw]) => mw);
  const sure = aliveSince(w, matching.filter((mw) => mw.declared === true));
  if (sure !== false) return sure;
  // Workers that may have been forgotten since they declared their tags: they may count or not.
  return aliveSince(w, matching.filter((mw) => mw.declared === null)) === false ? false : null;
}

/**
 * A sign of life of `worker` now (take, ping, stop poll). Silent longer than a never-taking
 * worker is kept (WORKER_BOUNDS.forgetNeverTookMs, the shorter bound), it may have been
 * forgotten and its declared tags with it: the next take or listing ping declares them again.
 */
export function seen(w: World, worker: string): void {
  const mw = w.workers[worker]!;
  if (mw.declared === true && mw.lastSeen !== null && w.now - mw.lastSeen > WORKER_BOUNDS.forgetNeverTookMs) mw.declared = null;
  mw.lastSeen = w.now;
}

function aliveSince(w: World, workers: readonly MWorker[]): boolean | null {
  const latest = Math.max(...workers.map((mw) => mw.lastSeen ?? -Infinity));
  const lag = Math.min(LIVENESS.flushMs, w.cfg.heartbeatTimeout / 2);
  if (latest >= w.now - w.cfg.heartbeatTimeout + lag) return true;
  if (latest < w.now - w.cfg.heartbeatTimeout) return false;
  return null;
}

export async function readStatus(w: World, id: string): Promise<{ code: number; snap: Snap | null }> {
  const res = await call("GET", `/v2/${w.ep}/status/${id}`, { key: w.clientKey });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { code: res.status, snap: null };
  }
  const b = await json<Record<string, unknown>>(res);
  const q = b.queue as { reason?: string; ahead?: string } | undefined;
  return {
    code: 200,
    snap: {
      // A paused waiting job (per-job pause, a paused job of tasks' task) reads IN_QUEUE with queue.reason job_paused.
      state: b.status === "IN_QUEUE" && q?.reason === "job_paused" ? "PAUSED" : String(b.status),
      attempt: Number(b.attempt),
      retries: Number(b.retries),
      workerId: (b.workerId as string | undefined) ?? null,
      reason: (b.reason as string | undefined) ?? null,
      queueReason: q?.reason ?? null,
      ahead: q?.ahead ?? null,
      outcome: (b.outcome as string | undefined) ?? null,
      paused: b.paused === true,
      createdAt: time(b.createdAt)!,
      startedAt: time(b.startedAt),
    },
  };
}

/**
 * Reads every current job and records what changed. A running attempt that ends other than by
 * its worker's own accepted report (`ownEnds`: job ids) is owed a stop signal to that worker; a
 * job leaving a worker for the queue avoids that worker for a while.
 */
export async function snapshot(w: World, ownEnds: ReadonlySet<string> = new Set()): Promise<void> {
  w.aliveAtSnapshot = anyWorkerAlive(w);
  for (const j of current(w)) {
    const { code, snap } = await readStatus(w, j.id);
    const before = j.snap;
    if (code === 404) {
      expect(isTerminal(before) && w.now >= j.terminalSince! + j.retentionMs, `job ${j.id} (${before?.state}) answered 404 before its retention ended: lost`).toBe(true);
      j.gone = true;
      continue;
    }
    expect(code, `status of ${j.id}`).toBe(200);
    expect(isTerminal(before) && w.now >= j.terminalSince! + j.retentionMs, `job ${j.id} still readable after its retention`).toBe(false);
    const s = snap!;
    if (before?.state === "IN_PROGRESS" && before.workerId !== null && !ownEnds.has(j.id)) {
      // Still running the same attempt, not cancelled: nothing was taken away.
      const kept = s.state === "IN_PROGRESS" && s.attempt === before.attempt;
      if (!kept) w.owed.push({ job: j.id, attempt: before.attempt, worker: before.workerId, delivered: 0 });
    }
    if (before !== null && isRunning(before) && before.workerId !== null && WAITING.includes(s.state)) j.avoid.add(before.workerId);
    if (s.state === "IN_QUEUE" && before?.state !== "IN_QUEUE") j.queuedSince = w.now;
    if (TERMINAL.includes(s.state) && !isTerminal(before)) j.terminalSince = w.now;
    if (!TERMINAL.includes(s.state)) j.terminalSince = null;
    // A retry or requeue starts the job afresh: no worker avoided or blocklisted (README "Blocklists").
    if (before !== null && TERMINAL.includes(before.state) && WAITING.includes(s.state)) {
      j.finals = [];
      j.avoid.clear();
    }
    j.snap = s;
  }
}

/**
 * Invariant: every stop of a running attempt reaches the worker that held it through job-stop,
 * exactly once. Polls each worker that is owed a stop (the poll answers at once when one is
 * there) and requires exactly the owed jobs; a job then stops on the worker, if it was the attempt
 * the worker believed it ran.
 */
export async function deliverOwedStops(w: World): Promise<void> {
  const due = [...new Set(w.owed.filter((o) => o.delivered === 0).map((o) => o.worker))];
  for (const worker of due) await pollStops(w, worker);
}

export async function pollStops(w: World, worker: string): Promise<void> {
  const res = await call("GET", `/v2/${w.ep}/job-stop/${worker}`, { key: w.workerKey });
  seen(w, worker);
  const all: string[] = res.status === 200 ? (await json<{ jobsToStop: string[] }>(res)).jobsToStop : [];
  if (res.status !== 200) await res.body?.cancel();
  // Stops for jobs of a deleted endpoint generation are tolerated (harmless to a worker); any
  // other job's stop must be one the model owes.
  const got = all.filter((id) => current(w).some((j) => j.id === id));
  const pending = w.owed.filter((o) => o.worker === worker && o.delivered === 0);
  const want = [...new Set(pending.map((o) => o.job))].sort();
  const repeats = got.filter((id) => !pending.some((o) => o.job === id));
  expect(repeats, `job-stop/${worker} delivered stops nobody owed (or again): owed ${JSON.stringify(w.owed)}`).toEqual([]);
  expect([...new Set(got)].sort(), `job-stop/${worker} must deliver each taken-away attempt once: owed ${JSON.stringify(pending)}`).toEqual(want);
  for (const o of pending) {
    o.delivered += 1;
    const mw = w.workers[worker]!;
    if (mw.held.get(o.job) === o.attempt) mw.held.delete(o.job);
  }
}

/** Moves every object's clock (the shared simulated clock) and fires every alarm until nothing is due. */
export async function advance(w: World, ms: number): Promise<void> {
  w.now += ms;
  const endpoint = env.ENDPOINT.get(env.ENDPOINT.idFromName(w.ep)) as DurableObjectStub<EndpointObject>;
  await runInDurableObject(endpoint, (i: EndpointObject) => i.alarm());
  const ids = [...new Set(w.jobs.map((j) => j.id))];
  const graphs = w.graphs.filter((g) => !g.gone).map((g) => g.id);
  for (let round = 0; round < 3; round++) {
    for (const id of graphs) await runInDurableObject(graphStub(id), (o: GraphObject) => o.alarm());
    for (const id of ids) {
      const stub = env.JOB.get(env.JOB.idFromString(id)) as DurableObjectStub<JobObject>;
      await runInDurableObject(stub, async (i: JobObject) => {
        for (let k = 0; k < 4; k++) await i.alarm(); // each alarm does one due thing
      });
    }
  }
}

/** A job of tasks' object. */
export const graphStub = (id: string) => env.GRAPH.get(env.GRAPH.idFromString(id.slice("tasks_".length))) as DurableObjectStub<GraphObject>;

/** A new job in the model, as a submit answered it (a task's job: as its job of tasks created it, with its policy). */
export function newJob(w: World, id: string, body: Record<string, unknown>, idemKey: string | null, task: Pick<MJob, "task" | "maxAttempts" | "retryOnError" | "retentionMs"> | null = null): MJob {
  const j: MJob = {
    id, gen: w.gen, idemKey, body, seq: (body.sequenceKey as string | undefined) ?? null, flow: (body.concurrencyKey as string | undefined) ?? null,
    tags: tagKey(body.tags as string[] | undefined), priority: (body.priority as number | undefined) ?? 0,
    createdAt: w.now, snap: null, gone: false, terminalSince: null, queuedSince: null, avoid: new Set(), handed: 0, finals: [],
    ...(task ?? { task: null, maxAttempts: w.cfg.maxAttempts, retryOnError: true, retentionMs: w.cfg.retentionMs }),
  };
  w.jobs.push(j);
  return j;
}

/** Jobs of the current generation whose sequence has an unfinished member other than `except`. */
export function unfinishedOfKey(w: World, seq: string, except: string | null): MJob[] {
  return current(w).filter((j) => j.seq === seq && j.id !== except && j.snap !== null && !isTerminal(j.snap));
}
