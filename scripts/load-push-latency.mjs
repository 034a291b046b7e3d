#!/usr/bin/env node
// Measures push dispatch latency against a running `npm start`: the time from sending a submit
// to the push worker receiving the job, through the endpoint, the local Queue and the consumer.
// Starts its own push receiver on loopback. Bounded by N.
//
//   node scripts/load-push-latency.mjs            (N=200, C=4, BASE=http://127.0.0.1:8787)
import { createServer } from "node:http";

const base = process.env.BASE ?? "http://127.0.0.1:8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const n = Number(process.env.N ?? 200);
const concurrency = Number(process.env.C ?? 4);
if (!/^http:\/\/(127\.|localhost|\[::1\])/.test(base)) throw new Error("load runs against loopback only");

const sentAt = new Map();
const latencies = [];
let resolveAll;
const all = new Promise((r) => (resolveAll = r));
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const t0 = sentAt.get(job.input.k);
    if (t0 !== undefined) latencies.push(performance.now() - t0);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ output: "ok" }));
    if (latencies.length >= n) resolveAll();
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const port = receiver.address().port;

const ep = `push-latency-${Date.now().toString(36)}`;
const auth = { authorization: `Bearer ${adminKey}` };
const put = await fetch(`${base}/admin/endpoints/${ep}`, { method: "PUT", headers: auth, body: JSON.stringify({ mode: "push", workerUrls: [`http://127.0.0.1:${port}/`] }) });
if (!put.ok) throw new Error(`create endpoint: ${put.status} ${await put.text()}`);

let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    for (let k = next++; k < n; k = next++) {
      sentAt.set(k, performance.now());
      const res = await fetch(`${base}/v2/${ep}/run`, { method: "POST", headers: auth, body: JSON.stringify({ input: { k } }) });
      await res.arrayBuffer();
    }
  }),
);
const timeout = setTimeout(() => resolveAll(), 60_000);
await all;
clearTimeout(timeout);
receiver.close();
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(0);
console.log(`push dispatch: ${latencies.length}/${n} jobs received, concurrency ${concurrency}, against ${base}`);
console.log(`submit sent → push received   median ${pct(50)} ms   p90 ${pct(90)} ms   p99 ${pct(99)} ms`);
