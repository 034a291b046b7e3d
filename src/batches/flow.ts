/**
 * The batch flows (RUNPOD-WIRE-2 §1): creating a batch (its registry reserves a place under the
 * endpoint's limit of active batches first), listing an endpoint's batches (a page of ids from the
 * registry, each batch's summary from the batch), and a page of a batch's children (outputs too
 * large to copy into the batch are read from their jobs).
 */
import { batchObjectId } from "../jobs/batch-tell";
import type { BatchAnswer, BatchInit } from "./batch-object";
import type { BatchRef, BatchSummary, ChildRow } from "./record";
import { registryName, type Confirmed } from "./registry";
import type { EndpointConfig } from "../endpoints/config";
import { clientStatus, isTerminal } from "../jobs/states";
import { BATCH } from "../shared/limits";
import { jobAt } from "../flows/stubs";

/** A batch's object, or null for an id that is not one of ours (the route answers 404). */
export function batchStub(env: Env, batchId: string) {
  const id = batchObjectId(env, batchId);
  return id === null ? null : env.BATCH.get(id);
}

export function registryStub(env: Env, config: Pick<EndpointConfig, "id" | "generation">) {
  return env.BATCH.get(env.BATCH.idFromName(registryName(config.id, config.generation)));
}

export const batchRef = (config: Pick<EndpointConfig, "id" | "generation">): BatchRef => ({ id: config.id, generation: config.generation });

/** Runs `fn` over `items`, `parallel` at a time, in order. */
async function inChunks<T, R>(items: readonly T[], parallel: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += parallel) out.push(...(await Promise.all(items.slice(i, i + parallel).map(fn))));
  return out;
}

export type CreateOutcome = BatchAnswer<BatchSummary> | { ok: false; code: "LIMIT"; active: number };

/**
 * Creates a batch: a new id, a place in the registry (refused when the endpoint has
 * BATCH.activePerEndpoint active batches, each confirmed by its batch first), then the batch.
 */
export async function createBatch(env: Env, config: EndpointConfig, init: Omit<BatchInit, "id" | "endpointId" | "endpointGen">, bodies: readonly Uint8Array[]): Promise<CreateOutcome> {
  const objectId = env.BATCH.newUniqueId();
  const id = `batch_${objectId.toString()}`;
  const reg = registryStub(env, config);
  const now = Date.now();
  let r = await reg.registryReserve(id, now, []);
  if (!r.ok) {
    // Hints may be stale (a lost tell, a batch deleted meanwhile): each counted batch says itself.
    const ref = batchRef(config);
    const confirmed = await inChunks(r.active, BATCH.parallel, async (bid): Promise<Confirmed> => {
      return { id: bid, active: (await batchStub(env, bid)?.activeFor(ref)) ?? null };
    });
    r = await reg.registryReserve(id, now, confirmed);
    if (!r.ok) return { ok: false, code: "LIMIT", active: r.active.length };
  }
  let created: BatchAnswer<BatchSummary>;
  try {
    created = await env.BATCH.get(objectId).create({ ...init, id, endpointId: config.id, endpointGen: config.generation }, bodies);
  } catch (e) {
    await reg.registryForget([id]).catch(() => undefined); // else the next create that finds the limit drops it
    throw e;
  }
  if (!created.ok) await reg.registryForget([id]);
  return created;
}

/** A page of the endpoint's batches, newest first; batches gone meanwhile are dropped from the registry. */
export async function listBatches(env: Env, config: EndpointConfig, offset: number, limit: number) {
  const reg = registryStub(env, config);
  const { ids, total } = await reg.registryPage(offset, limit);
  const ref = batchRef(config);
  const summaries = await inChunks(ids, BATCH.parallel, async (id): Promise<BatchSummary | null> => (await batchStub(env, id)?.summary(ref)) ?? null);
  const gone = ids.filter((_, i) => summaries[i] === null);
  if (gone.length > 0) await reg.registryForget(gone);
  const batches = summaries.filter((s): s is BatchSummary => s !== null);
  return { batches, total: total - gone.length, offset, limit, hasMore: offset + ids.length < total };
}

/** One child as the child list shows it (RUNPOD-WIRE-2 §1.8): ISO times, output or error. */
export interface ListedChild {
  id: string;
  status: string;
  output?: unknown;
  error?: string;
  startedAt?: string;
  completedAt?: string;
}

const dec = new TextDecoder();

function parsed(bytes: Uint8Array | null): unknown {
  if (bytes === null || bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return dec.decode(bytes); // stored outputs are JSON; never fail a page on one that is not
  }
}

/**
 * A page of children; outputs not copied into the batch (over BATCH.outputCopyBytes) are read
 * from their jobs, BATCH.parallel at a time (absent when the job is gone).
 */
export async function childList(env: Env, ref: BatchRef, stub: NonNullable<ReturnType<typeof batchStub>>, offset: number, limit: number) {
  const page = await stub.children(ref, offset, limit);
  if (page === null) return null;
  const rows = page.rows as ChildRow[];
  const fetched = await inChunks(rows, BATCH.parallel, async (row) => {
    if (row.output !== null || row.outputBytes === 0 || !isTerminal(row.state)) return row.output;
    const r = await jobAt(env, row.jobId).read(ref);
    return r.ok ? r.output : null;
  });
  const requests = rows.map((row, i): ListedChild => {
    const output = parsed(fetched[i] ?? null);
    return {
      id: row.jobId,
      status: clientStatus(row.state),
      ...(output === undefined ? {} : { output }),
      ...(row.error === null || row.state === "COMPLETED" ? {} : { error: row.error }),
      ...(row.startedAt === null ? {} : { startedAt: new Date(row.startedAt).toISOString() }),
      ...(row.completedAt === null ? {} : { completedAt: new Date(row.completedAt).toISOString() }),
    };
  });
  return { requests, total: page.total, offset, limit: page.limit, hasMore: page.hasMore };
}
