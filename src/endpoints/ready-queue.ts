/**
 * The index half of an endpoint, one per shard (the endpoint object is shard 0; ShardObjects are
 * the rest; issue 12, item 3): the ready index jobs sync into, take offers (claimed here when
 * ready at once: take-claims) and their long-poll waiters, sequences, push dispatch, counters, metrics and pruning. The host object supplies the
 * config and what differs between the endpoint object and a shard (the relay between shards,
 * worker counts for metrics samples, whether any worker is alive). Worker liveness is not here:
 * jobs tell their workers' liveness objects directly.
 */
import { isRunning } from "../jobs/states";
import type { IndexEntry } from "../jobs/index-entry";
import type { Clock } from "../shared/clock";
import { MEMORY_BOUNDS } from "../shared/limits";
import { Waiters } from "../shared/waiters";
import { sendReady } from "./dispatcher";
import { claimOffered } from "./take-claims";
import { recordEntry } from "./endpoint-metrics";
import { applyEntry, offerJobs, pruneTombstones, readyDepth, resetLapsedOffers, slotsInUse, type Offer } from "./ready-index";
import { countByState, readCounters, type CounterName } from "./index-counters";
import { memberChanged } from "./sequences";
import { anyTagReady, matchingDepth, pruneIdleClasses, readyNeeds } from "./tag-classes";
import { TakePolls } from "./take-polls";
import { waitOf } from "./queue-info";
import { nextKeyOpening, pruneIdleKeys, reopenKeys } from "./flow-keys";
import type { QueueInfo, SyncReply, TakeAnswer, TakeAsk, Taker } from "./shards";
import type { JobState } from "../jobs/states";
import { canUse, type Hint } from "./relay";
import { ShardHints, type HintHost } from "./shard-hints";
import type { WorkerCounts } from "./workers";

/** How often a queue prunes old index rows. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** Ready jobs a take answer reports at most as the shard's depth (a bounded count). */
const DEPTH_BOUND = 64;

/** What a ReadyQueue needs of the object it lives in (the hint half's needs: HintHost). */
export interface QueueHost extends HintHost {
  /** Worker counts for the per-minute metrics sample; null on a shard (the endpoint object samples). */
  workerCounts: (() => WorkerCounts) | null;
  /**
   * Has any worker shown a sign of life since `since` (for `queue.reason`)? With `tags`
   * (canonical, not ''): any worker that declared all of them.
   */
  alive(since: number, tags?: string): Promise<boolean>;
  /** The live workers (by id) that may take a job requiring `tags` (`fresh`: asked of the worker shards now); `complete`: all of them are known. */
  liveWorkers(since: number, tags: string, fresh?: boolean): Promise<{ ids: string[]; complete: boolean }>;
}

/** Index figures a shard reports for merged reads (counters add, states add). */
export interface QueueStats {
  byState: Partial<Record<JobState, number>>;
  counters: Record<CounterName, number>;
}

