/**
 * Helpers of the flow-key tests (issue 16, item 4): submits with a key, takes that keep what the
 * worker holds, and shards by key.
 */
import { flowShard, hashOf } from "../../src/endpoints/shards";
import { noteDepth } from "../../src/flows/shard-picks";
import { call, endpointStubOf, json, submit } from "./helpers";

/**
 * Key A's ready jobs in the fairness tests (the figure). One test file of them at most:
 * each job is a Durable Object with its own SQLite files, and 10,000 of them in one runtime
 * exhaust its file descriptors (SQLITE_CANTOPEN).
 */
export const A_JOBS = 5_000;

/** Submits `n` jobs with `body`, `parallel` at a time; returns their ids in submit order. */
export async function submitMany(ep: string, n: number, body: Record<string, unknown>, parallel = 50): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += parallel) {
    const chunk = Array.from({ length: Math.min(parallel, n - i) }, (_, j) => submit(ep, { input: { n: i + j }, ...body }));
    ids.push(...(await Promise.all(chunk)));
  }
  return ids;
}

/** One job-take by `worker` that keeps the jobs it holds (job_in_progress=1): the id, or null on a 204. */
export async function takeKeep(ep: string, worker: string): Promise<string | null> {
  const res = await call("GET", `/v2/${ep}/job-take/${worker}?job_in_progress=1`);
  if (res.status === 204) return null;
  if (res.status !== 200) throw new Error(`job-take by ${worker} on ${ep} answered ${res.status}: ${await res.text()}`);
  return (await json<{ id: string }>(res)).id;
}

/** A key whose jobs go to shard `shard` (1..n) of an endpoint created with `n` flow shards (firstShard 1). */
export function keyOnShard(prefix: string, shard: number, n: number, not: readonly string[] = []): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}${i}`;
    if (1 + (hashOf(key) % n) === shard && !not.includes(key)) return key;
  }
}

/** A worker id whose home shard is `shard` (1..n) of an endpoint with `n` shards. */
export function workerOnShard(prefix: string, shard: number, n: number): string {
  return keyOnShard(prefix, shard, n);
}

/** Reports a job done (a slot of its key frees). */
export async function finish(ep: string, worker: string, id: string): Promise<void> {
  const res = await call("POST", `/v2/${ep}/job-done/${worker}/${id}?isStream=false`, {
    raw: JSON.stringify({ output: { ok: true } }),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  if (res.status !== 200) throw new Error(`job-done ${id}: ${res.status} ${await res.text()}`);
}

/** The `queue` of a waiting job's status. */
export async function queueOf(ep: string, id: string): Promise<Record<string, unknown> | undefined> {
  const res = await call("GET", `/v2/${ep}/status/${id}`);
  return (await json<{ queue?: Record<string, unknown> }>(res)).queue;
}

/** Takes by fresh workers (`prefix-0`, `prefix-1`, …) until a take comes back empty; returns the ids handed out. */
export async function drainIds(ep: string, prefix: string, most = 20): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < most; i++) {
    const id = await takeKeep(ep, `${prefix}-${i}`);
    if (id === null) break;
    got.push(id);
  }
  return got;
}

/**
 * B submits `jobs` jobs (10); after each, takes by `worker` until it is handed out (at most
 * `cap`, 20), then `between` more takes (A's turn; across shards one may come back empty).
 * Returns, per B job, the takes it took (1: the next take; `cap`: not within `cap` takes).
 * `elsewhere`: as if another edge isolate had placed B's jobs (this one's takes do not know
 * B's shard has a job). `ids` collects B's job ids.
 */
export async function bTakes(ep: string, worker: string, bKey: string, opts: { elsewhere?: boolean; between?: number; jobs?: number; cap?: number; ids?: string[] } = {}): Promise<number[]> {
  const { elsewhere = false, between = 2, jobs = 10, cap = 20, ids = [] } = opts;
  const gaps: number[] = [];
  const config = (await endpointStubOf(ep).getConfig())!;
  for (let i = 0; i < jobs; i++) {
    const id = await submit(ep, { input: { b: i }, concurrencyKey: bKey });
    ids.push(id);
    if (elsewhere) noteDepth(config, flowShard(config, bKey), 0);
    let takes = 0;
    while (takes < cap) {
      takes++;
      if ((await takeKeep(ep, worker)) === id) break;
    }
    gaps.push(takes);
    for (let j = 0; j < between; j++) await takeKeep(ep, worker);
  }
  return gaps;
}
