#!/usr/bin/env node
// A pulling worker for the OpenAI-compatible route (/v2/{ep}/openai/v1/...), written the way
// RunPod's worker-vllm is: its handler is a generator that reads `input.openai_route` and
// `input.openai_input`, and run like RunPod's SDK runs it with return_aggregate_stream: every
// yield is posted to job-stream as {"output": <item>}, and job-done gets {"output": [<items>]};
// a yielded {"error": …} ends the job FAILED instead (posted as a string, as the SDK does).
// Instead of a model it echoes: the last user message (or the prompt) word by word.
//
// Models (GET /v1/models lists them; any other model is a 404 error object, as vLLM answers):
//   echo-1     echoes at once;   echo-slow  waits SLOW_TOKEN_MS (default 200) per word;
//   crash      throws after its first word (the job ends FAILED with the SDK's error shape).
// Streaming (`"stream": true`) yields strings of whole SSE events, `data: {chat.completion.chunk}\n\n`,
// 1, then 3, then 9, … events per yield (worker-vllm's batch growth), ending with `data: [DONE]\n\n`.
//
// Same environment as examples/worker.mjs (RunPod's URL templates, or EDGE_JOBS_URL, ENDPOINT_ID,
// API_KEY = a worker key, WORKER_ID, RUNPOD_PING_INTERVAL), plus SLOW_TOKEN_MS and LOG_CHUNKS=1
// (print JSON lines: each job taken, and the time its first and last chunks are posted). One job
// at a time. `/debug/echo` (not OpenAI's) answers what the worker was handed.
//   EDGE_JOBS_URL=http://127.0.0.1:8787 ENDPOINT_ID=demo API_KEY=<worker key> node examples/openai-worker.mjs
// No dependencies: Node's fetch only.

const base = (process.env.EDGE_JOBS_URL ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const ep = process.env.ENDPOINT_ID ?? "demo";
const workerId = process.env.RUNPOD_POD_ID ?? process.env.WORKER_ID ?? `openai-worker-${process.pid}`;
const apiKey = process.env.RUNPOD_AI_API_KEY ?? process.env.API_KEY ?? "dev-admin-key";
const pingInterval = Number(process.env.RUNPOD_PING_INTERVAL ?? 10_000);
const slowTokenMs = Number(process.env.SLOW_TOKEN_MS ?? 200);
const logChunks = process.env.LOG_CHUNKS === "1";

const templates = {
  take: process.env.RUNPOD_WEBHOOK_GET_JOB ?? `${base}/v2/${ep}/job-take/$ID?gpu=none`,
  done: process.env.RUNPOD_WEBHOOK_POST_OUTPUT ?? `${base}/v2/${ep}/job-done/$RUNPOD_POD_ID/$ID?gpu=none`,
  stream: process.env.RUNPOD_WEBHOOK_POST_STREAM ?? `${base}/v2/${ep}/job-stream/$RUNPOD_POD_ID/$ID?gpu=none`,
  ping: process.env.RUNPOD_WEBHOOK_PING ?? `${base}/v2/${ep}/ping/$RUNPOD_POD_ID?gpu=none`,
};
const takeUrl = templates.take.replace("$ID", workerId);
const stopUrl = takeUrl.replace("/job-take/", "/job-stop/");
const doneUrl = templates.done.replace("$RUNPOD_POD_ID", workerId);
const streamUrl = templates.stream.replace("$RUNPOD_POD_ID", workerId);
const pingUrl = templates.ping.replace("$RUNPOD_POD_ID", workerId);

const headers = { authorization: apiKey, "user-agent": "edge-jobs-example-openai-worker (RunPod protocol)" };
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });
/** Wall-clock ms with sub-ms precision (comparable across processes on one machine). */
const now = () => performance.timeOrigin + performance.now();

// ---- the fake model ----

const MODELS = { "echo-1": 0, "echo-slow": slowTokenMs, crash: 0 };
const created = () => Math.floor(Date.now() / 1000);

/** vLLM's error object for a bad request (worker-vllm yields it; the SDK turns it into job-done {"error": "…"}). */
const errorObject = (message, type, code) => ({ error: { message, type, code } });

function lastUserText(messages) {
  if (!Array.isArray(messages)) return "";
  const user = [...messages].reverse().find((m) => m && m.role === "user");
  const content = user?.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (p && p.type === "text" ? p.text : "")).join(" ");
  return "";
}

