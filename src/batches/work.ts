/**
 * The batch alarm's work, a time slice at a time (BATCH.alarmSliceMs; then the alarm re-arms at
 * once, letting calls and tells in between): telling the registry whether the batch is active,
 * turning a FINALIZED batch's held requests into jobs (BATCH.createParallel at a time, at most
 * BATCH.createChunkBytes of bodies per round; each round's results recorded in one transaction,
 * so a crash resumes where it stopped and a request created twice reaches the same job), and,
 * after a cancel, cancelling the children that wait (running ones finish).
 */
import { cancelWaiting, createChildren } from "./children";
import { isTerminal, isWaiting } from "../jobs/states";
import { BATCH } from "../shared/limits";
import { publicOrigin } from "../shared/urls";
import type { Clock } from "../shared/clock";
import type { EndpointConfig } from "../endpoints/config";
import { noteOf } from "../jobs/batch-tell";
import * as commands from "./commands";
import type { BatchRecord, BatchStatus } from "./record";
import { applyNote, cancelHeld, hasHeldChildren, heldChildren, loadBatch, markCreated, saveBatch, waitingChildren } from "./store";

/** How soon failed or unfinished work is tried again. */
export const RETRY_MS = 5_000;

/** What the work loop needs of its batch object (the object passes itself). */
export interface WorkHost {
  readonly sql: SqlStorage;
  readonly clock: Clock;
  transact<T>(fn: () => T): T;
  commit(before: BatchStatus, b: BatchRecord, now: number, dirty?: boolean): void;
  recommit(): void;
  arm(b: BatchRecord | null): void;
  /** The endpoint incarnation's batch registry. */
  registryOf(b: BatchRecord): ReturnType<Env["BATCH"]["get"]>;
  /** The batch's endpoint: its config (null once deleted or re-created). */
  endpointFor(b: BatchRecord): { getConfig(): Promise<EndpointConfig | null> };
}

/** How a sweep ended: done, out of time (`more`), or to be tried again later (`later`: a failed call, or children still to hear from). */
type Sweep = "done" | "more" | "later";

export async function runWork(o: WorkHost, env: Env): Promise<void> {
  const start = loadBatch(o.sql);
  if (!start) return;
  // Due again soon unless this run finishes its work: a crash in the middle is retried.
  o.transact(() => saveBatch(o.sql, { ...start, workDueAt: o.clock.now() + RETRY_MS }));
  const outcomes: Sweep[] = [await tellRegistry(o, start)];
  const b = loadBatch(o.sql)!;
  if (b.status === "FINALIZED" && b.cancelRequestedAt !== null) outcomes.push(await cancelSweep(o, env, b));
  else if (b.status === "FINALIZED" && hasHeldChildren(o.sql)) outcomes.push(await createSweep(o, env, b));
  const after = loadBatch(o.sql);
  if (!after) return;
  const now = o.clock.now();
  const pending =
    commands.isActive(after) !== after.registryTold ||
    (after.status === "FINALIZED" && (after.cancelRequestedAt === null ? hasHeldChildren(o.sql) : hasHeldChildren(o.sql) || waitingChildren(o.sql, -1, 1).length > 0));
  const dueAt = outcomes.includes("later") ? now + RETRY_MS : outcomes.includes("more") || pending ? now : null;
  o.transact(() => {
    const fresh = loadBatch(o.sql)!;
    const next = { ...fresh, workDueAt: dueAt };
    saveBatch(o.sql, next);
    o.arm(next);
  });
}

async function tellRegistry(o: WorkHost, b: BatchRecord): Promise<Sweep> {
  const active = commands.isActive(b);
  if (active === b.registryTold) return "done";
  try {
    await o.registryOf(b).registrySetActive(b.id, active);
  } catch (e) {
    console.warn(`batch ${b.id}: the registry could not be told; retrying`, e);
    return "later";
  }
  o.transact(() => saveBatch(o.sql, { ...loadBatch(o.sql)!, registryTold: active }));
  return "done";
}

