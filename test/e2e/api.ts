/** Small HTTP helpers for end-to-end tests. Every answer `api` gets is checked against the OpenAPI document. */
import { checkerAt } from "./openapi-check";

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export async function api(base: string, method: string, path: string, key: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : null;
  const problems = (await checkerAt(base)).check(method, `${base}${path}`, res.status, res.headers.get("content-type"), parsed);
  if (problems.length > 0) throw new Error(`the answer does not match the OpenAPI document:\n${problems.join("\n")}\nbody: ${text.slice(0, 500)}`);
  return { status: res.status, body: parsed ?? {} };
}

/** Polls `check` every 100 ms until it returns a value, or fails after `ms`. */
export async function eventually<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await check().catch((e: unknown) => ((last = e), undefined));
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Creates an endpoint and a client and a worker key for it. */
export async function endpointWithKeys(base: string, adminKey: string, id: string, config: Record<string, unknown> = {}) {
  const put = await api(base, "PUT", `/admin/endpoints/${id}`, adminKey, config);
  if (put.status !== 200) throw new Error(`create endpoint: ${JSON.stringify(put)}`);
  const client = (await api(base, "POST", `/admin/endpoints/${id}/keys`, adminKey, { scope: "client" })).body.key as string;
  const worker = (await api(base, "POST", `/admin/endpoints/${id}/keys`, adminKey, { scope: "worker" })).body.key as string;
  return { client, worker };
}

/** The JSON lines a process printed (its other output is skipped). */
export function jsonLines(log: readonly string[]): Array<Record<string, unknown>> {
  return log
    .join("")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
