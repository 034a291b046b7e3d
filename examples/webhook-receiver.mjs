#!/usr/bin/env node
// A webhook receiver: verifies every delivery's Standard Webhooks signature with the endpoint's
// secret (the `standardwebhooks` package), drops repeats by webhook-id, and logs one JSON line
// per delivery. This is all a receiver needs:
//
//   const wh = new Webhook(process.env.WEBHOOK_SECRET);       // whsec_…, from the endpoint config
//   const payload = wh.verify(rawBody, request.headers);      // throws unless genuine and fresh
//   if (seen.has(headers["webhook-id"])) return 200;           // a retry of an event you have
//
//   PORT=9200 WEBHOOK_SECRET=whsec_… node examples/webhook-receiver.mjs
//
// For tests: FAIL_EACH=n answers 500 to the first n attempts of every event, then HANG_EACH=m
// never answers the next m (so the sender's timeout fires), then answers 200.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const port = Number(process.env.PORT ?? 9200);
const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error("set WEBHOOK_SECRET to the endpoint's webhookSecret");
const verifier = new Webhook(secret);
const failEach = Number(process.env.FAIL_EACH ?? 0);
const hangEach = Number(process.env.HANG_EACH ?? 0);
const attempts = new Map(); // webhook-id → attempts seen
const delivered = new Set(); // webhook-ids answered 200

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const receivedAt = Date.now();
    const body = Buffer.concat(chunks).toString("utf8");
    let payload;
    try {
      payload = verifier.verify(body, req.headers);
    } catch (e) {
      console.log(JSON.stringify({ event: "rejected", error: String(e), receivedAt }));
      res.writeHead(401).end();
      return;
    }
    const id = req.headers["webhook-id"];
    const n = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, n);
    const line = { webhookId: id, jobId: payload.id, status: payload.status, seq: payload.seq, attempt: n, receivedAt };
    if (n <= failEach) {
      console.log(JSON.stringify({ event: "failed-on-purpose", ...line }));
      res.writeHead(500).end("not yet");
      return;
    }
    if (n <= failEach + hangEach) {
      console.log(JSON.stringify({ event: "hung-on-purpose", ...line }));
      return; // never answer
    }
    const repeat = delivered.has(id);
    delivered.add(id);
    console.log(JSON.stringify({ event: repeat ? "repeat" : "received", ...line }));
    res.writeHead(200).end("ok");
  });
});

server.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ event: "listening", port })));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
