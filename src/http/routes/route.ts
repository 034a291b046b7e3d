import type { Handler, Hono } from "hono";
import { ApiError } from "../errors";
import { register } from "../openapi/registry";
import type { OperationDoc } from "../openapi/operation";
import type { AppEnv } from "../types";

export type Method = "GET" | "POST" | "PUT" | "DELETE";
type Handlers = Partial<Record<Method, Handler<AppEnv>>>;

/**
 * Registers handlers by method for one path, each with its OpenAPI description (one per method
 * served: a type error otherwise); any other method on the path answers 405 with Allow.
 */
export function route<H extends Handlers>(app: Hono<AppEnv>, path: string, handlers: H, docs: { [M in keyof H]: OperationDoc }): void {
  const allowed = Object.keys(handlers) as Method[];
  for (const m of allowed) {
    register(m, path, (docs as Record<Method, OperationDoc>)[m]);
    app.on(m, path, handlers[m]!);
  }
  app.all(path, (c) => {
    throw new ApiError(405, `method ${c.req.method} is not allowed on this route; use ${allowed.join(" or ")}`, {}, {
      allow: allowed.join(", "),
    });
  });
}
