/**
 * The one HTTP error type. Handlers throw it for bad input and expected refusals; app.onError
 * turns it into a JSON body `{"error": "...", ...detail}` with its status.
 */
import type { z } from "zod";

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
    message: string,
    readonly detail: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toResponse(): Response {
    return new Response(JSON.stringify({ error: this.message, ...this.detail }), {
      status: this.status,
      headers: { "content-type": "application/json; charset=utf-8", ...this.headers },
    });
  }
}

export const badRequest = (message: string, detail?: Record<string, unknown>) => new ApiError(400, message, detail);
export const notFound = (message: string, detail?: Record<string, unknown>) => new ApiError(404, message, detail);
export const conflict = (message: string, detail?: Record<string, unknown>) => new ApiError(409, message, detail);

/** A validation failure as a 400 naming each offending field. */
export function invalidBody(error: z.ZodError, what = "body"): ApiError {
  const issues = error.issues.map((i) => ({ path: i.path.join(".") || "(root)", message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  return badRequest(`invalid ${what}: ${summary}`, { issues });
}

export const notConfigured = () =>
  new ApiError(503, "edge-jobs is not configured: set the admin key with `wrangler secret put ADMIN_KEY`");
