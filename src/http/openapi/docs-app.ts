/** The descriptions of the Worker's own routes: its index, the dashboard and this document. */
import { z } from "zod";
import type { OperationDoc } from "./operation";

export const ROOT_DOC: OperationDoc = {
  operationId: "index",
  summary: "What this Worker serves",
  tags: ["Meta"],
  auth: "none",
  responses: {
    200: {
      description: "Where the APIs, the dashboard and this document are.",
      schema: z.object({ name: z.literal("edge-jobs"), api: z.string(), admin: z.string(), dashboard: z.string(), openapi: z.string(), docs: z.string() }),
    },
  },
};

export const DASHBOARD_DOC: OperationDoc = {
  operationId: "dashboard",
  summary: "The dashboard (HTML); it asks for the admin key in the page",
  tags: ["Meta"],
  auth: "none",
  responses: { 200: { description: "The dashboard page.", contentType: "text/html" } },
};

export const OPENAPI_DOC: OperationDoc = {
  operationId: "openapi",
  summary: "This OpenAPI 3.1 document",
  description: "Built from the routes' own declarations and zod schemas, so it lists every route the Worker serves.",
  tags: ["Meta"],
  auth: "none",
  responses: { 200: { description: "The OpenAPI document.", schema: z.looseObject({ openapi: z.literal("3.1.0"), paths: z.record(z.string(), z.unknown()) }) } },
};

export const REFERENCE_DOC: OperationDoc = {
  operationId: "apiReference",
  summary: "The API reference (HTML): this document rendered, offline",
  tags: ["Meta"],
  auth: "none",
  responses: { 200: { description: "The reference page.", contentType: "text/html" } },
};
