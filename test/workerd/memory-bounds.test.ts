/**
 * Memory bounds (issue 11, defect 8): a batch take answers at most MEMORY_BOUNDS.batchInputBytes of
 * inputs (at least one job), and jobs left out stay queued for the next take, none lost.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MEMORY_BOUNDS } from "../../src/shared/limits";
import { call, createEndpoint, done, freezeJob, interceptFetch, jobStubOf, json, status, submit, take } from "./helpers";

const HOOK = "https://receiver.example.com/large-hook";

afterEach(() => vi.restoreAllMocks());

const MB = 1024 * 1024;

describe("defect 8: memory bounds", { timeout: 60_000 }, () => {
  it("defect 8: a batch take answers at most 16 MiB of inputs; the rest stay queued for the next take, none lost", async () => {
    const ep = await createEndpoint({ shards: 1 }); // one shard: a batch in submit order (a batch holds one shard's jobs)
    const ids: string[] = [];
    // 5 inputs of ~6 MiB: two fit in one answer (12 MiB), a third would not.
    for (let n = 0; n < 5; n++) ids.push(await submit(ep, { input: { n, pad: "x".repeat(6 * MB) } }));
    const answers: Array<Array<{ id: string; input: { n: number; pad: string } }>> = [];
    for (let round = 0; round < 5; round++) {
      const res = await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=100`);
      if (res.status === 204) break;
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.length).toBeLessThanOrEqual(MEMORY_BOUNDS.batchInputBytes + 64 * 1024);
      answers.push(JSON.parse(text) as Array<{ id: string; input: { n: number; pad: string } }>);
    }
    expect(answers.map((a) => a.length)).toEqual([2, 2, 1]);
    expect(answers.flat().map((j) => j.id)).toEqual(ids);
    for (const j of answers.flat()) expect(j.input.pad).toHaveLength(6 * MB);
    for (const id of ids) expect((await json(await status(ep, id))).status).toBe("IN_PROGRESS");
  });

  it("defect 8: a batch take still hands out one job whose input alone is over the budget", async () => {
    const ep = await createEndpoint();
    const big = await submit(ep, { input: { pad: "y".repeat(9 * MB) } });
    const next = await submit(ep, { input: { pad: "z".repeat(9 * MB) } });
    // Each answer holds one of them (with 8 shards either may come first: order is per shard).
    const first = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=10`));
    expect(first).toHaveLength(1);
    const second = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w2?batch_size=10`));
    expect(second).toHaveLength(1);
    expect([...first, ...second].map((j) => j.id).sort()).toEqual([big, next].sort());
  });
});

describe("defect 8: a large webhook during a secret rotation", { timeout: 60_000 }, () => {
  it("defect 8: a 9 MiB input + 19 MiB output webhook is built once and signed once per secret, never decoded or encoded again", async () => {
    const got = interceptFetch(HOOK, (n) => new Response(n === 1 ? "down" : "ok", { status: n === 1 ? 500 : 200 }));
    const ep = await createEndpoint();
    const before = (await json<{ webhookSecret: string }>(await call("GET", `/admin/endpoints/${ep}`))).webhookSecret;
    const after = (await json<{ webhookSecret: string }>(await call("POST", `/admin/endpoints/${ep}/rotate-secret`))).webhookSecret;
    const id = await submit(ep, { input: { pad: "i".repeat(9 * MB) }, webhook: HOOK });
    const t0 = Date.now() - 60 * 60_000;
    await freezeJob(id, t0);
    expect((await take(ep, "w1")).status).toBe(200);
    expect((await done(ep, "w1", id, { output: { pad: "o".repeat(19 * MB) } })).status).toBe(200);
    await vi.waitUntil(() => got.length === 1, { timeout: 10_000, interval: 20 }); // the first attempt gets a 500

    // The retry, watched: every JS-level decode and encode, and every signature's message.
    let coded = 0;
    const decode = TextDecoder.prototype.decode;
    vi.spyOn(TextDecoder.prototype, "decode").mockImplementation(function (this: TextDecoder, ...args: Parameters<TextDecoder["decode"]>) {
      coded += args[0]?.byteLength ?? 0;
      return decode.apply(this, args);
    });
    const encode = TextEncoder.prototype.encode;
    vi.spyOn(TextEncoder.prototype, "encode").mockImplementation(function (this: TextEncoder, input?: string) {
      const out = encode.call(this, input);
      coded += out.byteLength;
      return out;
    });
    const signedBuffers: ArrayBufferLike[] = [];
    const sign = crypto.subtle.sign.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, "sign").mockImplementation((algorithm, key, data) => {
      if (ArrayBuffer.isView(data) && data.byteLength > MB) signedBuffers.push(data.buffer);
      return sign(algorithm, key, data);
    });
    await freezeJob(id, t0 + 3_000);
    await runDurableObjectAlarm(jobStubOf(id));
    await vi.waitUntil(() => got.length === 2, { timeout: 10_000, interval: 20 });
    vi.restoreAllMocks();

    const d = got[1]!;
    expect(d.body.length).toBeGreaterThan(28 * MB);
    expect(new Webhook(before).verify(d.body, d.headers)).toMatchObject({ id });
    expect(new Webhook(after).verify(d.body, d.headers)).toMatchObject({ id });
    // Before: the body was decoded to a string (28 MiB), then "id.ts.body" encoded once per secret (2 × 28 MiB).
    expect(coded).toBeLessThan(64 * 1024);
    // Both secrets signed the same message buffer: it was built once.
    expect(signedBuffers).toHaveLength(2);
    expect(signedBuffers[0]).toBe(signedBuffers[1]);
  });
});
