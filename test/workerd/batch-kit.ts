/** Helpers of the batch tests (test/workerd/batch*.test.ts). */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import type { BatchObject } from "../../src/batches/batch-object";
import { batchObjectId } from "../../src/jobs/batch-tell";
import { call, createEndpoint, createKey, json } from "./helpers";

export interface Ep {
  ep: string;
  client: string;
  worker: string;
}

export async function batchEndpoint(config: Record<string, unknown> = {}): Promise<Ep> {
  const ep = await createEndpoint(config);
  return { ep, client: await createKey(ep, "client"), worker: await createKey(ep, "worker") };
}

export async function createBatch(e: Ep, body: unknown = [{ input: { n: 1 } }], query = ""): Promise<string> {
  const res = await call("POST", `/v2/${e.ep}/batch${query}`, { key: e.client, body });
  if (res.status !== 200) throw new Error(`create batch: ${res.status} ${await res.text()}`);
  return (await json<{ id: string }>(res)).id;
}

export type Summary = { id: string; endpointId: string; status: string; requestTotal: number; requestInProgress: number; requestCompleted: number; requestFailed: number; createdAt: number };
export type Child = { id: string; status: string; output?: unknown; error?: string; startedAt?: string; completedAt?: string };
export type ChildList = { requests: Child[]; total: number; offset: number; limit: number; hasMore: boolean };

export async function summary(e: Ep, id: string): Promise<Summary> {
  const res = await call("GET", `/v2/${e.ep}/batch/${id}`, { key: e.client });
  if (res.status !== 200) throw new Error(`summary: ${res.status} ${await res.text()}`);
  return json<Summary>(res);
}

export async function children(e: Ep, id: string, query = ""): Promise<ChildList> {
  const res = await call("GET", `/v2/${e.ep}/batch/${id}/requests${query}`, { key: e.client });
  if (res.status !== 200) throw new Error(`children: ${res.status} ${await res.text()}`);
  return json<ChildList>(res);
}

export async function action(e: Ep, id: string, what: "finalize" | "cancel"): Promise<Response> {
  return call("POST", `/v2/${e.ep}/batch/${id}/${what}`, { key: e.client });
}

/** Polls `check` every 20 ms until it returns a value (fails after `ms`). */
export async function until<T>(what: string, check: () => Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until every child of the batch is a job (the batch alarm creates them). */
export async function allCreated(e: Ep, id: string, n: number): Promise<string[]> {
  const ids = (await children(e, id, "?limit=500")).requests.map((c) => c.id);
  if (ids.length !== n) throw new Error(`expected ${n} children, got ${ids.length}`);
  await until("every child to be a job", async () => {
    for (const cid of ids) if ((await call("GET", `/v2/${e.ep}/status/${cid}`, { key: e.client })).status !== 200) return false;
    return true;
  });
  return ids;
}

export function batchStubOf(id: string): DurableObjectStub<BatchObject> {
  return env.BATCH.get(batchObjectId(env, id)!) as DurableObjectStub<BatchObject>;
}

/** The batch's kept counts agree with a recount of its rows. */
export async function countsAgree(id: string): Promise<boolean> {
  return runInDurableObject(batchStubOf(id), (o: BatchObject) => {
    const { kept, recounted } = o.countsCheck();
    const n = (s: string) => recounted[s] ?? 0;
    return (
      kept.queued === n("IN_QUEUE") + n("SEQUENCED") &&
      kept.inProgress === n("IN_PROGRESS") + n("CANCELLING") &&
      kept.completed === n("COMPLETED") &&
      kept.failed === n("FAILED") + n("TIMED_OUT") &&
      kept.cancelled === n("CANCELLED")
    );
  });
}
