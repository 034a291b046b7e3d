/**
 * A handler's error as the job keeps it: a string (a non-string error is kept as its JSON), at
 * most WORKER_BOUNDS.errorBytes of UTF-8, since it is stored in the job row (2 MB per value in
 * production), shown by /status and sent in webhooks.
 */
import { WORKER_BOUNDS } from "../shared/limits";
import { cutToBytes } from "../shared/text";

export function handlerError(error: unknown): string {
  const text = typeof error === "string" ? error : (JSON.stringify(error) ?? String(error));
  return cutToBytes(text, WORKER_BOUNDS.errorBytes, WORKER_BOUNDS.errorCutMarker);
}
