/**
 * The endpoint model's commands on jobs (./endpoint-model.test.ts): submits, takes and batch
 * takes, reports (held, stray, repeated), cancels, retries and requeues, each with the
 * expectation of its own step; `settle` ends every step (jobs of tasks' work, stops owed, the
 * invariants of ./endpoint-checks and ./endpoint-graphs).
 */
import fc from "fast-check";
import { expect } from "vitest";
import { tagsMatch } from "../../src/shared/tags";
import { call, json } from "./helpers";
import { checkInvariants, core } from "./endpoint-checks";
import { checkTaskTake, driveGraphs, graphAllows, graphsAgree, readGraphs } from "./endpoint-graphs";
import { AVOID_GRACE_MS, current, deleted, deliverOwedStops, isRunning, isTerminal, newJob, seen, snapshot, unfinishedOfKey, WAITING, WORKER_TAGS, type FinalKind, type MJob, type World } from "./endpoint-world";

export type Cmd = fc.AsyncCommand<World, World>;

/**
 * What every step ends with, after the step's own snapshot and checks: each job of tasks does the
 * work the step made due (./endpoint-graphs), every job is read again, the stops owed are
 * delivered once, and the invariants hold.
 */
export async function settle(w: World): Promise<void> {
  if (w.graphs.length > 0) {
    await driveGraphs(w);
    await readGraphs(w);
    await snapshot(w);
  }
  await deliverOwedStops(w);
  await checkInvariants(w);
  graphsAgree(w);
}

export const pickOf = <T>(xs: T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);

/** What takes had to repeat (printed by the properties; see Take). */
export const takeStats = {
  /** Polls that had to be repeated to reach a job on another shard. */
  latePolls: 0,
  /** The most polls repeated by one take while jobs barred to its worker waited. */
  barredPolls: 0,
};

export class Submit implements Cmd {
  /** `flow`: a concurrencyKey, on endpoints without a cap only (with one the model predicts the exact order; keys take turns). */
  constructor(readonly priority: number, readonly seq: string | null, readonly idem: "none" | "new" | number, readonly flow: string | null = null, readonly tags: readonly string[] | null = null) {}
  check = () => true;
  async run(w: World) {
    const keyed = w.jobs.filter((j) => j.idemKey !== null);
    const reuse = typeof this.idem === "number" ? pickOf(keyed, this.idem) : undefined;
    const key = reuse?.idemKey ?? (this.idem === "none" ? null : `k${++w.keys}`);
    const flow = this.seq === null && w.cfg.concurrency === null ? this.flow : null;
    const body = reuse?.body ?? { input: { n: w.jobs.length }, priority: this.priority, ...(this.seq ? { sequenceKey: this.seq } : {}), ...(flow ? { concurrencyKey: flow } : {}), ...(this.tags ? { tags: this.tags } : {}), ...(key ? { idempotencyKey: key } : {}) };
    const latest = key === null ? undefined : w.jobs.findLast((j) => j.idemKey === key);
    const seq = (body.sequenceKey as string | undefined) ?? null;
    const behind = seq !== null && unfinishedOfKey(w, seq, null).length > 0;
    const before = latest ? core(latest) : null;
    const res = await call("POST", `/v2/${w.ep}/run`, { key: w.clientKey, body });
    expect(res.status, "submit").toBe(200);
    const { id, status } = await json<{ id: string; status: string }>(res);
    // A key answers with its job until the job is deleted, 24 h after its submit at the soonest
    // (defect 4), and only on its own endpoint generation (defect 10); then it creates a fresh job.
    const fresh = latest === undefined || latest.gen !== w.gen || deleted(w, latest);
    if (fresh) {
      expect(status, `a new job is ${behind ? "SEQUENCED behind its key" : "IN_QUEUE"}`).toBe(behind ? "SEQUENCED" : "IN_QUEUE");
      for (const old of w.jobs.filter((j) => j.id === id)) old.gone = true; // the same object now holds a new job
      newJob(w, id, body, key);
      await snapshot(w);
      const j = w.jobs.at(-1)!;
      expect({ attempt: j.snap?.attempt, retries: j.snap?.retries, createdAt: j.snap?.createdAt }, `fresh job ${id} (key ${key})`).toEqual({ attempt: 0, retries: 0, createdAt: w.now });
    } else {
      expect(id, `idempotency key ${key} answers with its job`).toBe(latest!.id);
      await snapshot(w);
      if (!latest!.gone) expect(core(latest!), "a repeated submit changes nothing").toEqual(before);
    }
    await settle(w);
  }
  toString = () => `submit(p${this.priority}, ${this.seq ?? "-"}, ${this.idem}${this.flow ? `, key ${this.flow}` : ""}${this.tags ? `, tags ${this.tags.join("+")}` : ""})`;
}

