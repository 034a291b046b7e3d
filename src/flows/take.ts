/**
 * The take flow: a worker asks for up to `max` jobs; a shard of the endpoint's ready index offers
 * and claims them, each in its own object (probing, parking and redirects between shards are
 * here), and the worker's liveness object learns of the take meanwhile. Plain values in, the
 * claimed jobs out (as JSON pieces: inputs are never decoded).
 */
import type { EndpointConfig } from "../endpoints/config";
import { handedJobPieces } from "../jobs/handed";
import { RUNS_NONE_WHY, type TakeRide } from "../shared/liveness";
import type { Piece } from "../shared/pieces";
import { newTakeId } from "../shared/take-ids";
import { homeShard, placementShards, queueOf, shardCount, type ClaimedJob, type TakeAnswer, type Taker } from "../endpoints/shards";
import { claimOffered } from "../endpoints/take-claims";
import { livenessOf } from "./liveness";
import { noteDepth, noteVain, parkAt, sampleShard, unpark } from "./shard-picks";
import { jobAt, refOf } from "./stubs";

export interface TakeRequest {
  workerId: string;
  max: number;
  /** How long to wait for a job (0: answer at once). */
  waitMs: number;
  /** What the worker says it runs (`job_in_progress`): false releases the jobs it holds. */
  jobInProgress: boolean | null;
  /** The tags it declared (canonical, shared/tags; null or absent: none, which its liveness object notes too). */
  tags?: string | null;
}

/** A take without wait asks the endpoint object for a hint at most this often (each hint costs a take). */
const NO_WAIT_ROOT_ASKS = 3;

/**
 * A take of a worker this isolate told a sign of life of within SIGNED_LATELY_MS (a busy worker)
 * sends its sign to the worker's liveness object itself only when it is still waiting after
 * SIGN_AFTER_MS; one that claims a job sooner lets the claim carry it (issue 12: one call to that
 * object per take instead of two). Any other take sends its sign at once, as it starts.
 */
export const SIGN_AFTER_MS = 250;
const SIGNED_LATELY_MS = 10_000;
/** Per endpoint incarnation and worker, when this isolate last told its liveness object a sign. Bounded: past it, starts over. */
const signs = new Map<string, number>();
const KEEP_SIGNS = 10_000;

function noteSigned(key: string, at: number): void {
  if (signs.size >= KEEP_SIGNS && !signs.has(key)) signs.clear();
  signs.set(key, at);
}

/**
 * Offers jobs to the worker, claimed by the shard that offers them, waiting up to the long-poll
 * limit for at least one. The worker's liveness object learns of the take (a sign of life while
 * the poll lasts) from the claim of the job it gets, or from the take itself when it waits
 * longer than SIGN_AFTER_MS or ends with none; a take saying the worker runs nothing releases
 * the jobs it holds there, but those this take claimed (its id goes with the claims, which may be
 * told there first) and those claimed by the worker's takes that started no earlier (its id
 * carries its start: shared/take-ids). The answer waits for that release.
 */
export async function takeJobs(env: Env, config: EndpointConfig, take: TakeRequest): Promise<Piece[][]> {
  const { workerId, max, waitMs, jobInProgress, tags } = take;
  const ref = refOf(config);
  const startedAt = Date.now();
  const deadline = startedAt + waitMs;
  const liveness = livenessOf(env, config, workerId);
  const takeId = newTakeId(startedAt);
  const signKey = `${config.id}:${config.generation}:${workerId}`;
  let released: Promise<void> | null = null;
  const sendSign = (): Promise<void> => {
    noteSigned(signKey, Date.now());
    return (released ??= liveness.stub.taking(liveness.ref, config.heartbeatTimeout, { workerId, jobInProgress, pollUntil: deadline, takeId, tags: tags ?? "" }).then(async (lost) => {
      await Promise.all(lost.map((id) => jobAt(env, id).loseLease(ref, workerId, RUNS_NONE_WHY)));
    }));
  };
  const lately = signs.get(signKey);
  let timer: ReturnType<typeof setTimeout> | null = null;
  if (lately === undefined || startedAt - lately >= SIGNED_LATELY_MS) void sendSign().catch(() => undefined);
  else if (waitMs > SIGN_AFTER_MS) timer = setTimeout(() => void sendSign().catch(() => undefined), SIGN_AFTER_MS);
  const sign = { runsNone: jobInProgress === false, tags: tags ?? "" };
  let claimed: Piece[][] = [];
  try {
    // Claims carry the sign until the take sent its own.
    claimed = await claimOffers(env, config, { workerId, tags: tags ?? "" }, max, deadline, takeId, () => (released === null ? sign : undefined));
    if (claimed.length > 0 && released === null) noteSigned(signKey, Date.now());
    return claimed;
  } finally {
    if (timer !== null) clearTimeout(timer);
    // None claimed (or the take failed): nothing carried the sign, so the take sends it; but not a
    // take without wait of a worker signed lately (done-and-take-next) that releases nothing.
    const owed = claimed.length === 0 && (waitMs > 0 || jobInProgress === false);
    await (owed ? sendSign() : released);
  }
}

/**
 * Takes from the endpoint's shards and claims what they offer, until a job is claimed or the
 * poll is over. With one shard: one waiting take at the endpoint object, as before sharding.
 * With several (issue 12, item 3): first the shard this isolate last saw deepest (if any) without
 * waiting, then a wait on the worker's home shard (where this isolate's new jobs go first), whose wait also ends with a redirect
 * when another shard's ready jobs find no waiter (see endpoints/relay); a redirect that finds
 * nothing is not followed again by this take; a shard that fails is passed over. A take without
 * wait (done-and-take-next) asks the endpoint object last, which keeps the hints of shards whose
 * ready jobs found no waiter, and follows its redirect once.
 */
