/**
 * Building JSON bodies around payloads that are already stored as JSON bytes (inputs, outputs,
 * stream chunks), so they are never parsed and serialized again on the way out.
 */
import { concatBytes } from "./bytes";
import { objectPieces, piecesLength, writePieces } from "./pieces";

const enc = new TextEncoder();

/** `{...fields, "<key>": <raw>, …}` for each raw entry that is not null, joined into one array. */
export function objectWithAll(fields: Record<string, unknown>, raws: ReadonlyArray<readonly [string, Uint8Array | null]>): Uint8Array {
  const pieces = objectPieces(fields, raws);
  const out = new Uint8Array(piecesLength(pieces));
  writePieces(pieces, out);
  return out;
}

/** `{...fields, "<key>": <raw>}`; without `raw`, just the fields. */
export function objectWith(fields: Record<string, unknown>, key: string, raw: Uint8Array | null): Uint8Array {
  return objectWithAll(fields, [[key, raw]]);
}

/** `[<raw>,<raw>,…]`. */
export function arrayOf(items: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [enc.encode("[")];
  items.forEach((item, i) => {
    if (i > 0) parts.push(enc.encode(","));
    parts.push(item);
  });
  parts.push(enc.encode("]"));
  return concatBytes(parts);
}
