/**
 * The OpenAPI 3.1 document, built from the operations `route()` registered and their zod
 * schemas (zod's own JSON Schema output, which is OpenAPI 3.1's dialect). Shared schemas (those
 * with a `meta({ id })`) become components. Served at /openapi.json.
 */
import { z } from "zod";
import { RATE_LIMITS, rateLimitGroupOf, type RateLimitGroup } from "../rate-limit";
import { ErrorBody, PATH_PARAMS, RateLimitedBody } from "./common";
import type { Auth, OperationDoc } from "./operation";
import { registeredOperations } from "./registry";

type Json = Record<string, unknown>;

const SECURITY: Record<Exclude<Auth, "none">, string> = {
  admin: "adminKey",
  client: "endpointKey",
  worker: "endpointKey",
  reportToken: "reportToken",
};

/** The groups of operations, in the order the reference shows them. */
const TAGS = [
  { name: "Jobs", description: "Submit jobs and follow them (RunPod's client API, and extensions)." },
  { name: "Streams", description: "A job's streamed output: RunPod's /stream, or live Server-Sent Events." },
  { name: "Endpoint", description: "An endpoint's health, queue and metrics, with its client key." },
  { name: "Workers", description: "RunPod's worker protocol: take, report, stream, ping, stop." },
  { name: "Admin", description: "Endpoints, keys, jobs and workers, with the admin key." },
  { name: "Load", description: "Calls served per object of an endpoint (admin)." },
  { name: "Meta", description: "This Worker's index, dashboard and API description." },
];

/** `/v2/:ep/status/:id` → `/v2/{ep}/status/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

/** A zod schema as JSON Schema; its named parts are moved into `components` and referenced there. */
function jsonSchema(schema: z.ZodType, io: "input" | "output", components: Json): Json {
  const out = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  delete out.$schema;
  const defs = (out.$defs ?? {}) as Record<string, Json>;
  delete out.$defs;
  const relink = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(relink);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, k === "$ref" && typeof x === "string" ? x.replace("#/$defs/", "#/components/schemas/") : relink(x)]),
    );
  };
  for (const [name, def] of Object.entries(defs)) components[name] = relink(def);
  // A schema that is itself named is referenced, as its parts are.
  const id = (z.globalRegistry.get(schema) as { id?: string } | undefined)?.id;
  const body = relink(out) as Json;
  if (id === undefined) return body;
  // zod answers a named schema with a reference to its own definition, which is already in place.
  if (body.$ref !== `#/components/schemas/${id}`) components[id] = body;
  return { $ref: `#/components/schemas/${id}` };
}

const RETRY_AFTER = { "Retry-After": { description: "Seconds to wait before trying again.", schema: { type: "integer" } } };

/** The 429 of a rate-limited client route (http/rate-limit.ts): its limit, body and Retry-After. */
function rateLimitedResponse(group: RateLimitGroup, components: Json): Json {
  const { limit, periodSeconds, routes } = RATE_LIMITS[group];
  return {
    description:
      `Over the rate limit: at most ${limit} requests per ${periodSeconds} s to ${routes} per key and endpoint (RunPod's limit; ` +
      "the admin key and endpoints with `rateLimit: false` are not limited).",
    headers: RETRY_AFTER,
    content: { "application/json": { schema: jsonSchema(RateLimitedBody, "output", components) } },
  };
}

function operationObject(path: string, doc: OperationDoc, components: Json): Json {
  const params: Json[] = [...path.matchAll(/:([A-Za-z_]+)/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    description: PATH_PARAMS[name!]?.description ?? name,
    schema: PATH_PARAMS[name!]?.schema ?? { type: "string" },
  }));
  for (const [name, field] of Object.entries(doc.query?.shape ?? {})) {
    const schema = jsonSchema(field as z.ZodType, "input", components);
    const description = (schema.description as string | undefined) ?? undefined;
    params.push({ name, in: "query", required: !(field as z.ZodType).safeParse(undefined).success, ...(description ? { description } : {}), schema });
  }
  for (const [name, description] of Object.entries(doc.headers ?? {})) params.push({ name, in: "header", required: false, description, schema: { type: "string" } });
  const auths = (typeof doc.auth === "string" ? [doc.auth] : doc.auth) as readonly Auth[];
  const schemes = [...new Set(auths.filter((a) => a !== "none").map((a) => SECURITY[a as Exclude<Auth, "none">]))];
  const responses: Json = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    const media = r.contentType ?? "application/json";
    const content: Json = r.schema ? { [media]: { schema: jsonSchema(r.schema, "output", components) } } : r.contentType ? { [media]: {} } : {};
    for (const other of r.alsoAs ?? []) content[other] = {};
    responses[status] = { description: r.description, ...(Object.keys(content).length > 0 ? { content } : {}) };
  }
  const error = { content: { "application/json": { schema: jsonSchema(ErrorBody, "output", components) } } };
  // Listed refusals carry the error body; any other 4xx (a bad request, a missing or wrong key) does too.
  for (const s of Object.keys(responses)) if (s.startsWith("4") && !doc.responses[Number(s)]!.schema) responses[s] = { ...(responses[s] as Json), ...error };
  const limited = rateLimitGroupOf(path);
  // A limited route may describe its 429 itself (its own body shape): the header is added to it.
  if (limited !== null) responses["429"] = responses["429"] ? { ...(responses["429"] as Json), headers: RETRY_AFTER } : rateLimitedResponse(limited, components);
  responses["4XX"] = { description: "Refused: a bad request, a missing or wrong key, or an unknown id.", ...error };
  responses["503"] ??= { description: "Not configured (no admin key set) or unavailable for the moment.", ...error };
  return {
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: [...doc.tags],
    operationId: doc.operationId,
    "x-keys": auths,
    security: schemes.length === 0 ? [] : schemes.map((s) => ({ [s]: [] })),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(doc.body
      ? {
          requestBody: {
            required: doc.body.required ?? true,
            ...(doc.body.description ? { description: doc.body.description } : {}),
            content: { [doc.body.contentType ?? "application/json"]: { schema: jsonSchema(doc.body.schema, "input", components) } },
          },
        }
      : {}),
    responses,
  };
}

/** The document as last built, with what it was built from (the operations do not change once the app is built). */
let built: { version: string; operations: number; doc: Json } | null = null;

/** The document, built once per isolate (it is served without a key: a request must not cost a rebuild). */
export function openApiDocument(version: string): Json {
  const operations = registeredOperations().length;
  if (built?.version !== version || built.operations !== operations) built = { version, operations, doc: buildDocument(version) };
  return built.doc;
}

function buildDocument(version: string): Json {
  const components: Json = {};
  const paths: Record<string, Json> = {};
  for (const op of registeredOperations()) {
    const p = openApiPath(op.path);
    paths[p] ??= {};
    paths[p]![op.method.toLowerCase()] = operationObject(op.path, op.doc, components);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "edge-jobs",
      version,
      description:
        "A durable job coordinator on Cloudflare Workers that speaks RunPod Serverless's wire format. " +
        "Client routes under /v2/{endpointId} take the endpoint's client key, worker routes its worker key, " +
        "admin routes the admin key; the admin key is accepted wherever an endpoint key is.",
    },
    tags: TAGS,
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        adminKey: { type: "http", scheme: "bearer", description: "The Worker's ADMIN_KEY secret." },
        endpointKey: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "An endpoint key, as `Bearer <key>` or the bare key (RunPod's workers send the bare key).",
        },
        reportToken: { type: "apiKey", in: "query", name: "token", description: "A push job's report token, from the URLs it was pushed with." },
      },
    },
  };
}
