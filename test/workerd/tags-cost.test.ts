/**
 * Issue 15, item 3: an offer's cost with tagged jobs ready. Rows read (SqlStorageCursor.rowsRead,
 * over every statement of the call) are the same with 100 or 10,000 ready jobs of tag sets the
 * worker lacks ahead of the ones it may take; a planted defect (offers walking the plain order
 * and passing over what the worker lacks) is caught. tag_class's counts stay exactly what the
 * rows say, as do the keys' untagged counts, whatever order entries, offers and lapses come in.
 * With flow keys, a plain worker's offer is flat too; a tagged worker's walks the open keys whose
 * jobs need other tags (printed, a known cost: README "Worker tags").
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { applyEntry, offerJobs } from "../../src/endpoints/ready-index";
import type { IndexEntry } from "../../src/jobs/index-entry";
import { JOB_STATES, type JobState } from "../../src/jobs/states";
import { createEndpoint, endpointStubOf, seedFrom } from "./helpers";
import { counting } from "./depth-kit";

/** Inserts `n` ready rows requiring `tags`, ids `${prefix}-r…`, created from `from`, keyed `key-<i % keys>` when `keys` > 0. */
function fill(sql: SqlStorage, prefix: string, n: number, tags: string, from: number, keys = 0): void {
  sql.exec(
    `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
     INSERT INTO job_index (job_id, version, state, priority, low_priority, created_at, worker_id, offered_until, updated_at, ready_since, dispatch_pending, flow_key, tags)
     SELECT printf('%s-r%07d', ?2, i), 1, 'IN_QUEUE', 0, 0, ?3 + i, NULL, 0, ?3 + i, ?3 + i, 0,
       CASE WHEN ?5 > 0 THEN printf('%s-key-%d', ?2, i % ?5) ELSE '' END, ?4 FROM s`,
    n,
    prefix,
    from,
    tags,
    keys,
  );
}

interface Cost {
  plainRows: number;
  plain: string[];
  gpuRows: number;
  gpu: string[];
}

/**
 * `deep` jobs needing "a100,gpu" and `deep` needing "tpu" ahead of 10 needing "gpu" and 10 plain
 * ones; one offer of 4 to a plain worker and one to a "gpu" worker. `defect`: tagged rows moved
 * out of job_index_class (as if offers walked the plain order, passing over what they may not take).
 */
async function costWith(deep: number, defect = false): Promise<Cost> {
  const ep = await createEndpoint({ shards: 1 });
  return runInDurableObject(endpointStubOf(ep), (i: EndpointObject, state) => {
    const sql = state.storage.sql;
    const now = i.clock.now();
    fill(sql, "a100", deep, "a100,gpu", 1_000);
    fill(sql, "tpu", deep, "tpu", 1_000_000);
    fill(sql, "gpu", 10, "gpu", 3_000_000);
    fill(sql, "none", 10, "", 4_000_000);
    if (defect) sql.exec("DROP INDEX job_index_class; CREATE INDEX job_index_class ON job_index (flow_key, priority DESC, low_priority, created_at, job_id, tags)");
    const plain = counting(sql);
    const plainIds = offerJobs(plain.sql, { workerId: "p", tags: "" }, 4, now).ids;
    const gpu = counting(sql);
    const gpuIds = offerJobs(gpu.sql, { workerId: "g", tags: "gpu" }, 4, now).ids;
    return { plainRows: plain.rowsRead(), plain: plainIds, gpuRows: gpu.rowsRead(), gpu: gpuIds };
  });
}

function entry(jobId: string, state: JobState, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    jobId, generation: null, version: 1, state, priority: 0, lowPriority: false, createdAt: 1, workerId: null, attempt: 0,
    avoidWorkers: [], stopFor: null, reason: null, sequenceKey: null, dispatchPending: false, dispatchError: null,
    inputBytes: 0, delayMs: null, executionMs: null, ...over,
  };
}

