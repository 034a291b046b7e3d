/** Every refusal the server answers, as one error type: the HTTP status and the JSON body. */
export class EdgeJobsError extends Error {
  override name = "EdgeJobsError";
  readonly status: number;
  /** The server's JSON body (`{"error": "...", ...}`), or `{ error: text }` when it was not JSON. */
  readonly body: { error: string; [field: string]: unknown };

  constructor(status: number, body: { error: string; [field: string]: unknown }, what: string) {
    super(`${what}: ${status} ${body.error}`);
    this.status = status;
    this.body = body;
  }
}

/** The error of a failed answer (its body read as JSON when it is). */
export async function errorOf(res: Response, what: string): Promise<EdgeJobsError> {
  const text = await res.text().catch(() => "");
  let body: { error: string; [field: string]: unknown };
  try {
    const parsed = JSON.parse(text) as unknown;
    body = typeof parsed === "object" && parsed !== null && typeof (parsed as { error?: unknown }).error === "string" ? (parsed as typeof body) : { error: text };
  } catch {
    body = { error: text || res.statusText };
  }
  return new EdgeJobsError(res.status, body, what);
}

/** A thrown value as a message (an Error's message, a string, else its JSON). */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}
