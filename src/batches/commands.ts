/**
 * The batch's named transitions (RUNPOD-WIRE-2 §1.7), pure over its record and child counts:
 * DRAFT → FINALIZED (finalize), DRAFT → CANCELLED (cancel, at once), FINALIZED → CANCELLED (cancel,
 * once no child waits or runs), FINALIZED → FAILED (its children cannot be created), and `settle`,
 * which after every change says whether the batch has finished (every child finished, or the batch
 * CANCELLED/FAILED) and whether that is news for its webhook.
 */
import type { BatchRecord, BatchStatus, ChildCounts } from "./record";

export type BatchChange = { ok: true; batch: BatchRecord } | { ok: false; code: "WRONG_STATE"; status: BatchStatus; message: string };

const wrong = (b: BatchRecord, what: string): BatchChange => ({
  ok: false,
  code: "WRONG_STATE",
  status: b.status,
  message: `batch ${b.id} is ${b.status}: ${what}`,
});

/** Appending, removing a request, or finalizing needs a DRAFT. */
export function requireDraft(b: BatchRecord, what: string): BatchChange {
  return b.status === "DRAFT" ? { ok: true, batch: b } : wrong(b, `${what} only while it is DRAFT`);
}

/** DRAFT → FINALIZED; finalizing a FINALIZED batch again changes nothing. */
export function finalize(b: BatchRecord, now: number): BatchChange {
  if (b.status === "FINALIZED") return { ok: true, batch: b };
  if (b.status !== "DRAFT") return wrong(b, "only a DRAFT batch can be finalized");
  return { ok: true, batch: { ...b, status: "FINALIZED", finalizedAt: now, updatedAt: now, workDueAt: now } };
}

/**
 * A DRAFT ends CANCELLED at once (none of its requests is a job). A FINALIZED batch keeps its
 * status while its waiting children are cancelled and its running ones finish (settle ends it).
 * Cancelling a CANCELLED batch again changes nothing; a FAILED one cannot be cancelled.
 */
export function cancel(b: BatchRecord, now: number): BatchChange {
  switch (b.status) {
    case "DRAFT":
      return { ok: true, batch: { ...b, status: "CANCELLED", cancelRequestedAt: now, updatedAt: now } };
    case "FINALIZED":
      return { ok: true, batch: b.cancelRequestedAt !== null ? b : { ...b, cancelRequestedAt: now, workDueAt: now } };
    case "CANCELLED":
      return { ok: true, batch: b };
    case "FAILED":
      return wrong(b, "a FAILED batch cannot be cancelled");
  }
}

/** FINALIZED → FAILED: its children cannot be created (the endpoint is gone, or unreachable too long). */
export function fail(b: BatchRecord, why: string): BatchChange {
  if (b.status !== "FINALIZED") return wrong(b, "only a FINALIZED batch can fail");
  return { ok: true, batch: { ...b, status: "FAILED", failure: why } };
}

/** Is the batch active, as the per-endpoint limit counts (RUNPOD-WIRE-2 §1.10): DRAFT, or FINALIZED and unfinished. */
export function isActive(b: BatchRecord): boolean {
  return b.status === "DRAFT" || (b.status === "FINALIZED" && b.finishedAt === null);
}

/**
 * After a change (`before`: the status before it): a cancelled FINALIZED batch whose children all
 * ended is CANCELLED; `finishedAt` is set when the batch finished (kept while it stays finished)
 * and cleared when a child of a FINALIZED batch runs again (a retried child). `announce`: the
 * batch has just finished or just reached CANCELLED/FAILED, so its webhook (if any) gets an event.
 */
export function settle(before: BatchStatus, b: BatchRecord, counts: ChildCounts, held: boolean, now: number): { batch: BatchRecord; announce: boolean } {
  const unfinished = held || counts.queued + counts.inProgress > 0;
  let next = b;
  if (b.status === "FINALIZED" && b.cancelRequestedAt !== null && !unfinished) next = { ...next, status: "CANCELLED" };
  const terminal = next.status === "CANCELLED" || next.status === "FAILED";
  const finished = terminal || (next.status === "FINALIZED" && !unfinished);
  if (finished && next.finishedAt === null) next = { ...next, finishedAt: now };
  if (!finished && next.finishedAt !== null) next = { ...next, finishedAt: null };
  const announce = (b.finishedAt === null && next.finishedAt !== null) || (terminal && before !== next.status);
  return { batch: next, announce };
}
