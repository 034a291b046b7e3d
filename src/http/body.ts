/**
 * Reading request bodies: size-limited before they are buffered in full, strict UTF-8, JSON.
 */
import type { z } from "zod";
import { concatBytes } from "../shared/bytes";
import { ApiError, badRequest, invalidBody } from "./errors";

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `request body is larger than the limit of ${limit} bytes`, { limitBytes: limit });
}

/**
 * Reads the body, refusing with 413 as soon as it is known to pass `limit`: at once from
 * Content-Length, else while it streams in (nothing past the limit is buffered).
 */
export async function readBodyBytes(req: Request, limit: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (req.body === null) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined); // the client may already be gone; nothing to do
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Parses bytes as JSON whatever the Content-Type said (RunPod workers send JSON as form data). */
export function parseJson(bytes: Uint8Array, required: boolean): unknown {
  if (bytes.byteLength === 0) {
    if (required) throw badRequest("request body is empty: send a JSON object");
    return undefined;
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest("request body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const reason = e instanceof SyntaxError ? e.message : "it nests too deeply";
    throw badRequest(`malformed JSON in request body: ${reason}`);
  }
}

export async function readJson(req: Request, limit: number, required = true): Promise<unknown> {
  return parseJson(await readBodyBytes(req, limit), required);
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, what = "body"): z.infer<S> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw badRequest(`the ${what} must be a JSON object`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw invalidBody(r.error, what);
  return r.data;
}

/** Serializes a JSON value to UTF-8 bytes, refusing values too deep to serialize. */
export function jsonBytes(value: unknown, field: string): Uint8Array {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    throw badRequest(`${field} nests too deeply to store`);
  }
  return new TextEncoder().encode(text);
}
