/**
 * Seeing load (admin key): the calls and rows each object serving an endpoint has counted since
 * a reset, the busiest of them, and the reset. The fan-out over the objects is in ../load-sources.
 */
import type { Hono } from "hono";
import { loadReport, type LoadSnapshot } from "../../shared/load";
import { unknownEndpoint } from "../auth";
import { loadSources, type LoadSource } from "../load-sources";
import { endpointParam, endpointStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import { LOAD_DOC, LOAD_RESET_DOC } from "../openapi/docs-client";

/**
 * Asks the endpoint object first (null: no such endpoint, 404), then the others at once. An
 * object that answers null beside an existing endpoint (e.g. one not yet used) is left out.
 */
async function ask(id: string, sources: LoadSource[], what: (s: LoadSource) => Promise<LoadSnapshot | null>) {
  const [first, ...rest] = sources;
  const head = first ? await what(first) : null;
  if (!first || head === null) throw unknownEndpoint(id);
  const others = await Promise.all(rest.map(async (s) => ({ s, snapshot: await what(s) })));
  return [{ s: first, snapshot: head }, ...others]
    .filter((x): x is { s: LoadSource; snapshot: LoadSnapshot } => x.snapshot !== null)
    .map(({ s, snapshot }) => ({ kind: s.kind, name: s.name, snapshot }));
}

export function loadRoutes(app: Hono<AppEnv>): void {
  route(app, "/admin/endpoints/:ep/load", {
    GET: async (c) => {
      const id = endpointParam(c);
      const plan = await endpointStub(c.env, id).loadPlan();
      return c.json({ id, ...loadReport(await ask(id, loadSources(c.env, id, plan), (s) => s.read())) });
    },
  }, { GET: LOAD_DOC });

  route(app, "/admin/endpoints/:ep/load/reset", {
    POST: async (c) => {
      const id = endpointParam(c);
      const plan = await endpointStub(c.env, id).loadPlan();
      return c.json({ id, ...loadReport(await ask(id, loadSources(c.env, id, plan), (s) => s.reset())) });
    },
  }, { POST: LOAD_RESET_DOC });
}
