/**
 * The time an object acts on. Production reads the wall clock; tests may freeze it at a chosen
 * instant (through runInDurableObject) to fire alarms just before, at and after a deadline.
 */
export class Clock {
  private frozenAt: number | null = null;

  now(): number {
    return this.frozenAt ?? Date.now();
  }

  freeze(at: number): void {
    this.frozenAt = at;
  }

  thaw(): void {
    this.frozenAt = null;
  }
}
