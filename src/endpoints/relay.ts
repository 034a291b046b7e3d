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
 */
import { Waiters } from "../shared/waiters";

/** A hint as a waiter receives it: the shard to take from, and whether it passes skips. */
export interface Hint {
  shard: number;
  fresh: boolean;
}

export class Relay {
  private readonly polls = new Waiters<{ shard: number; skip: readonly number[] }, Hint | null>();
  /**
   * Hints nobody took up yet, kept until a poll takes them (at most one entry per shard). A stale
   * one costs a single fruitless take at that shard.
   */
  private readonly hints = new Map<number, { count: number; fresh: boolean }>();

  /**
   * Shard `shard` has `count` ready jobs nobody waits for there: the endpoint object's own
   * waiters (`redirectLocal`) and other shards' polls are told first, the rest kept. True when
   * anyone was told.
   */
  hint(shard: number, count: number, fresh: boolean, redirectLocal: (hint: Hint) => boolean): boolean {
    let left = count;
    const hint = { shard, fresh };
    while (left > 0 && shard !== 0 && redirectLocal(hint)) left--;
    this.polls.serve((p) => {
      if (p.shard === shard || (!fresh && p.skip.includes(shard)) || left <= 0) return undefined;
      left--;
      return hint;
    });
    if (left > 0) this.hints.set(shard, { count: left, fresh: fresh || (this.hints.get(shard)?.fresh ?? false) });
    else this.hints.delete(shard);
    return left < count;
  }

  /** A kept hint for another shard than `shard` (and, unless fresh, than those in `skip`), taken up; or null. */
  takeHint(shard: number, skip: readonly number[] = []): Hint | null {
    for (const [s, h] of this.hints) {
      if (s === shard || (!h.fresh && skip.includes(s))) continue;
      if (h.count <= 1) this.hints.delete(s);
      else this.hints.set(s, { ...h, count: h.count - 1 });
      return { shard: s, fresh: h.fresh };
    }
    return null;
  }

  /** Shard `shard`'s takes wait: answers with a shard that has ready jobs, or null after `waitMs`. */
  poll(shard: number, waitMs: number, skip: readonly number[] = []): Promise<Hint | null> {
    const h = this.takeHint(shard, skip);
    return h !== null ? Promise.resolve(h) : this.polls.wait({ shard, skip }, waitMs, null);
  }

  endAll(): void {
    this.polls.resolveAll(null);
    this.hints.clear();
  }
}
