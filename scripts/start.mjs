#!/usr/bin/env node
// `npm start`: serves edge-jobs locally with wrangler dev — offline, local Durable Objects
// (SQLite under .wrangler/state), no account — and prints what it serves and the admin key.
//
// Environment: PORT (8787), HOST (127.0.0.1), ADMIN_KEY (dev-admin-key), PERSIST_DIR
// (.wrangler/state), TAKE_WAIT_MS (30000), WEBHOOK_TIMEOUT_MS (10000), LOG_LEVEL (warn).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const host = process.env.HOST ?? "127.0.0.1";
const port = process.env.PORT ?? "8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const persist = process.env.PERSIST_DIR ?? path.join(root, ".wrangler", "state");
const wrangler = path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");

const args = [
  wrangler, "dev", "--local",
  "--ip", host, "--port", port,
  "--persist-to", persist,
  "--var", `ADMIN_KEY:${adminKey}`,
  "--var", "LOCAL_DEV:true",
  "--var", `TAKE_WAIT_MS:${process.env.TAKE_WAIT_MS ?? "30000"}`,
  "--var", `WEBHOOK_TIMEOUT_MS:${process.env.WEBHOOK_TIMEOUT_MS ?? "10000"}`,
  "--log-level", process.env.LOG_LEVEL ?? "warn",
  "--show-interactive-dev-session=false",
];

const child = spawn(process.execPath, args, {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", DO_NOT_TRACK: "1" },
});

const base = `http://${host}:${port}`;
const started = Date.now();
async function waitReady() {
  while (child.exitCode === null) {
    try {
      const res = await fetch(`${base}/`, { headers: { authorization: `Bearer ${adminKey}` } });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

waitReady().then((ready) => {
  if (!ready) return;
  console.log(`
edge-jobs is serving at ${base}  (ready in ${Date.now() - started} ms)
  admin key     ${adminKey}
  client API    ${base}/v2/{endpointId}/run | runsync | status/{id} | cancel/{id} | health ...
  worker API    ${base}/v2/{endpointId}/job-take/{workerId} | job-done/{workerId}/{jobId}
  admin API     ${base}/admin/endpoints
  state         ${persist}

Try:
  curl -X PUT ${base}/admin/endpoints/demo -H "Authorization: Bearer ${adminKey}"
  curl -X POST ${base}/v2/demo/run -H "Authorization: Bearer ${adminKey}" -d '{"input":{"prompt":"hello"}}'
`);
});

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
