/**
 * One Durable Object per job of tasks (issue 15, item 1), named by its id (`tasks_<object id>`).
 * It holds the tasks, their dependencies and inputs, the last state each task's job told, the
 * counts by bucket and the job's webhook outbox. A task becomes a job of its own (flows/submit,
 * named per job, task and run) when every task it depends on completed; its job tells this
 * object of each change (JobCore.tellAll → taskChanged). Every change runs in one storage
 * transaction that settles the job's state (./commands graphState) and arms the alarm; the alarm
 * creates ready tasks' jobs and tells their jobs of a pause, resume, cancel or blocklist (./work),
 * delivers the webhook and, after retention, deletes the job.
 */
import { DurableObject } from "cloudflare:workers";
import { Waiters } from "../shared/waiters";
import { GRAPH } from "../shared/limits";
import { Clock } from "../shared/clock";
import { Faults } from "../shared/faults";
import { applyMigrations } from "../shared/migrations";
import { WEBHOOK_TIMEOUT_MS, WebhookDelivery, webhookLog, type WebhookLogEntry } from "../webhooks/delivery";
import { addEvent, hasPending, nextDue, redeliver, type Redelivery } from "../webhooks/outbox";
import type { TaskNote } from "../jobs/task-tell";
import * as commands from "./commands";
import type { GraphChange, GraphState } from "./commands";
import { taskCounts, taskObjectName, type Bucket, type GraphRecord, type TaskCounts } from "./record";
import { GRAPH_MIGRATIONS } from "./schema";
import { applyNote, cancelUncreated, countsByBucket, dependencies, dueToTell, exitCodes, firstErrored, firstFailed, insertTasks, loadGraph, outputsByName, recount, renewTask, requeueUnfinished, saveGraph, startedCount, taskByName, taskOutput, taskPage, workerFailures, type NewTask } from "./store";
import { encodeList, encodeOutputs, graphFields, type GraphRead, type TaskView } from "./view";
import { RETRY_MS, runWork } from "./work";

/** What a submit fixes of a job of tasks or replicas (the rest of its record starts empty). */
export type GraphInit = Pick<
  GraphRecord,
  "id" | "replicas" | "replicaAttempts" | "executionTimeout" | "endpointId" | "endpointGen" | "template" | "webhook" | "idempotency" | "origin" | "retentionMs" | "blocklistThreshold"
>;

export interface GraphRef {
  id: string;
  generation: string;
}

export type GraphAnswer<T> = { ok: true; value: T } | { ok: false; code: "NOT_FOUND" } | { ok: false; code: "IDEMPOTENCY_MISMATCH" } | { ok: false; code: "WRONG_STATE"; state: GraphState; message: string };

