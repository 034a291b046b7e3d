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
import { concatBytes } from "../shared/bytes";
import { Clock } from "../shared/clock";
import { Faults } from "../shared/faults";
import { applyMigrations } from "../shared/migrations";
import { WEBHOOK_TIMEOUT_MS, WebhookDelivery } from "../webhooks/delivery";
import { addEvent, hasPending, nextDue } from "../webhooks/outbox";
import type { TaskNote } from "../jobs/task-tell";
import * as commands from "./commands";
import type { GraphChange, GraphState } from "./commands";
import { taskCounts, type Bucket, type GraphRecord, type TaskCounts } from "./record";
import { GRAPH_MIGRATIONS } from "./schema";
import { applyNote, cancelUncreated, countsByBucket, dependencies, firstFailed, insertTasks, loadGraph, outputsByName, recount, requeueUnfinished, saveGraph, taskPage, workerFailures, type NewTask } from "./store";
import { graphFields, type GraphRead, type TaskView } from "./view";
import { RETRY_MS, runWork } from "./work";

export interface GraphInit {
  id: string;
  endpointId: string;
  endpointGen: string;
  template: string;
  webhook: string | null;
  idempotency: { key: string; bodyHash: string } | null;
  origin: string | null;
  retentionMs: number;
  blocklistThreshold: number;
}

export interface GraphRef {
  id: string;
  generation: string;
}

export type GraphAnswer<T> = { ok: true; value: T } | { ok: false; code: "NOT_FOUND" } | { ok: false; code: "IDEMPOTENCY_MISMATCH" } | { ok: false; code: "WRONG_STATE"; state: GraphState; message: string };

/** The job object name of a task's job for run `run` (a requeue starts a run: the task gets a fresh job). */
export const taskObjectName = (graphId: string, idx: number, run: number) => `task:${graphId}:${idx}:${run}`;

