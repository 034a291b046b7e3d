/**
 * A smoke run of `npm run bench` (scripts/bench.mjs) with a few jobs: edge-jobs (pull, pull-next,
 * push, push-sync) and the platform and queue floors all complete their lifecycles, and the JSON
 * it writes holds every run, its steps and the ratios. It measures nothing worth quoting; it keeps
 * the benchmark runnable from a clean checkout on a machine with nothing installed by hand, so it
 * names its systems (`--systems edge,floor`): BullMQ, which needs a Redis server, is never part of
 * `npm test`; only the refusal to run it without one is checked.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./harness";

const dir = mkdtempSync(path.join(tmpdir(), "edge-jobs-bench-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


interface Summary {
  n: number;
  p50: number;
  p99: number;
}
interface Run {
  system: string;
  mode: string;
  concurrency: number;
  jobs: number;
  truncated: boolean;
  wallMs: number;
  jobsPerSecond: number;
  lifecycle: Summary;
  steps: Record<string, Summary>;
  cpuMsPerJob: { server: number | null; serverNote?: string; client: number };
  objectCalls?: { perJob: number; byKind: Record<string, number>; byMethod: Record<string, number>; busiest: { kind: string; name: string; perJob: number } | null };
}
interface Ratio {
  edge: string;
  peer: string;
  concurrency: number;
  throughput: number;
  lifecycleP50: number;
}
interface Result {
  settings: { state: { kind: string }; redis: string | null };
  skipped: Array<{ system: string; reason: string }>;
  runs: Run[];
  ratios: Ratio[];
}

function runBench(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", "bench.mjs"), ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The environment with every PATH directory that holds a redis-server left out. */
function envWithoutRedis(): NodeJS.ProcessEnv {
  const hasRedis = (d: string) => {
    try {
      accessSync(path.join(d, "redis-server"), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const PATH = (process.env.PATH ?? "").split(path.delimiter).filter((d) => d && !hasRedis(d)).join(path.delimiter);
  return { ...process.env, PATH };
}

const JOBS = 4;
let result: Result | undefined;

describe("npm run bench", () => {
  it("refuses bad options with the usage and exit code 2, starting nothing", async () => {
    for (const args of [["--jobs", "0"], ["--bogus"], ["--systems", "edge,redis"], ["--state", "ssd"]]) {
      const { code, output } = await runBench(args);
      expect(code, args.join(" ")).toBe(2);
      expect(output).toMatch(/usage: npm run bench/);
      expect(output).not.toMatch(/lifecycle benchmark/);
    }
  });

  it("refuses --systems bullmq without a redis-server on the PATH, saying how to include it", async () => {
    const { code, output } = await runBench(["--systems", "bullmq"], envWithoutRedis());
    expect(code, output).toBe(2);
    expect(output).toMatch(/redis-server is not on the PATH; to include BullMQ, install Redis/);
    expect(output).not.toMatch(/lifecycle benchmark/);
  });

  it("runs every available system's lifecycle and writes runs, steps and ratios", { timeout: 180_000 }, async () => {
    const out = path.join(dir, "bench.json");
    const { code, output } = await runBench(["--systems", "edge,floor", "--jobs", String(JOBS), "--warmup", "1", "--concurrency", "2", "--max-seconds", "60", "--out", out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/state on \w+ .*--log-level warn/);
    result = JSON.parse(readFileSync(out, "utf8")) as Result;
    const peers = ["floor", "queue-floor"];
    expect(result.runs.map((r) => `${r.system}/${r.mode}`)).toEqual(["edge-jobs/pull", "edge-jobs/pull-next", "edge-jobs/push", "edge-jobs/push-sync", ...peers.map((p) => `${p}/pull`)]);
    // Named systems only: nothing is left out.
    expect(result.skipped).toEqual([]);
    for (const run of result.runs) {
      const what = `${run.system}/${run.mode}`;
      // Every job asked for completed, within the time limit.
      expect(run, what).toMatchObject({ concurrency: 2, jobs: JOBS, truncated: false, lifecycle: { n: JOBS } });
      expect(run.wallMs, what).toBeGreaterThan(0);
      expect(run.jobsPerSecond, what).toBeGreaterThan(0);
      // Throughput is the jobs over the wall time (rounded to 0.1 jobs/s; wallMs to 1 ms).
      expect(Math.abs(run.jobsPerSecond - (JOBS / run.wallMs) * 1000), what).toBeLessThanOrEqual(0.05 + (JOBS * 1000) / run.wallMs ** 2);
      expect(run.lifecycle.p50, what).toBeGreaterThan(0);
      expect(run.lifecycle.p50, what).toBeLessThanOrEqual(run.lifecycle.p99);
      const steps = { push: ["submit", "push", "done", "status"], "push-sync": ["runsync", "push"], pull: ["submit", "take", "done", "status"], "pull-next": ["submit", "take", "done", "status"] }[run.mode];
      // A pull-next run where every job-done handed the next job made no take at all.
      const expected = run.mode === "pull-next" && !("take" in run.steps) ? steps!.filter((s) => s !== "take") : steps!;
      expect(Object.keys(run.steps).sort(), what).toEqual([...expected].sort());
      for (const [name, s] of Object.entries(run.steps)) {
        // With done-and-take-next a worker takes only when its last job-done handed it nothing.
        if (run.mode === "pull-next" && name === "take") expect(s.n, `${what} ${name}`).toBeLessThanOrEqual(JOBS);
        else expect(s.n, `${what} ${name}`).toBe(JOBS);
        expect(s.p50, `${what} ${name}`).toBeGreaterThan(0);
        expect(s.p50, `${what} ${name}`).toBeLessThanOrEqual(s.p99);
        // A step is part of its job's lifecycle, so no step's percentile exceeds the lifecycle's.
        expect(s.p99, `${what} ${name}`).toBeLessThanOrEqual(run.lifecycle.p99);
      }
      // CPU per job of the server's process group (read from /proc on Linux, in 10 ms ticks) and
      // of the load generator. workerd always uses ticks for a few jobs; a few jobs of Redis's may
      // take less than one tick: then the reading is absent, with the reason, never a silent 0.
      if (process.platform === "linux") {
        if (run.system === "bullmq" && run.cpuMsPerJob.server === null) {
          expect(run.cpuMsPerJob.serverNote, what).toMatch(/less than one clock tick/);
        } else {
          expect(run.cpuMsPerJob.server, what).toBeGreaterThan(0);
        }
      }
      expect(run.cpuMsPerJob.client, what).toBeGreaterThan(0);
      // The calls edge-jobs' endpoint objects served per counted job (the load report, reset after the warm-up).
      if (run.system !== "edge-jobs") {
        expect(run.objectCalls, what).toBeUndefined();
        continue;
      }
      const calls = run.objectCalls!;
      const byMethod = (m: string) => calls.byMethod[m] ?? 0;
      // Every job's submit and final report reach its index shard once each (a push claim once more).
      expect(byMethod("shard.sync"), what).toBe(run.mode.startsWith("push") ? 3 : 2);
      if (run.mode === "pull") {
        // The claim tells the worker's liveness shard of the grant, the report of the release.
        expect(byMethod("liveness.hold"), what).toBe(2);
      } else if (run.mode === "pull-next") {
        // The same, but a job a warm-up job-done handed out was claimed (its grant told) before the reset.
        expect(byMethod("liveness.hold"), what).toBeGreaterThanOrEqual(1);
        expect(byMethod("liveness.hold"), what).toBeLessThanOrEqual(2);
      } else {
        // The dispatch reads the endpoint's config from the isolate's cache: one read per run at most.
        expect(byMethod("endpoint.getConfig"), what).toBeLessThanOrEqual(1 / JOBS);
      }
      expect(calls.perJob, what).toBeCloseTo(Object.values(calls.byKind).reduce((a, b) => a + b, 0), 1);
      expect(calls.busiest, what).not.toBeNull();
      expect(calls.busiest!.perJob, what).toBeLessThanOrEqual(calls.perJob);
    }
    // Each of the four edge-jobs runs against each of the others, paired with the right runs.
    expect(result.ratios.map((r) => r.peer).sort()).toEqual(peers.flatMap((p) => [p, p, p, p]).sort());
    for (const r of result.ratios) {
      const edge = result.runs.find((x) => `edge-jobs ${x.mode}` === r.edge && x.concurrency === r.concurrency)!;
      const peer = result.runs.find((x) => x.system === r.peer && x.concurrency === r.concurrency)!;
      expect(r.throughput, `${r.edge} / ${r.peer}`).toBeCloseTo(edge.jobsPerSecond / peer.jobsPerSecond, 1);
      expect(r.lifecycleP50, `${r.edge} / ${r.peer}`).toBeCloseTo(edge.lifecycle.p50 / peer.lifecycle.p50, 1);
    }
  });
});
