/**
 * Model-based tests of the job state machine (fast-check `commands`): random sequences of claims,
 * progress, results, failures, cancels, retries, requeues, lost workers and jumps in time (with
 * alarms fired, several times over) run against a real job object in workerd and against a small
 * pure model written from SPEC §4 and the issues, not from the code. A second property drives the
 * push path: queue deliveries and redeliveries of dispatch messages (claims under a token, a copy
 * while the push may be in flight, acceptance, refusal, dead letter) with late and repeated
 * reports. After every step the stored job must match the model. Failing sequences print a seed
 * and path to replay; keep them as regression cases below.
 */
import fc from "fast-check";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PUSH_IN_FLIGHT_MS } from "../../src/jobs/push-commands";
import type { JobObject } from "../../src/jobs/job-object";
import { loadJob } from "../../src/jobs/store";
import { createEndpoint, seedFrom, submit } from "./helpers";

const POLICY = { executionTimeout: 30_000, ttl: 60_000, heartbeatTimeout: 10_000, maxAttempts: 2, cancelGraceMs: 5_000, retentionMs: 100_000 };
type State = "PAUSED" | "SCHEDULED" | "IN_QUEUE" | "IN_PROGRESS" | "CANCELLING" | "COMPLETED" | "ERROR" | "FAILED" | "CANCELLED" | "TIMED_OUT" | "DELETED";
const TERMINAL: State[] = ["COMPLETED", "ERROR", "FAILED", "CANCELLED", "TIMED_OUT"];

interface Model {
  now: number;
  state: State;
  attempt: number;
  retries: number;
  worker: string | null;
  reason: string | null;
  ttlAt: number;
  execAt: number;
  leaseAt: number;
  cancelAt: number;
  purgeAt: number;
  /** The last accepted final report, whose exact repeat answers ok. */
  last: { worker: string; attempt: number; kind: "complete" | "fail" | "error" } | null;
  /** The push dispatch the job last went out under. */
  dispatch: { token: string; accepted: boolean; claimedAt: number } | null;
  /** The TTL is the job's lifespan (issue 14): at ttlAt the job is gone, whatever its state. */
  lifespan: boolean;
  /** When a SCHEDULED job becomes ready (issue 16). */
  readyAt: number;
  /** The job's fixed retry backoff (ms; 0: none): a lost lease with attempts left waits SCHEDULED that long. */
  backoff: number;
  /** Paused by its user (issue 15): waiting, it is PAUSED; running, it would go back PAUSED. */
  paused: boolean;
}

interface Real {
  ep: string;
  id: string;
  stub: DurableObjectStub<JobObject>;
}

const running = (m: Model) => m.state === "IN_PROGRESS" || m.state === "CANCELLING";

function claim(m: Model, worker: string): void {
  m.state = "IN_PROGRESS";
  m.attempt += 1;
  m.worker = worker;
  m.execAt = m.now + POLICY.executionTimeout;
  m.leaseAt = m.now + POLICY.heartbeatTimeout;
}

function end(m: Model, state: State, reason: string | null = null): void {
  m.state = state;
  m.paused = false;
  m.reason = reason;
  m.purgeAt = m.now + POLICY.retentionMs;
}

/** Back in the queue, or SCHEDULED for `delay` ms first (a retry's delay, a backoff); a fresh queue TTL counts from when it is ready. */
function backToQueue(m: Model, freshTtl: boolean, delay = 0): void {
  m.state = m.paused ? "PAUSED" : delay > 0 ? "SCHEDULED" : "IN_QUEUE";
  m.readyAt = m.now + delay;
  m.retries += 1;
  m.worker = null;
  m.reason = null;
  if (freshTtl) {
    if (!m.lifespan) m.ttlAt = m.readyAt + POLICY.ttl;
    m.last = null;
    m.dispatch = null;
  }
}

function loseLease(m: Model): void {
  if (m.state === "CANCELLING") return end(m, "CANCELLED", "cancelled");
  if (m.attempt < POLICY.maxAttempts) {
    backToQueue(m, false, m.backoff);
    // The next attempt is a new dispatch: the lost one's message was done with.
    m.dispatch = null;
    return;
  }
  end(m, "TIMED_OUT", "heartbeat_lost");
}