export class ReadyQueue {
  /** Takes waiting for a ready job, in arrival order; answered with job ids or a redirect. Each names the shards it was sent to in vain. */
  private readonly takeWaiters = new Waiters<{ taker: Taker; max: number; skip: readonly number[] }, TakeAnswer | null>();
  /** Workers whose take waits only because the concurrency limit is reached. */
  readonly throttled = new Set<string>();
  /** Workers with a take long-poll open here right now: alive, and perhaps throttled. */
  readonly polling = new TakePolls();
  /** When the next prune is due (in memory: a new instance prunes on its first sync). */
  private pruneAt = 0;
  /** When to hint the endpoint object of ready jobs here, and the polls forwarded there (shard-hints). */
  private readonly hints: ShardHints;

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
    private readonly env: Env,
    private readonly clock: Clock,
    private readonly host: QueueHost,
  ) {
    this.hints = new ShardHints({
      host,
      waiters: this.takeWaiters,
      depth: (now) => this.depth(now),
      needs: () => readyNeeds(this.sql),
      armAlarm: (at) => this.armAlarm(at),
    });
  }

  /**
   * A job reports its newest state. Idempotent: older or repeated versions change nothing.
   * When a job of a sequence ends, the reply names the next one for the caller to release.
   */
  async sync(entry: IndexEntry): Promise<SyncReply> {
    const reply: SyncReply = { release: [] };
    const now = this.clock.now();
    const r = applyEntry(this.sql, entry, now);
    if (!r.applied) return reply;
    try {
      recordEntry(this.sql, entry, r.counted, now, this.host.workerCounts);
    } catch (e) {
      // Swallowed on purpose (and logged): a metrics fault must never stop the index.
      console.error(`endpoint ${entry.jobId}: metrics not recorded`, e);
    }
    if (entry.sequenceKey !== null) {
      const next = memberChanged(this.sql, entry.sequenceKey, entry.jobId, entry.state);
      if (next !== null) reply.release.push(next);
    }
    // A waiting job with workers blocklisted from it, new in the queue or with a new list (a task
    // whose job of tasks blocklisted one: found from outside): does any live worker remain for it?
    if (entry.state === "IN_QUEUE" && (entry.blockedWorkers?.length ?? 0) > 0 && (await this.allBlocklisted(entry, now))) reply.blocklisted = true;
    const freedSlot = r.previous !== null && isRunning(r.previous) && !isRunning(entry.state);
    if (r.ready || freedSlot) await this.readyChanged(now);
    if (now >= this.pruneAt) await this.prune(now);
    return reply;
  }

  /**
   * Is every live worker that may take this job blocklisted from it (and is there one at all)?
   * From the liveness shards' summaries; when they do not name every live worker, no. Pull
   * endpoints only (push workers are URLs, never blocklisted).
   */
  private async allBlocklisted(entry: IndexEntry, now: number): Promise<boolean> {
    const config = this.host.config();
    if (!config || config.mode !== "pull") return false;
    // A worker only running another replica of the job is no reason to fail it (it waits for another).
    const busy = new Set(entry.busyWorkers ?? []);
    const blocked = new Set((entry.blockedWorkers ?? []).filter((w) => !busy.has(w)));
    if (blocked.size === 0) return false;
    const allBlocked = (live: { ids: string[]; complete: boolean }) => live.complete && live.ids.length > 0 && live.ids.every((id) => blocked.has(id));
    const since = now - config.heartbeatTimeout;
    // The summaries first; a job they would fail is confirmed with the worker shards themselves.
    return allBlocked(await this.host.liveWorkers(since, entry.tags ?? "")) && allBlocked(await this.host.liveWorkers(since, entry.tags ?? "", true));
  }

  /** Jobs became ready or a slot freed (or the config changed): serve waiters, dispatch (push), hint if jobs are left unwaited. */
  async readyChanged(now: number): Promise<void> {
    this.wakeTakeWaiters(now);
    // Takes that waited here while the endpoint was paused (or had one shard) forward from now on.
    this.hints.forwardWhileWaiting();
    await this.dispatchReady(now);
    this.hints.readyChanged();
    await this.hints.maybeHint(now, true);
  }

  /** Ready jobs not on offer, at most DEPTH_BOUND. */
  depth(now: number): number {
    return readyDepth(this.sql, now, DEPTH_BOUND);
  }

  /** Ready jobs not on offer that a worker with `tags` may take, at most DEPTH_BOUND (all of them while no job needs tags). */
  depthFor(tags: string, now: number): number {
    return anyTagReady(this.sql) ? matchingDepth(this.sql, tags, DEPTH_BOUND) : this.depth(now);
  }

  /**
   * A worker asks for up to `max` jobs, waiting up to `waitMs` for one here (or for a redirect to
   * another shard with ready jobs; `skip`: shards it was sent to in vain, not again). Jobs ready
   * at once are claimed here (`jobs`: one hop, see take-claims); jobs that come while the take
   * waits are offered (`ids`) for the edge to claim: its worker may have gone meanwhile, and an
   * offer nobody claims lapses, where a claim would hold the job until the worker's lease ends.
   */
  async take(ask: TakeAsk): Promise<TakeAnswer> {
    const { workerId, max, waitMs, skip = [], redirected = false, takeId = null, sign } = ask;
    const taker: Taker = { workerId, tags: ask.tags ?? "" };
    const offer = this.offer(taker, max, this.clock.now());
    let answer: TakeAnswer | null = null;
    let answered: Pick<TakeAnswer, "ids" | "jobs" | "stale"> = { ids: [] };
    const config = this.host.config();
    if (offer.ids.length > 0 && config) {
      const claimed = await claimOffered(this.env, config, offer.ids, workerId, { takeId, indexedHere: true, ...(sign ? { sign } : {}) }, (e) => this.sync(e));
      answered = { ids: [], jobs: claimed.jobs, ...(claimed.stale > 0 ? { stale: claimed.stale } : {}) };
    } else if (offer.ids.length === 0 && waitMs > 0) {
      const waiting = this.polling.during(taker, this.takeWaiters.wait({ taker, max, skip }, waitMs, null));
      this.hints.forwardWhileWaiting({ tags: taker.tags, skip });
      answer = await waiting;
      answered = { ids: answer?.ids ?? [] };
    }
    const handed = answered.ids.length + (answered.jobs?.length ?? 0) + (answered.stale ?? 0);
    const redirect = answer?.redirect !== undefined ? { redirect: answer.redirect } : {};
    const now = this.clock.now();
    if (!this.hints.forwards()) return { ...answered, depth: 0, ...redirect };
    const depth = this.depth(now);
    const mine = this.depthFor(taker.tags, now);
    this.hints.afterTake(now, { redirected, handed, depth, mine });
    // The edge's cached depth (its next takes try deep shards first) counts what this worker may take.
    return { ...answered, depth: mine, ...redirect };
  }

  /**
   * Serves parked takes, oldest first, until an offer comes back empty: the waiters behind would
   * find the same nothing. Unless that offer passed over jobs only because this worker failed
   * them — another worker may take those, so the next waiter is tried (at most once per waiter).
   */
  private wakeTakeWaiters(now: number): void {
    let more = true;
    // A waiter that matches none of the ready tag sets is passed over without an offer (lapsed
    // offers first go back to ready, so they count).
    resetLapsedOffers(this.sql, now);
    const needs = readyNeeds(this.sql);
    this.takeWaiters.serve((w) => {
      if (!more || !canUse(needs, w.taker.tags)) return undefined;
      const offer = this.offer(w.taker, w.max, now);
      if (offer.ids.length === 0 && offer.passedOver === 0) more = false;
      return offer.ids.length > 0 ? { ids: offer.ids, depth: 0 } : undefined;
    });
  }

  /** Answers the oldest waiter that follows the hint with a redirect to its shard; false when none waits (shard-hints). */
  redirectOne(hint: Hint): boolean {
    return this.hints.redirectOne(hint);
  }

  /** Ends every waiting take with nothing (deletion). */
  endWaiters(): void {
    this.takeWaiters.resolveAll(null);
  }

  /** Push mode: hands ready jobs within capacity to the dispatch queue (see dispatcher). */
  async dispatchReady(now: number): Promise<void> {
    const config = this.host.config();
    if (!config || config.mode !== "push") return;
    const again = await sendReady(this.sql, this.env.DISPATCH, config.id, () => this.capacity(now), now);
    if (again !== null) await this.armAlarm(again);
  }

  /** Re-dispatches after a failed send or a lapsed offer, repeats a hint, prunes when due. */
  async alarm(): Promise<void> {
    if (!this.host.config()) return;
    const now = this.clock.now();
    // Rate-limited keys whose window closed open again: their jobs go to waiting takes (and pushes).
    if (reopenKeys(this.sql, now) > 0) await this.readyChanged(now);
    else await this.dispatchReady(now);
    const opens = nextKeyOpening(this.sql);
    if (opens !== null) await this.armAlarm(opens);
    // Ready jobs waited a hint interval unserved: announce them again (the hint may be lost).
    this.hints.hintDue(now);
    await this.hints.maybeHint(now);
    if (now >= this.pruneAt) await this.prune(now);
    else await this.armAlarm(this.pruneAt);
  }

  /**
   * Drops old terminal index rows, a bounded batch, and schedules the next prune by alarm: by
   * time, however many requests the object serves.
   */
  private async prune(now: number): Promise<void> {
    const removed = pruneTombstones(this.sql, now);
    pruneIdleKeys(this.sql, now);
    pruneIdleClasses(this.sql);
    // A full batch means more is left: come back soon; otherwise at the usual interval.
    this.pruneAt = now + (removed >= 1000 ? 1000 : PRUNE_EVERY_MS);
    await this.armAlarm(this.pruneAt);
  }

  /** Sets the alarm to `at` unless one is already set for earlier. */
  async armAlarm(at: number): Promise<void> {
    const wall = this.clock.toWall(at);
    const current = await this.storage.getAlarm();
    if (current === null || current > wall) await this.storage.setAlarm(wall);
  }

  /**
   * How many more jobs may start now: none while paused, and the concurrency limit's free slots
   * (counted on shard 0 only: a capped endpoint places every new job there).
   */
  private capacity(now: number): number {
    const config = this.host.config();
    if (this.host.paused() || !config) return 0;
    if (config.concurrency === null || this.host.shard !== 0) return Infinity;
    return Math.max(0, config.concurrency - slotsInUse(this.sql, now));
  }

  /** Offers up to `max` ready jobs within the endpoint's capacity; notes workers held back by the limit. */
  private offer(taker: Taker, max: number, now: number): Offer {
    if (this.host.config()?.mode === "push") return { ids: [], passedOver: 0 }; // push endpoints hand jobs out through the dispatch queue only
    const room = this.capacity(now);
    if (room <= 0) {
      if (!this.host.paused()) this.throttled.add(taker.workerId);
      return { ids: [], passedOver: 0 };
    }
    this.throttled.delete(taker.workerId);
    // A batch answer holds at most MEMORY_BOUNDS.batchInputBytes of inputs in the isolate.
    const offer = offerJobs(this.sql, taker, Math.min(max, room), now, undefined, MEMORY_BOUNDS.batchInputBytes);
    this.keyLimited(offer.limitedUntil);
    return offer;
  }

  /** An offer rate-limited a key until `until`: the alarm reopens it then (and wakes takes). */
  private keyLimited(until: number | null | undefined): void {
    if (until == null) return;
    // Not awaited (offers are synchronous); the alarm write is ordered by the output gate.
    void this.armAlarm(until).catch((e) => console.error(`shard ${this.host.shard}: rate-limit alarm not set`, e));
  }

  /** Why a waiting job waits, and roughly where it stands on this shard (queue-info.ts). */
  queueInfo(jobId: string): Promise<QueueInfo> {
    const config = this.host.config();
    return waitOf(jobId, {
      sql: this.sql,
      now: this.clock.now(),
      toWall: (t) => this.clock.toWall(t),
      config,
      paused: this.host.paused(),
      atCapacity: (now) => config?.concurrency != null && this.capacity(now) === 0,
      polling: (tags) => this.polling.matches(tags),
      alive: (since, tags) => this.host.alive(since, tags),
    });
  }

  stats(): QueueStats {
    return { byState: countByState(this.sql), counters: readCounters(this.sql) };
  }
}
