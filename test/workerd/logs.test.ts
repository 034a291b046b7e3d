/**
 * Job logs (issue 14): workers append lines to the job they hold, fenced like every report;
 * clients read them in pages or follow them as SSE. Caps with one truncation marker, RunPod's
 * 4096-character cut, levels and times, hostile bodies, push workers' `urls.log`.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobObject } from "../../src/jobs/job-object";
import { TRUNCATION_MARKER } from "../../src/jobs/logs";
import { loadJob } from "../../src/jobs/store";
import { JOB_LOG } from "../../src/shared/limits";
import worker from "../../src/index";
import { call, createEndpoint, done, interceptFetch, jobStubOf, json, parseSse, submit, take } from "./helpers";

interface Line {
  seq: number;
  at: string;
  ts: string | null;
  attempt: number;
  workerId: string | null;
  level: string;
  message: string;
}
interface Page {
  id: string;
  status: string;
  lines: Line[];
  next: number | null;
  truncated: boolean;
}

const post = (ep: string, w: string, id: string, body: unknown, query = "") =>
  call("POST", `/v2/${ep}/job-log/${w}/${id}${query}`, {
    raw: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
const lines = (...messages: string[]) => ({ lines: messages.map((message) => ({ level: "INFO", message })) });
const page = async (ep: string, id: string, query = "") => json<Page>(await call("GET", `/v2/${ep}/logs/${id}${query}`));

/** Every line of the job's log, page by page. */
async function all(ep: string, id: string): Promise<Line[]> {
  const out: Line[] = [];
  let after = 0;
  for (;;) {
    const p = await page(ep, id, `?after=${after}&limit=1000`);
    out.push(...p.lines);
    if (p.next === null) return out;
    after = p.next;
  }
}

async function running(policy: Record<string, unknown> = {}) {
  const ep = await createEndpoint();
  const id = await submit(ep, { input: { n: 1 }, policy });
  expect(await json(await take(ep, "w1"))).toMatchObject({ id, attempt: 1 });
  return { ep, id };
}