/** The words to "generate": the text's words, at most max_tokens of them. */
function wordsOf(text, body) {
  const words = text.split(/\s+/).filter(Boolean);
  const max = Number(body.max_tokens ?? body.max_completion_tokens ?? Infinity);
  return words.slice(0, Number.isFinite(max) && max >= 0 ? max : undefined);
}

/** Yields each word (with its leading space after the first) at the model's pace; `crash` throws after one. */
async function* generate(model, words, signal) {
  for (let i = 0; i < words.length; i++) {
    if (signal.aborted) return;
    if (MODELS[model] > 0) await sleep(MODELS[model], signal);
    if (model === "crash" && i === 1) throw new Error("the fake model crashed (model: crash)");
    yield i === 0 ? words[i] : ` ${words[i]}`;
  }
}

const sse = (obj) => `data: ${JSON.stringify(obj)}\n\n`;

/** SSE events grouped the way worker-vllm batches them: 1, 3, 9, 27, then 50 events per yield. */
async function* batched(events) {
  let size = 1;
  let batch = [];
  for await (const e of events) {
    batch.push(e);
    if (batch.length >= size) {
      yield batch.join("");
      batch = [];
      size = Math.min(size * 3, 50);
    }
  }
  if (batch.length > 0) yield batch.join("");
}

async function* chatEvents(id, model, words, body, signal) {
  const head = { id, object: "chat.completion.chunk", created: created(), model };
  yield sse({ ...head, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] });
  for await (const w of generate(model, words, signal)) {
    yield sse({ ...head, choices: [{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }] });
  }
  yield sse({ ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] });
  if (body.stream_options?.include_usage) yield sse({ ...head, choices: [], usage: usage(body, words) });
  yield "data: [DONE]\n\n";
}

async function* completionEvents(id, model, words, signal) {
  const head = { id, object: "text_completion", created: created(), model };
  for await (const w of generate(model, words, signal)) yield sse({ ...head, choices: [{ index: 0, text: w, logprobs: null, finish_reason: null }] });
  yield sse({ ...head, choices: [{ index: 0, text: "", logprobs: null, finish_reason: "stop" }] });
  yield "data: [DONE]\n\n";
}

function usage(body, words) {
  const prompt = JSON.stringify(body.messages ?? body.prompt ?? "").split(/\s+/).length;
  return { prompt_tokens: prompt, completion_tokens: words.length, total_tokens: prompt + words.length };
}

async function collect(gen) {
  const parts = [];
  for await (const w of gen) parts.push(w);
  return parts.join("");
}

/** A toy embedding: 8 numbers from the text's characters. */
function embed(text) {
  const v = Array.from({ length: 8 }, (_, i) => [...text].reduce((s, ch, j) => s + ((ch.codePointAt(0) * (i + 1) + j) % 97), 0));
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** The handler, a generator like worker-vllm's: every yield is a job-stream chunk and part of the output. */
async function* handler(job, signal) {
  const route = job.input?.openai_route;
  const body = job.input?.openai_input ?? {};
  if (typeof route !== "string") {
    yield errorObject("this worker serves OpenAI requests only (input.openai_route)", "BadRequestError", 400);
    return;
  }
  const id = `${route.includes("chat") ? "chatcmpl" : "cmpl"}-${job.id.slice(0, 24)}`;
  if (route === "/v1/models") {
    yield { object: "list", data: Object.keys(MODELS).map((m) => ({ id: m, object: "model", created: 0, owned_by: "edge-jobs-example" })) };
    return;
  }
  if (route === "/debug/echo") {
    // Not OpenAI's: answers what the worker was handed (for tests and for looking at the wire).
    yield { openai_route: route, openai_input: body };
    return;
  }
  if (route === "/v1/embeddings") {
    const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ""];
    const data = inputs.map((t, index) => ({ object: "embedding", index, embedding: embed(String(t)) }));
    yield { object: "list", data, model: body.model ?? "echo-1", usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } };
    return;
  }
  if (route !== "/v1/chat/completions" && route !== "/v1/completions") {
    yield errorObject(`route ${route} is not served by this worker`, "NotFoundError", 404);
    return;
  }
  const model = body.model ?? "echo-1";
  if (!(model in MODELS)) {
    yield errorObject(`The model \`${model}\` does not exist.`, "NotFoundError", 404);
    return;
  }
  const chat = route === "/v1/chat/completions";
  const words = wordsOf(chat ? lastUserText(body.messages) : String(body.prompt ?? ""), body);
  if (body.stream === true) {
    yield* batched(chat ? chatEvents(id, model, words, body, signal) : completionEvents(id, model, words, signal));
    return;
  }
  const text = await collect(generate(model, words, signal));
  if (chat) {
    yield {
      id,
      object: "chat.completion",
      created: created(),
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: "stop" }],
      usage: usage(body, words),
    };
  } else {
    yield { id, object: "text_completion", created: created(), model, choices: [{ index: 0, text, logprobs: null, finish_reason: "stop" }], usage: usage(body, words) };
  }
}