/** Applies every deadline that is due at m.now, one at a time, in the order the SPEC gives. */
function runDeadlines(m: Model): void {
  for (let guard = 0; guard < 10; guard++) {
    if (m.lifespan && m.state !== "DELETED" && m.ttlAt <= m.now) m.state = "DELETED";
    else if ((m.state === "IN_QUEUE" || m.state === "SCHEDULED" || m.state === "PAUSED") && m.ttlAt <= m.now) end(m, "TIMED_OUT", "ttl");
    else if (m.state === "SCHEDULED" && m.readyAt <= m.now) {
      m.state = "IN_QUEUE";
      m.dispatch = null;
    }
    else if (m.state === "IN_PROGRESS" && m.execAt <= m.now) end(m, "TIMED_OUT", "execution_timeout");
    else if (m.state === "IN_PROGRESS" && m.leaseAt <= m.now) loseLease(m); // the worker was never heard from
    else if (m.state === "CANCELLING" && (m.cancelAt <= m.now || m.leaseAt <= m.now)) end(m, "CANCELLED", "cancelled");
    else if (TERMINAL.includes(m.state) && m.purgeAt <= m.now) m.state = "DELETED";
    else return;
  }
}

async function check(m: Model, r: Real): Promise<void> {
  const read = await r.stub.read(r.ep);
  if (m.state === "DELETED") {
    expect(read.ok).toBe(false);
    return;
  }
  expect(read.ok).toBe(true);
  if (!read.ok) return;
  expect({ state: read.job.state, attempt: read.job.attempt, retries: read.job.retries, paused: read.job.paused }).toEqual({ state: m.state, attempt: m.attempt, retries: m.retries, paused: m.paused });
  if (running(m)) expect(read.job.workerId).toBe(m.worker);
  if (m.state === "TIMED_OUT") expect(read.job.reason).toBe(m.reason);
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Claim implements Cmd {
  constructor(readonly w: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.claim(r.ep, this.w);
    expect(res.ok).toBe(m.state === "IN_QUEUE");
    if (m.state === "IN_QUEUE") claim(m, this.w);
    await check(m, r);
  }
  toString = () => `claim(${this.w})`;
}

/** A worker's report; "error" is a result with a non-zero exit code (issue 15, item 5: ERROR, never retried). */
type ReportKind = "progress" | "complete" | "fail" | "error";
class Report implements Cmd {
  constructor(readonly w: string, readonly kind: ReportKind, readonly attempt: number | null) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const report =
      this.kind === "fail" ? { kind: "fail" as const, error: "boom" }
      : this.kind === "error" ? { kind: "error" as const, error: "exit code 3", exitCode: 3 }
      : { kind: this.kind };
    const res = await r.stub.report(r.ep, { workerId: this.w, attempt: this.attempt }, report, new TextEncoder().encode('"out"'));
    const holds = running(m) && m.worker === this.w && (this.attempt === null || this.attempt === m.attempt);
    if (this.kind === "progress") {
      const ok = holds && m.state === "IN_PROGRESS";
      expect(res.ok).toBe(ok);
      if (ok) m.leaseAt = m.now + POLICY.heartbeatTimeout;
    } else {
      const repeat = m.last !== null && m.last.kind === this.kind && m.last.worker === this.w && (this.attempt === null || this.attempt === m.last.attempt);
      expect(res.ok, `repeat=${repeat} holds=${holds}`).toBe(repeat || holds);
      if (!repeat && holds) {
        if (m.state === "CANCELLING") end(m, "CANCELLED", "cancelled");
        else {
          m.last = { worker: this.w, attempt: m.attempt, kind: this.kind };
          end(m, this.kind === "complete" ? "COMPLETED" : this.kind === "error" ? "ERROR" : "FAILED");
        }
      }
    }
    await check(m, r);
  }
  toString = () => `${this.kind}(${this.w}, attempt ${this.attempt})`;
}