export class GraphObject extends DurableObject<Env> {
  readonly sql: SqlStorage;
  readonly clock = new Clock();
  readonly faults = new Faults();
  /** Reads waiting for the job to finish (/status-sync). */
  private readonly finished = new Waiters<null, null>();
  readonly webhooks: WebhookDelivery;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.webhooks = new WebhookDelivery(this.sql, this.clock, this.faults, Number(env.WEBHOOK_TIMEOUT_MS ?? WEBHOOK_TIMEOUT_MS), RETRY_MS);
    ctx.blockConcurrencyWhile(async () => {
      applyMigrations(ctx.storage, GRAPH_MIGRATIONS, "_migrations");
    });
  }

  // ---- client calls ----

  /** Creates the job with its tasks (checked by graphs/validate); a repeat with the same key and body answers the first. */
  create(init: GraphInit, tasks: NewTask[]): GraphAnswer<GraphRead> {
    const existing = loadGraph(this.sql);
    if (existing) {
      const same = existing.endpointId === init.endpointId && existing.idempotency?.bodyHash === init.idempotency?.bodyHash;
      return same ? { ok: true, value: this.readNow(existing, false) } : { ok: false, code: "IDEMPOTENCY_MISMATCH" };
    }
    const now = this.clock.now();
    const g: GraphRecord = {
      ...init,
      want: "run",
      blocked: [],
      busy: [],
      deadlineAt: null,
      stopping: null,
      run: 0,
      version: 1,
      createdAt: now,
      startedAt: null,
      completedAt: null,
      error: null,
      workDueAt: now,
      createFailingSince: null,
    };
    this.ctx.storage.transactionSync(() => {
      insertTasks(this.sql, tasks, (idx) => this.jobIdOf(g.id, idx, 0));
      this.commit(g, now);
    });
    return { ok: true, value: this.readNow(loadGraph(this.sql)!, false) };
  }

  /** Whether a job lives here (an idempotency key of a plain job must not be one of a job of tasks). */
  exists(): boolean {
    return loadGraph(this.sql) !== null;
  }

  /** The job as /status shows it, with the outputs by name once COMPLETED (when small enough). */
  read(ref: GraphRef): GraphRead | null {
    const g = this.loadFor(ref);
    return g ? this.readNow(g, true) : null;
  }

  /**
   * /status and /status-sync: waits up to `waitMs` for the job to finish (woken by the commit that
   * finishes it), reads it, then shortens a finished job's retention to `keepForMs` from now
   * (RunPod's `?ttl=`; null: unchanged). One call, as JobObject.readThenKeep.
   */
  async readFinished(ref: GraphRef, waitMs: number, keepForMs: number | null = null): Promise<GraphRead | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const g = this.loadFor(ref);
      if (!g) return null;
      if (commands.isGraphFinished(this.stateOf(g)) || Date.now() >= deadline) {
        const read = this.readNow(g, true);
        if (keepForMs !== null) this.keepFor(ref, keepForMs);
        return read;
      }
      await this.finished.wait(null, deadline - Date.now(), null);
    }
  }

  /** RunPod's `/status?ttl=`: a finished job stays readable at most `keepForMs` more (it only ever shortens). */
  private keepFor(ref: GraphRef, keepForMs: number): void {
    const g = this.loadFor(ref);
    if (!g || g.completedAt === null) return;
    const now = this.clock.now();
    const retentionMs = Math.max(0, Math.min(g.retentionMs, now + keepForMs - g.completedAt));
    if (retentionMs === g.retentionMs) return;
    this.ctx.storage.transactionSync(() => {
      const next = { ...g, retentionMs };
      saveGraph(this.sql, next);
      this.arm(next);
    });
  }

  cancel(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.cancel);
  }

  pause(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.pause);
  }

  resume(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.resume);
  }

  requeue(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.requeue, (g) => requeueUnfinished(this.sql, (idx) => this.jobIdOf(g.id, idx, g.run), g.replicas !== null));
  }

  /**
   * A page of tasks in submit order (only those in `buckets` when given), each with its
   * dependencies and its copied output, while the page's copied outputs total at most
   * GRAPH.pageOutputBytes (with the one that passes it: the listing stops there). A task whose
   * output was too large to copy has none here: it is read from the task's job.
   */
  tasks(ref: GraphRef, offset: number, limit: number, buckets: Bucket[] | null): { tasks: TaskView[]; total: number } | null {
    if (!this.loadFor(ref)) return null;
    const { rows, total } = taskPage(this.sql, offset, limit, buckets);
    let bytes = 0;
    const tasks = rows.map((t) => {
      const copied = t.bucket === "completed" && t.outputBytes > 0 && t.outputBytes <= GRAPH.outputCopyBytes && bytes <= GRAPH.pageOutputBytes;
      const output = copied ? taskOutput(this.sql, t.idx) : null;
      bytes += output?.byteLength ?? 0;
      return { ...t, ...dependencies(this.sql, t.idx), output };
    });
    return { tasks, total };
  }

  /** The job's webhook event (when it finished) with every delivery attempt; null for an unknown job. */
  webhookLog(ref: GraphRef): WebhookLogEntry[] | null {
    return this.loadFor(ref) ? webhookLog(this.sql) : null;
  }

  /** Sends the latest webhook event again at once (same webhook-id), within its rate limit; null for an unknown job. */
  redeliverWebhook(ref: GraphRef): Redelivery | null {
    const g = this.loadFor(ref);
    if (!g) return null;
    const r = redeliver(this.sql, this.clock.now());
    if (r.ok) this.arm(g);
    return r;
  }

  // ---- its tasks' jobs ----

  /** A task's job changed (JobCore.tellAll); older notes and other runs' jobs change nothing. */
  taskChanged(name: string, note: TaskNote): void {
    this.faults.hit("graph:note");
    this.noteTask(name, note);
    this.kick();
  }

  /** A task's note, from its job or from a tell's answer (./work): the one place notes take effect. */
  noteTask(name: string, note: TaskNote): void {
    const g = loadGraph(this.sql);
    if (!g) return;
    const now = this.clock.now();
    this.ctx.storage.transactionSync(() => {
      const effect = applyNote(this.sql, name, note, g.blocklistThreshold);
      if (!effect.changed) return;
      let next = g;
      if (note.startedAt !== null && g.startedAt === null) next = { ...next, startedAt: note.startedAt };
      if (effect.blockedNow.length > 0) next = { ...next, blocked: [...next.blocked, ...effect.blockedNow], workDueAt: now };
      if (g.replicas !== null) next = this.replicaNoted(next, name, note, now);
      const counts = countsByBucket(this.sql);
      // A ready task (its dependency just completed, or room in the queue as one started) is created by the alarm.
      if ((counts.get("ready") ?? 0) > 0 && next.want === "run" && (next.workDueAt === null || next.workDueAt > now)) next = { ...next, workDueAt: now };
      this.commit(next, now, g);
    });
  }

  /** The kept counts and a recount from the rows (tests check they agree). */
  countsCheck(): { kept: Record<string, number>; recounted: Record<string, number> } {
    const kept = Object.fromEntries([...countsByBucket(this.sql)].filter(([, n]) => n !== 0));
    return { kept, recounted: Object.fromEntries(recount(this.sql)) };
  }

  /**
   * A job of replicas heard from one: a worker that took it is busy for the others (told by the
   * alarm); the first start sets the whole job's deadline; a replica that failed for good stops the others.
   */
  private replicaNoted(g: GraphRecord, name: string, note: TaskNote, now: number): GraphRecord {
    let next = g;
    // Any note of a started attempt names its worker (the IN_PROGRESS one may be lost or overtaken: found in review).
    if (note.workerId !== null && note.startedAt !== null && !next.busy.includes(note.workerId)) next = { ...next, busy: [...next.busy, note.workerId], workDueAt: now };
    if (note.startedAt !== null && next.deadlineAt === null) next = { ...next, deadlineAt: note.startedAt + next.executionTimeout };
    if (note.state === "FAILED" || note.state === "TIMED_OUT") {
      const t = taskByName(this.sql, name);
      if (t && t.jobId === note.jobId && t.bucket === "failed" && next.want !== "cancel" && t.tries + 1 < next.replicaAttempts) {
        // Its policy allows another: a fresh job for this replica, on another worker.
        renewTask(this.sql, t.idx, this.jobIdOf(next.id, t.idx, next.run, t.tries + 1));
        return { ...next, workDueAt: now };
      }
      const stopped = commands.replicaFailed(next);
      if (stopped !== next) next = { ...stopped, workDueAt: now };
    }
    return next;
  }

  // ---- alarm ----

  override async alarm(): Promise<void> {
    const g0 = loadGraph(this.sql);
    if (!g0) return;
    const now = this.clock.now();
    // A job of replicas whose time ran out stops them (its alarm is armed for its deadline).
    const late = commands.timedOut(g0, now, commands.isGraphFinished(this.stateOf(g0)));
    if (late !== g0) this.ctx.storage.transactionSync(() => this.commit({ ...late, workDueAt: now }, now, g0));
    const g = loadGraph(this.sql)!;
    if (g.completedAt !== null && now >= g.completedAt + g.retentionMs && !hasPending(this.sql)) {
      await this.ctx.storage.deleteAll();
      await this.ctx.storage.deleteAlarm();
      applyMigrations(this.ctx.storage, GRAPH_MIGRATIONS, "_migrations");
      return;
    }
    if (g.workDueAt !== null && now >= g.workDueAt) await this.work();
    const after = loadGraph(this.sql);
    if (after?.webhook) await this.webhooks.deliverDue(after.webhook, this.endpointFor(after));
    this.arm(loadGraph(this.sql));
  }

  // ---- machinery (./work uses these too) ----

  /** Whether ./work runs now (one run at a time), and whether another was asked for meanwhile. */
  private working = false;
  private workAgain = false;

  /**
   * Runs the work that is due (./work) now, not when the alarm comes (a local alarm set for now
   * fires ~0.2-0.5 s later: a replica waited that long for the one before it). One run at a time;
   * a call during a run makes it run once more. The alarm stays armed as the backstop.
   */
  async work(): Promise<void> {
    if (this.working) {
      this.workAgain = true;
      return;
    }
    this.working = true;
    try {
      do {
        this.workAgain = false;
        await runWork(this, this.env);
      } while (this.workAgain);
    } finally {
      this.working = false;
      this.arm(loadGraph(this.sql));
    }
  }

  /** Starts due work without waiting for it (a note's answer must not wait on creating jobs). */
  private kick(): void {
    const g = loadGraph(this.sql);
    if (g?.workDueAt !== null && g?.workDueAt !== undefined && g.workDueAt <= this.clock.now()) {
      this.ctx.waitUntil(this.work().catch((e) => console.warn(`job of tasks ${g.id}: its work failed; the alarm retries`, e)));
    }
  }

  jobIdOf(graphId: string, idx: number, run: number, tries = 0): string {
    return this.env.JOB.idFromName(taskObjectName(graphId, idx, run, tries)).toString();
  }

  /** The job, if it belongs to the endpoint incarnation `ref` names and its retention is not over (the alarm deletes it then). */
  loadFor(ref: GraphRef): GraphRecord | null {
    const g = loadGraph(this.sql);
    if (!g || g.endpointId !== ref.id || g.endpointGen !== ref.generation) return null;
    // Retention waits while a webhook event is pending, as a job's does (found from outside).
    return g.completedAt !== null && this.clock.now() >= g.completedAt + g.retentionMs && !hasPending(this.sql) ? null : g;
  }

  stateOf(g: GraphRecord): GraphState {
    return commands.graphState(g, countsByBucket(this.sql), g.replicas === null ? 0 : startedCount(this.sql));
  }

  /**
   * Saves `g` after a change (the caller holds the transaction): settles its state (a new version
   * when it changed; finishing stamps completedAt and the job's error, and adds the webhook
   * event), and arms the alarm.
   */
  commit(g: GraphRecord, now: number, before: GraphRecord | null = null): void {
    // Cancelled (by its user, a failed replica, its timeout, its endpoint's deletion): tasks not handed out are canceled at once.
    if (before !== null && before.want !== "cancel" && g.want === "cancel") cancelUncreated(this.sql);
    const counts = countsByBucket(this.sql);
    const started = g.replicas === null ? 0 : startedCount(this.sql);
    const state = commands.graphState(g, counts, started);
    const was = before === null ? null : commands.graphState(before, counts, started);
    let next = g;
    if (commands.isGraphFinished(state) && g.completedAt === null) {
      const failed = state === "FAILED" ? firstFailed(this.sql) : null;
      // COMPLETED with a task that ran with errors reads as a job with errors does (outcome "error").
      const errored = state === "COMPLETED" ? firstErrored(this.sql) : null;
      const plainCode = (e: { error: string | null; exitCode: number | null }) => e.error === null || e.error === `exit code ${e.exitCode}`;
      const error = failed
        ? `task '${failed.name}' ${failed.jobState === "TIMED_OUT" ? "timed out" : "failed"}${failed.error ? `: ${failed.error}` : ""}`
        : errored
          ? `task '${errored.name}' ran with errors${errored.exitCode !== null ? ` (exit code ${errored.exitCode})` : ""}${plainCode(errored) ? "" : `: ${errored.error}`}`
          : state === "TIMED_OUT" || state === "FAILED"
            ? g.error
            : null;
      next = { ...next, completedAt: now, error };
      this.finished.resolveAll(null);
    }
    if (before !== null && was !== state) next = { ...next, version: next.version + 1 };
    // What its tasks' jobs hear changed: each unfinished one is due to be told (./work tellSweep).
    if (before !== null && (before.want !== next.want || before.blocked.length !== next.blocked.length || before.busy.length !== next.busy.length)) dueToTell(this.sql);
    saveGraph(this.sql, next);
    if (commands.isGraphFinished(state) && g.completedAt === null && next.webhook !== null) {
      const read = this.readNow(next, true);
      addEvent(this.sql, next.id, graphFields(read), read.output, now);
    }
    this.arm(next);
  }

  transact<T>(fn: () => T): T {
    return this.ctx.storage.transactionSync(fn);
  }

  arm(g: GraphRecord | null): void {
    if (!g) return;
    const deadline = g.completedAt === null && g.stopping === null ? g.deadlineAt : null;
    const at = [g.workDueAt, g.webhook !== null ? nextDue(this.sql) : null, g.completedAt !== null ? g.completedAt + g.retentionMs : null, deadline].filter((t): t is number => t !== null);
    if (at.length === 0) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(this.clock.toWall(Math.min(...at)));
  }

  endpointFor(g: GraphRecord) {
    const stub = this.env.ENDPOINT.get(this.env.ENDPOINT.idFromName(g.endpointId));
    return {
      getConfig: async () => {
        const c = await stub.getConfig();
        return c !== null && c.generation === g.endpointGen ? c : null;
      },
      webhookOutcome: (ok: boolean) => stub.webhookOutcome(ok),
    };
  }

  private readNow(g: GraphRecord, withOutput: boolean): GraphRead {
    const counts = countsByBucket(this.sql);
    const started = g.replicas === null ? 0 : startedCount(this.sql);
    const state = commands.graphState(g, counts, started);
    const tasks: TaskCounts = taskCounts(counts);
    const outputs = withOutput && state === "COMPLETED" ? outputsByName(this.sql) : null;
    const output = outputs === null ? null : g.replicas === null ? encodeOutputs(outputs) : encodeList([...outputs.values()]);
    return {
      graph: g,
      state,
      tasks,
      replicas: g.replicas === null ? null : { requested: g.replicas, started, completed: tasks.completed, exitCodes: exitCodes(this.sql) },
      blocklisted: workerFailures(this.sql, 64).filter((w) => g.blocked.includes(w.workerId)),
      output,
      outputsTooLarge: withOutput && state === "COMPLETED" && outputs === null,
    };
  }

  /** Runs a user command; `effect` (in the same transaction) changes the tasks it implies. */
  private change(ref: GraphRef, command: (g: GraphRecord, state: GraphState) => GraphChange, effect?: (g: GraphRecord) => void): GraphAnswer<GraphRead> {
    const g = this.loadFor(ref);
    if (!g) return { ok: false, code: "NOT_FOUND" };
    const state = this.stateOf(g);
    const r = command(g, state);
    if (!r.ok) return { ok: false, code: "WRONG_STATE", state, message: r.message };
    if (r.graph !== g) {
      const now = this.clock.now();
      this.ctx.storage.transactionSync(() => {
        effect?.(r.graph);
        this.commit({ ...r.graph, workDueAt: now }, now, g);
      });
      this.kick();
    }
    return { ok: true, value: this.readNow(loadGraph(this.sql)!, false) };
  }
}