export class GraphObject extends DurableObject<Env> {
  readonly sql: SqlStorage;
  readonly clock = new Clock();
  readonly faults = new Faults();
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
    const g: GraphRecord = { ...init, want: "run", blocked: [], run: 0, version: 1, createdAt: now, startedAt: null, completedAt: null, error: null, workDueAt: now, createFailingSince: null };
    this.ctx.storage.transactionSync(() => {
      insertTasks(this.sql, tasks, (idx) => this.jobIdOf(g.id, idx, 0));
      this.commit(g, now);
    });
    return { ok: true, value: this.readNow(loadGraph(this.sql)!, false) };
  }

  /** The job as /status shows it, with the outputs by name once COMPLETED (when small enough). */
  read(ref: GraphRef): GraphRead | null {
    const g = this.loadFor(ref);
    return g ? this.readNow(g, true) : null;
  }

  cancel(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.cancel, () => cancelUncreated(this.sql));
  }

  pause(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.pause);
  }

  resume(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.resume);
  }

  requeue(ref: GraphRef): GraphAnswer<GraphRead> {
    return this.change(ref, commands.requeue, (g) => requeueUnfinished(this.sql, (idx) => this.jobIdOf(g.id, idx, g.run)));
  }

  /** A page of tasks in submit order (only those in `buckets` when given), each with its dependencies. */
  tasks(ref: GraphRef, offset: number, limit: number, buckets: Bucket[] | null): { tasks: TaskView[]; total: number } | null {
    if (!this.loadFor(ref)) return null;
    const { rows, total } = taskPage(this.sql, offset, limit, buckets);
    return { tasks: rows.map((t) => ({ ...t, ...dependencies(this.sql, t.idx), output: null })), total };
  }

  /** The copied output of the task at `idx` (null: none, or too large to copy: read it from its job). */
  taskOutput(ref: GraphRef, idx: number): Uint8Array | null {
    if (!this.loadFor(ref)) return null;
    const r = this.sql.exec<{ output: ArrayBuffer | null }>("SELECT output FROM task WHERE idx = ?", idx).toArray()[0];
    return r?.output ? new Uint8Array(r.output) : null;
  }

  // ---- its tasks' jobs ----

  /** A task's job changed (JobCore.tellAll); older notes and other runs' jobs change nothing. */
  taskChanged(name: string, note: TaskNote): void {
    this.faults.hit("graph:note");
    const g = loadGraph(this.sql);
    if (!g) return;
    const now = this.clock.now();
    this.ctx.storage.transactionSync(() => {
      const effect = applyNote(this.sql, name, note, g.blocklistThreshold);
      if (!effect.changed) return;
      let next = g;
      if (note.startedAt !== null && g.startedAt === null) next = { ...next, startedAt: note.startedAt };
      if (effect.blockedNow.length > 0) next = { ...next, blocked: [...next.blocked, ...effect.blockedNow], workDueAt: now };
      const counts = countsByBucket(this.sql);
      // A ready task (its dependency just completed) is created by the alarm.
      if ((counts.get("ready") ?? 0) > 0 && next.want === "run" && (next.workDueAt === null || next.workDueAt > now)) next = { ...next, workDueAt: now };
      this.commit(next, now, g);
    });
  }

  /** The kept counts and a recount from the rows (tests check they agree). */
  countsCheck(): { kept: Record<string, number>; recounted: Record<string, number> } {
    const kept = Object.fromEntries([...countsByBucket(this.sql)].filter(([, n]) => n !== 0));
    return { kept, recounted: Object.fromEntries(recount(this.sql)) };
  }

  // ---- alarm ----

  override async alarm(): Promise<void> {
    const g = loadGraph(this.sql);
    if (!g) return;
    const now = this.clock.now();
    if (g.completedAt !== null && now >= g.completedAt + g.retentionMs && !hasPending(this.sql)) {
      await this.ctx.storage.deleteAll();
      await this.ctx.storage.deleteAlarm();
      applyMigrations(this.ctx.storage, GRAPH_MIGRATIONS, "_migrations");
      return;
    }
    if (g.workDueAt !== null && now >= g.workDueAt) await runWork(this, this.env);
    const after = loadGraph(this.sql);
    if (after?.webhook) await this.webhooks.deliverDue(after.webhook, this.endpointFor(after));
    this.arm(loadGraph(this.sql));
  }

  // ---- machinery (./work uses these too) ----

  jobIdOf(graphId: string, idx: number, run: number): string {
    return this.env.JOB.idFromName(taskObjectName(graphId, idx, run)).toString();
  }

  loadFor(ref: GraphRef): GraphRecord | null {
    const g = loadGraph(this.sql);
    return g && g.endpointId === ref.id && g.endpointGen === ref.generation ? g : null;
  }

  stateOf(g: GraphRecord): GraphState {
    return commands.graphState(g, countsByBucket(this.sql));
  }

  /**
   * Saves `g` after a change (the caller holds the transaction): settles its state (a new version
   * when it changed; finishing stamps completedAt and the job's error, and adds the webhook
   * event), and arms the alarm.
   */
  commit(g: GraphRecord, now: number, before: GraphRecord | null = null): void {
    const counts = countsByBucket(this.sql);
    const state = commands.graphState(g, counts);
    const was = before === null ? null : commands.graphState(before, counts);
    let next = g;
    if (commands.isGraphFinished(state) && g.completedAt === null) {
      const failed = state === "FAILED" ? firstFailed(this.sql) : null;
      next = { ...next, completedAt: now, error: failed ? `task '${failed.name}' ${failed.jobState === "TIMED_OUT" ? "timed out" : "failed"}${failed.error ? `: ${failed.error}` : ""}` : null };
    }
    if (before !== null && was !== state) next = { ...next, version: next.version + 1 };
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
    const at = [g.workDueAt, g.webhook !== null ? nextDue(this.sql) : null, g.completedAt !== null ? g.completedAt + g.retentionMs : null].filter((t): t is number => t !== null);
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
    const state = commands.graphState(g, counts);
    const tasks: TaskCounts = taskCounts(counts);
    const outputs = withOutput && state === "COMPLETED" ? outputsByName(this.sql) : null;
    return { graph: g, state, tasks, blocklisted: workerFailures(this.sql, 64).filter((w) => g.blocked.includes(w.workerId)), output: outputs === null ? null : encodeOutputs(outputs), outputsTooLarge: withOutput && state === "COMPLETED" && outputs === null };
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
    }
    return { ok: true, value: this.readNow(loadGraph(this.sql)!, false) };
  }
}

const enc = new TextEncoder();

/** `{"name": <output>, …}` as bytes: each output as its worker sent it (null when it sent none). */
function encodeOutputs(outputs: Map<string, Uint8Array | null>): Uint8Array {
  const parts: Uint8Array[] = [enc.encode("{")];
  for (const [name, out] of outputs) parts.push(enc.encode(`${parts.length > 1 ? "," : ""}${JSON.stringify(name)}:`), out ?? enc.encode("null"));
  parts.push(enc.encode("}"));
  return concatBytes(parts);
}