const recordOf = (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, state) => loadJob(state.storage.sql)!.job);
const historyOf = async (ep: string, id: string) =>
  (await json<{ history: Array<{ command: string; detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`))).history;

afterEach(() => vi.restoreAllMocks());

describe("job logs: append and read", () => {
  it("keeps lines in order with level, both times, attempt and worker; not a state change", async () => {
    const { ep, id } = await running();
    const before = await recordOf(id);
    const historyBefore = await historyOf(ep, id);
    const r = await post(ep, "w1", id, {
      lines: [
        { level: "info", message: "loading model", ts: 1_780_000_000_123 },
        { level: "WARNING", line: "slow disk", at: "2026-06-01T12:05:04.5+02:00" },
        { level: "trace", message: "tick" },
        { level: "Tip", message: "hint" },
        "plain string line",
        { level: "ERROR", message: "" },
      ],
    }, "?attempt=1");
    expect(r.status).toBe(200);
    expect(await json(r)).toEqual({ accepted: 6, dropped: 0, truncated: false });
    const p = await page(ep, id);
    expect(p).toMatchObject({ id, status: "IN_PROGRESS", next: null, truncated: false });
    expect(p.lines.map((l) => [l.seq, l.level, l.message, l.ts, l.attempt, l.workerId])).toEqual([
      [1, "INFO", "loading model", new Date(1_780_000_000_123).toISOString(), 1, "w1"],
      [2, "WARN", "slow disk", "2026-06-01T10:05:04.500Z", 1, "w1"],
      [3, "DEBUG", "tick", null, 1, "w1"],
      [4, "INFO", "hint", null, 1, "w1"],
      [5, "INFO", "plain string line", null, 1, "w1"],
      [6, "ERROR", "", null, 1, "w1"],
    ]);
    for (const l of p.lines) expect(Math.abs(Date.parse(l.at) - Date.now())).toBeLessThan(60_000);
    // Lines are not state changes: same record (version, lease), no history line, nothing told.
    expect(await recordOf(id)).toEqual(before);
    expect(await historyOf(ep, id)).toEqual(historyBefore);
  });

  it("pages with after/limit and next; a page that reaches the end has next null", async () => {
    const { ep, id } = await running();
    const messages = Array.from({ length: 250 }, (_, i) => `line ${i + 1}`);
    expect((await post(ep, "w1", id, lines(...messages))).status).toBe(200);
    const p1 = await page(ep, id, "?limit=100");
    expect(p1.lines.map((l) => l.message)).toEqual(messages.slice(0, 100));
    expect(p1.next).toBe(100);
    const p2 = await page(ep, id, `?after=${p1.next}&limit=100`);
    expect(p2.lines[0]!.seq).toBe(101);
    const p3 = await page(ep, id, `?after=${p2.next}&limit=100`);
    expect(p3.lines.map((l) => l.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 201 + i));
    expect(p3.next).toBeNull();
    expect((await page(ep, id, "?after=250")).lines).toEqual([]);
    expect((await page(ep, id)).lines).toHaveLength(JOB_LOG.page.default);
    for (const q of ["?limit=0", "?limit=1001", "?after=-1", "?after=x", "?follow=2"]) {
      const res = await call("GET", `/v2/${ep}/logs/${id}${q}`);
      expect(res.status, q).toBe(400);
      expect(typeof (await json(res)).error).toBe("string");
    }
    expect((await call("GET", `/v2/${ep}/logs/${"0".repeat(64)}`)).status).toBe(404);
    expect((await call("GET", `/v2/${ep}/logs/not-a-job`)).status).toBe(404);
  });

  it("a message over 4096 (+64) characters is cut in the middle as RunPod's SDK cuts it, once, never inside a character", async () => {
    const { ep, id } = await running();
    const long = "a".repeat(3000) + "b".repeat(7000);
    const emoji = "😀".repeat(5000); // 5000 characters, 10000 UTF-16 units
    const room = "c".repeat(JOB_LOG.lineChars + JOB_LOG.cutNoteRoom);
    const past = "d".repeat(JOB_LOG.lineChars + JOB_LOG.cutNoteRoom + 1);
    // As RunPod's SDK prints a message it cut: kept as it is, not cut again.
    const runpodCut = `${"e".repeat(2048)}\n...TRUNCATED 123456 CHARACTERS...\n${"f".repeat(2048)}`;
    expect((await post(ep, "w1", id, lines(long, emoji, room, past, runpodCut))).status).toBe(200);
    const [a, b, c, d, e] = (await page(ep, id)).lines;
    expect(a!.message).toBe(`${"a".repeat(2048)}\n...TRUNCATED 5904 CHARACTERS...\n${"b".repeat(2048)}`);
    expect(b!.message).toBe(`${"😀".repeat(2048)}\n...TRUNCATED 904 CHARACTERS...\n${"😀".repeat(2048)}`);
    expect(c!.message).toBe(room);
    expect(d!.message).toBe(`${"d".repeat(2048)}\n...TRUNCATED ${JOB_LOG.cutNoteRoom + 1} CHARACTERS...\n${"d".repeat(2048)}`);
    expect(e!.message).toBe(runpodCut);
  });

  it("stores text as sent: NUL, newlines, prototype names", async () => {
    const { ep, id } = await running();
    const odd = ["a\u0000b", "two\nlines", "__proto__", "constructor", "<script>x</script>"];
    expect((await post(ep, "w1", id, { lines: odd.map((message) => ({ message, level: "debug" })) })).status).toBe(200);
    expect((await page(ep, id)).lines.map((l) => l.message)).toEqual(odd);
  });
});

describe("job logs: bad bodies are a 400 and keep nothing", () => {
  it("refuses empty, malformed and hostile bodies", async () => {
    const { ep, id } = await running();
    const bad: Array<[string, unknown]> = [
      ["empty", ""],
      ["not JSON", "{"],
      ["array", [{ message: "x" }]],
      ["no lines", {}],
      ["empty lines", { lines: [] }],
      ["too many lines", { lines: Array.from({ length: JOB_LOG.linesPerPost + 1 }, () => "x") }],
      ["number line", { lines: [5] }],
      ["no message", { lines: [{ level: "INFO" }] }],
      ["object message", { lines: [{ message: { a: 1 } }] }],
      ["unknown level", { lines: [{ level: "verbose", message: "x" }] }],
      ["level constructor", { lines: [{ level: "constructor", message: "x" }] }],
      ["level __proto__", { lines: [{ level: "__proto__", message: "x" }] }],
      ["numeric level", { lines: [{ level: 3, message: "x" }] }],
      ["bad ts", { lines: [{ message: "x", ts: "yesterday" }] }],
      ["negative ts", { lines: [{ message: "x", ts: -1 }] }],
      ["huge ts", { lines: [{ message: "x", ts: 1e300 }] }],
      ["message only in __proto__", JSON.parse('{"lines": [{"__proto__": {"message": "x"}}]}')],
      ["lines only in __proto__", JSON.parse('{"__proto__": {"lines": ["x"]}}')],
    ];
    for (const [what, body] of bad) {
      const res = await post(ep, "w1", id, typeof body === "string" ? body : JSON.stringify(body));
      expect(res.status, what).toBe(400);
      expect((await json(res)).error, what).toMatch(/./);
    }
    // A later bad line refuses the whole post: nothing is kept.
    expect((await post(ep, "w1", id, { lines: ["ok", { level: "nope", message: "x" }] })).status).toBe(400);
    const over = await post(ep, "w1", id, lines("x".repeat(JOB_LOG.postBytes)));
    expect(over.status).toBe(413);
    expect((await page(ep, id)).lines).toEqual([]);
  });
});

describe("job logs: caps", () => {
  it(`keeps at most ${JOB_LOG.linesPerJob} lines, then one truncation marker; later posts are dropped`, async () => {
    const { ep, id } = await running();
    const batch = lines(...Array.from({ length: JOB_LOG.linesPerPost }, (_, i) => `l${i}`));
    for (let i = 0; i < JOB_LOG.linesPerJob / JOB_LOG.linesPerPost; i++) {
      expect(await json(await post(ep, "w1", id, batch))).toEqual({ accepted: JOB_LOG.linesPerPost, dropped: 0, truncated: false });
    }
    expect(await json(await post(ep, "w1", id, lines("one more", "and another")))).toEqual({ accepted: 0, dropped: 2, truncated: true });
    expect(await json(await post(ep, "w1", id, lines("still more")))).toEqual({ accepted: 0, dropped: 1, truncated: true });
    const got = await all(ep, id);
    expect(got).toHaveLength(JOB_LOG.linesPerJob + 1);
    const markers = got.filter((l) => l.workerId === null);
    expect(markers).toHaveLength(1);
    expect(got.at(-1)).toMatchObject({ seq: JOB_LOG.linesPerJob + 1, workerId: null, level: "WARN", message: TRUNCATION_MARKER });
    expect((await page(ep, id)).truncated).toBe(true);
  });

  it(`keeps at most ${JOB_LOG.bytesPerJob} bytes of messages; the post that passes it keeps what fits`, async () => {
    const { ep, id } = await running();
    const line = "é".repeat(2048); // 4096 bytes, 2048 characters
    const per = Math.floor((JOB_LOG.postBytes - 1024) / (line.length * 2 + 40));
    let accepted = 0;
    let last: { accepted: number; dropped: number; truncated: boolean } | null = null;
    while (!last?.truncated) {
      last = await json(await post(ep, "w1", id, lines(...Array.from({ length: per }, () => line))));
      accepted += last!.accepted;
    }
    expect(accepted).toBe(JOB_LOG.bytesPerJob / 4096);
    expect(last!.accepted + last!.dropped).toBe(per);
    const got = await all(ep, id);
    expect(got.filter((l) => l.workerId === null)).toHaveLength(1);
    expect(got.filter((l) => l.workerId !== null).reduce((n, l) => n + new TextEncoder().encode(l.message).byteLength, 0)).toBe(JOB_LOG.bytesPerJob);
  });
});

describe("job logs: fencing", () => {
  it("refuses another worker, an older attempt and an ended job with a 409, keeping nothing", async () => {
    const { ep, id } = await running();
    expect((await post(ep, "w1", id, lines("mine"), "?attempt=1")).status).toBe(200);
    const other = await post(ep, "w2", id, lines("not mine"));
    expect(other.status).toBe(409);
    expect(await json(other)).toMatchObject({ code: "NOT_LEASE_HOLDER", status: "IN_PROGRESS", stop: true });
    expect((await historyOf(ep, id)).at(-1)).toMatchObject({ command: "refused log" });
    expect((await done(ep, "w1", id, { output: 1 })).status).toBe(200);
    const late = await post(ep, "w1", id, lines("too late"));
    expect(late.status).toBe(409);
    expect(await json(late)).toMatchObject({ code: "WRONG_STATE", status: "COMPLETED" });
    // Requeued and taken again by w1: attempt 2; lines naming attempt 1 are refused.
    expect((await call("POST", `/v2/${ep}/requeue/${id}`)).status).toBe(200);
    expect(await json(await take(ep, "w1"))).toMatchObject({ id, attempt: 2 });
    const stale = await post(ep, "w1", id, lines("from attempt 1"), "?attempt=1");
    expect(stale.status).toBe(409);
    expect(await json(stale)).toMatchObject({ code: "STALE_ATTEMPT" });
    expect((await post(ep, "w1", id, lines("attempt 2"), "?attempt=2")).status).toBe(200);
    expect((await all(ep, id)).map((l) => [l.attempt, l.message])).toEqual([[1, "mine"], [2, "attempt 2"]]);
    expect((await post(ep, "w1", "0".repeat(64), lines("x"))).status).toBe(404);
  });

  it("accepts lines while the job is being cancelled (a stopping handler may say why)", async () => {
    const { ep, id } = await running();
    expect(await json(await call("POST", `/v2/${ep}/cancel/${id}`))).toMatchObject({ status: "CANCELLING" });
    expect((await post(ep, "w1", id, lines("stopping"))).status).toBe(200);
    expect((await page(ep, id)).lines.map((l) => l.message)).toEqual(["stopping"]);
  });

  it("needs the worker key: a client key or none is refused", async () => {
    const { ep, id } = await running();
    const clientKey = (await json<{ key: string }>(await call("POST", `/admin/endpoints/${ep}/keys`, { body: { scope: "client" } }))).key;
    expect((await call("POST", `/v2/${ep}/job-log/w1/${id}`, { key: clientKey, body: lines("x") })).status).toBe(403);
    expect((await call("POST", `/v2/${ep}/job-log/w1/${id}`, { key: null, body: lines("x") })).status).toBe(401);
    expect((await call("POST", `/v2/${ep}/job-log/w1/${id}?attempt=1&token=forged`, { key: null, body: lines("x") })).status).toBe(401);
    expect((await page(ep, id)).lines).toEqual([]);
  });
});

describe("job logs: follow", () => {
  it("a follower is woken by new lines while the job runs, then gets `end` once the job ends; resumes after Last-Event-ID", async () => {
    const { ep, id } = await running();
    await post(ep, "w1", id, lines("before"));
    const started = Date.now();
    const res = await call("GET", `/v2/${ep}/logs/${id}?follow=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { done: end, value } = await reader.read();
        if (end) throw new Error(`stream ended before ${needle}: ${text}`);
        text += dec.decode(value, { stream: true });
      }
    };
    await until('"before"');
    await post(ep, "w1", id, lines("live one"));
    await until('"live one"');
    // Woken by the append, not by the 15 s poll.
    expect(Date.now() - started).toBeLessThan(5_000);
    await post(ep, "w1", id, lines("last"));
    await done(ep, "w1", id, { output: "ok" });
    await until("event: end");
    const events = parseSse(text);
    expect(events.filter((e) => e.event === "log").map((e) => [e.id, JSON.parse(e.data!).message])).toEqual([
      ["1", "before"],
      ["2", "live one"],
      ["3", "last"],
    ]);
    expect(JSON.parse(events.at(-1)!.data!)).toEqual({ id, status: "COMPLETED", truncated: false });

    const resumed = parseSse(await (await call("GET", `/v2/${ep}/logs/${id}`, { headers: { accept: "text/event-stream", "last-event-id": "2" } })).text());
    expect(resumed.map((e) => [e.event, e.id])).toEqual([["log", "3"], ["end", undefined]]);
  });

  it("a paged read does not wait; an unknown job is a 404 before any stream starts", async () => {
    const { ep, id } = await running();
    const t = Date.now();
    expect((await page(ep, id)).lines).toEqual([]);
    expect(Date.now() - t).toBeLessThan(2_000);
    expect((await call("GET", `/v2/${ep}/logs/${"0".repeat(64)}?follow=1`)).status).toBe(404);
  });
});

