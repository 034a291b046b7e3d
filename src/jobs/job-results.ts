/**
 * What a job object's RPC methods answer: typed results, with the expected refusals as values
 * (never thrown).
 */
import type { TakeRide } from "../shared/liveness";
import type { IndexEntry } from "./index-entry";
import type { JobRecord } from "./record";
import type { StreamChunk } from "./stream";
import type { ConflictCode } from "./transition";
import type { WebhookSummary } from "../webhooks/delivery";

export type JobRead =
  | { ok: true; job: JobRecord; output: Uint8Array | null; webhook: WebhookSummary | null }
  | { ok: false; code: "NOT_FOUND" };

export type Refusal = { ok: false; code: "NOT_FOUND" } | { ok: false; code: ConflictCode; message: string; job: JobRecord };

/** `repeat`: a worker report that exactly repeats the one the job already accepted (changed nothing). */
export type JobChange = { ok: true; job: JobRecord; repeat?: true } | Refusal;

export type ClaimResult =
  | { ok: true; job: JobRecord; input: Uint8Array }
  | { ok: false; code: "NOT_FOUND" }
  | { ok: false; code: ConflictCode; message: string; job: JobRecord; entry: IndexEntry };

/** Who claims: the take's id (for the worker's liveness object), and whether the claiming shard indexes the claim itself. */
export interface ClaimBy {
  takeId?: string;
  indexed?: boolean;
  /** The take's sign of life, told to the worker's liveness object with the claim (HoldTell.take). */
  take?: TakeRide;
}

/** A take's claim: the job, its index entry (the claiming shard applies it), and its input unless too large to pass inline. */
export type TakeClaim = { ok: true; job: JobRecord; entry: IndexEntry; input: Uint8Array | null } | Exclude<ClaimResult, { ok: true }>;

export type SubmitResult =
  | { ok: true; job: JobRecord }
  | { ok: false; code: "EXISTS"; job: JobRecord }
  | { ok: false; code: "IDEMPOTENCY_MISMATCH" };

export type StreamRead = { ok: true; job: JobRecord; chunks: StreamChunk[] } | { ok: false; code: "NOT_FOUND" };

/** What a worker reported on its job. The output bytes travel beside it. */
/**
 * A worker's report: progress (with a phase: "initializing" while it prepares), a result (with the
 * exit code it carried, if any), a failure (an error without exitCode: RunPod's meaning), or an
 * ERROR outcome (a result whose exitCode is not 0; issue 15, item 5).
 */
export type WorkerReport =
  | { kind: "progress"; phase?: "initializing" }
  | { kind: "complete"; exitCode?: number }
  | { kind: "fail"; error: string }
  | { kind: "error"; error: string; exitCode: number };