/** Turns held requests into jobs until none is left, the slice ends, or a round fails. */
async function createSweep(o: WorkHost, env: Env, b: BatchRecord): Promise<Sweep> {
  let config;
  try {
    config = await o.endpointFor(b).getConfig();
  } catch (e) {
    return creationFailed(o, `the endpoint could not be reached: ${String(e).slice(0, 200)}`);
  }
  if (config === null) {
    failBatch(o, "the endpoint was deleted before every request became a job");
    return "done";
  }
  const pub = publicOrigin(env);
  if (config.mode === "push" && !pub.ok) return creationFailed(o, pub.reason);
  const deadline = Date.now() + BATCH.alarmSliceMs;
  while (Date.now() < deadline) {
    const cur = loadBatch(o.sql);
    if (!cur || cur.status !== "FINALIZED" || cur.cancelRequestedAt !== null) return "done";
    const chunk = heldChildren(o.sql, BATCH.createParallel, BATCH.createChunkBytes);
    if (chunk.length === 0) return "done";
    const results = await createChildren(env, config, b.id, pub.ok ? pub.origin : null, chunk);
    const failure = results.find((r) => !r.ok);
    o.transact(() => {
      for (const r of results) {
        // A fresh job waits; one found further along (created before a crash) tells its own state.
        if (r.ok) markCreated(o.sql, r.idx, isWaiting(r.job.state) ? noteOf(r.job, null, 0) : null);
      }
      const fresh = loadBatch(o.sql)!;
      o.commit(fresh.status, { ...fresh, createFailingSince: failure ? (fresh.createFailingSince ?? o.clock.now()) : null }, o.clock.now());
    });
    if (failure && !failure.ok) return creationFailed(o, failure.error);
  }
  return "more";
}

/** Creating children failed: tried again later, until it has failed for BATCH.createGiveUpMs, then the batch FAILED. */
function creationFailed(o: WorkHost, why: string): Sweep {
  console.warn(`batch: creating children failed: ${why}`);
  const b = loadBatch(o.sql)!;
  const since = b.createFailingSince ?? o.clock.now();
  if (o.clock.now() - since >= BATCH.createGiveUpMs) {
    failBatch(o, `its requests could not be turned into jobs for ${BATCH.createGiveUpMs / 60_000} minutes: ${why}`);
    return "done";
  }
  if (b.createFailingSince === null) o.transact(() => saveBatch(o.sql, { ...b, createFailingSince: since }));
  return "later";
}

/** FINALIZED → FAILED: held requests are cancelled (never jobs); jobs already made go on. */
function failBatch(o: WorkHost, why: string): void {
  o.transact(() => {
    const b = loadBatch(o.sql)!;
    const r = commands.fail(b, why);
    if (!r.ok) return;
    const now = o.clock.now();
    cancelHeld(o.sql, now);
    o.commit(b.status, r.batch, now);
  });
}

/**
 * After a cancel: held requests are cancelled at once; each child that waits is cancelled by its
 * job (one call each, a chunk at a time); one found running is left to finish. Each child is
 * tried at most once per run; one that answered finished is heard from by its own tell.
 */
async function cancelSweep(o: WorkHost, env: Env, b: BatchRecord): Promise<Sweep> {
  o.transact(() => {
    if (cancelHeld(o.sql, o.clock.now()) > 0) o.recommit();
  });
  const ref = { id: b.endpointId, generation: b.endpointGen };
  const deadline = Date.now() + BATCH.alarmSliceMs;
  let after = -1;
  let failed = false;
  while (Date.now() < deadline) {
    const waiting = waitingChildren(o.sql, after, BATCH.createParallel);
    if (waiting.length === 0) break;
    after = waiting.at(-1)!.idx;
    const results = await cancelWaiting(env, ref, waiting.map((c) => c.jobId));
    o.transact(() => {
      results.forEach((r, i) => {
        if ("error" in r) {
          failed = true;
          return;
        }
        const c = r.change;
        if (c.ok) applyNote(o.sql, noteOf(c.job, null, 0));
        else if (c.code === "NOT_FOUND") {
          // Its job is gone (retention or lifespan over): it will never run.
          const child = waiting[i]!;
          applyNote(o.sql, { jobId: child.jobId, state: "CANCELLED", version: child.version + 1, startedAt: null, completedAt: o.clock.now(), error: null, output: null, outputBytes: 0 });
        } else if (!isTerminal(c.job.state)) applyNote(o.sql, noteOf(c.job, null, 0));
      });
      o.recommit();
    });
  }
  if (failed) return "later";
  if (Date.now() >= deadline) return "more";
  return waitingChildren(o.sql, -1, 1).length > 0 ? "later" : "done";
}