async function claimOffers(env: Env, config: EndpointConfig, taker: Taker, max: number, deadline: number, takeId: string, signOf: () => TakeRide | undefined): Promise<Piece[][]> {
  const { workerId, tags } = taker;
  const sharded = shardCount(config) > 1;
  const home = homeShard(config, workerId);
  // Where a take waits when its home fails: the next placement shard, then the endpoint object.
  const { first, count } = placementShards(config);
  const fallbacks = [home, first + ((home - first + 1) % count), 0];
  const probe = sampleShard(config, home, workerId);
  const failed = new Set<number>();
  /** Shards a redirect sent this take to in vain (nothing it may take there). */
  const skip: number[] = [];
  let target = probe ?? home;
  let waiting = probe === null;
  let viaRedirect = false;
  const noWait = deadline <= Date.now();
  const visited = new Set<number>();
  /** Without wait: how often the endpoint object was asked, and whether its last answer was a redirect. */
  let rootAsks = 0;
  let rootRedirected = false;
  /** A redirect taken after the poll's end (at most one: it used up the hint it carries). */
  let lateHop = false;
  for (;;) {
    const shard = target;
    let offer: TakeAnswer;
    try {
      const waitMs = waiting ? Math.max(0, deadline - Date.now()) : 0;
      // A waiting take tells this isolate's placements where a job would meet it at once.
      const ticket = sharded && waitMs > 0 ? parkAt(config, shard) : null;
      try {
        const sign = signOf();
        offer = await queueOf(env, config.id, config.generation, shard).take({ workerId, max, waitMs, generation: config.generation, skip, redirected: viaRedirect, takeId, tags, ...(sign ? { sign } : {}) });
      } finally {
        if (ticket) unpark(config, ticket);
      }
    } catch (e) {
      if (!sharded) throw e;
      // An unreachable shard loses nothing (its jobs stay indexed there): wait on another.
      console.warn(`endpoint ${config.id}: shard ${shard} failed a take`, e);
      failed.add(shard);
      const fallback = fallbacks.find((s) => !failed.has(s));
      if (fallback === undefined || Date.now() >= deadline) return [];
      target = fallback;
      waiting = true;
      continue;
    }
    visited.add(shard);
    if (shard === 0) {
      rootAsks++;
      rootRedirected = offer.redirect !== undefined;
    }
    if (sharded) noteDepth(config, shard, offer.depth);
    if ((offer.jobs ?? []).length > 0 || offer.ids.length > 0) {
      // Jobs offered to a take that waited are claimed here (its worker may have gone meanwhile:
      // then the offers lapse rather than the jobs being held for it); a refused claim repairs the shard.
      const sign = signOf();
      const here =
        offer.ids.length > 0
          ? await claimOffered(env, config, offer.ids, workerId, { takeId, indexedHere: false, ...(sign ? { sign } : {}) }, (e) => queueOf(env, config.id, config.generation, shard).sync(e))
          : null;
      const claimed = await handOut(env, config, workerId, [...(offer.jobs ?? []), ...(here?.jobs ?? [])]);
      if (claimed.length > 0 || Date.now() >= deadline) return claimed;
      continue; // the offers were stale (the index is repaired): take again where we were
    }
    if ((offer.stale ?? 0) > 0) {
      if (Date.now() >= deadline) return [];
      continue;
    }
    // Ready jobs here, none for this worker: its next probes pass this shard over.
    if (sharded) noteVain(config, workerId, shard, offer.depth);
    // A redirect is the endpoint object's hint, used up by this take: followed once even when the
    // poll's time is up meanwhile, else the hinting shard's jobs wait unannounced until its alarm
    // repeats the hint (SHARDS.hintEveryMs; found by CI under load).
    if (offer.redirect !== undefined && (noWait ? !visited.has(offer.redirect) : Date.now() < deadline || !lateHop)) {
      if (!noWait && Date.now() >= deadline) lateHop = true;
      target = offer.redirect;
      waiting = false;
      viaRedirect = true;
      continue;
    }
    if (noWait && sharded && (waiting || viaRedirect)) {
      // Without wait: home (or a redirect) came back empty; the endpoint object is asked last,
      // again while it answers with redirects (a hint may be stale: its jobs taken meanwhile).
      if (failed.has(0) || rootAsks >= NO_WAIT_ROOT_ASKS || (visited.has(0) && !rootRedirected)) return [];
      target = 0;
      waiting = true;
      viaRedirect = false;
      continue;
    }
    if (waiting) return [];
    if (viaRedirect) skip.push(shard);
    // Nothing at the probe or a redirect: wait at home (a take without wait looks there once).
    target = fallbacks.find((s) => !failed.has(s)) ?? 0;
    waiting = true;
    viaRedirect = false;
  }
}

/** Claimed jobs (endpoints/take-claims), as the worker gets them; an input the shard left out is read from its job. */
async function handOut(env: Env, config: EndpointConfig, workerId: string, jobs: readonly ClaimedJob[]): Promise<Piece[][]> {
  const ref = refOf(config);
  const inputs = await Promise.all(jobs.map((j) => j.input ?? jobAt(env, j.id).claimedInput(ref, { workerId, attempt: j.attempt })));
  // An input that is gone: the job was cancelled since its claim, and is not handed out (it waits
  // for this worker's stop as any running job would).
  return jobs.flatMap((j, i) => (inputs[i] === null ? [] : [handedJobPieces({ id: j.id, attempt: j.attempt }, inputs[i]!, j.handed)]));
}
