/**
 * What the OpenAPI document says of one operation (a method on a route). Every `route()` call
 * declares one per method it serves (a type error otherwise), so a route cannot exist without
 * its description; the document is built from these (openapi/document.ts).
 */
import type { z } from "zod";

/** Who may call: the key the route checks (see README, Keys). */
export type Auth = "none" | "admin" | "client" | "worker" | "reportToken";

export interface ResponseDoc {
  description: string;
  /** The JSON body (omitted: no body, or not JSON). */
  schema?: z.ZodType;
  /** Another media type than JSON (text/event-stream, text/html), with no schema. */
  contentType?: string;
  /** Other media types the same answer may come as (chosen by the request's Accept), described in words. */
  alsoAs?: readonly string[];
}

export interface OperationDoc {
  /** Unique over the document, camelCase (SDK method names come from it). */
  operationId: string;
  summary: string;
  description?: string;
  tags: readonly string[];
  /** The keys this operation accepts (the admin key is accepted wherever an endpoint key is). */
  auth: Auth | readonly Auth[];
  /** Query parameters, as a zod object of optional strings or numbers. */
  query?: z.ZodObject;
  /** Header parameters (name → description). */
  headers?: Record<string, string>;
  body?: { schema: z.ZodType; required?: boolean; description?: string; contentType?: string };
  /** Successful and expected answers by status; 4xx answers share the error body. */
  responses: Record<number, ResponseDoc>;
}
