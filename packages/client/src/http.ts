/**
 * The typed HTTP layer every part of the package uses: openapi-fetch over the paths generated
 * from the server's OpenAPI document (schema.ts), with the key sent as a bearer token.
 */
import createFetchClient from "openapi-fetch";
import { EdgeJobsError } from "./errors.ts";
import type { paths } from "./schema.ts";

export interface Connection {
  /** The Worker's origin, e.g. `http://127.0.0.1:8787` or `https://edge-jobs.<account>.workers.dev`. */
  baseUrl: string;
  /** A key: the endpoint's client key for the client, its worker key for a worker. */
  apiKey: string;
  endpointId: string;
  /** Another fetch (tests, proxies); the global one by default. */
  fetch?: typeof fetch;
}

export type Api = ReturnType<typeof createFetchClient<paths>>;

export function apiOf(c: Connection): Api {
  return createFetchClient<paths>({
    baseUrl: c.baseUrl.replace(/\/+$/, ""),
    headers: { authorization: `Bearer ${c.apiKey}` },
    ...(c.fetch ? { fetch: c.fetch } : {}),
  });
}

/** The data of an answer, or its error as an EdgeJobsError. */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>, what: string): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  // openapi-fetch has read the body: JSON as `error`, else its text.
  const body =
    typeof error === "object" && error !== null && typeof (error as { error?: unknown }).error === "string"
      ? (error as { error: string; [field: string]: unknown })
      : { error: typeof error === "string" && error !== "" ? error : response.statusText };
  throw new EdgeJobsError(response.status, body, what);
}
