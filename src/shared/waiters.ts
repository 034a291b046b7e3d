/**
 * Long-poll waiters held in an object's memory: each waits with a key until served or until its
 * time runs out, when it gets the fallback value. Endpoints hold takes and stop polls; jobs hold
 * reads waiting for a change.
 */
interface Waiter<K, V> {
  key: K;
  resolve: (v: V) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Waiters<K, V> {
  private list: Array<Waiter<K, V>> = [];

  get size(): number {
    return this.list.length;
  }

  wait(key: K, ms: number, fallback: V): Promise<V> {
    return new Promise<V>((resolve) => {
      const waiter: Waiter<K, V> = {
        key,
        resolve,
        timer: setTimeout(() => {
          this.list = this.list.filter((w) => w !== waiter);
          resolve(fallback);
        }, ms),
      };
      this.list.push(waiter);
    });
  }

  /**
   * Offers each waiter, oldest first, what `pick` finds for it; a waiter given a value is
   * resolved and removed. Stops after `limit` are served.
   */
  serve(pick: (key: K) => V | undefined, limit = Infinity): void {
    let served = 0;
    for (const w of [...this.list]) {
      if (served >= limit) return;
      const v = pick(w.key);
      if (v === undefined) continue;
      clearTimeout(w.timer);
      this.list = this.list.filter((x) => x !== w);
      w.resolve(v);
      served++;
    }
  }

  resolveAll(v: V): void {
    for (const w of this.list) {
      clearTimeout(w.timer);
      w.resolve(v);
    }
    this.list = [];
  }
}
