/**
 * The OpenAI-compatible route's rules, with a worker driven by hand through the real worker
 * protocol: how outputs unwrap, how worker errors map to statuses, what each stream chunk writes,
 * a worker lost mid-stream, the call's deadline, and client disconnects (streaming or not).
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { allChunks } from "../../src/flows/openai";
import { ADMIN, call, createEndpoint, done, json, status, takeOne } from "./helpers";

type OpenAiErrorBody = { error: { message: string; type: string; param: null; code: string | number | null } };

/** A request to the route (the response comes when the job ends, or with its first chunk when streaming). */
function ask(ep: string, body: unknown, opts: { path?: string; signal?: AbortSignal } = {}): Promise<Response> {
  return exports.default.fetch(
    new Request(`http://edge.test/v2/${ep}/openai${opts.path ?? "/v1/chat/completions"}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: opts.signal,
    }),
  );
}

/** The worker takes the next job: its id and input. */
async function takeJob(ep: string, worker = "w1"): Promise<{ id: string; input: Record<string, unknown> }> {
  return json(await takeOne(ep, worker));
}

async function chunk(ep: string, id: string, body: unknown, worker = "w1"): Promise<number> {
  const res = await call("POST", `/v2/${ep}/job-stream/${worker}/${id}?isStream=true`, {
    raw: JSON.stringify(body),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  await res.arrayBuffer();
  return res.status;
}

async function stateOf(ep: string, id: string): Promise<string> {
  return (await json<{ status: string }>(await status(ep, id))).status;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads a streaming body until `want` has arrived (or it ends). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, sofar: { text: string }, want: string): Promise<void> {
  const dec = new TextDecoder();
  while (!sofar.text.includes(want)) {
    const { done: end, value } = await reader.read();
    if (end) return;
    sofar.text += dec.decode(value, { stream: true });
  }
}

describe("a non-streaming answer", () => {
  it("unwraps the output: strings concatenated, a list of one object that object, anything else as is", async () => {
    const ep = await createEndpoint();
    const cases: Array<[unknown, string]> = [
      [["{\"a\":", "1}"], '{"a":1}'],
      [[{ object: "chat.completion", id: "x" }], '{"object":"chat.completion","id":"x"}'],
      [[{ a: 1 }, { b: 2 }], '[{"a":1},{"b":2}]'],
      [{ object: "list", data: [] }, '{"object":"list","data":[]}'],
      ["plain", '"plain"'],
      [[[1]], "[[1]]"],
      [[], "[]"],
      [["a", 1], '["a",1]'],
      [0, "0"],
    ];
    for (const [output, want] of cases) {
      const pending = ask(ep, { model: "m" });
      const job = await takeJob(ep);
      expect(job.input).toEqual({ openai_route: "/v1/chat/completions", openai_input: { model: "m" } });
      expect((await done(ep, "w1", job.id, { output })).status).toBe(200);
      const res = await pending;
      expect(res.status, JSON.stringify(output)).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(res.headers.get("x-request-id")).toBe(job.id);
      expect(await res.text(), JSON.stringify(output)).toBe(want);
    }
  });

  it("assembles an answer from at most its byte bound of stream chunks", async () => {
    const ep = await createEndpoint();
    const pending = ask(ep, {});
    const job = await takeJob(ep);
    for (const part of ["aaaa", "bbbb", "cccc"]) await chunk(ep, job.id, { output: part });
    await done(ep, "w1", job.id, { output: [] });
    expect(await (await pending).text()).toBe("aaaabbbbcccc");
    const ref = { id: ep, generation: (await json<{ generation: string }>(await call("GET", `/admin/endpoints/${ep}`))).generation };
    const bytes = JSON.stringify({ output: "aaaa" }).length; // each stored chunk is the job-stream body
    expect((await allChunks(env, job.id, ref, 3 * bytes))?.length).toBe(3);
    expect(await allChunks(env, job.id, ref, 3 * bytes - 1)).toBeNull();
  });

  it("does not start a job on HEAD", async () => {
    const ep = await createEndpoint();
    const res = await exports.default.fetch(new Request(`http://edge.test/v2/${ep}/openai/v1/models`, { method: "HEAD", headers: { authorization: `Bearer ${ADMIN}` } }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, POST");
    const jobs = (await json<{ jobs: unknown[] }>(await call("GET", `/admin/endpoints/${ep}/jobs`))).jobs;
    expect(jobs).toEqual([]);
  });

  it("answers from the stream chunks when the job completed with no output or an empty list; 502 with neither", async () => {
    const ep = await createEndpoint();
    for (const final of [{ output: [] }, {}]) {
      const pending = ask(ep, {});
      const job = await takeJob(ep);
      expect(await chunk(ep, job.id, { output: '{"text":' })).toBe(200);
      expect(await chunk(ep, job.id, { output: '"hi"}' })).toBe(200);
      await done(ep, "w1", job.id, final);
      expect(await (await pending).text()).toBe('{"text":"hi"}');
    }
    const pending = ask(ep, {});
    const job = await takeJob(ep);
    await done(ep, "w1", job.id, {});
    const res = await pending;
    expect(res.status).toBe(502);
    expect(await json<OpenAiErrorBody>(res)).toEqual({ error: { message: "the job completed without an output", type: "worker_error", param: null, code: "no_output" } });
  });

  it("maps a worker's error to an OpenAI error: its 4xx code kept (JSON or Python repr), else 500", async () => {
    const ep = await createEndpoint();
    const cases: Array<[unknown, number, Partial<OpenAiErrorBody["error"]>]> = [
      [JSON.stringify({ message: "bad temperature", type: "BadRequestError", code: 400 }), 400, { message: "bad temperature", type: "BadRequestError", code: 400 }],
      [{ error: { message: "no such model", type: "NotFoundError", code: 404 } }, 404, { message: "no such model", type: "NotFoundError", code: 404 }],
      ["{'message': 'The model `x` does not exist.', 'type': 'NotFoundError', 'code': 404}", 404, { type: "worker_error", code: "404" }],
      ["{'message': 'vLLM returned HTTP 400: bad', 'type': 'worker_error', 'code': None}", 500, { type: "worker_error", code: null }],
      [JSON.stringify({ error_type: "ValueError", error_message: "boom", worker_id: "w1" }), 500, { message: "boom", type: "ValueError", code: null }],
      ["plain failure", 500, { message: "plain failure", type: "worker_error", code: null }],
      [JSON.stringify({ message: "teapot", code: 599 }), 500, { message: "teapot", code: 599 }],
    ];
    for (const [error, want, fields] of cases) {
      const pending = ask(ep, {});
      const job = await takeJob(ep);
      await done(ep, "w1", job.id, { error });
      const res = await pending;
      expect(res.status, JSON.stringify(error)).toBe(want);
      const body = await json<OpenAiErrorBody>(res);
      expect(body.error, JSON.stringify(error)).toMatchObject({ param: null, ...fields });
      expect(await stateOf(ep, job.id)).toBe("FAILED");
    }
  });

  it("a worker's result with a non-zero exitCode (ERROR) answers its error, not the partial output", async () => {
    const ep = await createEndpoint();
    const pending = ask(ep, {});
    const job = await takeJob(ep);
    await done(ep, "w1", job.id, { output: "partial", exitCode: 137 });
    const res = await pending;
    expect(res.status).toBe(500);
    expect((await json<OpenAiErrorBody>(res)).error).toMatchObject({ message: "exit code 137", type: "worker_error", param: null });
  });

  it("a job cancelled meanwhile answers 409; a client that disconnects cancels its job", async () => {
    const ep = await createEndpoint({ cancelGraceMs: 0 });
    const pending = ask(ep, {});
    const job = await takeJob(ep);
    expect((await call("POST", `/v2/${ep}/cancel/${job.id}`)).status).toBe(200);
    const res = await pending;
    expect(res.status).toBe(409);
    expect((await json<OpenAiErrorBody>(res)).error).toMatchObject({ type: "cancelled", code: "cancelled" });

    const controller = new AbortController();
    const gone = ask(ep, {}, { signal: controller.signal }).catch((e: unknown) => e);
    const running = await takeJob(ep);
    controller.abort();
    expect(await gone).toBeInstanceOf(Error);
    expect(await until("the job to end CANCELLED", async () => ((await stateOf(ep, running.id)) === "CANCELLED" ? true : undefined))).toBe(true);
    // A job still waiting for a worker when its client leaves ends CANCELLED at once.
    const queued = new AbortController();
    const early = ask(ep, {}, { signal: queued.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    queued.abort();
    await early;
    const third = await until("the queued job to be cancelled", async () => {
      const jobs = (await json<{ jobs: Array<{ jobId: string; state: string }> }>(await call("GET", `/admin/endpoints/${ep}/jobs`))).jobs;
      const others = jobs.filter((j) => j.jobId !== job.id && j.jobId !== running.id);
      return others.length === 1 && others[0]!.state === "CANCELLED" ? others[0] : undefined;
    });
    expect(await stateOf(ep, third.jobId)).toBe("CANCELLED");
  });

  it("gives up at the job's execution timeout after submission: 504, and the job is cancelled", async () => {
    const ep = await createEndpoint({ executionTimeout: 5_000 });
    const started = Date.now();
    const res = await ask(ep, { model: "m" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_900);
    expect(res.status).toBe(504);
    const body = await json<OpenAiErrorBody>(res);
    expect(body.error).toMatchObject({ type: "timeout", code: "timeout" });
    expect(body.error.message).toContain("5000 ms");
    expect(await stateOf(ep, res.headers.get("x-request-id")!)).toBe("CANCELLED");
  }, 20_000);
});

describe("a streaming answer", () => {
  it("writes each chunk's output: strings verbatim, other items as data events, nothing for null", async () => {
    const ep = await createEndpoint();
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    expect(job.input).toEqual({ openai_route: "/v1/chat/completions", openai_input: { stream: true } });
    await chunk(ep, job.id, { output: "data: one\n\n" });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-request-id")).toBe(job.id);
    const reader = res.body!.getReader();
    const got = { text: "" };
    await readUntil(reader, got, "data: one\n\n");
    expect(got.text).toBe("data: one\n\n"); // written before the job ends
    await chunk(ep, job.id, { output: { choices: [{ delta: { content: "é" } }] } });
    await chunk(ep, job.id, { output: ["da", "ta: two\n\n", { n: 3 }, null] });
    await chunk(ep, job.id, { output: null });
    await chunk(ep, job.id, { other: true });
    await chunk(ep, job.id, { output: "data: [DONE]\n\n" });
    await done(ep, "w1", job.id, { output: ["ignored: the stream was written"] });
    await readUntil(reader, got, "never");
    expect(got.text).toBe(
      'data: one\n\ndata: {"choices":[{"delta":{"content":"é"}}]}\n\ndata: two\n\ndata: {"n":3}\n\ndata: {"other":true}\n\ndata: [DONE]\n\n',
    );
  });

  it("a job that completes without chunks writes its output's strings; one that fails before any chunk answers an error status", async () => {
    const ep = await createEndpoint();
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    await done(ep, "w1", job.id, { output: ["data: a\n\n", "data: [DONE]\n\n"] });
    const res = await pending;
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(await res.text()).toBe("data: a\n\ndata: [DONE]\n\n");

    const failing = ask(ep, { stream: true });
    const next = await takeJob(ep);
    await done(ep, "w1", next.id, { error: { message: "The model `x` does not exist.", type: "NotFoundError", code: 404 } });
    const refused = await failing;
    expect(refused.status).toBe(404);
    expect((await json<OpenAiErrorBody>(refused)).error.message).toBe("The model `x` does not exist.");
  });

  it("ends with an error event when the job fails after streaming began", async () => {
    const ep = await createEndpoint();
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    await chunk(ep, job.id, { output: "data: a\n\n" });
    const res = await pending;
    await done(ep, "w1", job.id, { error: JSON.stringify({ message: "out of memory", type: "worker_error", code: null }) });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('data: a\n\ndata: {"error":{"message":"out of memory","type":"worker_error","param":null,"code":null}}\n\n');
  });

  it("a worker lost mid-stream (the job back in the queue) ends the stream with an error within a read slice and cancels the job before another worker runs it", async () => {
    const ep = await createEndpoint({ cancelGraceMs: 0 });
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    await chunk(ep, job.id, { output: "data: first attempt\n\n" });
    const res = await pending;
    // The worker asks for work saying it runs nothing: its lease is lost and the job requeued.
    const lostAt = Date.now();
    expect((await call("GET", `/v2/${ep}/job-take/w1?job_in_progress=0`)).status).toBe(204);
    const text = await res.text();
    // Noticed by the stream's next short read (OPENAI_ROUTE.watchSliceMs), not when a new attempt writes.
    expect(Date.now() - lostAt).toBeLessThan(10_000);
    expect(text.startsWith("data: first attempt\n\n")).toBe(true);
    expect(text).toContain('"code":"worker_lost"');
    expect(await until("the job to end CANCELLED", async () => ((await stateOf(ep, job.id)) === "CANCELLED" ? true : undefined))).toBe(true);
    // Nobody runs it again.
    expect((await call("GET", `/v2/${ep}/job-take/w2?job_in_progress=0`)).status).toBe(204);
  });

  it("a client that stops reading cancels its job; the worker's next chunk is refused", async () => {
    const ep = await createEndpoint({ cancelGraceMs: 0 });
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    await chunk(ep, job.id, { output: "data: a\n\n" });
    const res = await pending;
    const reader = res.body!.getReader();
    await readUntil(reader, { text: "" }, "data: a");
    await reader.cancel();
    expect(await until("the job to end CANCELLED", async () => ((await stateOf(ep, job.id)) === "CANCELLED" ? true : undefined))).toBe(true);
    expect(await chunk(ep, job.id, { output: "data: b\n\n" })).toBe(409);
  });

  it("a stream whose job outlives its execution timeout after submission ends with a timeout error event", async () => {
    const ep = await createEndpoint({ executionTimeout: 5_000, cancelGraceMs: 0 });
    const pending = ask(ep, { stream: true });
    const job = await takeJob(ep);
    await chunk(ep, job.id, { output: "data: a\n\n" });
    const res = await pending;
    const raw = await res.text();
    // While nothing comes, the stream writes SSE comments between events (OpenAI's SDKs skip them).
    expect(raw).toContain("data: a\n\n: keep-alive\n\n");
    const text = raw.replaceAll(": keep-alive\n\n", "");
    expect(text.startsWith('data: a\n\ndata: {"error":{')).toBe(true);
    expect(JSON.parse(text.slice("data: a\n\ndata: ".length)).error.type).toBe("timeout");
    // The call cancelled it, or its own execution timeout ended it first.
    expect(["CANCELLED", "TIMED_OUT"]).toContain(await stateOf(ep, job.id));
  }, 20_000);
});
