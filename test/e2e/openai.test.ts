/**
 * The OpenAI-compatible route (RUNPOD-WIRE-2 §2) end to end: the real Worker under wrangler dev,
 * examples/openai-worker.mjs as a real worker process (RunPod's worker protocol, worker-vllm's
 * shapes), and the official `openai` client pointed at /v2/{ep}/openai/v1.
 */
import OpenAI, { APIError, AuthenticationError, InternalServerError, NotFoundError, PermissionDeniedError } from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually, jsonLines } from "./api";
import { spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "1000" });
const EP = "e2e-openai";
const log: string[] = [];
let keys: { client: string; worker: string };

const now = () => performance.timeOrigin + performance.now();
const openai = (apiKey = keys.client, ep = EP) => new OpenAI({ baseURL: `${server.base}/v2/${ep}/openai/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
const status = async (id: string) => (await api(server.base, "GET", `/v2/${EP}/status/${id}`, keys.client)).body;
const workerEvents = (event: string) => jsonLines(log).filter((l) => l.event === event);
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i + 1}`).join(" ");

/** Raw POST to the route (what the SDK cannot send). */
function rawPost(path: string, body: BodyInit | null, key = keys.client, extra: RequestInit = {}) {
  return fetch(`${server.base}/v2/${EP}/openai${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body,
    ...extra,
  });
}

/** A refusal's body is OpenAI's error object. */
async function openAiError(res: Response) {
  const body = (await res.json()) as { error: { message: string; type: string; code: unknown; param: unknown } };
  expect(typeof body.error.message).toBe("string");
  expect(typeof body.error.type).toBe("string");
  expect(body.error).toHaveProperty("code");
  return body.error;
}

/** The job's id behind an SDK answer (`x-request-id`), then its final status. */
async function finalStatus(id: string, ms = 30_000) {
  return eventually(`job ${id} to end`, ms, async () => {
    const s = await status(id);
    return ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(s.status as string) ? s : undefined;
  });
}

beforeAll(async () => {
  // A short cancel grace: a cancelled running job ends CANCELLED when its worker stops (or after 2 s).
  keys = await endpointWithKeys(server.base, server.adminKey, EP, { cancelGraceMs: 2_000 });
  const worker = spawnNode(
    "examples/openai-worker.mjs",
    { EDGE_JOBS_URL: server.base, ENDPOINT_ID: EP, API_KEY: keys.worker, WORKER_ID: "oai-1", RUNPOD_PING_INTERVAL: "1000", LOG_CHUNKS: "1", SLOW_TOKEN_MS: "150" },
    log,
  );
  server.procs.push(worker);
  await eventually("the worker to start", 20_000, async () => (workerEvents("started").length > 0 ? true : undefined));
});

describe("the OpenAI-compatible route with the official client", () => {
  it("answers a chat completion with the worker's object, unwrapped; the job is an ordinary sync job", async () => {
    const r = await openai().chat.completions.create({ model: "echo-1", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello edge jobs" }] }).withResponse();
    expect(r.data.object).toBe("chat.completion");
    expect(r.data.choices[0]!.message.content).toBe("hello edge jobs");
    expect(r.data.choices[0]!.finish_reason).toBe("stop");
    expect(r.data.usage?.completion_tokens).toBe(3);
    expect(r.response.headers.get("content-type")).toMatch(/^application\/json/);
    const id = r.request_id!;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const s = await status(id);
    expect(s.status).toBe("COMPLETED");
    // What the worker returned (RunPod's SDK aggregate: a list of its yields) is not what the client got.
    expect(Array.isArray(s.output) && (s.output as unknown[]).length).toBe(1);
  });

  it("streams a chat completion: deltas in order, the worker's SSE bytes passed through unchanged", async () => {
    const text = words(40); // 40 words + role + finish + [DONE]: yields of 1, 3, 9, 27 and 3 events
    const stream = await openai().chat.completions.create({ model: "echo-1", messages: [{ role: "user", content: text }], stream: true, stream_options: { include_usage: true } });
    let out = "";
    let roles = 0;
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.role) roles++;
      out += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
    expect(out).toBe(text);
    expect(roles).toBe(1);
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ completion_tokens: 40 });

    // The same request raw: the body is exactly the worker's yields, concatenated.
    const res = await rawPost("/v1/chat/completions", JSON.stringify({ model: "echo-1", messages: [{ role: "user", content: "a b c" }], stream: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    // Apart from the SSE comments written while nothing comes (a slow machine), which clients skip.
    const body = (await res.text()).replaceAll(": keep-alive\n\n", "");
    const id = res.headers.get("x-request-id")!;
    const s = await status(id);
    expect(s.status).toBe("COMPLETED");
    expect(body).toBe((s.output as string[]).join(""));
    expect(body.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(body.match(/^data: /gm)?.length).toBe(1 + 3 + 1 + 1); // role, 3 words, finish, [DONE]
  });

  it("lists models (GET), completes a prompt (stream and not), embeds", async () => {
    const ids: string[] = [];
    for await (const m of openai().models.list()) ids.push(m.id);
    expect(ids).toEqual(["echo-1", "echo-slow", "crash"]);

    const c = await openai().completions.create({ model: "echo-1", prompt: "one two three four", max_tokens: 3 });
    expect(c.object).toBe("text_completion");
    expect(c.choices[0]!.text).toBe("one two three");

    let streamed = "";
    for await (const chunk of await openai().completions.create({ model: "echo-1", prompt: words(15), stream: true })) streamed += chunk.choices[0]?.text ?? "";
    expect(streamed).toBe(words(15));

    const e = await openai().embeddings.create({ model: "echo-1", input: ["alpha", "beta"], encoding_format: "float" });
    expect(e.data.map((d) => d.index)).toEqual([0, 1]);
    expect(e.data[0]!.embedding).toHaveLength(8);
    expect(e.data[0]!.embedding).not.toEqual(e.data[1]!.embedding);
  });

  it("a failed job is an APIError: the worker's 4xx kept, a crash 500; before and after streaming began", async () => {
    const unknown = await openai().chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as APIError).message).toContain("The model `nope` does not exist.");
    expect((unknown as APIError).type).toBe("NotFoundError");
    expect((await status((unknown as APIError).requestID!)).status).toBe("FAILED");

    const crash = await openai().chat.completions.create({ model: "crash", messages: [{ role: "user", content: "a b c" }] }).catch((e: unknown) => e);
    expect(crash).toBeInstanceOf(InternalServerError);
    expect((crash as APIError).status).toBe(500);
    expect((crash as APIError).message).toContain("the fake model crashed");
    expect((crash as APIError).type).toBe("Error");

    // Streaming, the job fails before any chunk: an error status, as without stream.
    const early = await openai().chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }], stream: true }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(NotFoundError);

    // Streaming, the job fails after its first chunk: 200, then a last `data: {"error": …}` event.
    const stream = await openai().chat.completions.create({ model: "crash", messages: [{ role: "user", content: "a b c" }], stream: true });
    const seen: string[] = [];
    const late = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? "");
    })().catch((e: unknown) => e);
    expect(late).toBeInstanceOf(APIError);
    expect((late as APIError).message).toContain("the fake model crashed");
    expect(seen).toEqual([""]); // the role chunk came before the crash
  });

  it("refuses a wrong key (401), a worker key (403), an unknown endpoint (404), in OpenAI's error shape", async () => {
    const wrong = await openai("not-a-key").models.list().catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect((wrong as APIError).type).toBe("authentication_error");
    const worker = await openai(keys.worker).models.list().catch((e: unknown) => e);
    expect(worker).toBeInstanceOf(PermissionDeniedError);
    const missing = await openai(keys.client, "no-such-endpoint").chat.completions.create({ model: "echo-1", messages: [] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as APIError).message).toContain("no-such-endpoint");
    const noKey = await fetch(`${server.base}/v2/${EP}/openai/v1/models`);
    expect(noKey.status).toBe(401);
    expect((await openAiError(noKey)).type).toBe("authentication_error");
  });

  it("refuses bodies that are not a JSON object, too large, other methods; passes odd keys and empty bodies on", async () => {
    for (const body of ["[1,2]", "null", "42", '"text"', "{not json", "\xff"]) {
      const res = await rawPost("/v1/chat/completions", body);
      expect(res.status, body).toBe(400);
      expect((await openAiError(res)).type).toBe("invalid_request_error");
    }
    const huge = await rawPost("/v1/chat/completions", JSON.stringify({ pad: "x".repeat(20 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    await openAiError(huge);
    const put = await fetch(`${server.base}/v2/${EP}/openai/v1/models`, { method: "PUT", headers: { authorization: `Bearer ${keys.client}` } });
    expect(put.status).toBe(405);
    for (const path of ["", "/"]) {
      const res = await rawPost(path, "{}");
      expect(res.status, `'${path}'`).toBe(404);
      await openAiError(res);
    }
    const long = await rawPost(`/${"x".repeat(1100)}`, "{}");
    expect(long.status).toBe(400);

    // What the worker is handed: the route after /openai without the query, the body as sent.
    const sent = `{"__proto__":{"polluted":true},"constructor":{"prototype":1},"model":"echo-1","nested":{"":[null,1.5,"é"]}}`;
    const echoed = await rawPost("/debug/echo?x=1", sent);
    expect(echoed.status).toBe(200);
    expect(await echoed.text()).toBe(JSON.stringify({ openai_route: "/debug/echo", openai_input: JSON.parse(sent) as unknown }));
    expect(JSON.parse(sent)).toHaveProperty("__proto__"); // (JSON.parse keeps it as an own key, as the route did)
    const empty = await rawPost("/debug/echo", null);
    expect(await empty.json()).toEqual({ openai_route: "/debug/echo", openai_input: {} });
    const get = await fetch(`${server.base}/v2/${EP}/openai/debug/echo`, { headers: { authorization: keys.client } });
    expect(await get.json()).toEqual({ openai_route: "/debug/echo", openai_input: {} });
    // A route the worker does not serve: its 404 error object.
    const other = await openai().post("/fine_tuning/jobs", { body: {} }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(NotFoundError);
  });

  it("a client that aborts a stream cancels its job: the worker is told to stop, the job ends CANCELLED", async () => {
    const controller = new AbortController();
    const r = await openai()
      .chat.completions.create({ model: "echo-slow", messages: [{ role: "user", content: words(100) }], stream: true }, { signal: controller.signal })
      .withResponse();
    const id = r.request_id!;
    let got = 0;
    const read = (async () => {
      for await (const chunk of r.data) if (chunk.choices[0]?.delta.content && ++got === 2) controller.abort();
    })().catch((e: unknown) => e);
    await read;
    expect(got).toBe(2);
    const s = await finalStatus(id);
    expect(s.status).toBe("CANCELLED");
    await eventually("the worker to drop the job", 10_000, async () => (workerEvents("abandoned").some((e) => e.jobId === id) ? true : undefined));

    // A call that is not streaming is cancelled the same way on its request's abort signal; wrangler dev's
    // proxy does not pass a client's disconnect on to the Worker before the answer starts, so
    // test/workerd/openai.test.ts shows that case.
  });
});

describe("time to first token", () => {
  it("adds little between the worker's first chunk and the client's first delta (20 streams), and never waits for the end", async () => {
    const overheads: number[] = [];
    const firstTokens: number[] = [];
    // wrangler dev reloads the Worker whenever a source file changes (others edit this tree while
    // the suite runs), cutting a stream in flight: such a cut is measured again, at most 3 times.
    let redone = 0;
    const cutByReload = (e: unknown) => e instanceof Error && (/^terminated$/.test(e.message) || e.message.includes("Your worker restarted mid-request"));
    while (overheads.length < 20) {
      const start = now();
      let id: string;
      let firstAt: number | null = null;
      try {
        const r = await openai().chat.completions.create({ model: "echo-slow", messages: [{ role: "user", content: words(4) }], stream: true }).withResponse();
        id = r.request_id!;
        let text = "";
        for await (const chunk of r.data) {
          firstAt ??= now();
          text += chunk.choices[0]?.delta.content ?? "";
        }
        expect(text).toBe(words(4));
      } catch (e) {
        if (!cutByReload(e) || ++redone > 3) throw e;
        continue;
      }
      const posted = await eventually("the worker's chunk times", 5_000, async () => {
        const first = workerEvents("first_chunk").find((e) => e.jobId === id);
        const last = workerEvents("last_chunk").find((e) => e.jobId === id);
        return first && last ? { first: first.at as number, last: last.at as number } : undefined;
      });
      // The first delta reached the client before the worker had even started posting its last chunk.
      expect(firstAt!).toBeLessThan(posted.last);
      overheads.push(firstAt! - posted.first);
      firstTokens.push(firstAt! - start);
    }
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    const fmt = (x: number) => x.toFixed(1);
    console.log(
      `openai TTFT overhead (worker's first job-stream post → client's first delta), 20 streams: median ${fmt(q(overheads, 0.5))} ms, p90 ${fmt(q(overheads, 0.9))} ms, ` +
        `max ${fmt(Math.max(...overheads))} ms; request → first delta: median ${fmt(q(firstTokens, 0.5))} ms, p90 ${fmt(q(firstTokens, 0.9))} ms` +
        (redone > 0 ? ` (${redone} stream(s) cut by a dev-server reload, measured again)` : ""),
    );
    expect(q(overheads, 0.5)).toBeGreaterThan(0);
  });
});
