/**
 * A smoke run of `npm run bench` (scripts/bench.mjs) with a few jobs: edge-jobs pull and push,
 * the platform and queue floors and BullMQ on redis-server all complete their lifecycles, and the JSON it
 * writes holds every run, its steps and the ratios. It measures nothing worth quoting; it keeps
 * the benchmark runnable from a clean checkout.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
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
  jobsPerSecond: number;
  lifecycle: Summary;
  steps: Record<string, Summary>;
  cpuMsPerJob: { server: number | null; client: number };
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", "bench.mjs"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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

describe("npm run bench", () => {
  it("refuses bad options with the usage and exit code 2, starting nothing", async () => {
    for (const args of [["--jobs", "0"], ["--bogus"], ["--systems", "edge,redis"], ["--state", "ssd"]]) {
      const { code, output } = await runBench(args);
      expect(code, args.join(" ")).toBe(2);
      expect(output).toMatch(/usage: npm run bench/);
      expect(output).not.toMatch(/lifecycle benchmark/);
    }
  });

  it("runs every system's lifecycle and writes runs, steps and ratios", { timeout: 180_000 }, async () => {
    const out = path.join(dir, "bench.json");
    const { code, output } = await runBench(["--jobs", "4", "--warmup", "1", "--concurrency", "2", "--max-seconds", "60", "--out", out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/state on \w+ .*--log-level warn/);
    const result = JSON.parse(readFileSync(out, "utf8")) as { settings: { state: { kind: string } }; runs: Run[]; ratios: Array<{ peer: string; throughput: number; lifecycleP50: number }> };
    expect(result.runs.map((r) => `${r.system}/${r.mode}`)).toEqual(["edge-jobs/pull", "edge-jobs/push", "edge-jobs/push-sync", "floor/pull", "queue-floor/pull", "bullmq/pull"]);
    for (const run of result.runs) {
      expect(run).toMatchObject({ concurrency: 2, jobs: 4 });
      expect(run.jobsPerSecond).toBeGreaterThan(0);
      expect(run.lifecycle.n).toBe(4);
      const steps = { push: ["submit", "push", "done", "status"], "push-sync": ["runsync", "push"], pull: ["submit", "take", "done", "status"] }[run.mode];
      expect(Object.keys(run.steps)).toEqual(steps);
      for (const s of Object.values(run.steps)) expect(s.p50).toBeGreaterThan(0);
      // CPU per job of the server's process group (read from /proc on Linux, in 10 ms ticks: a
      // few jobs of Redis's may round to 0; workerd's never do) and of the load generator.
      if (process.platform === "linux") {
        expect(run.cpuMsPerJob.server).toBeGreaterThanOrEqual(0);
        if (run.system !== "bullmq") expect(run.cpuMsPerJob.server).toBeGreaterThan(0);
      }
      expect(run.cpuMsPerJob.client).toBeGreaterThan(0);
    }
    // Each of the three edge-jobs runs against each of the three others.
    expect(result.ratios.map((r) => r.peer).sort()).toEqual(["bullmq", "bullmq", "bullmq", "floor", "floor", "floor", "queue-floor", "queue-floor", "queue-floor"]);
    for (const r of result.ratios) expect(Number.isFinite(r.throughput) && Number.isFinite(r.lifecycleP50)).toBe(true);
  });
});
