/**
 * Fault injection on jobs of tasks and of replicas (issue 15, items 1 and 4), counted as the other
 * fault suites count: jobs of tasks (random DAGs) and of replicas are worked by four pulling
 * workers through the Worker's routes while each task's first hand-out meets a fault: its worker
 * killed mid-task (and its alarm throwing when it finds the lease lost), a stalled worker whose
 * late result comes after another took the task, a handler error (the task soft-fails and runs
 * again), a result sent twice, a result whose answer is lost (the call throws after the commit)
 * and is sent again, its job's object evicted, its job of tasks' object evicted, the note to its
 * job of tasks lost (the job's alarm tells again). At the end:
 * - lost: a task no job completed, or a job of tasks not COMPLETED;
 * - duplicated: a task completed by two jobs, or a job with two accepted results or two ends;
 * - each job of tasks' kept counts equal a recount of its rows, and each of its webhooks (one per end) arrived once;
 * - every armed fault fired, each alarmThrows fault in an alarm. The seed is printed; FAULT_SEED
 *   replays its draws, not always in the same order: jobs of tasks create and tell in the background
 *   (as in production), so which task a take meets first may differ from run to run.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { GraphObject } from "../../src/graphs/graph-object";
import type { JobObject } from "../../src/jobs/job-object";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { loadJob, readHistory } from "../../src/jobs/store";
import { taskByName } from "../../src/graphs/store";
import { Clock } from "../../src/shared/clock";
import { choices, FlakyReceiver, POLICY, SEED, WEBHOOK_RETRY_TIMES } from "./fault-kit";
import { call, createEndpoint, done, endpointStubOf, json, jobStubOf } from "./helpers";
import { graphStub } from "./endpoint-world";

const GRAPHS = 10;
const TASKS = 6;
const REPLICA_JOBS = 5;
const WORKERS = ["w1", "w2", "w3", "w4"];
const HOOK = "https://fault-receiver.example.com/tasks-hook";
type Fate = "normal" | "duplicate" | "lostAnswer" | "evicted" | "graphEvicted" | "lostNote" | "failedOnce" | "killed" | "late" | "alarmThrows";
const FATES: readonly Fate[] = ["normal", "duplicate", "lostAnswer", "evicted", "graphEvicted", "lostNote", "failedOnce", "killed", "late", "alarmThrows"];

/** Fates that cost the task an attempt (a replica: its job, then a fresh one). */
const COSTLY: ReadonlySet<Fate> = new Set(["failedOnce", "killed", "late", "alarmThrows"]);

interface Handed {
  id: string;
  taskName: string;
  parentJobId: string;
  attempt: number;
}

afterEach(() => vi.restoreAllMocks());

