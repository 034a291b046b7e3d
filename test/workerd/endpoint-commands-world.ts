/**
 * The endpoint model's other commands (./endpoint-model.test.ts): worker signs (pings, lost takes,
 * job-stop polls), time jumps with every alarm, a delete and re-create of the endpoint, a flaky
 * report, and jobs of tasks and of replicas submitted and commanded by their users.
 */
import { expect } from "vitest";
import { call, json } from "./helpers";
import { core } from "./endpoint-checks";
import { currentGraphs, newGraph } from "./endpoint-graphs";
import { advance, createEndpointGen, current, isRunning, isTerminal, PING_RELEASE_MS, pollStops, readStatus, seen, snapshot, unfinishedOfKey, WORKER_TAGS, type MJob, type World } from "./endpoint-world";
import { pickOf, Report, settle, Take, type Cmd } from "./endpoint-commands";

export class Ping implements Cmd {
  constructor(readonly wid: string, readonly variant: "list" | "bare") {}
  check = () => true;
  async run(w: World) {
    const mw = w.workers[this.wid]!;
    const listed = [...mw.held.keys()];
    // RunPod's SDK sends its version always and omits job_id when it runs nothing.
    // A listing ping also names the worker's tags (as a RunPod worker's ping URL template may).
    const tags = WORKER_TAGS[this.wid]!;
    const query = this.variant === "bare" ? "" : `?runpod_version=1.7.0${listed.length ? `&job_id=${listed.join(",")}` : ""}${tags ? `&tags=${tags}` : ""}`;
    const pre = new Map(current(w).map((j) => [j.id, j.snap]));
    const res = await call("GET", `/v2/${w.ep}/ping/${this.wid}${query}`, { key: w.workerKey });
    seen(w, this.wid);
    if (this.variant !== "bare") mw.declared = true;
    expect(res.status).toBe(200);
    await res.body?.cancel();
    await snapshot(w);
    for (const j of current(w)) {
      const p = pre.get(j.id);
      if (!p) continue;
      const mine = isRunning(p) && p.workerId === this.wid && this.variant !== "bare" && !listed.includes(j.id);
      const same = { state: p.state, attempt: p.attempt, retries: p.retries };
      if (mine && p.state === "IN_PROGRESS" && w.now - p.startedAt! >= PING_RELEASE_MS) {
        // Defect 6: a job the worker no longer lists is released like a lost lease.
        // A paused job's attempt goes back to wait paused (found by the model, seed 2002).
        const want = p.attempt < j.maxAttempts ? (p.paused ? "PAUSED" : "IN_QUEUE") : "TIMED_OUT";
        expect(core(j), `defect 6: ${this.wid}'s ping without ${j.id} (started ${w.now - p.startedAt!} ms ago) releases it`).toEqual({
          ...same, state: want, retries: p.retries + (want === "TIMED_OUT" ? 0 : 1),
        });
      } else if (mine && p.state === "CANCELLING") {
        expect(["CANCELLING", "CANCELLED"]).toContain(j.snap!.state);
      } else if (p.state === "SEQUENCED" && j.snap?.state === "IN_QUEUE") {
        // Found by the model (seed 858249): a job of its key ended on this ping (a CANCELLING job
        // the worker no longer lists, or a released lease), so the next of that sequence is let in.
        const ended = current(w).filter((x) => x.seq === j.seq && x.id !== j.id && !isTerminal(pre.get(x.id) ?? null) && isTerminal(x.snap));
        expect(ended.length, `${this.wid}'s ping lets ${j.id} of '${j.seq}' in only when a job of its key ended`).toBeGreaterThan(0);
        const ahead = unfinishedOfKey(w, j.seq!, j.id).filter((x) => x.snap!.state !== "SEQUENCED");
        expect(ahead.map((x) => x.id), `${j.id} is let in only when no other job of '${j.seq}' waits or runs`).toEqual([]);
        expect(core(j)).toEqual({ ...same, state: "IN_QUEUE" });
      } else {
        expect(core(j), `${this.variant} ping of ${this.wid} leaves ${j.id} (${p.state}, ${p.workerId}) alone`).toEqual(same);
      }
    }
    await settle(w);
  }
  toString = () => `ping(${this.wid}, ${this.variant})`;
}

