/**
 * Small byte helpers shared by payloads, keys and signatures: joining chunks, base64 forms, and
 * constant-time string equality.
 */
const enc = new TextEncoder();

/** The parts joined into one array (a single part is returned as it is). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

export const base64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));

export const base64url = (bytes: Uint8Array): string => base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Equality of two strings in time that does not depend on where they differ. */
export function equalConstantTime(a: string, b: string): boolean {
  const x = enc.encode(a);
  const y = enc.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

/**
 * At most `limit` bytes of a stream, read as they arrive; past the limit the rest is cancelled
 * unread and `over` is set, so a huge or endless stream never sits in memory.
 */
export async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<{ bytes: Uint8Array; over: boolean }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: concatBytes(chunks), over: false };
    if (total + value.byteLength > limit) {
      chunks.push(value.subarray(0, limit - total));
      await reader.cancel().catch(() => undefined); // the sender may be gone; nothing to do
      return { bytes: concatBytes(chunks), over: true };
    }
    chunks.push(value);
    total += value.byteLength;
  }
}
