/**
 * Issue 16, item 4: push endpoints hand jobs to the dispatch queue through the same offers, so
 * keys take turns there too and a key's cap and rate hold (sendReady with a recording queue).
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sendReady } from "../../src/endpoints/dispatcher";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { DispatchMessage } from "../../src/endpoints/dispatch-message";
import { applyEntry } from "../../src/endpoints/ready-index";
import type { IndexEntry } from "../../src/jobs/index-entry";
import { createEndpoint, endpointStubOf } from "./helpers";

function entry(jobId: string, flowKey: string | null, createdAt: number): IndexEntry {
  return {
    jobId, generation: null, version: 1, state: "IN_QUEUE", priority: 0, lowPriority: false, createdAt, workerId: null, attempt: 0,
    avoidWorkers: [], stopFor: null, reason: null, sequenceKey: null, dispatchPending: false, dispatchError: null,
    inputBytes: 0, delayMs: null, executionMs: null, flowKey,
  };
}

/** A queue that records what is sent. */
function recordingQueue(sent: string[]): Queue {
  return { sendBatch: async (msgs: Iterable<{ body: DispatchMessage }>) => void [...msgs].forEach((m) => sent.push(m.body.jobId)) } as unknown as Queue;
}

describe("flow keys: push dispatch", () => {
  it("sends by turns, one per key at its cap, and again when the alarm reopens a rate-limited key", async () => {
    const ep = await createEndpoint({ shards: 1, keyConcurrency: 1, keyRateLimit: { limit: 1, periodMs: 60_000 } });
    await runInDurableObject(endpointStubOf(ep), async (i: EndpointObject, state) => {
      const sql = state.storage.sql;
      const now = i.clock.now();
      for (let n = 0; n < 3; n++) for (const key of ["a", "b", null]) applyEntry(sql, entry(`${key ?? "none"}-${n}`, key, 1_000 + n), now);
      const sent: string[] = [];
      const again = await sendReady(sql, recordingQueue(sent), ep, () => Infinity, now);
      // Each key once (its cap and its rate are 1); the jobs without a key are not limited.
      expect(sent).toEqual(["none-0", "a-0", "b-0", "none-1", "none-2"]);
      // The dispatcher asks to come back when a limited key's window closes (before the offers lapse).
      expect(again).toBe(now + 60_000);
      // The window closed and a's job ended: a's next goes, b's still holds its one slot.
      applyEntry(sql, { ...entry("a-0", "a", 1_000), version: 2, state: "COMPLETED" }, now + 60_000);
      for (const [id, key, n] of [["b-0", "b", 0], ["none-0", null, 0], ["none-1", null, 1], ["none-2", null, 2]] as const) {
        applyEntry(sql, { ...entry(id, key, 1_000 + n), version: 2, state: "IN_PROGRESS", workerId: "push" }, now + 60_000);
      }
      const later: string[] = [];
      await sendReady(sql, recordingQueue(later), ep, () => Infinity, now + 60_000);
      expect(later).toEqual(["a-1"]);
    });
  });
});
