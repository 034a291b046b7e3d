/**
 * What travels on the dispatch queue: ids only, never payloads (messages are capped at 128 KB);
 * the token names this dispatch, so a duplicate delivery can never start a second attempt.
 */
export interface DispatchMessage {
  endpointId: string;
  jobId: string;
  token: string;
}

export function isDispatchMessage(v: unknown): v is DispatchMessage {
  const m = v as Partial<DispatchMessage> | null;
  return typeof m === "object" && m !== null && typeof m.endpointId === "string" && typeof m.jobId === "string" && typeof m.token === "string";
}

/** The worker id a push to worker URL number `index` runs under. */
export const pushWorkerId = (index: number) => `push-${index}`;
