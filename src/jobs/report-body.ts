/**
 * What a worker's report body says, read one way for job-done and for a push worker's inline
 * answer: RunPod's bodies (`{"output"}` completes, `{"error"}` fails, `{"status": "IN_PROGRESS"}`
 * is progress) plus issue 15's extensions (`exitCode` on a result, `{"status": "INITIALIZING"}`).
 */
import { handlerError } from "./errors";
import type { WorkerReport } from "./job-results";

/** Exit codes as processes have them: 32-bit, signed (POSIX; negative on Windows) or unsigned (Windows' NTSTATUS). */
export const EXIT_CODE = { min: -2_147_483_648, max: 4_294_967_295 } as const;

/** A report body the caller must refuse (job-done answers it with a 400). */
export class ReportBodyError extends Error {
  override name = "ReportBodyError";
}

/** Is this a progress update rather than a result? */
export function isProgressBody(b: Record<string, unknown>): boolean {
  return b.status === "IN_PROGRESS" || b.status === "INITIALIZING";
}

const present = (v: unknown) => v !== undefined && v !== null;

/**
 * Does a push worker's answer report anything (an output, an error, an exit code, or progress)?
 * One that does not is a plain acceptance: the worker reports later to its URLs.
 */
export function carriesReport(b: Record<string, unknown>): boolean {
  return "output" in b || present(b.error) || present(b.exitCode) || isProgressBody(b);
}

/**
 * The report a body makes. A result with an exit code: 0 without an error completes; any other
 * code, or an error beside it, ran with errors (ERROR: output kept, never retried). An error
 * without an exit code fails, as on RunPod. Throws ReportBodyError for a malformed exitCode.
 */
export function readReport(b: Record<string, unknown>): WorkerReport {
  // Checked on every body, a progress update's too (found by an outsider: one was taken as is).
  const exitCode = exitCodeOf(b);
  if (b.status === "IN_PROGRESS") return { kind: "progress" };
  if (b.status === "INITIALIZING") return { kind: "progress", phase: "initializing" };
  const hasError = present(b.error);
  if (exitCode !== null) {
    if (exitCode === 0 && !hasError) return { kind: "complete", exitCode };
    return { kind: "error", error: hasError ? handlerError(b.error) : `exit code ${exitCode}`, exitCode };
  }
  if (hasError) return { kind: "fail", error: handlerError(b.error) };
  return { kind: "complete" };
}

/** A body's exit code (absent or null: none). */
function exitCodeOf(b: Record<string, unknown>): number | null {
  const n = b.exitCode;
  if (!present(n)) return null;
  if (typeof n !== "number" || !Number.isInteger(n) || n < EXIT_CODE.min || n > EXIT_CODE.max) {
    throw new ReportBodyError(`exitCode must be an integer from ${EXIT_CODE.min} to ${EXIT_CODE.max}, got ${(JSON.stringify(n) ?? String(n)).slice(0, 40)}`);
  }
  return n;
}
