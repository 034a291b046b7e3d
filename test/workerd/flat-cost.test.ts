/**
 * Issue 12, item 1: per-request cost independent of queue depth. Every index query on a request
 * path is an index search (shown by EXPLAIN QUERY PLAN on a deep index, not by timing); counts by
 * state are maintained exactly; a far-back queue position is a bound; parked takes are not woken
 * for offers that come back empty.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { IndexEntry } from "../../src/jobs/index-entry";
import {
  applyEntry,
  nextOfferLapse,
  offerReady,
  pruneTombstones,
  slotsInUse,
  unfinishedJobIds,
  withdrawOffers,
} from "../../src/endpoints/ready-index";
import { countByState } from "../../src/endpoints/index-counters";
import { JOB_STATES, type JobState } from "../../src/jobs/states";
import { QUEUE_POSITION } from "../../src/shared/limits";
import { fillIndex, filledId } from "./depth-kit";
import { createEndpoint, endpointStubOf, json, seedFrom, status, submit } from "./helpers";

function entry(jobId: string, state: JobState, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    jobId, generation: null, version: 1, state, priority: 0, lowPriority: false, createdAt: 1, workerId: null, attempt: 0,
    avoidWorkers: [], stopFor: null, reason: null, sequenceKey: null, dispatchPending: false, dispatchError: null,
    inputBytes: 0, delayMs: null, executionMs: null, ...over,
  };
}

interface Seen {
  query: string;
  bindings: unknown[];
}

/** Swaps the object's SqlStorage for one that records every statement (restored by the returned function). */
function recordSql(i: EndpointObject, seen: Seen[]): () => void {
  // The endpoint object and its shard-0 queue (ready-queue.ts) share one sql handle: both are swapped.
  const holders = [i as unknown as { sql: SqlStorage }, (i as unknown as { queue: { sql: SqlStorage } }).queue];
  const real = holders[0]!.sql;
  const recording = new Proxy(real, {
    get(t, p) {
      if (p === "exec") {
        return (query: string, ...bindings: unknown[]) => {
          seen.push({ query, bindings });
          return t.exec(query, ...bindings);
        };
      }
      const v = Reflect.get(t, p) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  for (const h of holders) h.sql = recording;
  return () => {
    for (const h of holders) h.sql = real;
  };
}

/** The query plan's lines for a statement, run with the same bindings. */
function planOf(sql: SqlStorage, s: Seen): string[] {
  return sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${s.query}`, ...s.bindings).toArray().map((r) => r.detail);
}

/**
 * Indexes a LIMIT query may walk in order (a SCAN in the plan): every row they hold matches the
 * query (recent: no filter; offerable and waiting: the query's filter is the partial index's
 * own), so the walk stops after LIMIT rows.
 */
const ORDERED_WALKS = ["job_index_recent", "job_index_offerable", "job_index_waiting"];

/** A statement walks the queue if its plan scans job_index (other than an ordered walk), or sorts in a temp B-tree. */
function walksQueue(s: Seen, plan: string[]): string[] {
  return plan.filter((line) => {
    if (line.includes("TEMP B-TREE")) return true;
    if (!/^SCAN job_index\b/.test(line)) return false;
    const walk = /USING (COVERING )?INDEX (\w+)/.exec(line)?.[2];
    return !(walk !== undefined && ORDERED_WALKS.includes(walk) && /\bLIMIT\b/.test(s.query));
  });
}

/** Markers of the request-path queries on job_index, and the index each must search. */
const EXPECTED: Array<[string, string]> = [
  ["AND offered_until = 0", "job_index_offerable"], // offerReady
  ["offered_until <= ?", "job_index_offered"], // lapsed offers reset
  ["ORDER BY offered_until LIMIT 1", "job_index_offered"], // nextOfferLapse
  ["FROM job_state_count WHERE state IN ('IN_PROGRESS', 'CANCELLING'))", "job_index_offered"], // slotsInUse
  ["UNION ALL", "job_index_order"], // queuePosition
  ["ORDER BY updated_at DESC", "job_index_recent"], // recentJobs
  ["ORDER BY created_at LIMIT", "job_index_waiting"], // waitingJobIds
  ["DELETE FROM job_index", "job_index_tombstone"], // pruneTombstones
  ["AND flow_key = '' AND tags = ''", "job_index_class"], // untagged ready jobs (tag-classes)
];

/**
 * What is wrong with the plans of the job_index statements seen: a walk of the queue (see
 * walksQueue), or a statement of EXPECTED searching another index than its own (which may still
 * step over the rows its own leaves out: offered, running or waiting rows).
 */
function planProblems(sql: SqlStorage, seen: Seen[]): string[] {
  const problems: string[] = [];
  for (const s of seen.filter((x) => /job_index|job_state_count/.test(x.query) && /^\s*(SELECT|UPDATE|DELETE|WITH)/i.test(x.query))) {
    const plan = planOf(sql, s);
    const query = s.query.replace(/\s+/g, " ");
    for (const w of walksQueue(s, plan)) problems.push(`${query}: ${w}`);
    for (const [marker, index] of EXPECTED) {
      if (s.query.includes(marker) && !new RegExp(`INDEX ${index}\\b`).test(plan.join("\n"))) problems.push(`${query}: not through ${index} (${plan.join("; ")})`);
    }
  }
  return problems;
}

/** A deep index: 20,000 waiting, plus offered, pending-dispatch, running, sequenced and old finished rows. */
function fillDeep(sql: SqlStorage, now: number): void {
  fillIndex(sql, 20_000, "IN_QUEUE", 1_000, "q");
  fillIndex(sql, 2_000, "IN_QUEUE", 30_000, "o", { offeredUntil: now + 60_000 });
  fillIndex(sql, 500, "IN_QUEUE", 40_000, "lapsed", { offeredUntil: now - 1 });
  fillIndex(sql, 1_000, "IN_QUEUE", 50_000, "p", { dispatchPending: true });
  fillIndex(sql, 2_000, "IN_PROGRESS", 60_000, "r", { workerId: "w-1" });
  fillIndex(sql, 1_000, "SEQUENCED", 70_000, "s");
  fillIndex(sql, 5_000, "COMPLETED", 80_000, "c");
}

describe("flat per-request cost (issue 12)", () => {
  it("every job_index query on a request path is an index search on a deep index (EXPLAIN QUERY PLAN)", async () => {
    const ep = await createEndpoint({ concurrency: 100_000 });
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
      const sql = state.storage.sql;
      // Finished rows are older than the tombstone hour: pruning has work to find.
      const now = i.clock.now();
      fillDeep(sql, now);
      sql.exec("UPDATE job_index SET updated_at = 5 WHERE job_id LIKE 'c-%'");
      const seen: Seen[] = [];
      const restore = recordSql(i, seen);
      const sqlSeen = (i as unknown as { sql: SqlStorage }).sql;
      try {
        expect((await i.queueInfo(filledId("q", 20_000))).position).toBe(QUEUE_POSITION.exactBelow);
        // Offered at once, so claimed here: the filled rows have no job objects, so the claims fail (and count as stale).
        const took = await i.take({ workerId: "w-plan", max: 4, waitMs: 0, generation: null });
        expect(took.ids.length + (took.jobs?.length ?? 0) + (took.stale ?? 0)).toBe(4);
        expect((await i.health())?.jobs.inQueue).toBeGreaterThan(20_000);
        expect(await i.jobs(20)).toHaveLength(20);
        expect(await i.waitingJobs(100)).toHaveLength(100);
        // A shard's depth (forwarding between shards, sampling).
        expect((i as unknown as { queue: { depth(now: number): number } }).queue.depth(now)).toBe(64);
        // Pings and the worker list are served by the liveness objects (no job_index query).
        (i as unknown as { queue: { pruneAt: number } }).queue.pruneAt = 0;
        await i.sync(entry("fresh", "IN_QUEUE", { createdAt: now }));
        await i.sync(entry("fresh", "IN_PROGRESS", { createdAt: now, version: 2, workerId: "w-plan" }));
        // Push dispatch, an endpoint's deletion, a failed queue send.
        expect(offerReady(sqlSeen, "push", 10, now, 60_000)).toHaveLength(10);
        expect(nextOfferLapse(sqlSeen, now)).not.toBeNull();
        withdrawOffers(sqlSeen, ["q-0000100"]);
        expect(slotsInUse(sqlSeen, now)).toBeGreaterThan(2_000);
        expect(unfinishedJobIds(sqlSeen, 100)).toHaveLength(100);
        expect(pruneTombstones(sqlSeen, now)).toBe(1_000);
      } finally {
        restore();
      }
      expect(planProblems(sql, seen)).toEqual([]);
      // The queries that used to walk the queue were all seen: the check cannot pass by seeing nothing.
      for (const [marker] of EXPECTED) expect(seen.some((s) => s.query.includes(marker)), marker).toBe(true);
    });
  });

  it("ERROR rows (issue 15, item 5) are pruned like every terminal row, through the tombstone index; unfinished rows never", async () => {
    const ep = await createEndpoint({ concurrency: 100_000 });
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
      const sql = state.storage.sql;
      const now = i.clock.now();
      fillIndex(sql, 30, "ERROR", 10, "e");
      fillIndex(sql, 30, "COMPLETED", 100, "c");
      fillIndex(sql, 30, "IN_PROGRESS", 200, "r", { workerId: "w-1" });
      sql.exec("UPDATE job_index SET updated_at = 5");
      expect(pruneTombstones(sql, now)).toBe(60);
      const left = sql.exec<{ state: string; n: number }>("SELECT state, COUNT(*) AS n FROM job_index GROUP BY state").toArray();
      expect(left).toEqual([{ state: "IN_PROGRESS", n: 30 }]);
    });
  });

  it("the plan check fails when an index is missing (planted defect: job_index_order dropped)", async () => {
    const ep = await createEndpoint();
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
      const sql = state.storage.sql;
      fillDeep(sql, i.clock.now());
      sql.exec("DROP INDEX job_index_order");
      const seen: Seen[] = [];
      const restore = recordSql(i, seen);
      try {
        await i.queueInfo(filledId("q", 20_000));
      } finally {
        restore();
      }
      // Queue position falls back to another index (job_index_listing_state, which steps over the
      // rows of its state in creation order, not in take order) or to a scan: either is reported.
      const problems = planProblems(sql, seen);
      expect(problems.some((p) => /UNION ALL .*(SCAN job_index|USING (COVERING )?INDEX (?!job_index_order\b)\w+)/.test(p)), problems.join("\n")).toBe(true);
    });
  });

  it("counts by state stay exactly the rows by state, whatever order entries, offers and prunes come in", async () => {
    const ep = await createEndpoint();
    const ids = ["a", "b", "c", "d"];
    const step = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant("entry" as const),
          id: fc.constantFrom(...ids),
          state: fc.constantFrom(...JOB_STATES),
          version: fc.integer({ min: 1, max: 6 }),
          createdAt: fc.constantFrom(1, 2),
        }),
        weight: 6,
      },
      { arbitrary: fc.record({ kind: fc.constant("prune" as const), hoursLater: fc.integer({ min: 0, max: 3 }) }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant("offer" as const), lapse: fc.boolean() }), weight: 1 },
    );
    await runInDurableObject(endpointStubOf(ep), async (_i: EndpointObject, state) => {
      const sql = state.storage.sql;
      const groupBy = () => {
        const out: Partial<Record<JobState, number>> = {};
        for (const r of sql.exec<{ state: JobState; n: number }>("SELECT state, COUNT(*) AS n FROM job_index GROUP BY state")) out[r.state] = r.n;
        return out;
      };
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
          sql.exec("DELETE FROM job_index");
          expect(countByState(sql)).toEqual({});
          let now = 10_000;
          for (const s of steps) {
            now += 1_000;
            if (s.kind === "entry") applyEntry(sql, entry(s.id, s.state, { version: s.version, createdAt: s.createdAt }), now);
            else if (s.kind === "prune") pruneTombstones(sql, now + s.hoursLater * 3_600_000);
            else offerReady(sql, "w", 2, s.lapse ? now - 20_000 : now);
            expect(countByState(sql)).toEqual(groupBy());
          }
        }),
        { seed: seedFrom("MODEL_SEED"), numRuns: 150 },
      );
    });
  });

  it("a waiting job's position is exact below the bound, and past it a bound with positionAtLeast (README: queue.position)", async () => {
    // One shard: the status route reads the rows filled into the endpoint object (shard 0).
    const ep = await createEndpoint({ shards: 1 });
    const bound = QUEUE_POSITION.exactBelow;
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
      fillIndex(state.storage.sql, bound + 500, "IN_QUEUE", 1_000, "q");
      expect(await i.queueInfo(filledId("q", 5))).toMatchObject({ position: 5 });
      expect((await i.queueInfo(filledId("q", bound - 1))).positionAtLeast).toBeUndefined();
      expect((await i.queueInfo(filledId("q", bound - 1))).position).toBe(bound - 1);
      expect(await i.queueInfo(filledId("q", bound))).toMatchObject({ position: bound, positionAtLeast: true });
      expect(await i.queueInfo(filledId("q", bound + 500))).toMatchObject({ position: bound, positionAtLeast: true });
    });
    // The status route shows it as it is.
    const id = await submit(ep);
    const body = await json<{ queue: Record<string, unknown> }>(await status(ep, id));
    expect(body.queue).toMatchObject({ position: bound, positionAtLeast: true, reason: "no_workers" });
    // A job of higher priority is first however deep the queue.
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject) => {
      await i.sync(entry("urgent", "IN_QUEUE", { priority: 5, createdAt: i.clock.now() }));
      expect(await i.queueInfo("urgent")).toEqual({ position: 1, reason: "no_workers" });
    });
  });

  it("one ready job wakes one of 50 parked takes with a bounded number of offer queries (not one per waiter)", async () => {
    const ep = await createEndpoint();
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject) => {
      const takes = Array.from({ length: 50 }, (_, n) => i.take({ workerId: `w${n}`, max: 1, waitMs: 300, generation: null }));
      const seen: Seen[] = [];
      const restore = recordSql(i, seen);
      try {
        await i.sync(entry("one", "IN_QUEUE", { createdAt: i.clock.now() }));
      } finally {
        restore();
      }
      const offers = seen.filter((s) => s.query.includes("offered_until = 0") && s.query.includes("ORDER BY priority DESC")).length;
      expect(offers).toBeLessThanOrEqual(2);
      const got = (await Promise.all(takes)).map((t) => t.ids);
      expect(got[0]).toEqual(["one"]);
      expect(got.flat()).toEqual(["one"]);
    });
  });

  it("a job the first waiter failed still goes to the next waiter at once (avoid_workers), still bounded", async () => {
    const ep = await createEndpoint();
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject) => {
      const takes = Array.from({ length: 50 }, (_, n) => i.take({ workerId: `w${n}`, max: 1, waitMs: 300, generation: null }));
      const seen: Seen[] = [];
      const restore = recordSql(i, seen);
      try {
        await i.sync(entry("failed-by-w0", "IN_QUEUE", { createdAt: i.clock.now(), avoidWorkers: ["w0"] }));
      } finally {
        restore();
      }
      const offers = seen.filter((s) => s.query.includes("offered_until = 0") && s.query.includes("ORDER BY priority DESC")).length;
      expect(offers).toBeLessThanOrEqual(3);
      const got = (await Promise.all(takes)).map((t) => t.ids);
      expect(got[0]).toEqual([]);
      expect(got[1]).toEqual(["failed-by-w0"]);
    });
  });
});
