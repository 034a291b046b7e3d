/**
 * Prometheus scrape targets: GET /v2/{ep}/metrics/prometheus (the endpoint's client key) and
 * GET /admin/metrics (the admin key, every endpoint, at most ADMIN_SCRAPE_MAX of them).
 */
import type { Hono } from "hono";
import { endpointNumbers } from "../../flows/prometheus";
import { PROMETHEUS_CONTENT_TYPE, prometheusText, type EndpointNumbers } from "../../flows/prometheus-text";
import { foundOn, requireEndpoint } from "../auth";
import { ADMIN_PROMETHEUS_DOC, ENDPOINT_PROMETHEUS_DOC } from "../openapi/docs-prometheus";
import { directoryStub, endpointParam, endpointStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

/** Endpoints one admin scrape reads (each costs a few object calls). */
export const ADMIN_SCRAPE_MAX = 100;
const PARALLEL = 16;

const text = (body: string) => new Response(body, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" } });

export function prometheusRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/metrics/prometheus", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const config = await requireEndpoint(c, endpointId, "client");
      return text(prometheusText([foundOn(endpointId, await endpointNumbers(c.env, config))]));
    },
  }, { GET: ENDPOINT_PROMETHEUS_DOC });

  // The admin key is checked by the /admin/* middleware (routes/admin.ts).
  route(app, "/admin/metrics", {
    GET: async (c) => {
      const ids = [...(await directoryStub(c.env).list())].sort();
      const read = ids.slice(0, ADMIN_SCRAPE_MAX);
      const numbers: EndpointNumbers[] = [];
      for (let i = 0; i < read.length; i += PARALLEL) {
        const batch = await Promise.all(
          read.slice(i, i + PARALLEL).map(async (id) => {
            const config = await endpointStub(c.env, id).getConfig();
            return config ? endpointNumbers(c.env, config) : null;
          }),
        );
        numbers.push(...batch.filter((n): n is EndpointNumbers => n !== null));
      }
      const more = ids.length > read.length ? `# edge-jobs: the first ${read.length} of ${ids.length} endpoints (by id); scrape /v2/{endpointId}/metrics/prometheus for the others\n` : "";
      return text(more + prometheusText(numbers));
    },
  }, { GET: ADMIN_PROMETHEUS_DOC });
}
