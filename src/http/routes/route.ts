import type { Handler, Hono } from "hono";
import { ApiError } from "../errors";
import type { AppEnv } from "../types";

type Method = "GET" | "POST" | "PUT" | "DELETE";

/** Registers handlers by method for one path; any other method on it answers 405 with Allow. */
export function route(app: Hono<AppEnv>, path: string, handlers: Partial<Record<Method, Handler<AppEnv>>>): void {
  const allowed = Object.keys(handlers) as Method[];
  for (const m of allowed) app.on(m, path, handlers[m]!);
  app.all(path, (c) => {
    throw new ApiError(405, `method ${c.req.method} is not allowed on this route; use ${allowed.join(" or ")}`, {}, {
      allow: allowed.join(", "),
    });
  });
}
