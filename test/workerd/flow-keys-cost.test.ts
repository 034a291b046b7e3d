/**
 * Issue 16, item 4: an offer's cost is flat in queue depth and in the number of keys. Rows read
 * (SqlStorageCursor.rowsRead, over every statement of the call) are the same with 10 or 1,000
 * keys at their cap and 10 or 1,000 rate-limited, each with a backlog; a planted defect (the open
 * keys' index without its partial terms, so offers step over capped keys) is caught. The keys'
 * counts stay exactly what their rows say, whatever order entries, offers and lapses come in.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { keyPosition, keyWait } from "../../src/endpoints/flow-keys";
import { applyEntry, offerJobs, offerReady, readyDepth } from "../../src/endpoints/ready-index";
import type { IndexEntry } from "../../src/jobs/index-entry";
import { JOB_STATES, type JobState } from "../../src/jobs/states";
import { createEndpoint, endpointStubOf, seedFrom } from "./helpers";
import { counting } from "./depth-kit";

/** Inserts `perKey` rows in `state` for each of `keys` keys `${prefix}-0..`, ids `${prefix}-r…`. */
function fillKeys(sql: SqlStorage, prefix: string, keys: number, perKey: number, state: JobState, from: number): void {
  sql.exec(
    `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
     INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, worker_id, offered_until, updated_at, ready_since, dispatch_pending, flow_key)
     SELECT printf('%s-r%07d-%s', ?2, i, ?3), 1, ?3, 0, 0, ?4 + i, NULL, 0, ?4 + i, ?4 + i, 0, printf('%s-%d', ?2, i % ?5) FROM s`,
    keys * perKey,
    prefix,
    state,
    from,
    keys,
  );
}

interface Cost {
  offerRows: number;
  handed: string[];
  depthRows: number;
  infoRows: number;
}

/**
 * On a fresh endpoint (keyConcurrency 1): `keys` keys at their cap and `keys` rate-limited, each
 * with 5 ready jobs; 3 open keys with 5 each, and 50 jobs without a key. The rows one offer of 4,
 * one depth count and one capped job's wait (position and reason) read. `defect`: flow_key_open
 * rebuilt without its partial terms.
 */
async function costWith(keys: number, defect = false): Promise<Cost> {
  const ep = await createEndpoint({ shards: 1, keyConcurrency: 1 });
  return runInDurableObject(endpointStubOf(ep), (i: EndpointObject, state) => {
    const sql = state.storage.sql;
    const now = i.clock.now();
    fillKeys(sql, "cap", keys, 1, "IN_PROGRESS", 1_000);
    fillKeys(sql, "cap", keys, 5, "IN_QUEUE", 100_000);
    fillKeys(sql, "lim", keys, 5, "IN_QUEUE", 200_000);
    sql.exec("UPDATE flow_key_state SET limited_until = ? WHERE flow_key LIKE 'lim-%'", now + 3_600_000);
    fillKeys(sql, "open", 3, 5, "IN_QUEUE", 300_000);
    fillKeys(sql, "none", 1, 50, "IN_QUEUE", 400_000);
    sql.exec("UPDATE job_index SET flow_key = '' WHERE flow_key = 'none-0'");
    if (defect) sql.exec("DROP INDEX flow_key_open; CREATE INDEX flow_key_open ON flow_key_state (turn, flow_key)");
    const offer = counting(sql);
    const handed = offerJobs(offer.sql, "w", 4, now).ids;
    const depth = counting(sql);
    expect(readyDepth(depth.sql, now, 64)).toBeGreaterThan(0);
    const info = counting(sql);
    const deep = `cap-r${String(keys * 5 - 1).padStart(7, "0")}-IN_QUEUE`;
    expect(keyWait(info.sql, `cap-${(keys * 5 - 1) % keys}`, now)).toEqual({ reason: "key_concurrency" });
    expect(keyPosition(info.sql, deep, `cap-${(keys * 5 - 1) % keys}`, 100)).toBe(5);
    return { offerRows: offer.rowsRead(), handed, depthRows: depth.rowsRead(), infoRows: info.rowsRead() };
  });
}

