/**
 * The `edge-jobs` CLI (packages/client/bin/edge-jobs.mjs) as a real child process against the
 * real Worker: admin commands, submit (inline, file, stdin), waiting and watching while a worker
 * answers over HTTP beside it, job actions, endpoint reads, --json, and its exit codes.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { freePort, ROOT, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "1000" });

const NODE = path.join(ROOT, "node_modules", ".bin", "node");
const BIN = path.join(ROOT, "packages", "client", "bin", "edge-jobs.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "edge-jobs-cli-"));
const EMPTY_CONFIG = path.join(dir, "empty.json");
writeFileSync(EMPTY_CONFIG, "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process; its output so far, and its end. Env: the server and admin key, no config file. */
function start(args: string[], { env = {}, stdin = "" }: { env?: Record<string, string>; stdin?: string } = {}) {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("EDGE_JOBS_")) base[k] = v;
  const child = spawn(NODE, [BIN, ...args], {
    cwd: dir,
    env: { ...base, EDGE_JOBS_URL: server.base, EDGE_JOBS_ADMIN_KEY: server.adminKey, EDGE_JOBS_CONFIG: EMPTY_CONFIG, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const done = new Promise<Ran>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
  return { done, stdout: () => stdout };
}

const cli = (args: string[], options?: { env?: Record<string, string>; stdin?: string }) => start(args, options).done;

/** Runs the CLI with --json and parses its whole stdout as one JSON document. */
async function cliJson(args: string[], options?: { env?: Record<string, string>; stdin?: string }): Promise<Record<string, unknown>> {
  const r = await cli([...args, "--json"], options);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

type Job = { id: string; attempt: number; input: unknown };

/** Takes one job as worker `w` (a few long-polls). */
async function take(ep: string, key: string, w: string): Promise<Job> {
  for (let i = 0; i < 10; i++) {
    const t = await api(server.base, "GET", `/v2/${ep}/job-take/${w}?job_in_progress=0`, key);
    if (t.status === 200) return t.body as unknown as Job;
  }
  throw new Error("no job came");
}

async function report(ep: string, key: string, w: string, job: Job, body: unknown): Promise<void> {
  expect((await api(server.base, "POST", `/v2/${ep}/job-done/${w}/${job.id}?attempt=${job.attempt}`, key, body)).status).toBe(200);
}

describe("the edge-jobs CLI", () => {
  it("creates, lists, reads, pauses and resumes endpoints; creates, lists and revokes keys", async () => {
    let r = await cli(["endpoints", "create", "cli-a", "--config", '{"executionTimeout": 30000}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^id\s+cli-a$/m);
    expect(r.stdout).toMatch(/^executionTimeout\s+30000/m);
    const file = path.join(dir, "endpoint.json");
    writeFileSync(file, JSON.stringify({ concurrency: 2 }));
    expect(await cliJson(["endpoints", "create", "cli-b", "--file", file])).toMatchObject({ id: "cli-b", concurrency: 2, paused: false });

    r = await cli(["endpoints", "list"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID\s+MODE\s+STATE/);
    expect(r.stdout).toMatch(/^cli-a\s+pull\s+active/m);
    expect(r.stdout).toMatch(/^cli-b\s+pull\s+active\s+2\s/m);
    const list = (await cliJson(["endpoints", "list"])).endpoints as Array<{ id: string }>;
    expect(list.map((e) => e.id)).toEqual(expect.arrayContaining(["cli-a", "cli-b"]));
    expect(await cliJson(["endpoints", "get", "cli-a"])).toMatchObject({ id: "cli-a", executionTimeout: 30_000, paused: false });

    r = await cli(["endpoints", "pause", "cli-a"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("paused");
    expect(await cliJson(["endpoints", "get", "cli-a"])).toMatchObject({ paused: true });
    expect(await cliJson(["endpoints", "resume", "cli-a"])).toMatchObject({ id: "cli-a", paused: false });

    const client = await cliJson(["keys", "create", "cli-a", "--scope", "client"]);
    expect(client).toMatchObject({ scope: "client", key: expect.stringMatching(/^ej_c_/), id: expect.stringMatching(/^key_/) });
    r = await cli(["keys", "create", "cli-a", "--scope", "worker"]);
    expect(r.code).toBe(0);
    const workerKeyId = /^id\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(r.stdout).toMatch(/^key\s+ej_w_/m);
    r = await cli(["keys", "list", "cli-a"]);
    expect(r.stdout).toMatch(/^ID\s+SCOPE\s+PREFIX\s+CREATED$/m);
    expect(r.stdout).toContain(`${client.id as string}  client`);
    expect(r.stdout).toContain(`${workerKeyId}  worker`);
    expect(r.stdout).not.toContain(client.key as string);

    // The client key works (no admin key at all), until it is revoked.
    const asClient = { EDGE_JOBS_KEY: client.key as string, EDGE_JOBS_ADMIN_KEY: "" };
    expect((await cli(["health", "cli-a"], { env: asClient })).code).toBe(0);
    r = await cli(["keys", "revoke", "cli-a", client.id as string]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`revoked ${client.id as string}`);
    expect(((await cliJson(["keys", "list", "cli-a"])).keys as unknown[]).length).toBe(1);
    r = await cli(["health", "cli-a"], { env: asClient });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid API key for endpoint 'cli-a'");

    // Missing --scope is a usage error.
    expect((await cli(["keys", "create", "cli-a"])).code).toBe(2);
    // The config file: url and admin key from it.
    const config = path.join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ url: server.base, adminKey: server.adminKey }));
    r = await cli(["endpoints", "get", "cli-b"], { env: { EDGE_JOBS_URL: "", EDGE_JOBS_ADMIN_KEY: "", EDGE_JOBS_CONFIG: config } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^concurrency\s+2$/m);
  });

  it("submits with the input inline, from a file and from stdin, and reads the status", async () => {
    const ep = "cli-submit";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const env = { EDGE_JOBS_KEY: keys.client };
    const a = await cliJson(["submit", ep, "--input", '{"n": 1}'], { env });
    expect(a).toMatchObject({ id: expect.any(String), status: "IN_QUEUE" });
    const file = path.join(dir, "input.json");
    writeFileSync(file, JSON.stringify({ from: "file", list: [1, 2, 3] }));
    const flags = ["--priority", "5", "--idempotency-key", "order-1", "--sequence-key", "user-1"];
    const b = await cliJson(["submit", ep, "--file", file, ...flags], { env });
    expect((await cliJson(["submit", ep, "--file", file, ...flags], { env })).id).toBe(b.id);
    const r = await cli(["submit", ep, "-"], { env, stdin: '{"from": "stdin"}' });
    expect(r.code, r.stderr).toBe(0);
    const c = /^id\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(r.stdout).toMatch(/^status\s+IN_QUEUE$/m);

    const status = await cli(["status", ep, a.id as string], { env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^status\s+IN_QUEUE$/m);
    expect(status.stdout).toMatch(/^queue\s+\w+, position \d+/m);
    expect(await cliJson(["status", ep, a.id as string], { env })).toMatchObject({ id: a.id, status: "IN_QUEUE", attempt: 0 });

    // A worker receives exactly the inputs given (the priority-5 job first).
    const got = new Map<string, unknown>();
    for (let i = 0; i < 3; i++) {
      const job = await take(ep, keys.worker, "w1");
      got.set(job.id, job.input);
      await report(ep, keys.worker, "w1", job, { output: i });
    }
    expect(Object.fromEntries(got)).toEqual({ [a.id as string]: { n: 1 }, [b.id as string]: { from: "file", list: [1, 2, 3] }, [c as string]: { from: "stdin" } });

    // Bad input is a usage error, and so is more than one input.
    expect((await cli(["submit", ep, "--input", "{nope"], { env })).code).toBe(2);
    expect((await cli(["submit", ep, "--input", "1", "--file", file], { env })).code).toBe(2);
    expect((await cli(["submit", ep, "--priority", "high"], { env })).code).toBe(2);
  });

  it("submit --wait blocks until a worker finishes the job: exit 0 with the output, exit 1 when it fails", async () => {
    const ep = "cli-wait";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const env = { EDGE_JOBS_KEY: keys.client };
    const waiting = cli(["submit", ep, "--input", '{"q": "hi"}', "--wait"], { env });
    const job = await take(ep, keys.worker, "w1");
    await report(ep, keys.worker, "w1", job, { output: { echo: job.input } });
    const ok = await waiting;
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^status\s+COMPLETED$/m);
    expect(ok.stdout).toMatch(/^output\s+\{"echo":\{"q":"hi"\}\}$/m);
    expect(ok.stderr).toBe(""); // no progress line: stderr is not a terminal

    const failing = cli(["submit", ep, "--input", '"x"', "--wait", "--json"], { env });
    const job2 = await take(ep, keys.worker, "w1");
    await report(ep, keys.worker, "w1", job2, { error: "no GPU today" });
    const failed = await failing;
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ id: job2.id, status: "FAILED", error: "no GPU today" });
    expect(failed.stderr).toContain("FAILED: no GPU today");

    // The endpoint's numbers: health, the metrics table, the workers.
    let r = await cli(["health", ep], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^jobs\s+completed 1, failed 1, in progress 0, in queue 0/m);
    expect(await cliJson(["health", ep], { env })).toMatchObject({ jobs: { completed: 1, failed: 1 } });
    r = await cli(["metrics", ep, "--window", "6h"], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\s+p70\s+p90\s+p98\s+count$/m);
    expect(r.stdout).toMatch(/^execution\s+(\d|-)/m);
    expect(r.stdout).toMatch(/^delay\s+/m);
    expect(r.stdout).toMatch(/^cold start\s+/m);
    expect(r.stdout).toMatch(/^requests\s+total \d+, completed \d+, errored \d+, failed \d+/m);
    const metrics = await eventually("the metrics to count both jobs", 10_000, async () => {
      const m = await cliJson(["metrics", ep], { env });
      return (m.total as { requests: { total: number } }).requests.total >= 2 ? m : undefined;
    });
    expect(metrics).toMatchObject({ window: "1h", total: { requests: { completed: 1, failed: 1 }, executionTime: { count: 2 } } });
    expect((await cli(["metrics", ep, "--window", "2h"], { env })).code).toBe(2);
    r = await cli(["workers", ep]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^WORKER\s+STATE\s+TAKEN/);
    expect(r.stdout).toMatch(/^w1\s+\w+\s+2\s/m);
    expect(((await cliJson(["workers", ep])).workers as Array<{ workerId: string }>).map((w) => w.workerId)).toEqual(["w1"]);

    // Issue 15, item 5: a job that completed with errors (its program exited non-zero) exits 1, saying so.
    const erring = cli(["submit", ep, "--input", '"y"', "--wait", "--json"], { env });
    const job3 = await take(ep, keys.worker, "w1");
    await report(ep, keys.worker, "w1", job3, { output: { partial: true }, exitCode: 2 });
    const errored = await erring;
    expect(errored.code).toBe(1);
    expect(JSON.parse(errored.stdout)).toMatchObject({ id: job3.id, status: "COMPLETED", outcome: "error", exitCode: 2, output: { partial: true } });
    expect(errored.stderr).toContain("completed with errors (exit code 2)");
    expect(errored.stderr).not.toContain("exit code 2: exit code 2");
    const shown = await cli(["status", ep, job3.id], { env });
    expect(shown.stdout).toMatch(/^status\s+COMPLETED \(with errors\)$/m);
    expect(shown.stdout).toMatch(/^exit code\s+2$/m);
  });

  it("watch prints each streamed chunk as it comes, then the final status", async () => {
    const ep = "cli-watch";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const env = { EDGE_JOBS_KEY: keys.client };
    const { id } = (await cliJson(["submit", ep, "--input", '{"words": 3}'], { env })) as { id: string };
    const watching = start(["watch", ep, id], { env });
    const job = await take(ep, keys.worker, "w1");
    const chunk = (body: unknown) => api(server.base, "POST", `/v2/${ep}/job-stream/w1/${id}?attempt=${job.attempt}`, keys.worker, body);
    // Each chunk shows up before the next is sent: the stream is live.
    for (const [body, shown] of [[{ output: "one" }, "one"], [{ output: "two" }, "two"], [{ output: { tok: 3 } }, '{"tok":3}']] as const) {
      expect((await chunk(body)).status).toBe(200);
      await eventually(`the chunk ${shown} to be printed`, 10_000, async () => (watching.stdout().split("\n").includes(shown) ? true : undefined));
    }
    expect(watching.stdout()).not.toContain("COMPLETED");
    await report(ep, keys.worker, "w1", job, { output: "done" });
    const r = await watching.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split("\n").slice(0, 3)).toEqual(["one", "two", '{"tok":3}']);
    expect(r.stdout).toMatch(/^status\s+COMPLETED$/m);
    expect(r.stdout).toMatch(/^output\s+done$/m);

    // --json: one document with the chunks and the final status (the job has ended: at once).
    const doc = await cliJson(["watch", ep, id], { env });
    expect(doc).toMatchObject({ chunks: [{ seq: 1, chunk: { output: "one" } }, { chunk: { output: "two" } }, { chunk: { output: { tok: 3 } } }], status: { id, status: "COMPLETED" } });

    // A watched job that fails: exit 1.
    const bad = (await cliJson(["submit", ep, "--input", "0"], { env })) as { id: string };
    const watchingBad = cli(["watch", ep, bad.id], { env });
    await report(ep, keys.worker, "w1", await take(ep, keys.worker, "w1"), { error: "boom" });
    const b = await watchingBad;
    expect(b.code).toBe(1);
    expect(b.stdout).toMatch(/^status\s+FAILED$/m);
    expect(b.stderr).toContain("FAILED: boom");
  });

  it("cancels, retries, requeues and purges", async () => {
    const ep = "cli-actions";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const env = { EDGE_JOBS_KEY: keys.client };
    const { id } = (await cliJson(["submit", ep, "--input", "1"], { env })) as { id: string };
    let r = await cli(["cancel", ep, id], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^status\s+CANCELLED$/m);
    expect(await cliJson(["requeue", ep, id], { env })).toMatchObject({ id, status: "IN_QUEUE" });
    // A queued job cannot be retried: the server's refusal, exit 1.
    r = await cli(["retry", ep, id], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/409 .*IN_QUEUE/);
    await report(ep, keys.worker, "w1", await take(ep, keys.worker, "w1"), { error: "first try fails" });
    expect(await cliJson(["retry", ep, id], { env })).toMatchObject({ id, status: "IN_QUEUE" });

    await cliJson(["submit", ep, "--input", "2"], { env });
    await cliJson(["submit", ep, "--input", "3"], { env });
    r = await cli(["purge", ep], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`removed 3 waiting jobs from ${ep}`);
    expect(await cliJson(["status", ep, id], { env })).toMatchObject({ status: "CANCELLED", reason: "purged" });
    // With the admin key alone (no endpoint key).
    expect(await cliJson(["purge", ep])).toEqual({ removed: 0, status: "completed" });
  });

  it("exits 2 on usage errors, 1 with the server's message on a refusal, 3 when the server cannot be reached", async () => {
    let r = await cli(["frobnicate", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command: frobnicate");
    expect(r.stderr).toContain("Usage: edge-jobs");
    expect(r.stdout).toBe("");
    r = await cli(["status", "cli-a"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing argument <jobId>");
    expect(r.stderr).toContain("Usage: edge-jobs status <ep> <jobId>");
    expect((await cli(["status", "cli-a", "x", "--bogus"])).code).toBe(2);
    expect((await cli(["endpoints"])).code).toBe(2);
    expect((await cli([])).code).toBe(2);
    r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Exit codes");

    r = await cli(["health", "cli-b", "--key", "not-a-key"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("401 invalid API key for endpoint 'cli-b'");
    r = await cli(["endpoints", "list", "--key", "not-the-admin-key"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("401");
    r = await cli(["endpoints", "get", "no-such-endpoint"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("endpoint 'no-such-endpoint' does not exist");

    const closed = `http://127.0.0.1:${await freePort()}`;
    r = await cli(["health", "cli-b", "--json"], { env: { EDGE_JOBS_URL: closed } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot reach ${closed}`);
    expect(r.stdout).toBe("");
    expect((await cli(["endpoints", "list", "--url", closed])).code).toBe(3);
  });
});