describe("job logs: retention", () => {
  const logRows = (id: string) => runInDurableObject(jobStubOf(id), (_i: JobObject, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM log_line").one().n);

  it("the log is kept while the job is, and goes with it: deleted, or tombstoned for its idempotency key", async () => {
    const ep = await createEndpoint({ retentionMs: 5_000 });
    for (const headers of [{}, { "idempotency-key": `logs-${ep}` }] as Array<Record<string, string>>) {
      const res = await call("POST", `/v2/${ep}/run`, { body: { input: { n: 1 } }, headers });
      const id = (await json<{ id: string }>(res)).id;
      await take(ep, "w1");
      await post(ep, "w1", id, lines("kept"));
      await done(ep, "w1", id, { output: 1 });
      const purgeAt = (await recordOf(id)).purgeAt!;
      await runInDurableObject(jobStubOf(id), (i: JobObject) => i.clock.freeze(purgeAt - 1));
      await runDurableObjectAlarm(jobStubOf(id));
      expect((await page(ep, id)).lines.map((l) => l.message)).toEqual(["kept"]);
      await runInDurableObject(jobStubOf(id), (i: JobObject) => i.clock.freeze(purgeAt));
      await runDurableObjectAlarm(jobStubOf(id));
      expect((await call("GET", `/v2/${ep}/logs/${id}`)).status).toBe(404);
      expect(await logRows(id)).toBe(0);
    }
  });
});

describe("job logs: push workers", () => {
  it("a push carries urls.log; the worker posts lines there with its token, no key", async () => {
    const ep = await createEndpoint({ mode: "push", workerUrls: ["https://worker.example.com/jobs"] });
    await call("POST", `/admin/endpoints/${ep}/pause`);
    const id = await submit(ep, { input: { n: 1 } });
    const pushed = interceptFetch<{ urls: { done: string; log: string } }>("https://worker.example.com/", () => new Response("accepted", { status: 202 }));
    const batch = createMessageBatch("edge-jobs-dispatch", [{ id: "m1", timestamp: new Date(), attempts: 1, body: { endpointId: ep, jobId: id, token: "t1" } }]);
    const ctx = createExecutionContext();
    await worker.queue!(batch, env, ctx);
    await getQueueResult(batch, ctx);
    const log = new URL(pushed[0]!.json.urls.log);
    expect(log.pathname).toBe(`/v2/${ep}/job-log/push-0/${id}`);
    expect((await call("POST", log.pathname + log.search, { key: null, body: lines("from a push worker") })).status).toBe(200);
    // The token covers this job and worker only.
    expect((await call("POST", `/v2/${ep}/job-log/push-1/${id}${log.search}`, { key: null, body: lines("x") })).status).toBe(401);
    expect((await page(ep, id)).lines.map((l) => [l.workerId, l.message])).toEqual([["push-0", "from a push worker"]]);
  });
});
