/**
 * The endpoint object's side of forwarding between shards (Temporal's task-queue partitions
 * forward polls and tasks to their parent the same way): a shard whose takes wait with nothing
 * ready keeps one poll open here; a shard whose ready jobs find no waiter hints here; a hint
 * answers a waiting poll with the hinting shard's number, whose waiter then takes there. Kept in
 * memory only: a lost hint is repeated by the hinting shard's alarm, a lost poll is re-opened by
 * its shard.
 *
 * A take that was sent to a shard in vain (nothing there it may take) skips that shard's hints
 * for the rest of its poll, so a hint it cannot use is not bounced back to it. A fresh hint (jobs
 * just became ready there) passes every skip: they may be jobs the skipping worker can take.
 *
 * Worker tags (issue 15, item 3): a hint names the tag sets its shard's ready jobs need (null:
 * some need none, so any worker may take one), and goes only to polls with a waiter that has
 * every tag of one of them; a hint no waiter matches stays here, sending nobody in vain.
 */
import { tagsMatch } from "../shared/tags";
import { Waiters } from "../shared/waiters";

/** A hint as a waiter receives it: the shard to take from, whether it passes skips, and the tag sets it needs. */
export interface Hint {
  shard: number;
  fresh: boolean;
  /** The tag sets of the ready jobs there (canonical); null: some need no tags (anyone may go). */
  needs: readonly string[] | null;
}

/** May a worker with tags `have` (canonical) take one of the jobs a hint `needs`? */
export function canUse(needs: readonly string[] | null, have: string): boolean {
  return needs === null || needs.some((n) => tagsMatch(n, have));
}

/** A waiting take as the relay sees it: its worker's tags (canonical) and the shards it was sent to in vain. */
export interface Seeker {
  tags: string;
  skip: readonly number[];
}

/** Kinds of waiting takes a forwarded poll names at most (tag sets × shards skipped). */
const SEEKERS = 32;

/** Waiting takes each kind once, the oldest first, at most SEEKERS (a subset: a hint they follow, one of them follows). */
export function seekerKinds(all: readonly Seeker[]): Seeker[] {
  const out = new Map<string, Seeker>();
  for (const s of all) if (out.size < SEEKERS) out.set(JSON.stringify(s), s);
  return [...out.values()];
}

/** Does a hint naming `held` (tag sets; null: any) also name every set of `now`? */
export function covers(held: readonly string[] | null, now: readonly string[] | null): boolean {
  return held === null || (now !== null && now.every((n) => held.includes(n)));
}

/** Would a waiting take follow this hint: may it take one of its jobs, and has it not been there in vain (unless fresh)? */
export function follows(hint: Hint, s: Seeker): boolean {
  return canUse(hint.needs, s.tags) && (hint.fresh || !s.skip.includes(hint.shard));
}


export class Relay {
  /** Open polls, each with its shard's waiting takes (a poll is answered only with a hint one of them follows). */
  private readonly polls = new Waiters<{ shard: number; seekers: readonly Seeker[] }, Hint | null>();
  /**
   * Hints nobody took up yet, kept until a poll takes them (at most one entry per shard). A stale
   * one costs a single fruitless take at that shard.
   */
  private readonly hints = new Map<number, { count: number; fresh: boolean; needs: readonly string[] | null }>();

  /**
   * Shard `shard` has `count` ready jobs nobody waits for there: the endpoint object's own
   * waiters (`redirectLocal`) and other shards' polls are told first, the rest kept. True when
   * anyone was told.
   */
  hint(shard: number, count: number, fresh: boolean, needs: readonly string[] | null, redirectLocal: (hint: Hint) => boolean): boolean {
    let left = count;
    const hint = { shard, fresh, needs };
    while (left > 0 && shard !== 0 && redirectLocal(hint)) left--;
    this.polls.serve((p) => {
      if (p.shard === shard || left <= 0 || !p.seekers.some((x) => follows(hint, x))) return undefined;
      left--;
      return hint;
    });
    const kept = this.hints.get(shard);
    // A repeated hint replaces what it says of its shard's ready jobs (their needs may have changed).
    if (left > 0) this.hints.set(shard, { count: left, fresh: fresh || (kept?.fresh ?? false), needs });
    else this.hints.delete(shard);
    return left < count;
  }

  /** A kept hint for another shard than `shard` that one of `seekers` follows, taken up; or null. */
  takeHint(shard: number, seekers: readonly Seeker[]): Hint | null {
    for (const [s, h] of this.hints) {
      const hint = { shard: s, fresh: h.fresh, needs: h.needs };
      if (s === shard || !seekers.some((x) => follows(hint, x))) continue;
      if (h.count <= 1) this.hints.delete(s);
      else this.hints.set(s, { ...h, count: h.count - 1 });
      return hint;
    }
    return null;
  }

  /** Shard `shard`'s takes (`seekers`) wait: answers with a shard that has ready jobs one of them follows, or null after `waitMs`. */
  poll(shard: number, waitMs: number, seekers: readonly Seeker[]): Promise<Hint | null> {
    const h = this.takeHint(shard, seekers);
    return h !== null ? Promise.resolve(h) : this.polls.wait({ shard, seekers }, waitMs, null);
  }

  endAll(): void {
    this.polls.resolveAll(null);
    this.hints.clear();
  }
}
