/**
 * The take flow: a worker asks for up to `max` jobs; the endpoint offers, each offered job is
 * claimed in its own object, and the worker's liveness object learns of the take meanwhile.
 * Plain values in, the claimed jobs out (as JSON pieces: inputs are never decoded).
 */
import type { EndpointConfig } from "../endpoints/config";
import { objectPieces, type Piece } from "../shared/pieces";
import { livenessOf } from "./liveness";
import { endpointStub, jobAt, refOf } from "./stubs";

export interface TakeRequest {
  workerId: string;
  max: number;
  /** How long to wait for a job (0: answer at once). */
  waitMs: number;
  /** What the worker says it runs (`job_in_progress`): false releases the jobs it holds. */
  jobInProgress: boolean | null;
}

/** The claims of one take: those under way, and the jobs claimed. */
interface Claims {
  inFlight: Promise<unknown>;
  ids: Set<string>;
}

/**
 * Offers jobs to the worker and claims them, waiting up to the long-poll limit for at least one.
 * The worker's liveness object learns of the take at the same time (a sign of life while the
 * poll lasts); a take saying the worker runs nothing releases the jobs it holds there as soon as
 * that answer is in.
 */
export async function takeJobs(env: Env, config: EndpointConfig, take: TakeRequest): Promise<Piece[][]> {
  const { workerId, max, waitMs, jobInProgress } = take;
  const ref = refOf(config);
  const deadline = Date.now() + waitMs;
  const liveness = livenessOf(env, config, workerId);
  const claims: Claims = { inFlight: Promise.resolve(), ids: new Set() };
  const released = liveness.stub.taking(liveness.ref, config.heartbeatTimeout, workerId, jobInProgress, deadline).then((held) => {
    // A claim of this very take that was under way when the answer came may have been told to
    // the shard first: its job is not lost. Claims started later were told after it.
    const before = claims.inFlight;
    return before.then(async () => {
      const lost = held.filter((id) => !claims.ids.has(id));
      await Promise.all(lost.map((id) => jobAt(env, id).loseLease(ref, workerId, "the worker asked for work saying it runs none")));
    });
  });
  try {
    return await claimOffers(env, config, workerId, max, deadline, claims);
  } finally {
    await released;
  }
}

/** Takes from the endpoint and claims what it offers, until a job is claimed or the poll is over. */
async function claimOffers(env: Env, config: EndpointConfig, workerId: string, max: number, deadline: number, claims: Claims): Promise<Piece[][]> {
  const ref = refOf(config);
  const endpoint = endpointStub(env, config.id);
  for (;;) {
    const offer = await endpoint.take(workerId, max, Math.max(0, deadline - Date.now()), config.generation);
    if (offer.ids.length === 0) return [];
    // Each offered job (within the batch's byte budget: see offerReady) is claimed in its own
    // object, all at once; answered in offer order.
    const round = Promise.all(offer.ids.map((id) => jobAt(env, id).claim(ref, workerId)));
    claims.inFlight = round.then((rs) => rs.forEach((r) => r.ok && claims.ids.add(r.job.id))).catch(() => undefined);
    const results = await round;
    const claimed: Piece[][] = [];
    for (const r of results) {
      if (r.ok) claimed.push(objectPieces({ id: r.job.id, attempt: r.job.attempt }, [["input", r.input]]));
      // The index was behind the job (cancelled, expired, taken): repair it.
      else if (r.code !== "NOT_FOUND") await endpoint.sync(r.entry);
    }
    if (claimed.length > 0 || Date.now() >= deadline) return claimed;
  }
}

