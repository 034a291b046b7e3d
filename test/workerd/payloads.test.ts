/**
 * Large payloads round-trip byte for byte although SQLite caps one value at 2 MB; bodies over
 * the limits get 413 before they are buffered in full.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PAYLOAD } from "../../src/shared/limits";
import { ADMIN, call, createEndpoint, done, status, submit, take } from "./helpers";

/** A JSON-serializable value of about `bytes` bytes, with multi-byte characters across chunk edges. */
function bigValue(bytes: number): { blob: string; tail: string } {
  const unit = "edge-jobs é漢🚀 ";
  const unitBytes = new TextEncoder().encode(unit).byteLength;
  return { blob: unit.repeat(Math.floor((bytes - 100) / unitBytes)), tail: "end" };
}

function streamOf(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

describe("payloads", { timeout: 30_000 }, () => {
  it("a 10 MB input on /run and a 20 MB output round-trip byte for byte", async () => {
    const ep = await createEndpoint();
    const input = bigValue(PAYLOAD.runInputBytes - 1000);
    const inputText = JSON.stringify(input);
    const id = await submit(ep, { input });
    const t = await take(ep, "w1");
    expect(t.status).toBe(200);
    const taken = await t.text();
    expect(taken).toBe(`{"id":"${id}","attempt":1,"input":${inputText}}`);

    const output = bigValue(PAYLOAD.outputBytes - 1000);
    const outputText = JSON.stringify(output);
    expect((await done(ep, "w1", id, { output })).status).toBe(200);
    const s = await (await status(ep, id)).text();
    expect(s.endsWith(`,"output":${outputText}}`)).toBe(true);
    expect((JSON.parse(s) as { output: unknown }).output).toEqual(output);
  });

  it("a 20 MB input on /runsync is accepted", async () => {
    const ep = await createEndpoint();
    const input = bigValue(PAYLOAD.syncInputBytes - 1000);
    const res = await call("POST", `/v2/${ep}/runsync?wait=1000`, { body: { input } });
    expect(res.status).toBe(200);
    const t = await take(ep, "w1");
    expect((JSON.parse(await t.text()) as { input: unknown }).input).toEqual(input);
  });

  it("an input over 10 MB on /run is refused and queues nothing", async () => {
    const ep = await createEndpoint();
    const res = await call("POST", `/v2/${ep}/run`, { body: { input: bigValue(PAYLOAD.runInputBytes + 200_000) } });
    expect([400, 413]).toContain(res.status);
    expect(((await res.json()) as { error: string }).error).toMatch(/limit/);
    expect((await take(ep, "w1")).status).toBe(204);
  });

  it("413 from Content-Length, before the body is read", async () => {
    const ep = await createEndpoint();
    const huge = PAYLOAD.syncInputBytes + PAYLOAD.envelopeBytes + 1;
    const res = await exports.default.fetch(
      new Request(`http://edge.test/v2/${ep}/run`, {
        method: "POST",
        headers: { authorization: ADMIN, "content-length": String(huge) },
        body: streamOf(new Uint8Array(1024)),
        duplex: "half",
      } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/larger than the limit/);
  });

  it("413 while streaming a body with no Content-Length", async () => {
    const ep = await createEndpoint();
    const bytes = new Uint8Array(PAYLOAD.runInputBytes + PAYLOAD.envelopeBytes + 1024 * 1024).fill(0x20);
    const res = await exports.default.fetch(
      new Request(`http://edge.test/v2/${ep}/run`, { method: "POST", headers: { authorization: ADMIN }, body: streamOf(bytes), duplex: "half" } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect((await take(ep, "w1")).status).toBe(204);
  });

  it("an oversize job-done body is a 413 and the job keeps running", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await take(ep, "w1");
    const res = await call("POST", `/v2/${ep}/job-done/w1/${id}`, {
      raw: JSON.stringify({ output: bigValue(PAYLOAD.outputBytes + PAYLOAD.envelopeBytes + 100_000) }),
    });
    expect(res.status).toBe(413);
    expect(((await (await status(ep, id)).json()) as { status: string }).status).toBe("IN_PROGRESS");
  });
});
