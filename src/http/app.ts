/**
 * The HTTP edge: authenticates, validates and forwards to the objects; holds no job state.
 */
import { taskRoutes } from "./routes/tasks";
import { Hono } from "hono";
import { DASHBOARD_HTML } from "../dashboard/page";
import { ApiError, badRequest, notConfigured } from "./errors";
import { DASHBOARD_DOC, OPENAPI_DOC, REFERENCE_DOC, ROOT_DOC } from "./openapi/docs-app";
import { REFERENCE_HTML } from "./openapi/reference-page";
import { openApiDocument } from "./openapi/document";
import { route } from "./routes/route";
import { adminRoutes } from "./routes/admin";
import { stateRoutes } from "./routes/states";
import { clientRoutes } from "./routes/client";
import { loadRoutes } from "./routes/load";
import { metricsRoutes } from "./routes/metrics";
import { prometheusRoutes } from "./routes/prometheus";
import { requestRoutes } from "./routes/requests";
import { streamRoutes } from "./routes/stream";
import { workerRoutes } from "./routes/worker";
import { openAiRoutes } from "./routes/openai";
import { logRoutes } from "./routes/logs";
import { batchRoutes } from "./routes/batch";
import { scheduleRoutes } from "./routes/schedules";
import { flowKeyRoutes } from "./routes/keys";
import type { AppEnv } from "./types";

/** The API's version, as the OpenAPI document states it. */
export const API_VERSION = "0.1.0";

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // Fail closed: a Worker deployed without its admin key serves nothing.
  app.use("*", async (c, next) => {
    if (!c.env.ADMIN_KEY) throw notConfigured();
    await next();
  });

  // A path that does not percent-decode (`%ZZ`, a cut-off UTF-8 sequence) names nothing: it is
  // refused here, once, so no route or middleware decoding a segment can throw on it.
  app.use("*", async (c, next) => {
    const path = new URL(c.req.url).pathname;
    try {
      decodeURIComponent(path);
    } catch {
      throw badRequest(`malformed percent-escape in the path '${path}': escape each reserved byte as %XX with two hex digits, of valid UTF-8`);
    }
    await next();
  });

  route(app, "/", {
    GET: (c) =>
      c.json({
        name: "edge-jobs",
        api: "RunPod Serverless compatible, under /v2/{endpointId}",
        admin: "/admin/endpoints",
        dashboard: "/dashboard",
        openapi: "/openapi.json",
        docs: "/docs",
      }),
  }, { GET: ROOT_DOC });

  route(app, "/dashboard", {
    GET: (c) => {
      c.header("x-frame-options", "DENY");
      c.header("referrer-policy", "no-referrer");
      c.header("cache-control", "no-store");
      return c.html(DASHBOARD_HTML);
    },
  }, { GET: DASHBOARD_DOC });

  adminRoutes(app);
  loadRoutes(app);
  clientRoutes(app);
  taskRoutes(app);
  // After adminRoutes: its /admin/* middleware checks the admin key of the bulk actions.
  requestRoutes(app);
  streamRoutes(app);
  metricsRoutes(app);
  prometheusRoutes(app);
  workerRoutes(app);
  openAiRoutes(app);
  logRoutes(app);
  batchRoutes(app);
  // After adminRoutes: its /admin/* middleware checks the admin key.
  scheduleRoutes(app);
  flowKeyRoutes(app);
  stateRoutes(app);

  // Last, so it describes every route above (each registered its description with route()).
  route(app, "/openapi.json", { GET: (c) => c.json(openApiDocument(API_VERSION)) }, { GET: OPENAPI_DOC });
  route(app, "/docs", { GET: (c) => c.html(REFERENCE_HTML) }, { GET: REFERENCE_DOC });

  app.notFound((c) => new ApiError(404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toResponse());
  app.onError((err) => {
    if (err instanceof ApiError) return err.toResponse();
    console.error("unhandled error", err);
    return new ApiError(500, "internal error; the request may be retried").toResponse();
  });
  return app;
}