describe("fault injection: jobs of tasks and of replicas", () => {
  it(`${GRAPHS} jobs of ${TASKS} tasks and ${REPLICA_JOBS} of replicas under faults: 0 lost, 0 duplicated tasks (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const next = choices(SEED, 4_000);
    let now = Date.now() + 3_650 * 86_400_000; // one clock for every object, far ahead of the platform's own alarms
    vi.spyOn(Clock.prototype, "now").mockImplementation(() => now);
    const receiver = new FlakyReceiver(HOOK, () => next(3));
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (!req.url.startsWith(HOOK)) throw new TypeError(`unexpected fetch to ${req.url}`);
      return receiver.answer(req);
    });
    const ep = await createEndpoint({ ...POLICY, shards: 1 });

    // Jobs of tasks: task i depends on each earlier task with probability 1/3; jobs of replicas: 2 or 3, two jobs each.
    const graphs = new Map<string, { tasks: string[]; replicas: boolean }>();
    for (let g = 0; g < GRAPHS + REPLICA_JOBS; g++) {
      const replicas = g >= GRAPHS ? 2 + next(2) : null;
      const tasks = Array.from({ length: replicas ?? TASKS }, (_, i) => ({
        name: replicas !== null ? `replica-${i}` : `t${i}`,
        input: { g, i },
        dependsOn: replicas !== null ? [] : Array.from({ length: i }, (_, d) => `t${d}`).filter(() => next(3) === 0),
      }));
      const body = replicas !== null ? { replicas, input: { g }, policy: { maxAttempts: 2, executionTimeout: 180_000 }, webhook: HOOK } : { tasks, webhook: HOOK };
      const res = await call("POST", `/v2/${ep}/run`, { body });
      expect(res.status).toBe(200);
      graphs.set((await json<{ id: string }>(res)).id, { tasks: tasks.map((t) => t.name), replicas: replicas !== null });
    }

    const unexpected: string[] = [];
    const fates: Record<string, number> = {};
    const fateOf = new Map<string, Fate>(); // graph/task → its first hand-out's fate
    const jobsOf = new Map<string, Set<string>>(); // graph/task → every job that ran it
    const stalled: Array<{ worker: string; job: Handed }> = [];
    /** A worker that died (or stalled) is silent until this round: its leases run out (heartbeatTimeout). */
    const silentUntil = new Map<string, number>();
    let rounds = 0;
    let alarmFaults = 0;
    /** Jobs whose next alarm throws inside its transaction ("alarmThrows"). */
    const armAtAlarm = new Set<string>();
    /** Completion notes that were lost (the job of tasks had not heard of the result), then told again by the job's alarm. */
    let notesLost = 0;
    /** Jobs of tasks requeued after a task failed for its blocklist. */
    let requeued = 0;
    const out = new TextEncoder().encode('"result"');
    const injected = async (what: string, p: Promise<unknown>) => {
      try {
        await p;
        unexpected.push(`${what}: expected an injected error`);
      } catch (e) {
        if (!/injected fault/.test(String(e))) unexpected.push(`${what}: ${String(e)}`);
      }
    };
    const complete = async (worker: string, j: Handed, what: string) => {
      const res = await done(ep, worker, j.id, { output: { task: j.taskName } });
      if (res.status !== 200) unexpected.push(`${what}: ${j.taskName} of ${j.parentJobId}: result answered ${res.status} ${await res.text()}`);
      else await res.body?.cancel();
    };

    async function handle(worker: string, j: Handed): Promise<void> {
      const key = `${j.parentJobId}/${j.taskName}`;
      jobsOf.set(key, (jobsOf.get(key) ?? new Set()).add(j.id));
      const first = !fateOf.has(key);
      const drawn = first ? FATES[next(FATES.length)]! : "normal";
      // A task meets one fault that costs it an attempt at most (then it has attempts left). A job of
      // replicas meets one: a retried replica goes to a worker that took none of the job's replicas
      // (README "Replicas"), so 3 replicas with one retry need all 4 workers.
      const costlyReplica = graphs.get(j.parentJobId)!.replicas && [...fateOf].some(([k, f]) => k.startsWith(`${j.parentJobId}/`) && COSTLY.has(f));
      const fate: Fate = first && !(costlyReplica && COSTLY.has(drawn)) ? drawn : "normal";
      if (first) fateOf.set(key, fate);
      if (COSTLY.has(fate) && fate !== "failedOnce") silentUntil.set(worker, rounds + 2);
      fates[fate] = (fates[fate] ?? 0) + 1;
      const stub = jobStubOf(j.id);
      switch (fate) {
        case "normal":
          return complete(worker, j, "normal");
        case "duplicate":
          await complete(worker, j, "duplicate, first");
          return complete(worker, j, "duplicate, repeated");
        case "lostAnswer":
          // The result commits, the call throws after the commit (before its job of tasks heard), and the worker sends it again.
          await runInDurableObject(stub, (o: JobObject) => o.faults.arm("job:after-commit"));
          await injected(`${j.id} result`, stub.report(ep, { workerId: worker, attempt: j.attempt }, { kind: "complete" }, out));
          return complete(worker, j, "lostAnswer, resent");
        case "evicted":
          await evictDurableObject(stub);
          return complete(worker, j, "evicted");
        case "graphEvicted":
          await evictDurableObject(graphStub(j.parentJobId));
          return complete(worker, j, "graphEvicted");
        case "lostNote": {
          // The job of tasks throws at the next note; the task's job tells again from its alarm. Its
          // own work, running meanwhile, may send another task's note first: counted when this one was lost.
          const graph = graphStub(j.parentJobId);
          await runInDurableObject(graph, (o: GraphObject) => o.faults.arm("graph:note"));
          await complete(worker, j, "lostNote");
          const heard = await runInDurableObject(graph, (o: GraphObject) => taskByName(o.sql, j.taskName)?.bucket === "completed");
          if (!heard) notesLost++;
          return;
        }
        case "failedOnce": {
          const res = await done(ep, worker, j.id, { error: "handler error" });
          if (res.status !== 200) unexpected.push(`${j.id}: an error answered ${res.status}`);
          await res.body?.cancel();
          return;
        }
        case "alarmThrows":
          // The worker dies, and the alarm that finds its lease lost throws inside its transaction (armed just before it: see alarms).
          armAtAlarm.add(j.id);
          return;
        case "late":
          stalled.push({ worker, job: j });
          return;
        case "killed":
          return;
      }
    }

    /** Fires every alarm (the endpoint's, each job of tasks', each task's job's); an injected fault is retried, as the platform retries an alarm. */
    const alarms = async () => {
      await runInDurableObject(endpointStubOf(ep), (o: EndpointObject) => o.alarm());
      const fire = async (o: { alarm(): Promise<void> }) => {
        for (let k = 0; k < 3; k++) {
          try {
            await o.alarm();
          } catch (e) {
            if (/injected fault/.test(String(e))) alarmFaults++;
            else unexpected.push(`alarm threw ${String(e)}`);
          }
        }
      };
      for (const id of graphs.keys()) await runInDurableObject(graphStub(id), (o: GraphObject) => fire(o));
      for (const ids of jobsOf.values()) {
        for (const id of ids) {
          await runInDurableObject(jobStubOf(id), async (o: JobObject) => {
            const armed = armAtAlarm.has(id);
            if (armed) o.faults.arm("job:in-transaction");
            const before = alarmFaults;
            await fire(o);
            // Armed only while its alarms run: one with nothing to do yet leaves it for the next round's.
            if (armed && alarmFaults > before) armAtAlarm.delete(id);
            if (armed) o.faults.disarmAll();
          });
        }
      }
    };
    const statuses = async () => Promise.all([...graphs.keys()].map(async (id) => ({ id, s: await json<Record<string, any>>(await call("GET", `/v2/${ep}/status/${id}`)) })));

    for (; rounds < 40; rounds++) {
      const before = stalled.splice(0);
      for (const worker of WORKERS) {
        // Up to 3 tasks a round each, one at a time: a worker that died (or stalled) takes nothing more.
        for (let k = 0; k < 3 && (silentUntil.get(worker) ?? 0) <= rounds; k++) {
          // job_in_progress=1: a take releases nothing; a dead worker's task comes back when its lease runs out.
          const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=1`);
          if (res.status === 204) break;
          expect(res.status, `take by ${worker}`).toBe(200);
          await handle(worker, await json<Handed>(res));
        }
      }
      // Time passes (past the heartbeat timeout): dead workers' leases are lost, their tasks soft-fail and are taken again.
      now += POLICY.heartbeatTimeout + 1_000;
      await alarms();
      // A stalled worker wakes up: its late result for the attempt it lost is refused.
      for (const { worker, job } of before) {
        const res = await call("POST", `/v2/${ep}/job-done/${worker}/${job.id}?isStream=false&attempt=${job.attempt}`, {
          raw: JSON.stringify({ output: "late" }),
          headers: { "content-type": "application/x-www-form-urlencoded" },
        });
        if (res.status === 200) unexpected.push(`${job.id}: a late result of a lost attempt was accepted`);
        await res.body?.cancel();
      }
      const now_ = await statuses();
      // A worker that failed blocklistThreshold tasks of a job is blocklisted from it; with every
      // other worker silent (dead) just then, a task of it fails (README "Blocklists"): its user
      // requeues it, which runs the failed tasks again with the blocklist cleared.
      for (const { id, s } of now_) {
        if (s.status !== "FAILED" || graphs.get(id)!.replicas || !String(s.error).includes("blocklisted")) continue;
        const res = await call("POST", `/v2/${ep}/requeue/${id}`);
        expect(res.status, `requeue of ${id}`).toBe(200);
        await res.body?.cancel();
        requeued++;
      }
      if (now_.every(({ s }) => ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(s.status))) break;
    }
    // Let every webhook retry run.
    const end = now;
    for (const ms of WEBHOOK_RETRY_TIMES) {
      now = end + ms;
      await alarms();
    }

    // Count.
    let lost = 0;
    let duplicated = 0;
    for (const { id, s } of await statuses()) {
      if (s.status !== "COMPLETED") {
        lost++;
        const listed = await json<{ tasks: unknown[] }>(await call("GET", `/v2/${ep}/tasks/${id}`));
        unexpected.push(`job of tasks ${id} ended ${s.status}: ${JSON.stringify(s.tasks)} ${s.error ?? ""}; its tasks: ${JSON.stringify(listed.tasks)}`);
      }
      const { kept, recounted } = await graphStub(id).countsCheck();
      const sorted = (o: Record<string, number>) => JSON.stringify(Object.entries(o).sort());
      if (sorted(kept) !== sorted(recounted)) unexpected.push(`${id}: kept counts ${JSON.stringify(kept)}, recounted ${JSON.stringify(recounted)}`);
      const armed = await runInDurableObject(graphStub(id), (o: GraphObject) => o.faults.armedPoints());
      if (armed.length > 0) unexpected.push(`${id}: a fault never fired: ${armed}`);
      for (const name of graphs.get(id)!.tasks) {
        let completedBy = 0;
        for (const jobId of jobsOf.get(`${id}/${name}`) ?? []) {
          const { job, history, armedPoints } = await runInDurableObject(jobStubOf(jobId), (o: JobObject, st) => ({
            job: loadJob(st.storage.sql)!.job,
            history: readHistory(st.storage.sql),
            armedPoints: o.faults.armedPoints(),
          }));
          if (job.state === "COMPLETED") completedBy++;
          const ends = history.filter((e) => ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(e.to) && e.from !== e.to);
          if (ends.length > 1 || history.filter((e) => e.command === "complete").length > 1) duplicated++;
          if (armedPoints.length > 0) unexpected.push(`${jobId}: a fault never fired: ${armedPoints}`);
        }
        if (completedBy === 0) lost++;
        if (completedBy > 1) duplicated++;
      }
    }
    const delivered = [...receiver.successes.values()].filter((n) => n === 1).length;
    const tasks = GRAPHS * TASKS + [...graphs.values()].filter((g) => g.replicas).reduce((n, g) => n + g.tasks.length, 0);
    console.log(
      `faults, jobs of tasks (seed ${SEED}): ${graphs.size} jobs (${GRAPHS} of ${TASKS} tasks, ${REPLICA_JOBS} of replicas), ${tasks} tasks, ` +
        `hand-outs ${JSON.stringify(fates)}; lost ${lost}, duplicated ${duplicated}, unexpected ${unexpected.length}; ${rounds + 1} rounds; ` +
        `alarms that threw ${alarmFaults} (armed, never met a due alarm: ${armAtAlarm.size}); completion notes lost and told again ${notesLost}; requeued after a blocklist failure ${requeued}; webhooks delivered ${delivered}/${graphs.size}`,
    );
    expect(unexpected).toEqual([]);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    // One webhook per end: a job of tasks requeued after failing ended twice (FAILED, then COMPLETED).
    expect(delivered, "each job of tasks' webhook arrived once").toBe(receiver.successes.size);
    expect(receiver.successes.size, "one webhook per end").toBe(graphs.size + requeued);
    for (const f of FATES) expect(fates[f] ?? 0, `fate ${f} met`).toBeGreaterThan(0);
    expect(alarmFaults, "each alarmThrows fault was thrown by an alarm").toBe((fates.alarmThrows ?? 0) - armAtAlarm.size);
    expect(alarmFaults, "alarms threw").toBeGreaterThan(0);
    expect(notesLost, "some lostNote faults lost the completion note itself").toBeGreaterThan(0);
  });
});
