/**
 * Building JSON bodies around payloads that are already stored as JSON bytes (inputs, outputs,
 * stream chunks), so they are never parsed and serialized again on the way out.
 */
const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/** `{...fields, "<key>": <raw>, …}` for each raw entry that is not null. */
export function objectWithAll(fields: Record<string, unknown>, raws: ReadonlyArray<readonly [string, Uint8Array | null]>): Uint8Array {
  const head = JSON.stringify(fields);
  const present = raws.filter((r): r is readonly [string, Uint8Array] => r[1] !== null);
  if (present.length === 0) return enc.encode(head);
  const parts: Uint8Array[] = [];
  let sep = head === "{}" ? "{" : `${head.slice(0, -1)},`;
  for (const [key, raw] of present) {
    parts.push(enc.encode(`${sep}${JSON.stringify(key)}:`), raw);
    sep = ",";
  }
  parts.push(enc.encode("}"));
  return concat(parts);
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
  return concat(parts);
}
