/**
 * The HTTP edge: authenticates, validates and forwards to the objects; holds no job state.
 */
import { Hono } from "hono";
import { DASHBOARD_HTML } from "../dashboard/page";
import { ApiError, badRequest, notConfigured } from "./errors";
import { adminRoutes } from "./routes/admin";
import { clientRoutes } from "./routes/client";
import { loadRoutes } from "./routes/load";
import { metricsRoutes } from "./routes/metrics";
import { streamRoutes } from "./routes/stream";
import { workerRoutes } from "./routes/worker";
import type { AppEnv } from "./types";

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

  app.get("/", (c) =>
    c.json({
      name: "edge-jobs",
      api: "RunPod Serverless compatible, under /v2/{endpointId}",
      admin: "/admin/endpoints",
      dashboard: "/dashboard",
    }),
  );

  app.get("/dashboard", (c) => {
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "no-referrer");
    c.header("cache-control", "no-store");
    return c.html(DASHBOARD_HTML);
  });

  adminRoutes(app);
  loadRoutes(app);
  clientRoutes(app);
  streamRoutes(app);
  metricsRoutes(app);
  workerRoutes(app);

  app.notFound((c) => new ApiError(404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).toResponse());
  app.onError((err) => {
    if (err instanceof ApiError) return err.toResponse();
    console.error("unhandled error", err);
    return new ApiError(500, "internal error; the request may be retried").toResponse();
  });
  return app;
}
