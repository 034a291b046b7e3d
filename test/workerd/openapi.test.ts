/**
 * The OpenAPI document lists exactly the routes the app serves (issue 13): a route added without
 * its description fails here, as does a description left behind by a removed route.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { openApiPath } from "../../src/http/openapi/document";
import type { AppEnv } from "../../src/http/types";
import { call, json } from "./helpers";
import committed from "../../packages/client/openapi.json";

type Doc = {
  openapi: string;
  tags: Array<{ name: string }>;
  paths: Record<string, Record<string, { operationId: string; tags: string[]; responses: Record<string, unknown> }>>;
};
const METHODS = ["GET", "POST", "PUT", "DELETE"];

/** Served (method, route) pairs with no operation in the document, and operations no route serves. */
function drift(app: Hono<AppEnv>, doc: Doc): { undocumented: string[]; unserved: string[] } {
  const served = new Set(app.routes.filter((r) => METHODS.includes(r.method)).map((r) => `${r.method} ${openApiPath(r.path)}`));
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
  return {
    undocumented: [...served].filter((s) => !documented.has(s)).sort(),
    unserved: [...documented].filter((d) => !served.has(d)).sort(),
  };
}

async function document(): Promise<Doc> {
  const res = await call("GET", "/openapi.json", { key: null });
  expect(res.status).toBe(200);
  return json<Doc>(res);
}

describe("the OpenAPI document", () => {
  it("is served without a key and describes every route the app serves, and only those", async () => {
    const doc = await document();
    expect(doc.openapi).toBe("3.1.0");
    const d = drift(createApp(), doc);
    expect(d).toEqual({ undocumented: [], unserved: [] });
    // The worker and client APIs are there (a sample that must never vanish).
    for (const p of ["/v2/{ep}/run", "/v2/{ep}/runsync", "/v2/{ep}/status/{id}", "/v2/{ep}/job-take/{w}", "/v2/{ep}/job-done/{w}/{id}", "/admin/endpoints/{ep}", "/openapi.json"]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });

  it("catches a route registered without its description (a planted one)", async () => {
    const doc = await document();
    const app = createApp();
    app.get("/v2/:ep/undocumented", (c) => c.text("x"));
    expect(drift(app, doc).undocumented).toEqual(["GET /v2/{ep}/undocumented"]);
    const trimmed: Doc = { ...doc, paths: { ...doc.paths } };
    delete trimmed.paths["/v2/{ep}/health"];
    expect(drift(createApp(), trimmed).undocumented).toEqual(["GET /v2/{ep}/health"]);
  });

  it("names each operation once, gives each a success answer, its refusals and a declared group", async () => {
    const doc = await document();
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(ids.length).toBeGreaterThan(30);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => s.startsWith("2")), `${m} ${p} has a 2xx answer`).toBe(true);
        expect(statuses.some((s) => s.startsWith("4")), `${m} ${p} documents its refusals`).toBe(true);
        expect(op.tags.length, `${m} ${p} has a group`).toBeGreaterThan(0);
        for (const t of op.tags) expect(doc.tags.map((x) => x.name), `${m} ${p}'s group ${t} is declared`).toContain(t);
      }
    }
  });

  it("is the copy the client package's types are generated from (else: npm run client:generate)", async () => {
    const served = await document();
    expect(JSON.parse(JSON.stringify(committed)), "packages/client/openapi.json is stale: run npm run client:generate").toEqual(served);
  });
});
