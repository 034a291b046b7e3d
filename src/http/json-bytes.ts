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

/** `{...fields, "<key>": <raw>}`; without `raw`, just the fields. */
export function objectWith(fields: Record<string, unknown>, key: string, raw: Uint8Array | null): Uint8Array {
  const head = JSON.stringify(fields);
  if (raw === null) return enc.encode(head);
  const open = head === "{}" ? "{" : `${head.slice(0, -1)},`;
  return concat([enc.encode(`${open}${JSON.stringify(key)}:`), raw, enc.encode("}")]);
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
