/**
 * What the fault suites share: a replayable seed, a flaky webhook receiver, time travel for
 * jobs on frozen clocks (alarms that throw an injected fault are retried by the next alarm, as
 * the platform retries them), and the Jepsen-style counters read from each job's own storage.
 */
import fc from "fast-check";
import { runInDurableObject } from "cloudflare:test";
import type { JobObject } from "../../src/jobs/job-object";
import { hasPending } from "../../src/webhooks/outbox";
import { loadJob, readHistory } from "../../src/jobs/store";
import { TERMINAL_STATES } from "../../src/jobs/states";
import { seedFrom } from "./helpers";

/** The endpoint policy both suites run under. */
export const POLICY = { executionTimeout: 30_000, ttl: 600_000, heartbeatTimeout: 10_000, maxAttempts: 3, cancelGraceMs: 5_000, retentionMs: 86_400_000 };
/** Every job must be terminal this long after its creation: TTL + attempts × timeout + slack. */
export const BOUND_MS = POLICY.ttl + POLICY.maxAttempts * POLICY.executionTimeout + 60_000;
/** Times (ms after T0) to advance through so that the webhook schedule's first eight retries all run. */
export const WEBHOOK_RETRY_TIMES = [20_000, 60_000, 200_000, 600_000, 2_400_000, 6_000_000, 14_000_000, 30_000_000];

/** The suite's seed: FAULT_SEED replays a run. */
export const SEED = seedFrom("FAULT_SEED");

/** A seeded stream of choices: `next(n)` is in [0, n). */
export function choices(seed: number, count: number): (n: number) => number {
  const draws = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { seed, numRuns: count });
  let i = 0;
  return (n) => draws[i++ % draws.length]! % n;
}

const TERMINAL: readonly string[] = TERMINAL_STATES;

export interface FaultJob<F extends string> {
  id: string;
  fate: F;
  stub: DurableObjectStub<JobObject>;
  createdAt: number;
  /** Terminal with every webhook resolved: no alarm of its can matter any more. */
  settled: boolean;
}

export { jobStubOf } from "./helpers";

/** Freezes every job's clock at T0; returns each job's creation time on its clock. */
export async function freezeAt<F extends string>(jobs: FaultJob<F>[], t0: number): Promise<void> {
  for (const j of jobs) {
    j.createdAt = await runInDurableObject(j.stub, (i: JobObject, s) => (i.clock.freeze(t0), loadJob(s.storage.sql)!.job.createdAt));
  }
}

/**
 * Moves every unsettled job's clock to T0 + ms and fires its alarm until nothing more is due
 * (six times). An alarm that throws an injected fault is counted and simply fired again, as
 * the platform retries a failed alarm; any other error is unexpected.
 */
export async function advance<F extends string>(jobs: FaultJob<F>[], t0: number, ms: number, tally: { alarmFaults: number; unexpected: string[] }): Promise<void> {
  for (const j of jobs) {
    if (j.settled) continue;
    j.settled = await runInDurableObject(j.stub, async (i: JobObject, s) => {
      i.clock.freeze(t0 + ms);
      for (let k = 0; k < 6; k++) {
        try {
          await i.alarm();
        } catch (e) {
          if (/injected fault/.test(String(e))) tally.alarmFaults++;
          else tally.unexpected.push(`${j.id}: alarm threw ${String(e)}`);
        }
      }
      const stored = loadJob(s.storage.sql);
      return stored !== null && TERMINAL.includes(stored.job.state) && stored.indexDueAt === null && !hasPending(s.storage.sql);
    });
  }
}

/** Jobs with an injected fault that never fired. */
export async function stillArmed<F extends string>(jobs: FaultJob<F>[]): Promise<string[]> {
  const left: string[] = [];
  for (const j of jobs) {
    const points = await runInDurableObject(j.stub, (i: JobObject) => i.faults.armedPoints());
    if (points.length > 0) left.push(`${j.id} (${j.fate}): ${points.join(", ")}`);
  }
  return left;
}

