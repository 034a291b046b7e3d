/**
 * The take long-polls open at one shard right now, by worker, with the tags each worker's latest
 * take declared: those workers are alive (queue.reason), perhaps throttled (/health), and may
 * take a job needing their tags (no_matching_workers).
 */
import type { Taker } from "./shards";
import { tagsMatch } from "../shared/tags";

export class TakePolls {
  private readonly open = new Map<string, { n: number; tags: string }>();

  /** Workers with a poll open. */
  get size(): number {
    return this.open.size;
  }

  has(workerId: string): boolean {
    return this.open.has(workerId);
  }

  /** Does a worker with a poll open match a job requiring `tags` ('' for none: any worker)? */
  matches(tags: string): boolean {
    for (const p of this.open.values()) if (tagsMatch(tags, p.tags)) return true;
    return false;
  }

  /** Counts the taker's poll open while `p` runs. */
  async during<T>(taker: Taker, p: Promise<T>): Promise<T> {
    const { workerId } = taker;
    this.open.set(workerId, { n: (this.open.get(workerId)?.n ?? 0) + 1, tags: taker.tags });
    try {
      return await p;
    } finally {
      const n = (this.open.get(workerId)?.n ?? 1) - 1;
      if (n <= 0) this.open.delete(workerId);
      else this.open.set(workerId, { n, tags: this.open.get(workerId)!.tags });
    }
  }
}
