/**
 * A smoke run of `npm run bench:scale` (scripts/bench-scale.mjs) with tiny numbers: every phase
 * completes and the JSON it writes holds every field with sane values. It measures, it is not a
 * timed test: the bounds below are what the protocol implies (a lifecycle reaches the endpoint
 * at least once per job; a RunPod worker pings 6 times a minute), not speeds.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./harness";

const dir = mkdtempSync(path.join(tmpdir(), "edge-jobs-bench-scale-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Pcts {
  n: number;
  p50: number;
  p90: number;
}
interface Busiest {
  kind: string;
  name: string;
  calls: { total: number; byMethod: Record<string, number> };
  rowsWritten: number;
  callsPerSecond: number;
  seconds: number;
}
interface Result {
  settings: { jobs: number; workers: number; compress: number; depths: number[]; takeWaitMs: number; state: { kind: string } };
  lifecycle: {
    jobs: number;
    jobsPerSecond: number;
    load: { objects: number; busiest: Busiest };
    callsPerJob: number;
    callsPerJobByMethod: Record<string, number>;
    rowsWrittenPerJob: number;
    ceilingJobsPerSecond: { at500: number; at1000: number };
    steps: Record<string, Pcts>;
  };
  fleet: {
    workers: number;
    wallSeconds: number;
    realSecondsSimulated: number;
    load: { busiest: Busiest };
    livenessCallsPerWorkerMinute: number;
    byMethodPerWorkerMinute: Record<string, number>;
    callsPerSecondPer1000Workers: number;
    errorCount: number;
  };
  depths: Array<{ depth: number; fillMs: number; fillPerSecond: number; fillCallsPerSubmit: number; status: Pcts; statusAgain: Pcts; takeDone: Pcts }>;
}

function runScale(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", "bench-scale.mjs"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
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

const SAMPLES = 4;

describe("npm run bench:scale", () => {
  it("refuses bad options with the usage and exit code 2, starting nothing", async () => {
    for (const args of [["--jobs", "0"], ["--bogus"], ["--depths", "200,abc"], ["--depths", "2", "--samples", "5"], ["--state", "ssd"], ["--compress", "1000"]]) {
      const { code, output } = await runScale(args);
      expect(code, args.join(" ")).toBe(2);
      expect(output).toMatch(/usage: npm run bench:scale/);
      expect(output).not.toMatch(/scale benchmark/);
    }
  });

  it("runs every phase and writes calls per job, liveness per worker-minute, ceilings and latencies", { timeout: 180_000 }, async () => {
    const out = path.join(dir, "scale.json");
    const args = ["--jobs", "6", "--concurrency", "2", "--workers", "4", "--compress", "30", "--fleet-seconds", "3", "--depths", "10,20", "--samples", String(SAMPLES), "--json", out];
    const { code, output } = await runScale(args);
    expect(code, output).toBe(0);
    expect(output).toMatch(/calls per job/);
    expect(output).toMatch(/liveness calls per worker-minute/);
    const r = JSON.parse(readFileSync(out, "utf8")) as Result;
    expect(r.settings).toMatchObject({ jobs: 6, workers: 4, compress: 30, depths: [10, 20], takeWaitMs: 1000 });

    // Lifecycle: the endpoint object, its 7 index shards (the default 8) and its workers' liveness
    // shards serve it; the busiest of them takes calls for the jobs it indexes or the workers it
    // keeps, and the ceilings follow from the calls per job.
    const life = r.lifecycle;
    expect(life).toMatchObject({ jobs: 6 });
    expect(life.load.objects).toBeGreaterThanOrEqual(8);
    expect(["endpoint", "shard", "liveness"]).toContain(life.load.busiest.kind);
    expect(life.jobsPerSecond).toBeGreaterThan(0);
    expect(life.callsPerJob).toBeGreaterThan(0);
    expect(life.callsPerJob).toBeCloseTo(life.load.busiest.calls.total / 6, 2);
    const byMethod = Object.values(life.callsPerJobByMethod).reduce((a, b) => a + b, 0);
    expect(byMethod).toBeCloseTo(life.callsPerJob, 1);
    expect(life.rowsWrittenPerJob).toBeGreaterThan(0);
    // The ceilings come from the exact calls per job (callsPerJob is rounded to 3 places).
    expect(life.ceilingJobsPerSecond.at500).toBe(Math.floor((500 * 6) / life.load.busiest.calls.total));
    expect(life.ceilingJobsPerSecond.at1000).toBe(Math.floor((1000 * 6) / life.load.busiest.calls.total));
    expect(Object.keys(life.steps)).toEqual(["submit", "take", "done", "status"]);
    for (const s of Object.values(life.steps)) expect(s).toMatchObject({ n: 6, p50: expect.any(Number), p90: expect.any(Number) });

    // Fleet: idle workers ping (6 a minute in real time), poll job-stop and take; nothing failed.
    const fleet = r.fleet;
    expect(fleet.workers).toBe(4);
    expect(fleet.errorCount).toBe(0);
    // Idle takes park on the index shards (the endpoint object relays between them); pings and
    // job-stop polls go to the workers' liveness shards, never the endpoint object.
    expect(["endpoint", "shard", "liveness"]).toContain(fleet.load.busiest.kind);
    expect(fleet.realSecondsSimulated).toBeGreaterThan(fleet.wallSeconds * 20);
    expect(fleet.livenessCallsPerWorkerMinute).toBeGreaterThan(0);
    if (fleet.load.busiest.kind === "liveness") {
      expect(Object.keys(fleet.byMethodPerWorkerMinute)).toEqual(expect.arrayContaining(["ping", "takeStops"]));
      expect(fleet.byMethodPerWorkerMinute.ping).toBeGreaterThan(0);
    } else {
      expect(Object.keys(fleet.byMethodPerWorkerMinute)).not.toContain("ping");
    }
    expect(fleet.callsPerSecondPer1000Workers).toBeCloseTo((fleet.livenessCallsPerWorkerMinute * 1000) / 60, 0);

    // Depths: each filled (timed) and measured with every sample.
    expect(r.depths.map((d) => d.depth)).toEqual([10, 20]);
    for (const d of r.depths) {
      expect(d.fillMs).toBeGreaterThan(0);
      expect(d.fillPerSecond).toBeGreaterThan(0);
      // Spread over the index shards: the busiest takes a share of the submits' index updates.
      expect(d.fillCallsPerSubmit).toBeGreaterThan(0);
      // The status reads run twice over the same sampled jobs (cold, then warm).
      for (const s of [d.status, d.statusAgain, d.takeDone]) {
        expect(s.n).toBe(SAMPLES);
        expect(s.p50).toBeGreaterThan(0);
        expect(s.p50).toBeLessThanOrEqual(s.p90);
      }
    }
  });
});
