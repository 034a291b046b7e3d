/**
 * Fault-injection points for the fault suites: code calls `faults.hit(point)` at a named place,
 * which throws only when a test armed that point on this object instance. Unarmed, it is one
 * set lookup. Nothing in the request path can arm a point; only tests holding the instance can.
 */
const FAULT_POINTS = ["job:in-transaction", "job:after-commit", "webhook:after-send", "graph:note"] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

class InjectedFault extends Error {
  override name = "InjectedFault";
}

export class Faults {
  private armed = new Map<FaultPoint, number>();

  /** Arms `point` to throw the next `times` times it is hit. */
  arm(point: FaultPoint, times = 1): void {
    this.armed.set(point, times);
  }

  disarmAll(): void {
    this.armed.clear();
  }

  /** The points still armed (a suite checks that every fault it armed has fired). */
  armedPoints(): FaultPoint[] {
    return [...this.armed.keys()];
  }

  hit(point: FaultPoint): void {
    const left = this.armed.get(point);
    if (left === undefined) return;
    if (left <= 1) this.armed.delete(point);
    else this.armed.set(point, left - 1);
    throw new InjectedFault(`injected fault at ${point}`);
  }
}
