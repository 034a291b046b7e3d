#!/usr/bin/env node
// Measures submit + status throughput against a running `npm start`: N jobs submitted with
// concurrency C, then each job's status read once. Loopback only; bounded by N.
//
//   node scripts/load-submit-status.mjs            (N=1000, C=16, BASE=http://127.0.0.1:8787)
//   N=5000 C=32 node scripts/load-submit-status.mjs
const base = process.env.BASE ?? "http://127.0.0.1:8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const n = Number(process.env.N ?? 1000);
const concurrency = Number(process.env.C ?? 16);
const ep = process.env.ENDPOINT_ID ?? `load-${Date.now().toString(36)}`;
const auth = { authorization: `Bearer ${adminKey}` };

if (!/^http:\/\/(127\.|localhost|\[::1\])/.test(base)) throw new Error("load runs against loopback only");

async function pool(count, fn) {
  const times = new Array(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = performance.now();
        await fn(i);
        times[i] = performance.now() - t0;
      }
    }),
  );
  const wall = performance.now() - started;
  times.sort((a, b) => a - b);
  const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))].toFixed(1);
  return { perSec: (count / wall) * 1000, p50: pct(50), p99: pct(99), wallMs: wall };
}

const put = await fetch(`${base}/admin/endpoints/${ep}`, { method: "PUT", headers: auth, body: "{}" });
if (!put.ok) throw new Error(`create endpoint: ${put.status} ${await put.text()}`);

const ids = [];
const submit = await pool(n, async (i) => {
  const res = await fetch(`${base}/v2/${ep}/run`, { method: "POST", headers: auth, body: JSON.stringify({ input: { i } }) });
  if (res.status !== 200) throw new Error(`run: ${res.status} ${await res.text()}`);
  ids[i] = (await res.json()).id;
});
const status = await pool(n, async (i) => {
  const res = await fetch(`${base}/v2/${ep}/status/${ids[i]}`, { headers: auth });
  const body = await res.json();
  if (res.status !== 200 || body.status !== "IN_QUEUE") throw new Error(`status: ${res.status} ${JSON.stringify(body)}`);
});
const health = await (await fetch(`${base}/v2/${ep}/health`, { headers: auth })).json();
if (health.jobs.inQueue !== n) throw new Error(`health counts ${health.jobs.inQueue} queued, expected ${n}`);

const fmt = (name, r) => `${name.padEnd(8)} ${r.perSec.toFixed(0).padStart(6)} req/s   p50 ${r.p50} ms   p99 ${r.p99} ms   (${(r.wallMs / 1000).toFixed(1)} s)`;
console.log(`submit+status: ${n} jobs, concurrency ${concurrency}, endpoint ${ep}, against ${base}`);
console.log(fmt("submit", submit));
console.log(fmt("status", status));
console.log(`combined ${((n / (submit.wallMs + status.wallMs)) * 1000).toFixed(0)} jobs/s (submit + one status read each)`);
await fetch(`${base}/v2/${ep}/purge-queue`, { method: "POST", headers: auth });