function entry(jobId: string, state: JobState, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    jobId, generation: null, version: 1, state, priority: 0, lowPriority: false, createdAt: 1, workerId: null, attempt: 0,
    avoidWorkers: [], stopFor: null, reason: null, sequenceKey: null, dispatchPending: false, dispatchError: null,
    inputBytes: 0, delayMs: null, executionMs: null, ...over,
  };
}

describe("flow keys: flat offer cost", () => {
  it("an offer reads the same rows with 10 or 1,000 keys capped and 10 or 1,000 rate-limited (rows read printed)", async () => {
    const small = await costWith(10);
    const large = await costWith(1_000);
    console.log(`flow-key offer of 4, rows read: 10+10 keys ${small.offerRows}, 1,000+1,000 keys ${large.offerRows}; depth ${small.depthRows} / ${large.depthRows}; a capped job's wait ${small.infoRows} / ${large.infoRows}`);
    // Rotation: the 3 open keys and the jobs without a key, one job each.
    expect(small.handed.map((id) => id.split("-")[0]).sort()).toEqual(["none", "open", "open", "open"]);
    expect(large.handed.map((id) => id.split("-")[0]).sort()).toEqual(["none", "open", "open", "open"]);
    expect(large.offerRows).toBeLessThanOrEqual(small.offerRows + 4);
    expect(large.depthRows).toBeLessThanOrEqual(small.depthRows + 4);
    expect(large.infoRows).toBeLessThanOrEqual(small.infoRows + 4);
    expect(large.offerRows).toBeLessThan(200);
  });

  it("the check catches a planted defect: flow_key_open without its partial terms walks the capped keys", async () => {
    const small = await costWith(10, true);
    const large = await costWith(1_000, true);
    expect(large.offerRows).toBeGreaterThan(small.offerRows + 1_000);
  });

  it("each key's ready and held counts stay exactly what its rows say, whatever order entries, offers and lapses come in", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 2 });
    const ids = ["a", "b", "c", "d", "e"];
    const step = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant("entry" as const),
          id: fc.constantFrom(...ids),
          state: fc.constantFrom(...JOB_STATES),
          version: fc.integer({ min: 1, max: 6 }),
          key: fc.constantFrom<string | null>(null, "k", "l", "__proto__"),
          pending: fc.boolean(),
        }),
        weight: 6,
      },
      { arbitrary: fc.record({ kind: fc.constant("offer" as const), max: fc.integer({ min: 1, max: 3 }), lapse: fc.boolean() }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant("delete" as const), id: fc.constantFrom(...ids) }), weight: 1 },
    );
    await runInDurableObject(endpointStubOf(ep), async (_i: EndpointObject, state) => {
      const sql = state.storage.sql;
      const recount = () =>
        sql
          .exec<{ flow_key: string; ready: number; held: number }>(
            `SELECT flow_key, SUM(state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0) AS ready,
               SUM(state IN ('IN_PROGRESS', 'CANCELLING') OR offered_until > 0) AS held FROM job_index WHERE flow_key != '' GROUP BY flow_key`,
          )
          .toArray()
          .filter((r) => r.ready > 0 || r.held > 0);
      const kept = () => sql.exec<{ flow_key: string; ready: number; held: number }>("SELECT flow_key, ready, held FROM flow_key_state WHERE ready > 0 OR held > 0 ORDER BY flow_key").toArray();
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
          sql.exec("DELETE FROM job_index; DELETE FROM flow_key_state");
          let now = 10_000;
          for (const s of steps) {
            now += 1_000;
            if (s.kind === "entry") applyEntry(sql, entry(s.id, s.state, { version: s.version, flowKey: s.key, dispatchPending: s.pending && s.state === "IN_QUEUE" }), now);
            else if (s.kind === "delete") sql.exec("DELETE FROM job_index WHERE job_id = ?", s.id);
            else {
              const before = new Map(kept().map((r) => [r.flow_key, r.held]));
              offerReady(sql, "w", s.max, s.lapse ? now - 20_000 : now);
              // An offer never takes a key past its cap (2); entries may (a job's own word wins).
              for (const r of kept()) expect(r.held, r.flow_key).toBeLessThanOrEqual(Math.max(2, before.get(r.flow_key) ?? 0));
            }
            expect(kept()).toEqual(recount().sort((x, y) => (x.flow_key < y.flow_key ? -1 : 1)));
          }
        }),
        { seed: seedFrom("MODEL_SEED"), numRuns: 150 },
      );
    });
  });
});
