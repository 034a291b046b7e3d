/**
 * Readers of a job waiting for it to change (a transition or a stream chunk): long-polls for a
 * terminal state or for stream chunks. A change wakes them all; each also wakes at its deadline.
 */
export class ChangeSignal {
  private readonly waiters = new Set<() => void>();

  /** Resolves at the next change, or after `ms`. */
  next(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