describe("tags: flat offer cost", () => {
  it("an offer reads the same rows with 100 or 10,000 jobs of other tag sets ahead (rows read printed)", async () => {
    const small = await costWith(100);
    const large = await costWith(10_000);
    console.log(`tagged offer of 4, rows read: plain worker ${small.plainRows} / ${large.plainRows}, GPU worker ${small.gpuRows} / ${large.gpuRows} (100 / 10,000 jobs of other tag sets ahead)`);
    for (const c of [small, large]) {
      expect(c.plain).toEqual(["none-r0000000", "none-r0000001", "none-r0000002", "none-r0000003"]);
      expect(c.gpu).toEqual(["gpu-r0000000", "gpu-r0000001", "gpu-r0000002", "gpu-r0000003"]);
    }
    expect(large.plainRows).toBeLessThanOrEqual(small.plainRows + 4);
    expect(large.gpuRows).toBeLessThanOrEqual(small.gpuRows + 4);
    expect(large.plainRows).toBeLessThan(100);
  });

  it("catches a planted defect: offers that walk past jobs their worker may not take", async () => {
    const large = await costWith(10_000, true);
    expect(large.plainRows).toBeGreaterThan(5_000);
  });

  it("with flow keys: a plain worker's offer is flat in keys of tagged jobs; a tagged worker walks the keys of other tags (printed)", async () => {
    const plain: number[] = [];
    const tagged: number[] = [];
    const batch: number[] = [];
    for (const keys of [10, 1_000]) {
      const ep = await createEndpoint({ shards: 1 });
      await runInDurableObject(endpointStubOf(ep), (i: EndpointObject, state) => {
        const sql = state.storage.sql;
        fill(sql, "tpu", keys * 2, "tpu", 1_000, keys);
        fill(sql, "gpu", 2, "gpu", 8_000_000, 1);
        fill(sql, "none", 4, "", 9_000_000, 1);
        const c = counting(sql);
        expect(offerJobs(c.sql, { workerId: "p", tags: "" }, 1, i.clock.now()).ids).toEqual(["none-r0000000"]);
        plain.push(c.rowsRead());
        const g = counting(sql);
        expect(offerJobs(g.sql, { workerId: "g", tags: "gpu" }, 1, i.clock.now()).ids).toEqual(["gpu-r0000000"]);
        tagged.push(g.rowsRead());
        // A batch of 20: the walk resumes where the last round found a key (not from the start each round).
        fill(sql, "gpu2", 40, "gpu", 8_500_000, 20);
        const b = counting(sql);
        expect(offerJobs(b.sql, { workerId: "g2", tags: "gpu" }, 20, i.clock.now()).ids).toHaveLength(20);
        batch.push(b.rowsRead());
      });
    }
    console.log(`keyed offer, rows read with 10 / 1,000 keys of TPU jobs: plain worker (1) ${plain.join(" / ")}, GPU worker (1) ${tagged.join(" / ")}, GPU worker (20) ${batch.join(" / ")}`);
    expect(plain[1]!).toBeLessThanOrEqual(plain[0]! + 4);
    // The TPU keys are stepped over once per offer, not once per job handed out.
    expect(batch[1]! - batch[0]!).toBeLessThan(2 * (tagged[1]! - tagged[0]!) + 100);
  });
});

describe("tags: tag_class and flow_key_state.untagged counts", () => {
  it("stay exactly what the rows say, through any order of entries, offers and lapses", async () => {
    const ep = await createEndpoint({ shards: 1 });
    const SETS = ["", "gpu", "a100,gpu"];
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("entry" as const), job: fc.nat(5), state: fc.constantFrom(...JOB_STATES), tags: fc.constantFrom(...SETS), key: fc.constantFrom("", "k1", "k2"), version: fc.nat(6), pending: fc.boolean() }),
            fc.record({ kind: fc.constant("offer" as const), tags: fc.constantFrom(...SETS), max: fc.integer({ min: 1, max: 3 }) }),
            fc.record({ kind: fc.constant("lapse" as const) }),
          ),
          { maxLength: 30 },
        ),
        async (steps) =>
          runInDurableObject(endpointStubOf(ep), (i: EndpointObject, state) => {
            const sql = state.storage.sql;
            sql.exec("DELETE FROM job_index");
            sql.exec("DELETE FROM tag_class");
            sql.exec("DELETE FROM flow_key_state");
            let now = i.clock.now();
            for (const s of steps) {
              if (s.kind === "entry") applyEntry(sql, entry(`j${s.job}`, s.state, { version: s.version + 1, tags: s.tags, flowKey: s.key, dispatchPending: s.pending && s.state === "IN_QUEUE" }), now);
              else if (s.kind === "offer") offerJobs(sql, { workerId: "w", tags: s.tags }, s.max, now);
              else now += 20_000; // every outstanding offer lapses (the next offer resets them)
            }
            const kept = new Map(sql.exec<{ tags: string; ready: number }>("SELECT tags, ready FROM tag_class WHERE ready != 0").toArray().map((r) => [r.tags, r.ready]));
            const rows = new Map(
              sql
                .exec<{ tags: string; n: number }>("SELECT tags, COUNT(*) AS n FROM job_index WHERE tags != '' AND state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0 GROUP BY tags")
                .toArray()
                .map((r) => [r.tags, r.n]),
            );
            expect(kept).toEqual(rows);
            // A key's untagged ready rows (flow_key_open_untagged) too.
            const keyed = new Map(sql.exec<{ flow_key: string; untagged: number }>("SELECT flow_key, untagged FROM flow_key_state WHERE untagged != 0").toArray().map((r) => [r.flow_key, r.untagged]));
            const keyRows = new Map(
              sql
                .exec<{ flow_key: string; n: number }>("SELECT flow_key, COUNT(*) AS n FROM job_index WHERE flow_key != '' AND tags = '' AND state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0 GROUP BY flow_key")
                .toArray()
                .map((r) => [r.flow_key, r.n]),
            );
            expect(keyed).toEqual(keyRows);
            // And the keys' ready and held counts, whose triggers migration 12 re-created.
            const counts = new Map(sql.exec<{ flow_key: string; ready: number; held: number }>("SELECT flow_key, ready, held FROM flow_key_state WHERE ready != 0 OR held != 0").toArray().map((r) => [r.flow_key, `${r.ready}/${r.held}`]));
            const countRows = new Map(
              sql
                .exec<{ flow_key: string; ready: number; held: number }>(
                  `SELECT flow_key, SUM(state = 'IN_QUEUE' AND dispatch_pending = 0 AND offered_until = 0) AS ready,
                     SUM(state IN ('IN_PROGRESS', 'CANCELLING') OR offered_until > 0) AS held FROM job_index WHERE flow_key != '' GROUP BY flow_key`,
                )
                .toArray()
                .filter((r) => r.ready !== 0 || r.held !== 0)
                .map((r) => [r.flow_key, `${r.ready}/${r.held}`]),
            );
            expect(counts).toEqual(countRows);
          }),
      ),
      { seed: seedFrom("FUZZ_SEED"), numRuns: 100 },
    );
  });
});
