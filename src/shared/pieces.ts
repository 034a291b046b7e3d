/**
 * Large JSON bodies as pieces written once into their final buffer: stored payloads (inputs,
 * outputs: up to 20 MB each) are neither joined into an intermediate array, decoded to a string,
 * nor encoded again on the way out. An isolate has 128 MB in production.
 */

/** Bytes in order: an array, or a source of chunks read lazily (e.g. a payload's stored rows). */
export type Piece = Uint8Array | { byteLength: number; chunks(): Iterable<Uint8Array> };

const enc = new TextEncoder();

export function piecesLength(pieces: readonly Piece[]): number {
  return pieces.reduce((n, p) => n + p.byteLength, 0);
}

/** Writes the pieces one after the other into `target` from `offset`; returns the end offset. */
export function writePieces(pieces: readonly Piece[], target: Uint8Array, offset = 0): number {
  let at = offset;
  for (const p of pieces) {
    for (const chunk of p instanceof Uint8Array ? [p] : p.chunks()) {
      target.set(chunk, at);
      at += chunk.byteLength;
    }
  }
  return at;
}

/** `{...fields, "<key>": <raw>, …}` as pieces, for each raw entry that is not null. */
export function objectPieces(fields: Record<string, unknown>, raws: ReadonlyArray<readonly [string, Piece | null]>): Piece[] {
  const head = JSON.stringify(fields);
  const present = raws.filter((r): r is readonly [string, Piece] => r[1] !== null);
  if (present.length === 0) return [enc.encode(head)];
  const pieces: Piece[] = [];
  let sep = head === "{}" ? "{" : `${head.slice(0, -1)},`;
  for (const [key, raw] of present) {
    pieces.push(enc.encode(`${sep}${JSON.stringify(key)}:`), raw);
    sep = ",";
  }
  pieces.push(enc.encode("}"));
  return pieces;
}

/** `[<items[0]>,<items[1]>,…]` as pieces, each item already JSON. */
export function arrayPieces(items: ReadonlyArray<readonly Piece[]>): Piece[] {
  const out: Piece[] = [enc.encode("[")];
  items.forEach((item, i) => {
    if (i > 0) out.push(enc.encode(","));
    out.push(...item);
  });
  out.push(enc.encode("]"));
  return out;
}

/** The pieces joined into one array, written once. */
export function joinPieces(pieces: readonly Piece[]): Uint8Array {
  const out = new Uint8Array(piecesLength(pieces));
  writePieces(pieces, out);
  return out;
}