/** A webhook receiver that fails each event's first `failures(id)` attempts (503 or a dropped connection). */
export class FlakyReceiver {
  readonly successes = new Map<string, number>();
  private readonly failuresLeft = new Map<string, number>();

  constructor(
    readonly url: string,
    private readonly failures: (webhookId: string, body: string) => number,
  ) {}

  async answer(req: Request): Promise<Response> {
    const id = req.headers.get("webhook-id")!;
    if (!this.failuresLeft.has(id)) this.failuresLeft.set(id, this.failures(id, await req.clone().text()));
    const left = this.failuresLeft.get(id)!;
    if (left > 0) {
      this.failuresLeft.set(id, left - 1);
      if (left % 2 === 0) throw new TypeError("connection reset");
      return new Response("flaky", { status: 503 });
    }
    this.successes.set(id, (this.successes.get(id) ?? 0) + 1);
    return new Response("ok");
  }
}

export interface Counters {
  lost: number;
  duplicated: number;
  late: number;
  unexpected: string[];
  webhooksDelivered: number;
  /** webhook-ids a receiver saw succeed more than once (at-least-once delivery after a crash). */
  webhookRepeats: Set<string>;
}

/**
 * Reads every job's final record, history and webhook events: lost (never terminal),
 * duplicated (two terminal transitions, or two accepted results), late (terminal after
 * `bound` ms), a wrong final state, a webhook event not delivered exactly once.
 */
export async function count<F extends string>(
  jobs: FaultJob<F>[],
  wanted: (j: FaultJob<F>) => string,
  bound: number,
  receiver: FlakyReceiver,
  unexpected: string[],
): Promise<Counters> {
  const c: Counters = { lost: 0, duplicated: 0, late: 0, unexpected, webhooksDelivered: 0, webhookRepeats: new Set() };
  for (const j of jobs) {
    const { job, history, events } = await runInDurableObject(j.stub, (_i: JobObject, s) => ({
      job: loadJob(s.storage.sql)!.job,
      history: readHistory(s.storage.sql),
      events: s.storage.sql.exec<{ event_id: string; state: string }>("SELECT event_id, state FROM webhook_event").toArray(),
    }));
    if (!TERMINAL.includes(job.state)) c.lost++;
    const terminal = history.filter((e) => TERMINAL.includes(e.to) && e.from !== e.to);
    const accepted = history.filter((e) => e.command === "complete" || e.command === "fail");
    if (terminal.length > 1 || accepted.length > 1) c.duplicated++;
    if (job.state !== wanted(j)) unexpected.push(`${j.id} (${j.fate}): ended ${job.state}`);
    if (job.completedAt !== null && job.completedAt - j.createdAt > bound) c.late++;
    if (events.length !== 1) unexpected.push(`${j.id}: ${events.length} webhook events`);
    for (const e of events) {
      if (e.state !== "delivered") unexpected.push(`${j.id}: webhook ${e.state}`);
      else if ((receiver.successes.get(e.event_id) ?? 0) === 0) unexpected.push(`${j.id}: webhook marked delivered, never received`);
      else c.webhooksDelivered++;
    }
  }
  for (const [id, n] of receiver.successes) if (n > 1) c.webhookRepeats.add(id);
  return c;
}

/** The suite's one summary line. */
export function report(name: string, jobs: FaultJob<string>[], c: Counters, extra: Record<string, number>): string {
  const fates: Record<string, number> = {};
  for (const j of jobs) fates[j.fate] = (fates[j.fate] ?? 0) + 1;
  return (
    `${name} (seed ${SEED}): ${jobs.length} jobs ${JSON.stringify(fates)}; lost ${c.lost}, duplicated ${c.duplicated}, ` +
    `unexpected ${c.unexpected.length}, late ${c.late}; webhooks delivered ${c.webhooksDelivered}/${jobs.length}, ` +
    `repeated after a crash ${c.webhookRepeats.size}; ${Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(", ")}`
  );
}
