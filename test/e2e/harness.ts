/**
 * Starts the real Worker the way `npm start` does (wrangler dev, offline, local Durable Objects)
 * on a free loopback port with its own state directory, and external processes beside it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";

export const ROOT = path.resolve(import.meta.dirname, "..", "..");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Server {
  base: string;
  adminKey: string;
  /** What the server printed so far (for a failing test's diagnostics). */
  log: readonly string[];
  stop(): Promise<void>;
}

export function spawnNode(script: string, env: Record<string, string>, log: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [path.join(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.on("data", (d: Buffer) => log.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => log.push(d.toString()));
  return child;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(-child.pid!, "SIGTERM");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

export async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const persist = mkdtempSync(path.join(tmpdir(), "edge-jobs-e2e-"));
  const adminKey = "e2e-admin-key";
  const log: string[] = [];
  const base = `http://127.0.0.1:${port}`;
  // Push workers report to the address served, whatever Host a request names.
  const child = spawnNode("scripts/start.mjs", { PORT: String(port), PERSIST_DIR: persist, ADMIN_KEY: adminKey, PUBLIC_URL: base, ...env }, log);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${log.join("")}`);
    if (log.join("").includes("edge-jobs is serving at")) break;
    if (Date.now() > deadline) throw new Error(`npm start did not get ready in 60 s:\n${log.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    adminKey,
    log,
    async stop() {
      await stopProcess(child);
      rmSync(persist, { recursive: true, force: true });
    },
  };
}

/** A server for one test file, and the processes its tests start beside it. */
export interface FileServer extends Server {
  procs: ChildProcess[];
}

/**
 * Starts the server before the file's tests; after them stops the processes pushed to `procs`,
 * then the server. Its fields can be read once the tests run.
 */
export function useServer(env: Record<string, string> = {}): FileServer {
  let started: Server | undefined;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    started = await startServer(env);
  });
  afterAll(async () => {
    await Promise.all(procs.map(stopProcess));
    await started?.stop();
  });
  const running = (): Server => {
    if (!started) throw new Error("the server starts in beforeAll; use it inside a test");
    return started;
  };
  return {
    get base() {
      return running().base;
    },
    get adminKey() {
      return running().adminKey;
    },
    get log() {
      return running().log;
    },
    stop: () => running().stop(),
    procs,
  };
}
