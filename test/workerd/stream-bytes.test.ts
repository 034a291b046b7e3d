/**
 * Large streams (issue 11, defect 2): every /stream answer and every SSE read round is bounded by
 * bytes, and the /stream cursor moves only past the chunks an answer actually hands out.
 */
import { describe, expect, it } from "vitest";
import { STREAM_READ } from "../../src/shared/limits";
import { call, createEndpoint, done, submit, take } from "./helpers";

const CHUNKS = 40;
const CHUNK_CHARS = 900_000;

/** The n-th chunk: `{"output":{"n":n,"pad":"…"}}`, about 0.9 MB. */
const chunkBody = (n: number) => JSON.stringify({ output: { n, pad: String(n % 10).repeat(CHUNK_CHARS) } });

async function largeStream() {
  const ep = await createEndpoint();
  const id = await submit(ep, { input: { prompt: "big" } });
  expect((await take(ep, "w1")).status).toBe(200);
  for (let n = 1; n <= CHUNKS; n++) {
    const res = await call("POST", `/v2/${ep}/job-stream/w1/${id}?isStream=false`, {
      raw: chunkBody(n),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(200);
  }
  return { ep, id };
}

/** The chunk numbers in a stream array, checking each chunk arrived whole. */
function numbersOf(stream: Array<{ output: { n: number; pad: string } }>): number[] {
  return stream.map((c) => {
    expect(c.output.pad).toBe(String(c.output.n % 10).repeat(CHUNK_CHARS));
    return c.output.n;
  });
}

describe("large streams", { timeout: 60_000 }, () => {
  it("defect 2: repeated /stream calls hand out all 40 chunks of ~0.9 MB in order, each answer bounded by bytes", async () => {
    const { ep, id } = await largeStream();
    await done(ep, "w1", id, { output: "done" });
    const seen: number[] = [];
    for (let round = 0; round < CHUNKS + 2 && seen.length < CHUNKS; round++) {
      const res = await call("GET", `/v2/${ep}/stream/${id}?wait=0`);
      expect(res.status).toBe(200);
      const text = await res.text();
      // Each answer carries at most the read budget of chunk data (plus the envelope).
      expect(text.length).toBeLessThanOrEqual(STREAM_READ.maxBytes + 1024);
      const body = JSON.parse(text) as { status: string; stream: Array<{ output: { n: number; pad: string } }> };
      expect(body.stream.length).toBeGreaterThan(0);
      seen.push(...numbersOf(body.stream));
    }
    expect(seen).toEqual(Array.from({ length: CHUNKS }, (_, i) => i + 1));
    const after = (await (await call("GET", `/v2/${ep}/stream/${id}?wait=0`)).json()) as { status: string; stream: unknown[] };
    expect(after).toEqual({ status: "COMPLETED", stream: [] });
  });

  it("defect 2: the SSE stream delivers all 40 chunks of ~0.9 MB in order, then the final status", async () => {
    const { ep, id } = await largeStream();
    await done(ep, "w1", id, { output: "done" });
    const res = await call("GET", `/v2/${ep}/stream/${id}`, { headers: { accept: "text/event-stream" } });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter((b) => b.trim() && !b.startsWith(":"))
      .map((block) => Object.fromEntries(block.split("\n").map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)])) as Record<string, string>);
    const chunks = events.filter((e) => e.event === "chunk");
    expect(chunks.map((e) => Number(e.id))).toEqual(Array.from({ length: CHUNKS }, (_, i) => i + 1));
    expect(numbersOf(chunks.map((e) => JSON.parse(e.data!) as { output: { n: number; pad: string } }))).toEqual(
      Array.from({ length: CHUNKS }, (_, i) => i + 1),
    );
    expect(events.at(-1)?.event).toBe("status");
    expect(JSON.parse(events.at(-1)!.data!)).toMatchObject({ id, status: "COMPLETED", output: "done" });
  });
});