// ---- RunPod's worker protocol (as examples/worker.mjs) ----

/** POSTs a JSON body as form data, as RunPod's SDK does; retries 5xx and network errors 3 times. Answers the status (0: never reached). */
async function post(template, jobId, body, isStream) {
  const url = `${template.replace("$ID", jobId)}&isStream=${isStream}`;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/x-www-form-urlencoded", charset: "utf-8" },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      if (res.status < 500) return res.status;
    } catch {
      // network error: retry
    }
    await sleep(attempt * 300);
  }
  return 0;
}

/** Runs the handler as RunPod's SDK runs a generator with return_aggregate_stream: null when the job was stopped. */
async function runJob(job, signal) {
  const items = [];
  let first = true;
  try {
    for await (const item of handler(job, signal)) {
      if (signal.aborted) return null;
      if (item && typeof item === "object" && item.error) return { error: JSON.stringify(item.error) };
      if (logChunks && first) console.log(JSON.stringify({ event: "first_chunk", jobId: job.id, at: now() }));
      if (logChunks && typeof item === "string" && item.endsWith("data: [DONE]\n\n")) console.log(JSON.stringify({ event: "last_chunk", jobId: job.id, at: now() }));
      first = false;
      const code = await post(streamUrl, job.id, { output: item }, true);
      // A 409 says the job is no longer ours (cancelled, timed out): stop as job-stop would.
      if (code === 409 || code === 404) return null;
      items.push(item);
    }
  } catch (e) {
    return { error: JSON.stringify({ error_type: e?.name ?? "Error", error_message: String(e?.message ?? e), worker_id: workerId }) };
  }
  return signal.aborted ? null : { output: items };
}

/** Jobs in progress: id → AbortController. */
const inProgress = new Map();
let stopping = false;

async function takeJob() {
  const res = await fetch(`${takeUrl}&job_in_progress=${inProgress.size > 0 ? 1 : 0}`, { headers });
  if (res.status === 204 || res.status === 400) return null;
  if (res.status === 429) {
    await sleep(5000);
    return null;
  }
  if (!res.ok) throw new Error(`job-take: HTTP ${res.status} ${await res.text()}`);
  const job = await res.json();
  if (!job.id || !("input" in job)) throw new Error("Job has missing field(s): id or input.");
  return job;
}

async function pingLoop() {
  while (!stopping) {
    const ids = [...inProgress.keys()].join(",");
    await fetch(`${pingUrl}${ids ? `&job_id=${ids}` : ""}&runpod_version=example-openai-1.0`, { headers }).then((r) => r.arrayBuffer()).catch(() => undefined);
    await sleep(pingInterval);
  }
}

async function stopLoop() {
  while (!stopping) {
    try {
      const res = await fetch(stopUrl, { headers });
      if (res.status === 200) {
        const { jobsToStop } = await res.json();
        for (const id of jobsToStop ?? []) {
          if (typeof id !== "string") continue;
          inProgress.get(id)?.abort();
          console.log(JSON.stringify({ event: "stopped", jobId: id }));
        }
      } else {
        await res.arrayBuffer();
        await sleep(1000);
      }
    } catch {
      await sleep(1000);
    }
  }
}

async function workLoop() {
  while (!stopping) {
    let job;
    try {
      job = await takeJob();
    } catch (e) {
      console.error(String(e));
      await sleep(1000);
      continue;
    }
    if (!job) continue;
    const controller = new AbortController();
    inProgress.set(job.id, controller);
    if (logChunks) console.log(JSON.stringify({ event: "took", jobId: job.id, route: job.input?.openai_route ?? null }));
    try {
      const result = await runJob(job, controller.signal);
      if (result === null) {
        console.log(JSON.stringify({ event: "abandoned", jobId: job.id }));
        continue; // stopped: RunPod workers post no job-done for a stopped job
      }
      const code = await post(doneUrl, job.id, result, true);
      console.log(JSON.stringify({ event: result.error ? "failed" : "completed", jobId: job.id, route: job.input?.openai_route ?? null, jobDone: code }));
    } finally {
      inProgress.delete(job.id);
    }
  }
}

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
console.log(JSON.stringify({ event: "started", workerId, takeUrl }));
void pingLoop();
void stopLoop();
await workLoop();
