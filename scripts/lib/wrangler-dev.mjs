// Starts a Worker with `wrangler dev`, offline, with local Durable Objects — the one place the
// flags live, so `npm start` and the benchmark's two Workers run with the same settings.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
export const WRANGLER = path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
export const OFFLINE_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", DO_NOT_TRACK: "1" };

/** wrangler dev's arguments: config, address, state location, log level and vars. */
export function wranglerDevArgs({ config, host, port, persist, logLevel, vars = {} }) {
  const args = [WRANGLER, "dev", "--local", "--ip", host, "--port", String(port), "--persist-to", persist];
  if (config) args.push("--config", config);
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  args.push("--log-level", logLevel, "--show-interactive-dev-session=false");
  return args;
}

/** Spawns wrangler dev with the running Node (Node 24 under npm scripts). */
export function spawnWranglerDev(settings, { stdio = ["ignore", "inherit", "inherit"], detached = false } = {}) {
  return spawn(process.execPath, wranglerDevArgs(settings), {
    cwd: ROOT,
    stdio,
    detached,
    env: { ...process.env, ...OFFLINE_ENV },
  });
}

/** Resolves true once `url` answers 2xx, false if the process exits first or `timeoutMs` passes. */
export async function waitReady(child, url, { headers = {}, timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    try {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
