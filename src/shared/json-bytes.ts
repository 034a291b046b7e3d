/**
 * Building JSON bodies around payloads that are already stored as JSON bytes (inputs, outputs,
 * stream chunks), so they are never parsed and serialized again on the way out.
 */
import { arrayPieces, joinPieces, objectPieces } from "./pieces";

/** `{...fields, "<key>": <raw>, …}` for each raw entry that is not null, joined into one array. */
export function objectWithAll(fields: Record<string, unknown>, raws: ReadonlyArray<readonly [string, Uint8Array | null]>): Uint8Array {
  return joinPieces(objectPieces(fields, raws));
}

/** `{...fields, "<key>": <raw>}`; without `raw`, just the fields. */
export function objectWith(fields: Record<string, unknown>, key: string, raw: Uint8Array | null): Uint8Array {
  return objectWithAll(fields, [[key, raw]]);
}

/** `[<raw>,<raw>,…]`. */
export function arrayOf(items: readonly Uint8Array[]): Uint8Array {
  return joinPieces(arrayPieces(items.map((item) => [item])));
}
