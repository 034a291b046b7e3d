/**
 * Checks real answers against the Worker's own OpenAPI document (GET /openapi.json) with Ajv, a
 * maintained JSON Schema validator (OpenAPI 3.1 schemas are JSON Schema 2020-12): the operation is
 * found by method and path template, the answer's schema by status (else its 4XX/5XX range).
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

type Json = Record<string, unknown>;

export interface Checker {
  doc: Json;
  /** Problems with one answer (none: it matches its documented schema). */
  check(method: string, url: string, status: number, contentType: string | null, body: unknown): string[];
}

const escape = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

export function checkerFor(doc: Json): Checker {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(doc, "openapi.json");
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const templates = Object.keys(paths).map((t) => ({
    t,
    re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`),
    // Literal segments count first: /admin/endpoints/{ep}/keys beats a template with more parameters.
    literal: t.split("/").filter((s) => s && !s.startsWith("{")).length,
  }));
  const compiled = new Map<string, ReturnType<Ajv2020["getSchema"]>>();
  const validatorAt = (pointer: string) => {
    if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: `openapi.json#${pointer}` }));
    return compiled.get(pointer)!;
  };
  return {
    doc,
    check(method, url, status, contentType, body) {
      const path = new URL(url).pathname;
      const m = method.toLowerCase();
      const matches = templates.filter((x) => x.re.test(path)).sort((a, b) => b.literal - a.literal);
      const template = matches.find((x) => paths[x.t]![m])?.t;
      if (template === undefined) {
        // Refusals of what is not served (unknown routes, other methods) are errors, not operations.
        if (status === 404 || status === 405) return errorShape(body);
        return [`${method} ${path}: no documented operation`];
      }
      const responses = paths[template]![m]!.responses as Record<string, Json>;
      const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => responses[k]);
      if (key === undefined) return [`${method} ${template}: status ${status} is not documented (${Object.keys(responses).join(", ")})`];
      const content = responses[key]!.content as Record<string, Json> | undefined;
      if (!content) return body === null || body === "" ? [] : [`${method} ${template} ${status}: documented without a body, answered with one`];
      const media = (contentType ?? "").split(";")[0]!.trim();
      if (!content[media]) return [`${method} ${template} ${status}: answered ${media}, documented ${Object.keys(content).join(", ")}`];
      if (!content[media]!.schema) return [];
      const validate = validatorAt(`/paths/${escape(template)}/${m}/responses/${key}/content/${escape(media)}/schema`)!;
      if (validate(body)) return [];
      return (validate.errors ?? []).map((e) => `${method} ${template} ${status}: ${e.instancePath || "(body)"} ${e.message} ${JSON.stringify(e.params)}`);
    },
  };
}

function errorShape(body: unknown): string[] {
  return typeof body === "object" && body !== null && typeof (body as Json).error === "string" ? [] : [`an error answer without an error message: ${JSON.stringify(body).slice(0, 200)}`];
}

const checkers = new Map<string, Promise<Checker>>();

/** The checker of the Worker at `base` (its document read once). */
export function checkerAt(base: string): Promise<Checker> {
  let c = checkers.get(base);
  if (!c) {
    c = fetch(`${base}/openapi.json`).then(async (res) => checkerFor((await res.json()) as Json));
    checkers.set(base, c);
  }
  return c;
}