export class Take implements Cmd {
  constructor(readonly wid: string, readonly max: 1 | 2 | 3, readonly restart: boolean, readonly probeEmpty: boolean) {}
  check = () => true;
  async run(w: World) {
    const mw = w.workers[this.wid]!;
    if (this.restart) {
      mw.held.clear();
      mw.forgot.clear();
    }
    const inProgress = mw.held.size > 0 ? 1 : 0;
    const jobs = current(w);
    // Saying it runs nothing releases every job the worker holds (before the offer is made).
    const released = inProgress === 0 ? jobs.filter((j) => isRunning(j.snap) && j.snap!.workerId === this.wid) : [];
    const room = w.cfg.concurrency === null ? Infinity : w.cfg.concurrency - jobs.filter((j) => isRunning(j.snap)).length;
    // The queue's order: priority, then submit order; a job this worker failed waits AVOID_GRACE_MS for others;
    // a job requiring tags goes only to a worker that declared them all (issue 15, item 3).
    const have = WORKER_TAGS[this.wid]!;
    const waiting = jobs
      .filter((j) => j.snap?.state === "IN_QUEUE" && !(j.avoid.has(this.wid) && w.now - j.queuedSince! < AVOID_GRACE_MS) && tagsMatch(j.tags, have) && graphAllows(w, j, this.wid))
      .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    // A job of a flow key at its cap waits for the key (counted before the release, or after it: the release runs beside the offer).
    const keyOpen = (freed: readonly MJob[]) => {
      const held = new Map<string, number>();
      for (const j of jobs) if (j.flow !== null && isRunning(j.snap) && !freed.includes(j)) held.set(j.flow, (held.get(j.flow) ?? 0) + 1);
      return (j: MJob) => j.flow === null || w.cfg.keyConcurrency === null || (held.get(j.flow) ?? 0) < w.cfg.keyConcurrency;
    };
    const eligible = waiting.filter(keyOpen([]));
    const want = eligible.slice(0, Math.max(0, Math.min(this.max, room))).map((j) => j.id);
    if (want.length === 0 && released.length === 0 && !this.probeEmpty) return; // a 204 costs TAKE_WAIT_MS
    const path = this.max === 1 ? `job-take/${this.wid}?` : `job-take-batch/${this.wid}?batch_size=${this.max}&`;
    const poll = async () => {
      const res = await call("GET", `/v2/${w.ep}/${path}job_in_progress=${inProgress}${have ? `&tags=${have}` : ""}`, { key: w.workerKey });
      expect([200, 204], "take").toContain(res.status);
      const body = res.status === 200 ? await json<unknown>(res) : [];
      return (Array.isArray(body) ? body : [body]) as Array<{ id: string; attempt: number }>;
    };
    let got = await poll();
    seen(w, this.wid);
    mw.declared = true;
    // Sharded: a job on another shard reaches an idle poll through the endpoint object's hint, a
    // few calls later (README, Shards). With the tests' 300 ms polls on a starved CPU that may
    // miss one poll (seen at seed 736773 under load): the job must then come with the next polls.
    // Jobs waiting that this worker may not take (a replica of a job it took one of, a job of tasks
    // that blocklisted it) drew its polls to their shards, one shard a poll (found by the model,
    // seed 1004: the plain job came with the 4th poll). Its probes now pass such a shard over
    // (flows/shard-picks noteVain; 0 repeated polls at seed 1004), but a hint may still send a
    // waiting take there: up to a poll per shard more is allowed, and the most seen is printed.
    const barred = jobs.some((j) => j.snap?.state === "IN_QUEUE" && !graphAllows(w, j, this.wid));
    let again = 0;
    for (; w.cfg.concurrency === null && got.length === 0 && want.length > 0 && released.length === 0 && again < (barred ? 10 : 2); again++) {
      takeStats.latePolls += 1;
      got = await poll();
    }
    if (barred) takeStats.barredPolls = Math.max(takeStats.barredPolls, again);
    const old = got.filter((g) => w.jobs.some((j) => j.id === g.id && j.gen !== w.gen) && !jobs.some((j) => j.id === g.id));
    expect(old.map((g) => g.id), "defect 10: a job of the deleted endpoint is handed to the new endpoint's worker").toEqual([]);
    if (w.cfg.concurrency === null) {
      // Sharded (8 shards, README "Shards"): a take hands out eligible jobs of one shard, in that
      // shard's order, so which ones is not the model's to say; at least one when any is eligible
      // (an idle worker's poll gets a job placed on any shard), never one it just lost; a job its
      // release let in (the next of a sequence whose running job ended) may be among them.
      const ok = new Set(waiting.filter(keyOpen(released)).map((j) => j.id));
      const ids = got.map((g) => g.id);
      const letIn = (id: string) => released.length > 0 && jobs.some((j) => j.id === id && j.seq !== null);
      expect(ids.filter((id) => !ok.has(id) && !letIn(id)), `take by ${this.wid} hands out eligible jobs only`).toEqual([]);
      const named = (id: string) => { const j = jobs.find((x) => x.id === id)!; return `${id.slice(0, 8)}${j.task ? ` (${j.task.name} of ${j.task.graph.slice(0, 14)})` : ""}`; };
      expect(ids.length, `take by ${this.wid} (max ${this.max}, eligible ${want.map(named)}) gets one at least`).toBeGreaterThanOrEqual(Math.min(1, want.length));
      expect(ids.length).toBeLessThanOrEqual(this.max);
      expect(ids.filter((id) => released.some((j) => j.id === id)), `take by ${this.wid} gets back none of the jobs it lost`).toEqual([]);
    } else if (released.length === 0) {
      expect(got.map((g) => g.id).sort(), `take by ${this.wid} (max ${this.max}, room ${room}) hands out exactly the eligible jobs`).toEqual([...want].sort());
    } else {
      // The release runs beside the offer (the worker's liveness object knows what it held): the
      // slots it frees may already serve this take, so it hands out the eligible jobs in order, at
      // least those the room before the release allowed, at most what the room after it allows; a
      // job the release let in (the next of a sequence whose running job ended) may be among them,
      // never a job this worker just lost (it waits AVOID_GRACE_MS for others).
      const roomAfter = w.cfg.concurrency === null ? Infinity : room + released.length;
      const ids = got.map((g) => g.id);
      expect(ids.length, `take by ${this.wid} after releasing ${released.length}: at least the room before`).toBeGreaterThanOrEqual(want.length);
      expect(ids.length, `take by ${this.wid}: at most the room after the release`).toBeLessThanOrEqual(Math.min(this.max, roomAfter));
      expect(ids.filter((id) => released.some((j) => j.id === id)), `take by ${this.wid} gets back none of the jobs it lost`).toEqual([]);
    }
    for (const g of got) {
      const j = jobs.find((x) => x.id === g.id)!;
      expect(g.attempt, `[I1] job ${g.id}: each take starts a new attempt`).toBe(Math.max(j.snap!.attempt, j.handed) + 1);
      checkTaskTake(w, j, this.wid);
      j.handed = g.attempt;
      mw.held.set(g.id, g.attempt);
    }
    await snapshot(w);
    for (const g of got) {
      const s = jobs.find((x) => x.id === g.id)!.snap!;
      expect({ state: s.state, workerId: s.workerId, attempt: s.attempt }, `job ${g.id} after its take`).toEqual({ state: "IN_PROGRESS", workerId: this.wid, attempt: g.attempt });
    }
    for (const j of released) {
      const still = j.snap?.state === "IN_PROGRESS" && j.snap.workerId === this.wid && !got.some((g) => g.id === j.id);
      expect(still, `job_in_progress=0 releases ${j.id}`).toBe(false);
    }
    await settle(w);
  }
  toString = () => `take(${this.wid}, ${this.max}${this.restart ? ", restarted" : ""}${this.probeEmpty ? ", probe" : ""})`;
}

