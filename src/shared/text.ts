/**
 * Cutting caller-supplied text to a byte bound (UTF-8), never inside a character, with a marker
 * that says it was cut.
 */
const enc = new TextEncoder();

/**
 * `text` if its UTF-8 form fits in `maxBytes`, else its longest prefix that fits together with
 * `marker`, then `marker`. Only about `maxBytes` of the text is ever encoded, however long it is.
 */
export function cutToBytes(text: string, maxBytes: number, marker: string): string {
  if (text.length * 3 <= maxBytes) return text; // a UTF-16 unit is at most 3 UTF-8 bytes: it fits
  const buf = new Uint8Array(maxBytes);
  if (enc.encodeInto(text, buf).read === text.length) return text;
  // encodeInto writes whole characters only, so `read` never ends inside one.
  const room = Math.max(0, maxBytes - enc.encode(marker).byteLength);
  return text.slice(0, enc.encodeInto(text, buf.subarray(0, room)).read) + marker;
}
