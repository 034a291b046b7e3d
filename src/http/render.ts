/**
 * The RunPod status body (`/status`, `/status-sync`, `/runsync`, `/cancel`), with edge-jobs'
 * extensions. The stored output is spliced in as bytes, never parsed again.
 */
import { objectWith } from "../shared/json-bytes";

export { scheduledInfo, statusFields } from "../jobs/view";

/** `{...fields, "output": <stored bytes>}` as one UTF-8 body. */
export function renderWithOutput(fields: Record<string, unknown>, output: Uint8Array | null): Uint8Array {
  return objectWith(fields, "output", output);
}

export function jsonResponse(body: Uint8Array | string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "application/json; charset=utf-8" } });
}