export class Report implements Cmd {
  constructor(readonly wPref: string, readonly kind: "progress" | FinalKind, readonly pick: number, readonly how: "held" | "stray" | "repeat") {}
  wid = "";
  check = () => true;
  async run(w: World) {
    let j: MJob | undefined;
    let attempt: number | null = null;
    let kind = this.kind;
    this.wid = this.wPref;
    if (this.how === "repeat") {
      // The exact repeat of this worker's last accepted final report, naming its attempt.
      const last = w.workers[this.wid]!.lastFinal;
      j = current(w).find((x) => x.id === last?.job);
      attempt = last?.attempt ?? null;
      kind = last?.kind ?? kind;
    } else {
      // A worker reporting on a job it believes it runs (any worker's, if this one runs none), or a stray report.
      const beliefs = Object.entries(w.workers).flatMap(([wid, mw]) => [...mw.held.keys()].sort().map((id) => ({ wid, id })));
      const mine = beliefs.filter((b) => b.wid === this.wid);
      const b = this.how === "held" ? pickOf(mine.length > 0 ? mine : beliefs, this.pick) : undefined;
      if (b) this.wid = b.wid;
      const forgot = w.workers[this.wid]!.forgot;
      j = current(w).find((x) => x.id === b?.id) ?? pickOf(current(w).filter((x) => !forgot.has(x.id)), this.pick);
    }
    const mw = w.workers[this.wid]!;
    if (!j || !j.snap) return;
    const pre = j.snap;
    const holds = isRunning(pre) && pre.workerId === this.wid && (attempt === null || attempt === pre.attempt);
    const body =
      kind === "complete" ? { output: { done: j.id } }
      : kind === "fail" ? { error: "boom" }
      : kind === "exit" ? { output: { done: j.id }, exitCode: 3 }
      : { status: "IN_PROGRESS", output: { p: 1 } };
    const res = await call("POST", `/v2/${w.ep}/job-done/${this.wid}/${j.id}?isStream=false${attempt === null ? "" : `&attempt=${attempt}`}`, {
      key: w.workerKey,
      raw: JSON.stringify(body),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    await res.body?.cancel();
    const accepted = res.status === 200;
    const own = holds && accepted && kind !== "progress";
    await snapshot(w, new Set(own ? [j.id] : []));
    if (kind === "progress") {
      expect(res.status, `progress from ${this.wid} on ${pre.state}`).toBe(holds && pre.state === "IN_PROGRESS" ? 200 : 409);
      expect(core(j), "progress changes no state").toEqual({ state: pre.state, attempt: pre.attempt, retries: pre.retries });
    } else if (holds) {
      // I4: the lease holder's final report is accepted and takes effect (defect 1: also on attempt N > 1).
      expect(res.status, `[I4] the lease holder's ${kind} on attempt ${pre.attempt} is accepted`).toBe(200);
      // A result with an exit code (ERROR, read COMPLETED) is never retried, though the endpoint retries on errors.
      const retried = kind === "fail" && j.retryOnError && pre.attempt < j.maxAttempts;
      const want =
        pre.state === "CANCELLING"
          ? { state: "CANCELLED", attempt: pre.attempt, retries: pre.retries }
          : { state: kind === "complete" || kind === "exit" ? "COMPLETED" : retried ? (pre.paused ? "PAUSED" : "IN_QUEUE") : "FAILED", attempt: pre.attempt, retries: pre.retries + (retried ? 1 : 0) };
      expect(core(j), `[I4] defect 1: an accepted ${kind} of attempt ${pre.attempt} by ${this.wid} takes effect`).toEqual(want);
      if (pre.state !== "CANCELLING") expect(j.snap?.outcome ?? null, `an accepted ${kind} reads outcome`).toBe(kind === "exit" ? "error" : null);
      if (pre.state !== "CANCELLING") j.finals.push({ w: this.wid, attempt: pre.attempt, kind });
    } else {
      // Not the lease holder: only an exact repeat of an accepted report answers 200, and changes nothing.
      const same = (f: MJob["finals"][number]) => f.w === this.wid && f.kind === kind && (attempt === null || f.attempt === attempt);
      const last = j.finals.at(-1);
      if (accepted) expect(j.finals.some(same), `[I4] 200 to a ${kind} from ${this.wid}, which neither holds ${j.id} nor repeats an accepted report`).toBe(true);
      else expect([404, 409], "a refused report").toContain(res.status);
      if (last && same(last)) expect(res.status, "a repeat of the accepted report answers as the first did").toBe(200);
      expect(core(j), "a refused or repeated report changes nothing").toEqual({ state: pre.state, attempt: pre.attempt, retries: pre.retries });
    }
    if (kind !== "progress" && this.how !== "repeat") {
      const believed = mw.held.get(j.id) ?? pre.attempt;
      mw.held.delete(j.id);
      if (accepted) mw.lastFinal = { job: j.id, attempt: believed, kind };
    }
    await settle(w);
  }
  toString = () => (this.how === "repeat" ? `repeatLast(${this.wPref})` : `${this.kind}(${this.wPref}, ${this.how} #${this.pick})`);
}

/** The `pick`th of the jobs `keep` holds when `prefer` and there are any, else of all current jobs. */
function pickPreferring(w: World, pick: number, prefer: boolean, keep: (j: ReturnType<typeof current>[number]) => boolean) {
  const kept = current(w).filter(keep);
  return pickOf(prefer && kept.length > 0 ? kept : current(w), pick);
}

export class Cancel implements Cmd {
  constructor(readonly pick: number, readonly running: boolean) {}
  check = () => true;
  async run(w: World) {
    const j = pickPreferring(w, this.pick, this.running, (x) => isRunning(x.snap));
    if (!j?.snap) return;
    const pre = j.snap;
    const res = await call("POST", `/v2/${w.ep}/cancel/${j.id}`, { key: w.clientKey });
    await res.body?.cancel();
    await snapshot(w);
    const same = { state: pre.state, attempt: pre.attempt, retries: pre.retries };
    const want = [...WAITING, "PAUSED"].includes(pre.state) ? { ...same, state: "CANCELLED" } : pre.state === "IN_PROGRESS" ? { ...same, state: "CANCELLING" } : same;
    const ok = !["COMPLETED", "FAILED", "TIMED_OUT"].includes(pre.state);
    expect(res.status, `cancel of a ${pre.state} job`).toBe(ok ? 200 : 409);
    expect(core(j), `cancel of a ${pre.state} job`).toEqual(want);
    await settle(w);
  }
  toString = () => `cancel(${this.running ? "running " : ""}#${this.pick})`;
}

export class Again implements Cmd {
  constructor(readonly how: "retry" | "requeue", readonly pick: number, readonly ended: boolean) {}
  check = () => true;
  async run(w: World) {
    const j = pickPreferring(w, this.pick, this.ended, (x) => isTerminal(x.snap));
    if (!j?.snap) return;
    const pre = j.snap;
    const behind = j.seq !== null && unfinishedOfKey(w, j.seq, j.id).length > 0;
    const res = await call("POST", `/v2/${w.ep}/${this.how}/${j.id}`, { key: w.clientKey });
    await res.body?.cancel();
    await snapshot(w);
    // A task's job runs again only through its job of tasks (POST /requeue/{its id}).
    const ok = j.task === null && (this.how === "retry" ? ["FAILED", "TIMED_OUT"] : ["FAILED", "TIMED_OUT", "COMPLETED", "CANCELLED"]).includes(pre.state);
    expect(res.status, `${this.how} of a ${pre.state} job`).toBe(ok ? 200 : 409);
    // Defect 3: a retried or requeued job re-enters its sequence at the back.
    const state = !ok ? pre.state : behind ? "SEQUENCED" : "IN_QUEUE";
    expect(core(j), `defect 3: ${this.how} of a ${pre.state} job${behind ? ` with unfinished jobs of '${j.seq}'` : ""}`).toEqual({
      state, attempt: pre.attempt, retries: pre.retries + (ok ? 1 : 0),
    });
    await settle(w);
  }
  toString = () => `${this.how}(${this.ended ? "ended " : ""}#${this.pick})`;
}

