#!/usr/bin/env node
// `npm start`: serves edge-jobs locally with wrangler dev — offline, local Durable Objects
// (SQLite under .wrangler/state), no account — and prints what it serves and the admin key.
//
// Environment: PORT (8787), HOST (127.0.0.1), ADMIN_KEY (dev-admin-key), PERSIST_DIR
// (.wrangler/state), TAKE_WAIT_MS (30000), WEBHOOK_TIMEOUT_MS (10000), LOG_LEVEL (warn),
// PUBLIC_URL (the address served, http://HOST:PORT: where push workers report), RATE_LIMITS ("on";
// "off" turns the client rate limits off, e.g. for a load test).
import path from "node:path";
import { vendorAssets } from "./lib/vendor-assets.mjs";
import { ROOT, spawnWranglerDev, waitReady } from "./lib/wrangler-dev.mjs";

vendorAssets();

const host = process.env.HOST ?? "127.0.0.1";
const port = process.env.PORT ?? "8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const persist = process.env.PERSIST_DIR ?? path.join(ROOT, ".wrangler", "state");
const base = `http://${host}:${port}`;

const child = spawnWranglerDev({
  host,
  port,
  persist,
  logLevel: process.env.LOG_LEVEL ?? "warn",
  vars: {
    ADMIN_KEY: adminKey,
    LOCAL_DEV: "true",
    TAKE_WAIT_MS: process.env.TAKE_WAIT_MS ?? "30000",
    WEBHOOK_TIMEOUT_MS: process.env.WEBHOOK_TIMEOUT_MS ?? "10000",
    PUBLIC_URL: process.env.PUBLIC_URL ?? base,
    RATE_LIMITS: process.env.RATE_LIMITS ?? "on",
  },
});

const started = Date.now();
waitReady(child, `${base}/`, { headers: { authorization: `Bearer ${adminKey}` }, timeoutMs: Infinity }).then((ready) => {
  if (!ready) return;
  console.log(`
edge-jobs is serving at ${base}  (ready in ${Date.now() - started} ms)
  admin key     ${adminKey}
  client API    ${base}/v2/{endpointId}/run | runsync | status/{id} | cancel/{id} | health ...
  worker API    ${base}/v2/{endpointId}/job-take/{workerId} | job-done/{workerId}/{jobId}
  admin API     ${base}/admin/endpoints
  API reference ${base}/docs  (OpenAPI 3.1: ${base}/openapi.json)
  state         ${persist}

Try:
  curl -X PUT ${base}/admin/endpoints/demo -H "Authorization: Bearer ${adminKey}"
  curl -X POST ${base}/v2/demo/run -H "Authorization: Bearer ${adminKey}" -d '{"input":{"prompt":"hello"}}'
`);
});

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
