/**
 * An outsider's attack on the load report (GET /admin/endpoints/{id}/load, POST …/load/reset):
 * wrong methods, keys of the wrong scope, unknown and malformed ids, a reset racing calls.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, createKey, done, json, submit, take } from "./helpers";

interface Report {
  id: string;
  since: number;
  objects: Array<{ kind: string; name: string; since: number; calls: { total: number; byMethod: Record<string, number> } }>;
}

describe("outsider: the load report", () => {
  it("every wrong method is a JSON 405 naming the allowed one", async () => {
    const ep = await createEndpoint();
    for (const [path, allowed, wrong] of [
      ["/load", "GET", ["POST", "PUT", "DELETE", "PATCH"]],
      ["/load/reset", "POST", ["GET", "PUT", "DELETE", "PATCH"]],
    ] as const) {
      for (const m of wrong) {
        const res = await call(m, `/admin/endpoints/${ep}${path}`);
        expect(res.status, `${m} ${path}`).toBe(405);
        expect(res.headers.get("allow")).toBe(allowed);
        expect(await json(res)).toMatchObject({ error: expect.any(String) });
      }
    }
  });

  it("a worker key, a client key, another endpoint's admin-looking key and no key are refused with 401", async () => {
    const ep = await createEndpoint();
    const worker = await createKey(ep, "worker");
    const client = await createKey(ep, "client");
    for (const key of [worker, client, "test-admin-key-but-longer", "", null]) {
      for (const [m, path] of [["GET", "/load"], ["POST", "/load/reset"]] as const) {
        const res = await call(m, `/admin/endpoints/${ep}${path}`, { key });
        expect(res.status, `${m} ${path} with ${String(key)}`).toBe(401);
        expect(await json(res)).toMatchObject({ error: expect.any(String) });
      }
    }
  });

  it("malformed endpoint ids are a JSON 404 saying why (the project's rule for ids in paths), unknown ones (prototype names too) a 404", async () => {
    for (const bad of ["-x", "a".repeat(65), "bad%20id", "%00", "__proto__", "a.b"]) {
      for (const [m, path] of [["GET", "/load"], ["POST", "/load/reset"]] as const) {
        const res = await call(m, `/admin/endpoints/${bad}${path}`);
        expect(res.status, `${m} ${bad}${path}`).toBe(404);
        expect(await json(res)).toMatchObject({ error: expect.stringMatching(/not a valid endpoint id/) });
      }
    }
    for (const unknown of ["constructor", "toString", "hasOwnProperty"]) {
      expect((await call("POST", `/admin/endpoints/${unknown}/load/reset`)).status).toBe(404);
      expect((await call("GET", `/admin/endpoints/${unknown}/load`)).status).toBe(404);
      expect((await call("GET", `/admin/endpoints/${unknown}`)).status).toBe(404);
    }
  });

  it("a reset racing takes, submits and reports: no 5xx, and every snapshot adds up", async () => {
    const ep = await createEndpoint();
    for (let i = 0; i < 4; i++) await submit(ep);
    const work = (async () => {
      for (let i = 0; i < 4; i++) {
        const res = await take(ep, `w${i}`);
        if (res.status === 200) {
          const { id } = await json<{ id: string }>(res);
          expect((await done(ep, `w${i}`, id, { output: i })).status).toBe(200);
        }
      }
    })();
    const reports = await Promise.all([
      ...Array.from({ length: 6 }, () => call("POST", `/admin/endpoints/${ep}/load/reset`)),
      ...Array.from({ length: 6 }, () => call("GET", `/admin/endpoints/${ep}/load`)),
      work.then(() => call("GET", `/admin/endpoints/${ep}/load`)),
    ]);
    for (const res of reports) {
      expect(res.status).toBe(200);
      const r = await json<Report>(res);
      expect(r.id).toBe(ep);
      for (const o of r.objects) {
        expect(o.calls.total).toBe(Object.values(o.calls.byMethod).reduce((a, b) => a + b, 0));
        expect(o.since).toBeLessThanOrEqual(Date.now());
      }
    }
  });

  it("a deleted endpoint's report is a 404, and a re-created one's starts from zero", async () => {
    const ep = await createEndpoint();
    await submit(ep);
    expect((await call("DELETE", `/admin/endpoints/${ep}`)).status).toBe(200);
    expect((await call("GET", `/admin/endpoints/${ep}/load`)).status).toBe(404);
    expect((await call("POST", `/admin/endpoints/${ep}/load/reset`)).status).toBe(404);
    await createEndpoint({}, ep);
    const r = await json<Report>(await call("POST", `/admin/endpoints/${ep}/load/reset`));
    expect(r.objects.every((o) => o.calls.total === 0)).toBe(true);
  });

  it("defect: the report lists the worker-liveness shards (pings, stop polls and lease checks no longer reach the endpoint)", async () => {
    const ep = await createEndpoint();
    await call("POST", `/admin/endpoints/${ep}/load/reset`);
    for (let i = 0; i < 5; i++) expect((await call("GET", `/v2/${ep}/ping/w1`)).status).toBe(200);
    const r = await json<Report & { busiest: { kind: string; calls: { byMethod: Record<string, number> } } }>(await call("GET", `/admin/endpoints/${ep}/load`));
    const shard = r.objects.find((o) => o.kind === "liveness");
    expect(shard?.name).toMatch(new RegExp(`^${ep}/`));
    expect(shard?.calls.byMethod.ping).toBe(5);
    expect(r.busiest).toMatchObject({ kind: "liveness", calls: { byMethod: { ping: 5 } } });
    // Shards no worker used are left out; a reset zeroes the shard too.
    expect(r.objects.filter((o) => o.kind === "liveness")).toHaveLength(1);
    const after = await json<Report>(await call("POST", `/admin/endpoints/${ep}/load/reset`));
    expect(after.objects.find((o) => o.kind === "liveness")?.calls.total).toBe(0);
  });
});