class Cancel implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.cancel(r.ep);
    const ok = m.state !== "COMPLETED" && m.state !== "ERROR" && m.state !== "FAILED" && m.state !== "TIMED_OUT" && m.state !== "DELETED";
    expect(res.ok).toBe(ok);
    if (m.state === "IN_QUEUE" || m.state === "SCHEDULED" || m.state === "PAUSED") end(m, "CANCELLED", "cancelled");
    else if (m.state === "IN_PROGRESS") {
      m.state = "CANCELLING";
      m.cancelAt = m.now + POLICY.cancelGraceMs;
    }
    await check(m, r);
  }
  toString = () => "cancel";
}

class Again implements Cmd {
  constructor(readonly how: "retry" | "requeue", readonly delay = 0) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = this.how === "retry" ? await r.stub.retry(r.ep, this.delay) : await r.stub.requeue(r.ep, this.delay);
    const allowed = this.how === "retry" ? ["FAILED", "TIMED_OUT"] : TERMINAL;
    // A delay that ends at or past a lifespan's end is refused: the job could never run (README
    // "Delayed jobs"; the model lacked this rule: seed 151286 found it).
    const pastLifespan = m.lifespan && this.delay > 0 && m.now + this.delay >= m.ttlAt;
    const ok = allowed.includes(m.state) && !pastLifespan;
    expect(res.ok).toBe(ok);
    if (ok) backToQueue(m, true, this.delay);
    await check(m, r);
  }
  toString = () => `${this.how}(delay ${this.delay})`;
}

/** Per-job pause (issue 15): a waiting job stops being handed out, a running one finishes its attempt. */
class Pause implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.pause(r.ep);
    const ok = ["IN_QUEUE", "SCHEDULED", "PAUSED", "IN_PROGRESS"].includes(m.state);
    expect(res.ok).toBe(ok);
    if (ok) {
      m.paused = true;
      if (m.state !== "IN_PROGRESS") m.state = "PAUSED";
    }
    await check(m, r);
  }
  toString = () => "pause";
}

class Resume implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.resume(r.ep);
    expect(res.ok).toBe(m.state !== "DELETED");
    if (m.state === "PAUSED") {
      // Back in line, or SCHEDULED while its delay or backoff has not run out; a new dispatch either way.
      m.state = m.readyAt > m.now ? "SCHEDULED" : "IN_QUEUE";
      m.dispatch = null;
    }
    if (m.state !== "DELETED") m.paused = false;
    await check(m, r);
  }
  toString = () => "resume";
}

