/**
 * Measurement, not a test (runs only with SCALE_MEASURE=1): per-request cost inside the endpoint
 * object with 200, 20,000 and 100,000 queued rows — a waiting job's queueInfo (the last in line),
 * a take, health (counts by state) and the recent jobs list. Prints medians in ms per call.
 *   SCALE_MEASURE=1 npx vitest run --project workerd test/workerd/depth-measure.test.ts
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import { recentJobs } from "../../src/endpoints/ready-index";
import { fillIndex, filledId } from "./depth-kit";
import { createEndpoint, endpointStubOf } from "./helpers";

const on = Boolean((env as unknown as Record<string, string | undefined>).SCALE_MEASURE);
const REPS = 11;
/** Calls per timed batch: workerd's clock moves in whole ms, and only across I/O. */
const BATCH = 10;

/** Median ms per call over REPS batches of BATCH calls. */
async function median(fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    for (let k = 0; k < BATCH; k++) await fn();
    // A zero-delay timer lets the clock catch up with the synchronous work.
    await new Promise((r) => setTimeout(r, 0));
    times.push((performance.now() - t0) / BATCH);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(REPS / 2)]! * 100) / 100;
}

describe.skipIf(!on)("cost by queue depth (measurement)", () => {
  it("prints medians for 200, 20,000 and 100,000 queued", { timeout: 1_800_000 }, async () => {
    const baseline = await runInDurableObject(endpointStubOf(await createEndpoint()), () => median(() => undefined));
    const out: Record<string, unknown>[] = [];
    for (const depth of [200, 20_000, 100_000]) {
      const ep = await createEndpoint({ concurrency: 100_000 });
      const row = await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
        const sql = state.storage.sql;
        fillIndex(sql, depth, "IN_QUEUE", 1_000, "q");
        // Some history too: finished jobs, as a busy endpoint holds for the tombstone hour.
        fillIndex(sql, depth, "COMPLETED", 500, "c");
        const last = filledId("q", depth);
        const r = {
          depth,
          queueInfo: await median(() => i.queueInfo(last)),
          take: await median(() => i.take({ workerId: "w-measure", max: 1, waitMs: 0, generation: null })),
          health: await median(() => i.health()),
          recentJobs: await median(() => recentJobs(sql, 50)),
          jobsList: await median(() => i.jobs(50)),
        };
        expect((await i.queueInfo(last)).reason).toBeDefined();
        return r;
      });
      out.push(row);
    }
    console.log(JSON.stringify({ timerBaselineMs: baseline, rows: out }));
  });
});
