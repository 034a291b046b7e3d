#!/usr/bin/env node
// Measures webhook delivery latency against a running `npm start`: from the moment a job turns
// terminal (the worker's job-done answered 200) to the receiver getting the webhook. Runs its own
// receiver and a RunPod-protocol worker loop on loopback. Bounded by N.
//
//   node scripts/load-webhook-latency.mjs          (N=100, BASE=http://127.0.0.1:8787)
import { createServer } from "node:http";

const base = process.env.BASE ?? "http://127.0.0.1:8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const n = Number(process.env.N ?? 100);
if (!/^http:\/\/(127\.|localhost|\[::1\])/.test(base)) throw new Error("load runs against loopback only");

const doneAt = new Map();
const latencies = [];
const receivedBeforeDone = new Map();
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const now = performance.now();
    const { id } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const t0 = doneAt.get(id);
    if (t0 === undefined) receivedBeforeDone.set(id, now);
    else latencies.push(now - t0);
    res.writeHead(200).end("ok");
  });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const webhook = `http://127.0.0.1:${receiver.address().port}/hook`;

const ep = `webhook-latency-${Date.now().toString(36)}`;
const auth = { authorization: `Bearer ${adminKey}` };
const put = await fetch(`${base}/admin/endpoints/${ep}`, { method: "PUT", headers: auth, body: "{}" });
if (!put.ok) throw new Error(`create endpoint: ${put.status}`);

for (let i = 0; i < n; i++) {
  await (await fetch(`${base}/v2/${ep}/run`, { method: "POST", headers: auth, body: JSON.stringify({ input: { i }, webhook }) })).arrayBuffer();
  const job = await (await fetch(`${base}/v2/${ep}/job-take/lat?job_in_progress=0`, { headers: { authorization: adminKey } })).json();
  const done = await fetch(`${base}/v2/${ep}/job-done/lat/${job.id}?isStream=false`, { method: "POST", headers: { authorization: adminKey }, body: '{"output":1}' });
  await done.arrayBuffer();
  const t = performance.now();
  const early = receivedBeforeDone.get(job.id);
  if (early !== undefined) latencies.push(Math.max(0, early - t)); // arrived before job-done's answer did
  else doneAt.set(job.id, t);
}
const deadline = Date.now() + 30_000;
while (latencies.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
receiver.close();
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(0);
console.log(`webhooks: ${latencies.length}/${n} delivered, against ${base}`);
console.log(`terminal state → receiver   median ${pct(50)} ms   p90 ${pct(90)} ms   p99 ${pct(99)} ms`);
