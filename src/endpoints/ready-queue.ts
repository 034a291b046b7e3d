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
import { MEMORY_BOUNDS, SHARDS } from "../shared/limits";
import { Waiters } from "../shared/waiters";
import type { EndpointConfig } from "./config";
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
import { canUse, covers, follows, seekerKinds, type Hint, type Seeker } from "./relay";
import type { WorkerCounts } from "./workers";

/** How often a queue prunes old index rows. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** Ready jobs a take answer reports at most as the shard's depth (a bounded count). */
const DEPTH_BOUND = 64;

export interface QueueHost {
  readonly shard: number;
  config(): EndpointConfig | null;
  paused(): boolean;
  /** Worker counts for the per-minute metrics sample; null on a shard (the endpoint object samples). */
  workerCounts: (() => WorkerCounts) | null;
  /**
   * Ready jobs of shard `shard` (default: this one) found no waiter: tell the endpoint object
   * (`fresh`: they just became ready; see Relay). Resolves true when a waiter elsewhere was told at once.
   */
  hint(count: number, fresh: boolean, shard?: number, needs?: readonly string[] | null): Promise<boolean>;
  /** Waits at the endpoint object for another shard's hint, or null after `waitMs`. */
  forwardPoll(waitMs: number, seekers: Seeker[]): Promise<Hint | null>;
  /**
   * Has any worker shown a sign of life since `since` (for `queue.reason`)? With `tags`
   * (canonical, not ''): any worker that declared all of them.
   */
  alive(since: number, tags?: string): Promise<boolean>;
  /** The live workers (by id) that may take a job requiring `tags` (`fresh`: asked of the worker shards now); `complete`: all of them are known. */
  liveWorkers(since: number, tags: string, fresh?: boolean): Promise<{ ids: string[]; complete: boolean }>;
  waitMs(): number;
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
  /**
   * The endpoint object holds this shard's hint (one at a time): until it hands it out (a take
   * arrives redirected here), or it is taken up at once, or a take here came back empty beside
   * ready jobs, ready jobs here are not hinted again; the alarm repeats the hint should jobs wait
   * SHARDS.hintEveryMs unserved (the endpoint object may have lost it).
   */
  private hintedAt = 0;
  private hinted = false;
  /** The tag sets the held hint named (null: any worker may take one of its jobs). */
  private hintedNeeds: readonly string[] | null = null;
  /** A job became ready while the hint was held: the next hint is fresh (it passes every take's skip). */
  private freshPending = false;
  /** A forwarded poll to the endpoint object is open for this shard's waiters. */
  private forwarding = false;
  /** The workers' tags the open forwarded polls name, with how many polls name each. */
  private readonly forwardedTags = new Map<string, number>();
  /**
   * A take came here in vain since the last hint (ready jobs it may not take): the next job that
   * becomes ready is hinted at once, fresh, even within the interval, since that take's worker
   * now skips this shard's other hints (found by the endpoint model on wt-shards, seed 46283).
   */
  private visitedInVain = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
    private readonly env: Env,
    private readonly clock: Clock,
    private readonly host: QueueHost,
  ) {}

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
    this.forwardWhileWaiting();
    await this.dispatchReady(now);
    if (this.visitedInVain) this.hinted = false;
    await this.maybeHint(now, true);
  }

  /** Does this endpoint forward between shards (pull, several shards, running)? */
  private forwards(): boolean {
    const c = this.host.config();
    return c !== null && c.mode === "pull" && c.shards > 1 && c.generation !== "" && !this.host.paused();
  }

  /**
   * Temporal-style forwarding: ready jobs here that no local take waits for are announced to the
   * endpoint object once per episode (not per job), so a worker parked on another shard is sent
   * here. The alarm repeats the hint while they wait, so a hint lost with an evicted endpoint
   * object strands nothing.
   */
  private async maybeHint(now: number, fresh = false): Promise<void> {
    if (!this.forwards()) return;
    const depth = this.depth(now);
    if (depth === 0) return;
    const needs = readyNeeds(this.sql);
    // Ready jobs the held hint does not name (other tag sets, or some needing none): hint again
    // now, or workers who may take them hear of them only at the alarm's repeat (found from outside).
    if (this.hinted && !covers(this.hintedNeeds, needs)) {
      this.hinted = false;
      fresh = true;
    }
    if (this.hinted) {
      // The endpoint object still holds the hint: the alarm checks that these jobs are served.
      if (fresh) this.freshPending = true;
      await this.armAlarm(Math.max(now, this.hintedAt) + SHARDS.hintEveryMs);
      return;
    }
    fresh = fresh || this.freshPending;
    this.freshPending = false;
    this.hinted = true;
    this.hintedAt = now;
    this.hintedNeeds = needs;
    if (fresh) this.visitedInVain = false;
    await this.armAlarm(now + SHARDS.hintEveryMs);
    try {
      // Taken up at once: the next ready job may hint again.
      if (await this.host.hint(depth, fresh, undefined, needs)) this.hinted = false;
    } catch (e) {
      console.warn(`shard ${this.host.shard}: hint to the endpoint failed; the alarm repeats it`, e);
    }
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
      this.forwardWhileWaiting({ tags: taker.tags, skip });
      answer = await waiting;
      answered = { ids: answer?.ids ?? [] };
    }
    const handed = answered.ids.length + (answered.jobs?.length ?? 0) + (answered.stale ?? 0);
    const redirect = answer?.redirect !== undefined ? { redirect: answer.redirect } : {};
    const now = this.clock.now();
    if (!this.forwards()) return { ...answered, depth: 0, ...redirect };
    const depth = this.depth(now);
    // A take the endpoint object sent here used up this shard's hint: jobs left are hinted again.
    // A take that came back empty beside ready jobs it might have taken (it failed them, or it
    // was sent here by a hint another worker used up) announces them again for others; not when
    // all of them need tags it lacks (the relay sends no such worker here: nothing is used up).
    if (redirected) this.hinted = false;
    const mine = this.depthFor(taker.tags, now);
    if (depth > 0 && handed === 0 && mine > 0) {
      this.visitedInVain = true;
      this.hinted = false;
    }
    // Not awaited: the hint reaches the endpoint object after this answer, not before it.
    if (depth > 0 && !this.hinted) void this.maybeHint(now).catch((e) => console.warn(`shard ${this.host.shard}: hint not sent`, e));
    // The edge's cached depth (its next takes try deep shards first) counts what this worker may take.
    return { ...answered, depth: mine, ...redirect };
  }

  /**
   * Keeps one poll open at the endpoint object while takes wait here; its answer redirects one
   * waiter. A take with tags the open polls do not name gets a poll of its own (once per tags
   * while it is open): else hints it could follow wait for the open poll's end (found from outside:
   * a GPU worker parked beside plain ones missed the GPU jobs' hints for a whole 30 s poll).
   */
  private forwardWhileWaiting(seeker: Seeker | null = null): void {
    // The endpoint object's own waiters are redirected by its relay directly.
    if (this.host.shard === 0 || !this.forwards()) return;
    if (this.forwarding) {
      if (seeker !== null && !this.forwardedTags.has(seeker.tags)) void this.forwardOnce([seeker]);
      return;
    }
    this.forwarding = true;
    void (async () => {
      try {
        // Most waits end within moments (a job placed where the take waits): only then forward.
        await new Promise((r) => setTimeout(r, SHARDS.forwardAfterMs));
        for (let seekers = this.seekers(); seekers !== null && this.forwards(); seekers = this.seekers()) {
          if (!(await this.forwardOnce(seekers))) await new Promise((r) => setTimeout(r, 1000));
        }
      } finally {
        this.forwarding = false;
      }
    })();
  }

  /** One forwarded poll for `seekers`; its hint redirects one waiter (or goes back). False when the poll failed. */
  private async forwardOnce(seekers: Seeker[]): Promise<boolean> {
    const kinds = [...new Set(seekers.map((s) => s.tags))];
    for (const k of kinds) this.forwardedTags.set(k, (this.forwardedTags.get(k) ?? 0) + 1);
    try {
      const hint = await this.host.forwardPoll(this.host.waitMs(), seekers);
      if (hint === null || hint.shard === this.host.shard) return true;
      // Nobody left here who may go: hand the hint back.
      if (!this.redirectOne(hint)) await this.host.hint(1, hint.fresh, hint.shard, hint.needs).catch(() => false);
      return true;
    } catch (e) {
      console.warn(`shard ${this.host.shard}: forwarded poll failed; retrying`, e);
      return false;
    } finally {
      for (const k of kinds) {
        const n = (this.forwardedTags.get(k) ?? 1) - 1;
        if (n <= 0) this.forwardedTags.delete(k);
        else this.forwardedTags.set(k, n);
      }
    }
  }

  /**
   * The waiting takes here as the relay filters hints for them (their tags and the shards they
   * were sent to in vain), each kind once, the oldest first, at most SEEKERS: the forwarded poll is
   * answered only with a hint one of them follows, so a hint is never bounced back and forth
   * (redirectOne finds that waiter). null when nobody waits.
   */
  private seekers(): Seeker[] | null {
    const all: Seeker[] = [];
    this.takeWaiters.serve((w) => {
      all.push({ tags: w.taker.tags, skip: w.skip });
      return undefined;
    });
    return all.length === 0 ? null : seekerKinds(all);
  }

  /** Answers the oldest waiter that follows the hint (see Relay) with a redirect to its shard; false when none waits. */
  redirectOne(hint: Hint): boolean {
    let served = false;
    this.takeWaiters.serve((w) => {
      if (served || !follows(hint, { tags: w.taker.tags, skip: w.skip })) return undefined;
      served = true;
      return { ids: [], redirect: hint.shard, depth: 0 };
    }, 1);
    return served;
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
    if (this.hinted && now - this.hintedAt >= SHARDS.hintEveryMs && this.depth(now) > 0) this.hinted = false;
    await this.maybeHint(now);
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