class WorkerRestarted implements Cmd {
  constructor(readonly w: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.loseLease(r.ep, this.w, "restarted");
    const ok = running(m) && m.worker === this.w;
    expect(res.ok).toBe(ok);
    if (ok) loseLease(m);
    await check(m, r);
  }
  toString = () => `lost(${this.w})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    m.now += this.ms;
    runDeadlines(m);
    await runInDurableObject(r.stub, async (instance: JobObject) => {
      instance.clock.freeze(m.now);
      for (let i = 0; i < 8; i++) await instance.alarm(); // each alarm does what is due, one step at a time
    });
    await check(m, r);
  }
  toString = () => `advance(${this.ms} ms)`;
}

/** The consumer's claim under a message's token: IN_QUEUE claims; a copy waits out a push in flight. */
class Deliver implements Cmd {
  constructor(readonly token: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.pushClaim(r.ep, this.token, PUSH_WORKER);
    const d = m.dispatch;
    const holds = m.state === "IN_PROGRESS" && d !== null && d.token === this.token && !d.accepted;
    if (m.state === "IN_QUEUE") {
      expect(res.ok).toBe(true);
      claim(m, PUSH_WORKER);
      m.dispatch = { token: this.token, accepted: false, claimedAt: m.now };
    } else if (holds && m.now - d.claimedAt >= PUSH_IN_FLIGHT_MS) {
      expect(res.ok).toBe(true); // the claiming consumer is gone: this copy pushes again
      d.claimedAt = m.now;
    } else {
      expect(res.ok).toBe(false);
      if (holds && !res.ok) expect(res.code).toBe("PUSH_IN_FLIGHT");
    }
    await check(m, r);
  }
  toString = () => `deliver(${this.token})`;
}

/** The worker URL's answer to a push under the token: accepted (2xx, no result) or refused. */
class PushAnswer implements Cmd {
  constructor(readonly token: string, readonly accepted: boolean) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = this.accepted ? await r.stub.pushAccepted(r.ep, this.token, null) : await r.stub.pushFailed(r.ep, this.token, "HTTP 503");
    const d = m.dispatch;
    const holds = m.state === "IN_PROGRESS" && d !== null && d.token === this.token && !d.accepted;
    expect(res.ok).toBe(holds);
    if (holds && this.accepted) d.accepted = true;
    else if (holds) backToQueue(m, false);
    await check(m, r);
  }
  toString = () => `${this.accepted ? "accepted" : "refused"}(${this.token})`;
}

/** The queue gave up on the token's message: a job waiting for its retry, or still pushing it, fails. */
class DeadLetter implements Cmd {
  constructor(readonly token: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.stub.deadLetter(r.ep, this.token);
    const d = m.dispatch;
    const mine = d !== null && d.token === this.token;
    const ok = mine && (m.state === "IN_QUEUE" || (m.state === "IN_PROGRESS" && !d.accepted));
    expect(res.ok).toBe(ok);
    if (ok) end(m, "FAILED");
    await check(m, r);
  }
  toString = () => `deadLetter(${this.token})`;
}

const PUSH_WORKER = "push-0";
const worker = fc.constantFrom("w1", "w2");
const advance = fc.constantFrom(1_000, 4_000, 6_000, 11_000, 31_000, 36_000, 61_000, 101_000).map((ms) => new Advance(ms));
const commands = [
  worker.map((w) => new Claim(w)),
  fc.tuple(worker, fc.constantFrom("progress", "complete", "fail", "error") as fc.Arbitrary<ReportKind>, fc.option(fc.integer({ min: 1, max: 3 }))).map(
    ([w, k, a]) => new Report(w, k, a),
  ),
  fc.constant(new Cancel()),
  fc.constantFrom("retry", "requeue").map((h) => new Again(h as "retry" | "requeue")),
  worker.map((w) => new WorkerRestarted(w)),
  advance,
  fc.constant(new Pause()),
  fc.constant(new Resume()),
];

/** The commands plus retries and requeues with a delay (issue 16). */
const againLater = fc.tuple(fc.constantFrom("retry", "requeue"), fc.constantFrom(2_000, 45_000)).map(([h, d]) => new Again(h as "retry" | "requeue", d));
// Weighted towards what spans the waits: claims and results to reach an end, delayed retries, time.
const timedCommands = [...commands, againLater, againLater, worker.map((w) => new Claim(w)), worker.map((w) => new Report(w, "complete", null)), advance];

const token = fc.constantFrom("t1", "t2");
const pushCommands = [
  token.map((t) => new Deliver(t)),
  fc.tuple(token, fc.boolean()).map(([t, ok]) => new PushAnswer(t, ok)),
  token.map((t) => new DeadLetter(t)),
  fc.tuple(fc.constantFrom(PUSH_WORKER, "w1"), fc.constantFrom("progress", "complete", "fail", "error") as fc.Arbitrary<ReportKind>, fc.option(fc.integer({ min: 1, max: 3 }))).map(
    ([w, k, a]) => new Report(w, k, a),
  ),
  fc.constant(new Cancel()),
  fc.constantFrom("retry", "requeue").map((h) => new Again(h as "retry" | "requeue")),
  advance,
  fc.constant(new Pause()),
  fc.constant(new Resume()),
];

/** Issue 16: a submit delay, and a fixed retry backoff the job's lost leases wait out. */
const TIMED = { delay: 5_000, backoff: 7_000 };

async function setup(lifespan = false, timed = false): Promise<{ model: Model; real: Real }> {
  const ep = await createEndpoint(POLICY);
  const policy = { ...(lifespan ? { ttlMode: "lifespan" } : {}), ...(timed ? { retryBackoff: { type: "fixed", delay: TIMED.backoff } } : {}) };
  const id = await submit(ep, { input: 1, policy, ...(timed ? { delay: TIMED.delay } : {}) });
  const stub = env.JOB.get(env.JOB.idFromString(id)) as DurableObjectStub<JobObject>;
  const createdAt = await runInDurableObject(stub, (instance: JobObject, state) => {
    const job = loadJob(state.storage.sql)!.job;
    instance.clock.freeze(job.createdAt);
    return job.createdAt;
  });
  const readyAt = createdAt + (timed ? TIMED.delay : 0);
  const model: Model = {
    now: createdAt, state: timed ? "SCHEDULED" : "IN_QUEUE", attempt: 0, retries: 0, worker: null, reason: null,
    ttlAt: (lifespan ? createdAt : readyAt) + POLICY.ttl, execAt: 0, leaseAt: 0, cancelAt: 0, purgeAt: 0, last: null, dispatch: null, lifespan,
    readyAt, backoff: timed ? TIMED.backoff : 0, paused: false,
  };
  return { model, real: { ep, id, stub } };
}

const SEED = seedFrom("MODEL_SEED");

describe("job state machine against a model", () => {
  it(`random command sequences keep the job equal to the model (seed ${SEED})`, { timeout: 180_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
        const { model, real } = await setup();
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it(`lifespan TTL: random command sequences keep the job equal to the model (seed ${SEED})`, { timeout: 180_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
        const { model, real } = await setup(true);
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it(`delays and backoff: a delayed submit, retries with a delay, lost leases backing off (seed ${SEED})`, { timeout: 180_000 }, async () => {
    for (const lifespan of [false, true]) {
      await fc.assert(
        fc.asyncProperty(fc.commands(timedCommands, { maxCommands: 30 }), async (cmds) => {
          const { model, real } = await setup(lifespan, true);
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        }),
        { seed: SEED, numRuns: 30 },
      );
    }
  });

  it(`push: random deliveries, redeliveries and answers keep the job equal to the model (seed ${SEED})`, { timeout: 180_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(pushCommands, { maxCommands: 30 }), async (cmds) => {
        const { model, real } = await setup();
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  // Counterexamples found by the properties above are kept here as plain sequences.
  it("lifespan: a retry keeps the lifespan's end (the job is gone 60 s after submission, not 60 s after the retry)", async () => {
    const { model, real } = await setup(true);
    await fc.asyncModelRun(() => ({ model, real }), [
      new Advance(31_000), new Claim("w1"), new Report("w1", "fail", null), new Again("retry"), new Advance(31_000),
    ]);
    expect(model.state).toBe("DELETED");
  });

  it("regression (push): a lost lease after an accepted push needs a new dispatch; the old message's dead letter changes nothing", async () => {
    const { model, real } = await setup();
    await fc.asyncModelRun(() => ({ model, real }), [new Deliver("t1"), new PushAnswer("t1", true), new Advance(11_000), new DeadLetter("t1"), new Deliver("t2")]);
  });

  it("regression: a job paused while it runs waits PAUSED after its lease is lost, and is handed out only once resumed", async () => {
    const { model, real } = await setup();
    await fc.asyncModelRun(() => ({ model, real }), [new Claim("w1"), new Pause(), new WorkerRestarted("w1"), new Claim("w2"), new Resume(), new Claim("w2")]);
  });

  it("regression: a requeue with a delay counts its queue TTL from when it is ready, not from the requeue", async () => {
    const { model, real } = await setup(false, true);
    await fc.asyncModelRun(() => ({ model, real }), [
      new Advance(6_000), new Claim("w1"), new Report("w1", "complete", null), new Again("requeue", 45_000), new Advance(61_000), new Claim("w2"),
    ]);
  });

  it("regression: a lost lease on the last attempt, then a retry, then a late result from the first worker", async () => {
    const { model, real } = await setup();
    await fc.asyncModelRun(() => ({ model, real }), [
      new Claim("w1"), new WorkerRestarted("w1"), new Claim("w2"), new Advance(11_000), new Again("retry"),
      new Report("w1", "complete", 1), new Claim("w1"), new Report("w1", "complete", null), new Report("w1", "complete", null),
    ]);
  });
});
