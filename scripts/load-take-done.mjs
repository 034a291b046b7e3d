#!/usr/bin/env node
// Measures the worker-protocol overhead per job against a running `npm start`: N jobs queued,
// then W workers speaking RunPod's protocol (raw key, form bodies) run take → job-done with a
// no-op handler. Prints the median and p99 of take, done and take+done per job. Loopback only.
//
//   node scripts/load-take-done.mjs              (N=500, W=1, BASE=http://127.0.0.1:8787)
const base = process.env.BASE ?? "http://127.0.0.1:8787";
const adminKey = process.env.ADMIN_KEY ?? "dev-admin-key";
const n = Number(process.env.N ?? 500);
const workers = Number(process.env.W ?? 1);
const ep = `take-done-${Date.now().toString(36)}`;
if (!/^http:\/\/(127\.|localhost|\[::1\])/.test(base)) throw new Error("load runs against loopback only");

const admin = { authorization: `Bearer ${adminKey}` };
const put = await fetch(`${base}/admin/endpoints/${ep}`, { method: "PUT", headers: admin, body: "{}" });
if (!put.ok) throw new Error(`create endpoint: ${put.status}`);
const key = (await (await fetch(`${base}/admin/endpoints/${ep}/keys`, { method: "POST", headers: admin, body: '{"scope":"worker"}' })).json()).key;

for (let i = 0; i < n; i += 50) {
  await Promise.all(
    Array.from({ length: Math.min(50, n - i) }, (_, k) =>
      fetch(`${base}/v2/${ep}/run`, { method: "POST", headers: admin, body: JSON.stringify({ input: { i: i + k } }) }).then((r) => r.arrayBuffer()),
    ),
  );
}

const takes = [];
const dones = [];
const both = [];
let remaining = n;
let lastDone = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: workers }, async (_, w) => {
    const worker = `bench-${w}`;
    while (remaining > 0) {
      const t0 = performance.now();
      const res = await fetch(`${base}/v2/${ep}/job-take/${worker}?gpu=none&job_in_progress=0`, { headers: { authorization: key } });
      if (res.status === 204) break;
      const job = await res.json();
      const t1 = performance.now();
      const done = await fetch(`${base}/v2/${ep}/job-done/${worker}/${job.id}?gpu=none&isStream=false`, {
        method: "POST",
        headers: { authorization: key, "content-type": "application/x-www-form-urlencoded" },
        body: JSON.stringify({ output: { ok: job.input.i } }),
      });
      if (done.status !== 200) throw new Error(`job-done ${done.status} ${await done.text()}`);
      await done.arrayBuffer();
      const t2 = performance.now();
      remaining--;
      lastDone = performance.now();
      takes.push(t1 - t0);
      dones.push(t2 - t1);
      both.push(t2 - t0);
    }
  }),
);
// Up to the last job-done: workers still long-polling on an empty queue at the end do not count.
const wall = lastDone - started;
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(1);
};
console.log(`take → done: ${both.length} jobs, ${workers} worker(s), no-op handler, against ${base}`);
console.log(`take       median ${pct(takes, 50)} ms   p99 ${pct(takes, 99)} ms`);
console.log(`done       median ${pct(dones, 50)} ms   p99 ${pct(dones, 99)} ms`);
console.log(`take+done  median ${pct(both, 50)} ms   p99 ${pct(both, 99)} ms   ${((both.length / wall) * 1000).toFixed(0)} jobs/s`);