/** A lost take: the worker forgets a job it took; it never reports it and its pings stop listing it. */
export class Forget implements Cmd {
  constructor(readonly wid: string, readonly pick: number) {}
  check = () => true;
  async run(w: World) {
    const mw = w.workers[this.wid]!;
    const id = pickOf([...mw.held.keys()].sort(), this.pick);
    if (id === undefined) return;
    mw.held.delete(id);
    mw.forgot.add(id);
  }
  toString = () => `forget(${this.wid}, #${this.pick})`;
}

/** A job-stop poll with nothing owed: nothing may come (each stop is delivered once). */
export class StopPoll implements Cmd {
  constructor(readonly wid: string) {}
  check = () => true;
  async run(w: World) {
    await pollStops(w, this.wid);
  }
  toString = () => `stopPoll(${this.wid})`;
}

export class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(w: World) {
    await advance(w, this.ms);
    await snapshot(w);
    await settle(w);
  }
  toString = () => `advance(${this.ms} ms)`;
}

/** DELETE and re-create the endpoint (same id, same config, new keys). */
export class Recreate implements Cmd {
  check = () => true;
  async run(w: World) {
    const res = await call("DELETE", `/admin/endpoints/${w.ep}`);
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const old = current(w);
    w.gen += 1;
    w.owed = [];
    await createEndpointGen(w);
    for (const j of [...old, ...w.graphs.filter((g) => g.gen === w.gen - 1 && !g.gone)]) {
      const { code } = await readStatus(w, j.id);
      expect(code, `defect 10: job ${j.id} of the deleted endpoint answers 404 to the new endpoint's key`).toBe(404);
    }
    await settle(w);
  }
  toString = () => "recreate";
}

/**
 * A crash-looping handler: the worker takes a job and at once reports an error on it. Two of
 * these on one worker with time between them meet the same job's next attempt (defect 1).
 */
export class Flaky implements Cmd {
  constructor(readonly wid: string) {}
  check = () => true;
  async run(w: World) {
    const held = w.workers[this.wid]!.held;
    const before = new Set(held.keys());
    await new Take(this.wid, 1, false, false).run(w);
    const got = [...held.keys()].find((id) => !before.has(id));
    // Report reads "held" jobs in id order: name the one just taken.
    if (got !== undefined) await new Report(this.wid, "fail", [...held.keys()].sort().indexOf(got), "held").run(w);
  }
  toString = () => `flaky(${this.wid})`;
}

/**
 * A job of tasks (issue 15, item 1: 2-4 tasks, task i depending on task j < i where bit 3i+j of
 * `mask` is set; with `oneTry` its first task is tried once) or of replicas (item 4), with a
 * priority and the tags its tasks' jobs require.
 */
