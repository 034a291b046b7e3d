import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { vi } from "vitest";
import type { EndpointObject } from "../../src/endpoints/endpoint-object";
import type { JobObject } from "../../src/jobs/job-object";
import type { LivenessObject } from "../../src/endpoints/liveness-object";
import { allLivenessRefs, livenessName, livenessRef, type LivenessRef } from "../../src/shared/liveness";
import type { ShardObject } from "../../src/endpoints/shard-object";
import { shardCount, shardStub } from "../../src/endpoints/shards";

export const ADMIN = "test-admin-key";

let counter = 0;
/** A fresh endpoint id for each test (storage is shared within a file). */
export function uniqueEndpointId(prefix = "ep"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

export async function call(
  method: string,
  path: string,
  opts: { key?: string | null; body?: unknown; raw?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? ADMIN : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  return exports.default.fetch(new Request(`http://edge.test${path}`, { method, headers, body }));
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Creates an endpoint with the admin API and returns its id. */
export async function createEndpoint(config: Record<string, unknown> = {}, id = uniqueEndpointId()): Promise<string> {
  const res = await call("PUT", `/admin/endpoints/${id}`, { body: config });
  if (res.status !== 200) throw new Error(`create endpoint: ${res.status} ${await res.text()}`);
  return id;
}

export async function createKey(endpointId: string, scope: "client" | "worker"): Promise<string> {
  const res = await call("POST", `/admin/endpoints/${endpointId}/keys`, { body: { scope } });
  if (res.status !== 200) throw new Error(`create key: ${res.status} ${await res.text()}`);
  return (await json<{ key: string }>(res)).key;
}

export async function submit(endpointId: string, body: unknown = { input: { n: 1 } }, key?: string): Promise<string> {
  const res = await call("POST", `/v2/${endpointId}/run`, { body, key });
  if (res.status !== 200) throw new Error(`run: ${res.status} ${await res.text()}`);
  return (await json<{ id: string }>(res)).id;
}

export async function take(endpointId: string, workerId = "w1"): Promise<Response> {
  return call("GET", `/v2/${endpointId}/job-take/${workerId}?job_in_progress=0`);
}

export async function done(endpointId: string, workerId: string, jobId: string, body: unknown): Promise<Response> {
  return call("POST", `/v2/${endpointId}/job-done/${workerId}/${jobId}?isStream=false`, {
    raw: JSON.stringify(body),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
}

export async function status(endpointId: string, jobId: string): Promise<Response> {
  return call("GET", `/v2/${endpointId}/status/${jobId}`);
}

/** A seed for a property run: the one given in the environment (to replay), else a fresh one. */
export function seedFrom(name: "FUZZ_SEED" | "MODEL_SEED" | "FAULT_SEED"): number {
  const given = (env as unknown as Record<string, string | undefined>)[name];
  return given ? Number(given) : Date.now() % 1_000_000;
}

/** A request the code under test sent to an intercepted URL. */
export interface Intercepted<T = Record<string, unknown>> {
  url: string;
  headers: Record<string, string>;
  body: string;
  json: T;
}

/**
 * Answers every fetch to a URL starting with `prefix` with `answer(n)` for the n-th one (other
 * fetches go out as usual; vi.restoreAllMocks undoes it). Returns what arrived, in order.
 */
export function interceptFetch<T = Record<string, unknown>>(prefix: string, answer: (n: number) => Response | Promise<Response>): Intercepted<T>[] {
  const got: Intercepted<T>[] = [];
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init);
    if (!req.url.startsWith(prefix)) return real(input as RequestInfo, init);
    const body = await req.text();
    got.push({ url: req.url, headers: Object.fromEntries(req.headers), body, json: JSON.parse(body) as T });
    return answer(got.length);
  });
  return got;
}

/** The job object behind a job id the API handed out. */
export function jobStubOf(id: string): DurableObjectStub<JobObject> {
  return env.JOB.get(env.JOB.idFromString(id)) as DurableObjectStub<JobObject>;
}

/** Freezes the job's clock at `at` (its alarms are then set relative to that instant). */
export async function freezeJob(id: string, at: number): Promise<void> {
  await runInDurableObject(jobStubOf(id), (i: JobObject) => i.clock.freeze(at));
}

/**
 * Takes until a job is handed out (a job submitted meanwhile, e.g. by a pending /runsync, may
 * arrive after a first empty long-poll). Bounded: fails after `tries` empty takes (each waits up
 * to TAKE_WAIT_MS), and at once on an answer that is neither a job nor "nothing yet".
 */
export async function takeOne(endpointId: string, workerId = "w1", tries = 20): Promise<Response> {
  for (let i = 0; i < tries; i++) {
    const res = await take(endpointId, workerId);
    if (res.status === 200) return res;
    if (res.status !== 204) throw new Error(`job-take by ${workerId} on ${endpointId} answered ${res.status}: ${await res.text()}`);
  }
  throw new Error(`no job handed to ${workerId} on ${endpointId} in ${tries} takes`);
}

/** The endpoint object behind an endpoint id. */
export function endpointStubOf(ep: string): DurableObjectStub<EndpointObject> {
  return env.ENDPOINT.get(env.ENDPOINT.idFromName(ep)) as DurableObjectStub<EndpointObject>;
}

/** The stubs of an endpoint's ready-index shards 1..shardCount-1 (shard 0 is the endpoint object). */
export function shardStubsOf(config: { id: string; generation: string; shards: number; firstShard?: 0 | 1 }): Array<DurableObjectStub<ShardObject>> {
  if (config.generation === "") return [];
  return Array.from({ length: shardCount(config) - 1 }, (_, i) => shardStub(env, { endpointId: config.id, generation: config.generation, shard: i + 1 }) as DurableObjectStub<ShardObject>);
}

/** The liveness object (worker shard) of `ep`'s current generation, by ref. */
export function livenessStubAt(ref: LivenessRef): DurableObjectStub<LivenessObject> {
  return env.LIVENESS.get(env.LIVENESS.idFromName(livenessName(ref))) as DurableObjectStub<LivenessObject>;
}

/** The ref of `worker`'s liveness object on `ep` as it is now (its current generation). */
export async function livenessRefOf(ep: string, worker: string): Promise<LivenessRef> {
  const config = await endpointStubOf(ep).getConfig();
  if (!config) throw new Error(`no endpoint ${ep}`);
  return livenessRef(ep, config.generation, worker);
}

/** Freezes the endpoint's clock at `at`, or thaws it (null), and its worker shards' with it. */
export async function freezeEndpoint(ep: string, at: number | null): Promise<void> {
  await runInDurableObject(endpointStubOf(ep), (i: EndpointObject) => (at === null ? i.clock.thaw() : i.clock.freeze(at)));
  const config = await endpointStubOf(ep).getConfig();
  if (!config) return;
  for (const s of shardStubsOf(config)) await runInDurableObject(s, (i: ShardObject) => (at === null ? i.clock.thaw() : i.clock.freeze(at)));
  for (const ref of allLivenessRefs(ep, config.generation)) {
    await runInDurableObject(livenessStubAt(ref), (i: LivenessObject) => (at === null ? i.clock.thaw() : i.clock.freeze(at)));
  }
}

/** One job-take by `worker`: the id it was handed, or null on a 204. */
export async function takeId(ep: string, worker: string): Promise<string | null> {
  const res = await take(ep, worker);
  if (res.status === 204) return null;
  if (res.status !== 200) throw new Error(`job-take by ${worker} on ${ep} answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Parses an SSE body into its events (comments skipped; multi-line data joined with \n). */
export function parseSse(text: string): Array<{ id?: string; event?: string; data?: string }> {
  return text
    .split("\n\n")
    .filter((block) => block.trim() && !block.startsWith(":"))
    .map((block) => {
      const e: { id?: string; event?: string; data?: string } = {};
      for (const line of block.split("\n")) {
        const i = line.indexOf(": ");
        const [k, v] = i < 0 ? [line, ""] : [line.slice(0, i), line.slice(i + 2)];
        if (k === "id") e.id = v;
        if (k === "event") e.event = v;
        if (k === "data") e.data = (e.data === undefined ? "" : `${e.data}\n`) + v;
      }
      return e;
    });
}
