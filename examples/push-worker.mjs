#!/usr/bin/env node
// A push worker: an HTTP service that edge-jobs POSTs jobs to (endpoint mode "push"). It checks
// every push's Standard Webhooks signature with the endpoint's secret, then either answers with
// the result at once (200 {"output": …}) or, with ASYNC=1, accepts (202) and reports the result
// later to the job-done URL it was given (no API key needed: the URL carries a token).
//
//   PORT=9100 WEBHOOK_SECRET=whsec_… node examples/push-worker.mjs
//
// FAIL_FIRST=n answers 503 to the first n pushes (to see retries). Each push is logged as one
// JSON line: {"event":"push","id":…,"attempt":…,"receivedAt":…}.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const port = Number(process.env.PORT ?? 9100);
const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error("set WEBHOOK_SECRET to the endpoint's webhookSecret (GET /admin/endpoints/{id})");
const verifier = new Webhook(secret);
let failFirst = Number(process.env.FAIL_FIRST ?? 0);
const asyncMode = process.env.ASYNC === "1";

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const receivedAt = Date.now();
    const body = Buffer.concat(chunks).toString("utf8");
    let job;
    try {
      job = verifier.verify(body, req.headers);
    } catch (e) {
      console.log(JSON.stringify({ event: "bad-signature", error: String(e) }));
      res.writeHead(401).end("bad signature");
      return;
    }
    console.log(JSON.stringify({ event: "push", id: job.id, attempt: job.attempt, receivedAt }));
    if (failFirst > 0) {
      failFirst--;
      res.writeHead(503).end("warming up");
      return;
    }
    const output = { echo: job.input, attempt: job.attempt };
    if (!asyncMode) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ output }));
      return;
    }
    res.writeHead(202).end();
    const done = await fetch(job.urls.done, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ output }) });
    console.log(JSON.stringify({ event: "reported", id: job.id, status: done.status }));
  });
});

server.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ event: "listening", port })));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
