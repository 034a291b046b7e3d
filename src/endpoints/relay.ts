/**
 * The root's side of forwarding between shards (Temporal's task-queue partitions forward polls
 * and tasks to their parent the same way): a shard whose takes wait with nothing ready keeps one
 * poll open here; a shard whose ready jobs find no waiter hints here; a hint answers a waiting
 * poll with the hinting shard's number, whose waiter then takes there. Kept in memory only: a
 * lost hint is repeated by the hinting shard's alarm, a lost poll is re-opened by its shard.
 */
import { Waiters } from "../shared/waiters";

export class Relay {
  private readonly polls = new Waiters<{ shard: number; skip: readonly number[] }, number | null>();
  /**
   * Hints nobody took up yet, kept until a poll takes them (at most one entry per shard). A stale
   * one costs a single fruitless take at that shard, after which the waiter stays home.
   */
  private readonly hints = new Map<number, number>();

  /**
   * Shard `shard` has `count` ready jobs nobody waits for there: the root's own waiters
   * (`redirectLocal`) and other shards' polls are told first, the rest kept. True when anyone was told.
   */
  hint(shard: number, count: number, redirectLocal: (shard: number) => boolean): boolean {
    let left = count;
    while (left > 0 && shard !== 0 && redirectLocal(shard)) left--;
    this.polls.serve((p) => {
      if (p.shard === shard || p.skip.includes(shard) || left <= 0) return undefined;
      left--;
      return shard;
    });
    if (left > 0) this.hints.set(shard, left);
    else this.hints.delete(shard);
    return left < count;
  }

  /** A kept hint for another shard than `shard` (and than those in `skip`), taken up; or null. */
  takeHint(shard: number, skip: readonly number[] = []): number | null {
    for (const [s, count] of this.hints) {
      if (s === shard || skip.includes(s)) continue;
      if (count <= 1) this.hints.delete(s);
      else this.hints.set(s, count - 1);
      return s;
    }
    return null;
  }

  /** Shard `shard`'s takes wait: answers with a shard that has ready jobs, or null after `waitMs`. */
  poll(shard: number, waitMs: number, skip: readonly number[] = []): Promise<number | null> {
    const s = this.takeHint(shard, skip);
    return s !== null ? Promise.resolve(s) : this.polls.wait({ shard, skip }, waitMs, null);
  }

  endAll(): void {
    this.polls.resolveAll(null);
    this.hints.clear();
  }
}
