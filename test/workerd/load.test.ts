/**
 * Seeing load: each endpoint object counts the calls it serves by method and the rows it writes
 * (shared/load), and GET /admin/endpoints/{id}/load reports them since a reset.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LoadMeter, meteredSql } from "../../src/shared/load";
import { call, createEndpoint, createKey, done, endpointStubOf, json, status, submit, take } from "./helpers";

interface ObjectRow {
  kind: string;
  name: string;
  since: number;
  calls: { total: number; byMethod: Record<string, number> };
  rowsWritten: number;
  callsPerSecond: number;
}
interface Report {
  id: string;
  since: number;
  objects: ObjectRow[];
  busiest: ObjectRow;
}

async function load(ep: string): Promise<Report> {
  const res = await call("GET", `/admin/endpoints/${ep}/load`);
  expect(res.status).toBe(200);
  return json<Report>(res);
}

async function reset(ep: string): Promise<Report> {
  const res = await call("POST", `/admin/endpoints/${ep}/load/reset`);
  expect(res.status).toBe(200);
  return json<Report>(res);
}

describe("load report", () => {
  it("counts exactly the calls a job's lifecycle makes on its endpoint: submit, take, done", async () => {
    // One shard: every index call lands on the endpoint object (shards.test.ts counts a sharded one).
    const ep = await createEndpoint({ shards: 1 });
    // Warm the edge's authorization cache (client and worker scope), so the lifecycle below is
    // all the endpoint serves.
    await call("GET", `/v2/${ep}/health`);
    await call("GET", `/v2/${ep}/ping/w0`);
    await reset(ep);
    const id = await submit(ep);
    const taken = await take(ep, "w1");
    expect(taken.status).toBe(200);
    expect((await done(ep, "w1", id, { output: { ok: 1 } })).status).toBe(200);
    expect((await json<{ status: string }>(await status(ep, id))).status).toBe("COMPLETED");

    const r = await load(ep);
    // The endpoint first, then the liveness shards its workers used (w0's, w1's: see outsider-load).
    expect(r.objects[0]).toMatchObject({ kind: "endpoint", name: ep });
    expect(r.objects.slice(1).map((o) => o.kind)).toEqual(r.objects.slice(1).map(() => "liveness"));
    const endpoint = r.objects[0]!;
    // The job tells its endpoint twice (queued, completed); the take is one call, which claims the
    // job ready at once and indexes that claim itself (one hop); a completed job's status never
    // reaches the endpoint. Beside them only the worker's liveness shard's summaries (a new
    // worker, its first job: see liveness-object).
    const { sync, take: takes, ...others } = endpoint.calls.byMethod;
    expect({ sync, take: takes }).toEqual({ sync: 2, take: 1 });
    expect(Object.keys(others).every((m) => m === "workerShard"), JSON.stringify(others)).toBe(true);
    const summaries = others.workerShard ?? 0;
    expect(endpoint.calls.total).toBe(3 + summaries);
    expect(endpoint.rowsWritten).toBeGreaterThan(0);
    expect(endpoint.callsPerSecond).toBeGreaterThan(0);
    expect(endpoint.callsPerSecond).toBeLessThanOrEqual(3 + summaries);
    expect(r.objects).toContainEqual(r.busiest);
    expect(r.since).toBe(Math.max(...r.objects.map((o) => o.since)));

    // Reading the report is not a call it counts.
    expect((await load(ep)).objects[0]!.calls.total).toBe(3 + summaries);
  });

  it("counts a call once, not the public methods it uses inside", async () => {
    const ep = await createEndpoint();
    await call("GET", `/v2/${ep}/health`);
    await reset(ep);
    await call("GET", `/v2/${ep}/health`); // health counts the workers through workers()
    await call("POST", `/admin/endpoints/${ep}/pause`); // answers its view after an await
    await call("POST", `/admin/endpoints/${ep}/resume`);
    // /health asks the endpoint which worker shards to merge (workerShards) besides health itself.
    expect((await load(ep)).objects[0]!.calls.byMethod).toEqual({ workerShards: 1, health: 1, setPaused: 2 });
  });

  it("a reset clears the counts and starts a new window", async () => {
    const ep = await createEndpoint();
    await submit(ep);
    const before = await load(ep);
    expect(before.objects[0]!.calls.total).toBeGreaterThan(0);
    expect(before.objects[0]!.rowsWritten).toBeGreaterThan(0);
    const cleared = await reset(ep);
    expect(cleared.objects[0]).toMatchObject({ calls: { total: 0, byMethod: {} }, rowsWritten: 0, callsPerSecond: 0 });
    expect(cleared.since).toBeGreaterThanOrEqual(before.since);
    expect((await load(ep)).objects[0]!.calls.total).toBe(0);
  });

  it("answers 404 for an unknown endpoint and 401 without the admin key", async () => {
    for (const [method, path] of [["GET", "/load"], ["POST", "/load/reset"]] as const) {
      const missing = await call(method, `/admin/endpoints/no-such-endpoint-load${path}`);
      expect(missing.status).toBe(404);
      expect(await json(missing)).toMatchObject({ error: expect.stringMatching(/does not exist/) });
      const ep = await createEndpoint();
      const client = await createKey(ep, "client");
      expect((await call(method, `/admin/endpoints/${ep}${path}`, { key: client })).status).toBe(401);
      expect((await call(method, `/admin/endpoints/${ep}${path}`, { key: null })).status).toBe(401);
      expect((await call(method === "GET" ? "POST" : "GET", `/admin/endpoints/${ep}${path}`)).status).toBe(405);
    }
  });

  it("counts the rows each SQL statement writes, as exec returns", async () => {
    const ep = await createEndpoint();
    await runInDurableObject(endpointStubOf(ep), (_i, state) => {
      const meter = new LoadMeter();
      const sql = meteredSql(state.storage.sql, meter);
      sql.exec("CREATE TABLE IF NOT EXISTS load_probe (k INTEGER PRIMARY KEY, v INTEGER)");
      const base = meter.snapshot().rowsWritten;
      sql.exec("INSERT INTO load_probe (k, v) VALUES (1, 0), (2, 0), (3, 0)");
      expect(meter.snapshot().rowsWritten - base).toBe(3);
      sql.exec("UPDATE load_probe SET v = 1 WHERE k >= 2");
      expect(meter.snapshot().rowsWritten - base).toBe(5);
      expect(sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM load_probe").one().n).toBe(3);
      // SQLite makes a RETURNING statement's changes at its first step, before any row is read.
      const returning = sql.exec("DELETE FROM load_probe WHERE k = 1 RETURNING k");
      expect(meter.snapshot().rowsWritten - base).toBe(6);
      expect(returning.toArray()).toEqual([{ k: 1 }]);
      expect(sql.databaseSize).toBeGreaterThan(0); // everything but exec is the storage's own
    });
  });
});
