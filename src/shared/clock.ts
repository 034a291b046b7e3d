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

  /**
   * The wall-clock time to set an alarm for, for a deadline `t` on this clock. The platform fires
   * alarms by the wall clock, so while frozen a deadline keeps its distance from the frozen now;
   * otherwise an alarm for a deadline that is past on the wall clock but not yet on the frozen
   * one would fire, find nothing due, re-arm and fire again at once.
   */
  toWall(t: number): number {
    return this.frozenAt === null ? t : Date.now() + Math.max(0, t - this.frozenAt);
  }
}
