/**
 * Building JSON bodies around payloads that are already stored as JSON bytes (inputs, outputs,
 * stream chunks), so they are never parsed and serialized again on the way out.
 */
import { concatBytes } from "./bytes";

const enc = new TextEncoder();

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
  return concatBytes(parts);
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