export class SubmitGraph implements Cmd {
  constructor(readonly replicas: number | null, readonly n: number, readonly mask: number, readonly priority: number, readonly tags: readonly string[] | null, readonly oneTry: boolean) {}
  check = () => true;
  async run(w: World) {
    const tasks = Array.from({ length: this.replicas ?? this.n }, (_, i) => ({
      name: this.replicas !== null ? `replica-${i}` : `t${i}`,
      dependsOn: this.replicas !== null ? [] : Array.from({ length: i }, (_, d) => d).filter((d) => (this.mask >> (i * 3 + d)) & 1).map((d) => `t${d}`),
      ...(this.oneTry && i === 0 && this.replicas === null ? { maxAttempts: 1 } : {}),
    }));
    // A job of replicas tries each once, or (not `oneTry`) twice: a replica's second job goes to a worker that took none.
    const shape = this.replicas !== null ? { replicas: this.replicas, input: { r: 1 }, ...(this.oneTry ? {} : { policy: { maxAttempts: 2 } }) } : { tasks: tasks.map((t, i) => ({ ...t, input: { i } })) };
    const body = { ...shape, priority: this.priority, ...(this.tags ? { tags: this.tags } : {}) };
    const res = await call("POST", `/v2/${w.ep}/run`, { key: w.clientKey, body });
    expect(res.status, "submit of a job of tasks").toBe(200);
    const { id, status } = await json<{ id: string; status: string }>(res);
    expect(status, `a new job of ${this.replicas !== null ? "replicas" : "tasks"} is IN_QUEUE`).toBe("IN_QUEUE");
    newGraph(w, id, tasks, this.replicas, this.priority, this.tags ? [...this.tags] : null);
    await settle(w);
  }
  toString = () => `${this.replicas !== null ? `replicas(${this.replicas}${this.oneTry ? "" : ", twice"}` : `tasks(${this.n}, deps ${this.mask}${this.oneTry ? ", t0 once" : ""}`}, p${this.priority}${this.tags ? `, tags ${this.tags.join("+")}` : ""})`;
}

/** A user's command on a job of tasks: cancel, pause, resume, requeue (Flamenco's). */
export class GraphCmd implements Cmd {
  constructor(readonly how: "cancel" | "pause" | "resume" | "requeue", readonly pick: number) {}
  check = () => true;
  async run(w: World) {
    const g = pickOf(currentGraphs(w), this.pick);
    if (!g?.status) return;
    const pre = String(g.status.status);
    const finished = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(pre);
    const res = await call("POST", `/v2/${w.ep}/${this.how}/${g.id}`, { key: w.clientKey });
    await res.body?.cancel();
    const allowed =
      this.how === "resume" ? [200]
      : this.how === "cancel" ? (pre === "CANCELLED" ? [200, 409] : finished ? [409] : [200])
      // A job of replicas stopping the others after one failed reads IN_PROGRESS and cannot be paused.
      : this.how === "pause" ? (finished || pre === "CANCELLING" ? [409] : g.replicas !== null && pre === "IN_PROGRESS" ? [200, 409] : [200])
      : finished && !(pre === "COMPLETED" && g.replicas === null) ? [200] : [409];
    expect(allowed, `${this.how} of a ${pre} job of ${g.replicas !== null ? "replicas" : "tasks"}`).toContain(res.status);
    if (this.how === "requeue" && res.status === 200) {
      g.run += 1;
      g.took.clear(); // a new run: each worker may take a replica again
    }
    await snapshot(w);
    await settle(w);
    if (res.status !== 200) return;
    const jobs = [...g.current.values()].map((id) => current(w).find((j) => j.id === id)).filter((j): j is MJob => j?.snap !== null && j?.snap !== undefined);
    const states = jobs.map((j) => `${j.task!.name}:${j.snap!.state}`).join(" ");
    if (this.how === "cancel") {
      expect(jobs.filter((j) => !isTerminal(j.snap) && j.snap!.state !== "CANCELLING").map((j) => j.task!.name), `cancel of ${g.id}: every unfinished task cancelled (${states})`).toEqual([]);
      expect(["CANCELLING", "CANCELLED", "COMPLETED", "FAILED", "TIMED_OUT"], `cancel of ${g.id}`).toContain(g.status!.status);
    }
    if (this.how === "pause") {
      expect(jobs.filter((j) => j.snap!.state === "IN_QUEUE").map((j) => j.task!.name), `pause of ${g.id}: no task's job waits unpaused (${states})`).toEqual([]);
      expect(g.status!.paused, `pause of ${g.id}`).toBe(true);
    }
    if (this.how === "resume") expect(jobs.filter((j) => j.snap!.state === "PAUSED").map((j) => j.task!.name), `resume of ${g.id}: no task's job stays paused (${states})`).toEqual([]);
    if (this.how === "requeue") expect(["IN_QUEUE", "IN_PROGRESS"], `requeue of ${g.id} runs its unfinished tasks again (${states})`).toContain(g.status!.status);
  }
  toString = () => `${this.how}Graph(#${this.pick})`;
}

// w1 most often, so that one worker meets the same job again (retries, requeues, stops).
