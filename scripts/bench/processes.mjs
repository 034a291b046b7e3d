// Child processes for the benchmark: free loopback ports, stopping a process group, and the CPU
// time a process group has used (Linux /proc; null elsewhere).
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { waitReady } from "../lib/wrangler-dev.mjs";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** SIGTERM to the child's process group (spawned detached), SIGKILL after 5 s. */
export async function stopGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const signal = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Waits for a server started as a detached `child` to answer `readyUrl`; returns how to reach,
 * meter and stop it, or stops it and throws with what it printed.
 */
export async function serverReady(child, base, readyUrl, what, headers = {}) {
  const output = captureOutput(child);
  if (!(await waitReady(child, readyUrl, { headers }))) {
    await stopGroup(child);
    throw new Error(`${what} did not start:\n${output.join("\n")}`);
  }
  return { base, cpuMs: () => groupCpuMs(child.pid), stop: () => stopGroup(child) };
}

/** Keeps the last lines a child printed, to show when it fails to start. */
export function captureOutput(child, lines = []) {
  const keep = (d) => {
    lines.push(...d.toString().split("\n").filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return lines;
}

const ticksPerSecond = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** CPU time (user + system, ms) used so far by the live processes of process group `pgid`. */
export function groupCpuMs(pgid) {
  let dirs;
  try {
    dirs = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null; // no /proc: not Linux
  }
  let ticks = 0;
  for (const pid of dirs) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return (ticks * 1000) / ticksPerSecond;
}
