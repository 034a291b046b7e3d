/**
 * Push mode's hand-off to the dispatch queue: ready jobs within the endpoint's capacity are
 * offered and sent as messages (ids and a fresh token each). A failed send withdraws the offers
 * and asks for a retry; an offer the consumer never claims lapses, and the endpoint's alarm
 * dispatches the job again.
 */
import type { DispatchMessage } from "./dispatch-message";
import { nextKeyOpening } from "./flow-keys";
import { nextOfferLapse, offerJobs, withdrawOffers } from "./ready-index";
import { ANY_TAGS } from "./tag-classes";

/** A push offer lapses after this long if the consumer has not claimed it; the job is dispatched again. */
const DISPATCH_OFFER_MS = 60_000;
/** After a failed queue send, dispatch is tried again this much later. */
const DISPATCH_RETRY_MS = 5_000;
/** Messages per queue send (the platform's batch limit is 100). */
const DISPATCH_BATCH = 100;
/** Sends per call; the rest follow on the next change or alarm. */
const DISPATCH_ROUNDS = 10;

/**
 * Offers and sends what the capacity allows. Returns when the endpoint should look again (a
 * failed send's retry, or the next offer to lapse), or null when nothing is outstanding.
 */
export async function sendReady(
  sql: SqlStorage,
  queue: Queue,
  endpointId: string,
  room: () => number,
  now: number,
): Promise<number | null> {
  for (let round = 0; round < DISPATCH_ROUNDS; round++) {
    const free = room();
    if (free <= 0) break;
    // Keys take turns and keep their caps and rates here too (flow-keys.ts).
    // Tags are not asked: push workers declare none (ANY_TAGS; README "Worker tags").
    const ids = offerJobs(sql, { workerId: "push", tags: ANY_TAGS }, Math.min(free, DISPATCH_BATCH), now, DISPATCH_OFFER_MS).ids;
    if (ids.length === 0) break;
    try {
      await queue.sendBatch(ids.map((jobId) => ({ body: { endpointId, jobId, token: crypto.randomUUID() } satisfies DispatchMessage, contentType: "json" as const })));
    } catch (e) {
      withdrawOffers(sql, ids);
      console.warn(`endpoint ${endpointId}: dispatch send failed, retrying`, e);
      return now + DISPATCH_RETRY_MS;
    }
  }
  const lapse = nextOfferLapse(sql, now);
  // A rate-limited key opens again at its time: the endpoint's alarm dispatches its jobs then.
  const opens = nextKeyOpening(sql);
  const times = [lapse === null ? null : lapse + 1_000, opens].filter((t): t is number => t !== null);
  return times.length === 0 ? null : Math.min(...times);
}
