/**
 * Seeing load: how many calls a Durable Object serves, by method, and how many SQLite rows it
 * writes, since a reset. In memory on purpose: counting must cost no storage write per call. An
 * evicted or restarted object starts again from zero, which its snapshot says through `since`.
 *
 * Calls are counted by wrapping the class's public methods once (`meterCalls`), so a new object
 * class needs one line; rows by wrapping the object's `ctx.storage.sql` (`meteredSql`), which
 * adds each statement's `cursor.rowsWritten` (rows inserted, updated or deleted; SQLite has done
 * a write statement's changes by the time `exec` returns). Writes through other storage APIs
 * (alarms, the key-value API, `deleteAll`) and migrations run on the raw storage are not rows here.
 */
import type { DurableObject } from "cloudflare:workers";

/** The kinds of object one endpoint is served by (`shard` and `liveness` are added as they come). */
export type ObjectKind = "endpoint" | "shard" | "liveness";

/** One object's counts since `since` (ms since the epoch). */
export interface LoadSnapshot {
  since: number;
  at: number;
  calls: { total: number; byMethod: Record<string, number> };
  rowsWritten: number;
}

/** A snapshot as the load report shows it: which object, and its call rate. */
export interface ObjectLoad extends LoadSnapshot {
  kind: ObjectKind;
  name: string;
  /** Calls per second since `since`, over at least one second. */
  callsPerSecond: number;
}

export interface LoadReport {
  /** The latest `since` of the objects: the window every listed object's counts cover. */
  since: number | null;
  objects: ObjectLoad[];
  /** The object with the most calls per second (null: no objects). */
  busiest: ObjectLoad | null;
}

export class LoadMeter {
  private since: number;
  private total = 0;
  private byMethod = new Map<string, number>();
  private rows = 0;

  constructor(private readonly now: () => number = Date.now) {
    this.since = now();
  }

  count(method: string): void {
    this.total += 1;
    this.byMethod.set(method, (this.byMethod.get(method) ?? 0) + 1);
  }

  wrote(rows: number): void {
    this.rows += rows;
  }

  snapshot(): LoadSnapshot {
    return {
      since: this.since,
      at: this.now(),
      calls: { total: this.total, byMethod: Object.fromEntries(this.byMethod) },
      rowsWritten: this.rows,
    };
  }

  /** Starts counting again from zero; returns the (empty) snapshot of the new window. */
  reset(): LoadSnapshot {
    this.since = this.now();
    this.total = 0;
    this.byMethod = new Map();
    this.rows = 0;
    return this.snapshot();
  }
}

/** Each object's meter, made on first use (a class needs no field of its own). */
const meters = new WeakMap<object, LoadMeter>();

export function meterOf(object: object): LoadMeter {
  let meter = meters.get(object);
  if (!meter) meters.set(object, (meter = new LoadMeter()));
  return meter;
}

/** `sql` whose `exec` adds the rows each statement wrote to `meter`; everything else is as is. */
export function meteredSql(sql: SqlStorage, meter: LoadMeter): SqlStorage {
  const exec = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T> => {
    const cursor = sql.exec<T>(query, ...bindings);
    meter.wrote(cursor.rowsWritten);
    return cursor;
  };
  return new Proxy(sql, {
    get(target, prop) {
      if (prop === "exec") return exec;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

type Methods<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T];
/** The public methods RPC callers reach on a Durable Object class (its own; `load` reads, not counted). */
export type RpcMethodNames<T> = Exclude<Methods<T>, keyof DurableObject | "load" | "resetLoad" | "loadGeneration"> & string;

/** Nesting depth of counted calls: a public method another one calls synchronously is not a call served. */
let depth = 0;

/**
 * Counts every call of the named methods of `cls` on its instance's meter. `methods` must name
 * every public method (a type error otherwise, so a new method is not left uncounted), plus
 * `alarm` when the class has one. A method called synchronously from inside another counted
 * method is not counted again; one called by a method after its first `await` is, so such
 * internal calls go through private helpers instead.
 */
export function meterCalls<T extends object>(
  cls: abstract new (...args: never[]) => T,
  methods: Record<RpcMethodNames<T>, true> & { alarm?: true },
): void {
  const proto = cls.prototype as Record<string, unknown>;
  for (const name of Object.keys(methods)) {
    const original = proto[name];
    if (typeof original !== "function") throw new Error(`meterCalls: ${cls.name}.${name} is not a method`);
    proto[name] = function (this: object, ...args: unknown[]): unknown {
      if (depth === 0) meterOf(this).count(name);
      depth += 1;
      try {
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        depth -= 1;
      }
    };
  }
}

/** The load report of an endpoint's objects: each one's rate, and the busiest. */
export function loadReport(objects: Array<{ kind: ObjectKind; name: string; snapshot: LoadSnapshot }>): LoadReport {
  const rows: ObjectLoad[] = objects.map(({ kind, name, snapshot }) => ({
    kind,
    name,
    ...snapshot,
    callsPerSecond: Math.round((snapshot.calls.total / Math.max(1, (snapshot.at - snapshot.since) / 1000)) * 100) / 100,
  }));
  const busiest = rows.reduce<ObjectLoad | null>(
    (best, r) => (best === null || r.callsPerSecond > best.callsPerSecond || (r.callsPerSecond === best.callsPerSecond && r.calls.total > best.calls.total) ? r : best),
    null,
  );
  return { since: rows.length === 0 ? null : Math.max(...rows.map((r) => r.since)), objects: rows, busiest };
}
