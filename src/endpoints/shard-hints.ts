/**
 * A shard's half of the relay between shards (issue 12, item 3): ready jobs here that no local
 * take waits for are hinted to the endpoint object, once per episode; takes parked here keep a
 * forwarded poll open there, whose answer redirects one of them to the shard with jobs. ReadyQueue
 * holds the takes and the index; this holds when to hint and the polls it forwards.
 */
import { SHARDS } from "../shared/limits";
import type { Waiters } from "../shared/waiters";
import { covers, follows, seekerKinds, type Hint, type Seeker } from "./relay";
import type { EndpointConfig } from "./config";
import type { TakeAnswer, Taker } from "./shards";

/** What the hints need of the object the shard's ReadyQueue lives in. */
export interface HintHost {
  readonly shard: number;
  config(): EndpointConfig | null;
  paused(): boolean;
  /**
   * Ready jobs of shard `shard` (default: this one) found no waiter: tell the endpoint object
   * (`fresh`: they just became ready; see Relay). Resolves true when a waiter elsewhere was told at once.
   */
  hint(count: number, fresh: boolean, shard?: number, needs?: readonly string[] | null): Promise<boolean>;
  /** Waits at the endpoint object for another shard's hint, or null after `waitMs`. */
  forwardPoll(waitMs: number, seekers: Seeker[]): Promise<Hint | null>;
  waitMs(): number;
}

/** What the hints need of their ReadyQueue. */
export interface HintSide {
  readonly host: HintHost;
  /** The takes parked on this shard. */
  readonly waiters: Waiters<{ taker: Taker; max: number; skip: readonly number[] }, TakeAnswer | null>;
  /** Ready jobs not on offer, at most a bound. */
  depth(now: number): number;
  /** The tag sets the ready jobs need (null: some need none). */
  needs(): readonly string[] | null;
  armAlarm(at: number): Promise<void>;
}

export class ShardHints {
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

  constructor(private readonly side: HintSide) {}

  /** Does this endpoint forward between shards (pull, several shards, running)? */
  forwards(): boolean {
    const c = this.side.host.config();
    return c !== null && c.mode === "pull" && c.shards > 1 && c.generation !== "" && !this.side.host.paused();
  }

  /**
   * Temporal-style forwarding: ready jobs here that no local take waits for are announced to the
   * endpoint object once per episode (not per job), so a worker parked on another shard is sent
   * here. The alarm repeats the hint while they wait, so a hint lost with an evicted endpoint
   * object strands nothing.
   */
  async maybeHint(now: number, fresh = false): Promise<void> {
    if (!this.forwards()) return;
    const depth = this.side.depth(now);
    if (depth === 0) return;
    const needs = this.side.needs();
    // Ready jobs the held hint does not name (other tag sets, or some needing none): hint again
    // now, or workers who may take them hear of them only at the alarm's repeat (found from outside).
    if (this.hinted && !covers(this.hintedNeeds, needs)) {
      this.hinted = false;
      fresh = true;
    }
    if (this.hinted) {
      // The endpoint object still holds the hint: the alarm checks that these jobs are served.
      if (fresh) this.freshPending = true;
      await this.side.armAlarm(Math.max(now, this.hintedAt) + SHARDS.hintEveryMs);
      return;
    }
    fresh = fresh || this.freshPending;
    this.freshPending = false;
    this.hinted = true;
    this.hintedAt = now;
    this.hintedNeeds = needs;
    if (fresh) this.visitedInVain = false;
    await this.side.armAlarm(now + SHARDS.hintEveryMs);
    try {
      // Taken up at once: the next ready job may hint again.
      if (await this.side.host.hint(depth, fresh, undefined, needs)) this.hinted = false;
    } catch (e) {
      console.warn(`shard ${this.side.host.shard}: hint to the endpoint failed; the alarm repeats it`, e);
    }
  }

  /**
   * Keeps one poll open at the endpoint object while takes wait here; its answer redirects one
   * waiter. A take with tags the open polls do not name gets a poll of its own (once per tags
   * while it is open): else hints it could follow wait for the open poll's end (found from outside:
   * a GPU worker parked beside plain ones missed the GPU jobs' hints for a whole 30 s poll).
   */
  forwardWhileWaiting(seeker: Seeker | null = null): void {
    // The endpoint object's own waiters are redirected by its relay directly.
    if (this.side.host.shard === 0 || !this.forwards()) return;
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
      const hint = await this.side.host.forwardPoll(this.side.host.waitMs(), seekers);
      if (hint === null || hint.shard === this.side.host.shard) return true;
      // Nobody left here who may go: hand the hint back.
      if (!this.redirectOne(hint)) await this.side.host.hint(1, hint.fresh, hint.shard, hint.needs).catch(() => false);
      return true;
    } catch (e) {
      console.warn(`shard ${this.side.host.shard}: forwarded poll failed; retrying`, e);
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
    this.side.waiters.serve((w) => {
      all.push({ tags: w.taker.tags, skip: w.skip });
      return undefined;
    });
    return all.length === 0 ? null : seekerKinds(all);
  }

  /** Answers the oldest waiter that follows the hint (see Relay) with a redirect to its shard; false when none waits. */
  redirectOne(hint: Hint): boolean {
    let served = false;
    this.side.waiters.serve((w) => {
      if (served || !follows(hint, { tags: w.taker.tags, skip: w.skip })) return undefined;
      served = true;
      return { ids: [], redirect: hint.shard, depth: 0 };
    }, 1);
    return served;
  }

  /** Jobs became ready or a slot freed: a take came here in vain since the last hint, so hint again now. */
  readyChanged(): void {
    if (this.visitedInVain) this.hinted = false;
  }

  /**
   * After a take here (`handed`: jobs it got; `depth`: ready jobs left; `mine`: those its worker
   * may take). A take the endpoint object sent here used up this shard's hint: jobs left are
   * hinted again. A take that came back empty beside ready jobs it might have taken (it failed
   * them, or it was sent here by a hint another worker used up) announces them again for others;
   * not when all of them need tags it lacks (the relay sends no such worker here: nothing is used up).
   */
  afterTake(now: number, t: { redirected: boolean; handed: number; depth: number; mine: number }): void {
    if (t.redirected) this.hinted = false;
    if (t.depth > 0 && t.handed === 0 && t.mine > 0) {
      this.visitedInVain = true;
      this.hinted = false;
    }
    // Not awaited: the hint reaches the endpoint object after this answer, not before it.
    if (t.depth > 0 && !this.hinted) void this.maybeHint(now).catch((e) => console.warn(`shard ${this.side.host.shard}: hint not sent`, e));
  }

  /** The alarm: ready jobs waited a hint interval unserved, so announce them again (the hint may be lost). */
  hintDue(now: number): void {
    if (this.hinted && now - this.hintedAt >= SHARDS.hintEveryMs && this.side.depth(now) > 0) this.hinted = false;
  }
}
