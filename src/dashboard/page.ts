/**
 * The dashboard, served by the Worker itself at /dashboard: one page and its chart library from the
 * Worker's own assets (no CDN, so it works offline under `npm start`). It asks for the admin key, keeps it in sessionStorage
 * only, and reads everything through the public APIs: endpoints with live counts, per-endpoint
 * charts of the metrics API (uPlot, served from the Worker's own assets under /dashboard/: time
 * axes, a legend that reads out the values under the cursor, drag to zoom, double-click to reset), the busiest objects serving the endpoint (its load
 * report), the workers table, cron schedules (next fire, last outcome), recent jobs with why they wait, and a job's detail (status, history, log lines, webhook deliveries; a job of tasks' tasks by stage, colored by state, with its blocklist and the tasks that did not complete; a task's job links to its job of tasks). It refreshes itself every 5 s.
 */
export const DASHBOARD_HTML = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-jobs dashboard</title>
<link rel="stylesheet" href="/dashboard/uPlot.min.css">
<script src="/dashboard/uPlot.iife.min.js"></script>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1c2430; --muted:#6b7686; --line:#e3e7ee; --accent:#2563eb;
          --ok:#16a34a; --bad:#dc2626; --warn:#d97706; --grey:#94a3b8; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:12px; padding:12px 20px; background:var(--ink); color:#fff; }
  header h1 { font-size:16px; margin:0; font-weight:600; }
  header .spacer { flex:1; }
  header button { background:transparent; color:#cbd5e1; border:1px solid #475569; border-radius:6px; padding:4px 10px; cursor:pointer; }
  main { padding:16px 20px; max-width:1280px; margin:0 auto; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; margin-bottom:16px; }
  .card h2 { font-size:14px; margin:0 0 10px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.04em; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--muted); font-weight:500; font-size:12px; }
  tr.pick { cursor:pointer; } tr.pick:hover { background:#eef2ff; } tr.sel { background:#e0e7ff; }
  .num { text-align:right; font-variant-numeric:tabular-nums; }
  .pill { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; background:#e2e8f0; }
  .COMPLETED,.idle,.delivered { background:#dcfce7; color:#166534; } .FAILED,.TIMED_OUT,.ERROR,.unhealthy,.failed { background:#fee2e2; color:#991b1b; }
  .IN_PROGRESS,.running,.CANCELLING,.pending { background:#dbeafe; color:#1e40af; } .IN_QUEUE,.SEQUENCED,.SCHEDULED,.PAUSED,.throttled,.initializing { background:#fef3c7; color:#92400e; }
  .grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(300px,1fr)); gap:12px; }
  .chart { border:1px solid var(--line); border-radius:8px; padding:8px 10px; background:#fff; min-width:0; }
  .chart h3 { margin:0 0 4px; font-size:13px; font-weight:600; }
  .chart .plot { width:100%; min-height:150px; }
  .chart .u-legend { font-size:11px; color:var(--muted); }
  .chart .u-legend th { font-weight:500; }
  .scroll { overflow-x:auto; }
  .muted { color:var(--muted); } .err { color:var(--bad); }
  #login { max-width:380px; margin:12vh auto; }
  #login input { width:100%; padding:9px 10px; border:1px solid var(--line); border-radius:8px; font-size:14px; margin:8px 0 12px; }
  button.primary { background:var(--accent); color:#fff; border:0; border-radius:8px; padding:9px 16px; font-size:14px; cursor:pointer; }
  select { padding:4px 6px; border-radius:6px; border:1px solid var(--line); }
  pre { background:#0f172a; color:#e2e8f0; padding:10px; border-radius:8px; overflow:auto; max-height:260px; font-size:12px; }
  a { color:var(--accent); text-decoration:none; cursor:pointer; }
  .row { display:flex; gap:12px; align-items:center; flex-wrap:wrap; }
  .row .spacer { flex:1; }
  .stage { display:flex; gap:4px; flex-wrap:wrap; align-items:center; margin:4px 0; }
  .stage .label { color:var(--muted); font-size:12px; min-width:88px; }
  .task { display:inline-block; padding:1px 6px; border-radius:6px; font-size:12px; background:#e2e8f0; cursor:default; }
  .task[data-job] { cursor:pointer; }
  .t-completed { background:#dcfce7; color:#166534; } .t-failed { background:#fee2e2; color:#991b1b; } .t-active { background:#dbeafe; color:#1e40af; }
  .t-queued { background:#fef3c7; color:#92400e; } .t-soft-failed { background:#ffedd5; color:#9a3412; } .t-paused { background:#e0e7ff; color:#3730a3; } .t-canceled { background:#f1f5f9; color:#64748b; }
  @media (max-width: 640px) { main { padding:10px; } th, td { padding:5px 4px; } .hide-sm { display:none; } }
</style>
</head>
<body>
<header><h1>edge-jobs</h1><span class="muted" id="updated"></span><span class="spacer"></span><button id="logout" hidden>Log out</button></header>
<main>
  <section id="login" class="card" hidden>
    <h2>Sign in</h2>
    <form id="login-form">
      <label for="key">Admin key</label>
      <input id="key" type="password" autocomplete="current-password" placeholder="dev-admin-key under npm start" required>
      <button class="primary" type="submit">Open dashboard</button>
      <p class="muted">The key stays in this browser tab (sessionStorage) and is sent only to this server.</p>
      <p class="err" id="login-error"></p>
    </form>
  </section>
  <section id="app" hidden>
    <div class="card"><h2>Endpoints</h2><div class="scroll"><table id="endpoints"><thead><tr>
      <th>Endpoint</th><th>Mode</th><th class="num">In queue</th><th class="num">In progress</th><th class="num">Completed</th>
      <th class="num">Failed</th><th class="num hide-sm">Retried</th><th class="num">Workers</th><th class="hide-sm">State</th></tr></thead><tbody></tbody></table></div></div>
    <div id="detail" hidden>
      <div class="card"><div class="row"><h2 style="margin:0" id="ep-title"></h2><span class="spacer"></span>
        <label class="muted">Window <select id="window"><option>1h</option><option>6h</option><option>24h</option><option>7d</option></select></label></div>
        <div class="grid" id="charts" style="margin-top:10px"></div></div>
      <div class="card"><h2>Busiest objects <span class="muted" id="load-since"></span></h2><div class="scroll"><table id="load"><thead><tr><th>Object</th><th>Kind</th>
        <th class="num">Calls/s</th><th class="num">Calls</th><th class="num hide-sm">Rows written</th><th class="hide-sm">Top methods</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><h2>Workers</h2><div class="scroll"><table id="workers"><thead><tr><th>Worker</th><th>State</th><th>Last seen</th><th>Tags</th>
        <th class="num">Jobs taken</th><th>Current jobs</th><th class="hide-sm">Recent failures</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><h2>Schedules</h2><div class="scroll"><table id="schedules"><thead><tr><th>Schedule</th><th>Cron</th><th>Next fire</th>
        <th>Last fire</th><th>Last outcome</th><th class="hide-sm">Overlap / catch-up</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card"><div class="row"><h2 style="margin:0">Recent jobs</h2><span class="spacer"></span>
        <form id="open-job-form" class="row"><input id="open-job" placeholder="a job id, or a job of tasks' (tasks_…)" size="34" aria-label="job id"><button type="submit">Open</button></form></div><div class="scroll"><table id="jobs"><thead><tr><th>Job</th><th>State</th><th>Updated</th>
        <th class="hide-sm">Worker</th><th>Why it waits</th></tr></thead><tbody></tbody></table></div></div>
      <div class="card" id="job" hidden><h2>Job <span id="job-id"></span></h2><div id="job-body"></div></div>
    </div>
  </section>
</main>
<script>
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&":"&amp;", "<":"&lt;", ">":"&gt;", '"':"&quot;", "'":"&#39;" })[c]);
const ago = (iso) => { if (!iso) return ""; const s = Math.round((Date.now() - Date.parse(iso)) / 1000); return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s/60) + " min ago" : Math.round(s/3600) + " h ago"; };
const pill = (s) => '<span class="pill ' + esc(s) + '">' + esc(s) + '</span>';
let key = sessionStorage.getItem("edge-jobs-admin-key");
let selected = null, selectedJob = null, timer = null;

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { authorization: "Bearer " + key, ...(opts.headers || {}) } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) { logout("That key was not accepted."); throw new Error("unauthorized"); }
  if (!res.ok) throw new Error(body.error || ("HTTP " + res.status));
  return body;
}

function logout(message) {
  sessionStorage.removeItem("edge-jobs-admin-key"); key = null; clearInterval(timer);
  $("#app").hidden = true; $("#logout").hidden = true; $("#login").hidden = false; $("#login-error").textContent = message || "";
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault(); key = $("#key").value.trim();
  try { await api("/admin/endpoints"); sessionStorage.setItem("edge-jobs-admin-key", key); start(); }
  catch (err) { if (key) $("#login-error").textContent = String(err.message); }
});
$("#logout").addEventListener("click", () => logout(""));
$("#window").addEventListener("change", () => refreshDetail());

function start() {
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  refresh(); clearInterval(timer); timer = setInterval(refresh, 5000);
}

async function refresh() {
  try { await refreshEndpoints(); if (selected) await refreshDetail(); $("#updated").textContent = "updated " + new Date().toLocaleTimeString(); }
  catch (err) { $("#updated").textContent = "refresh failed: " + err.message; }
}

async function refreshEndpoints() {
  const { endpoints } = await api("/admin/endpoints");
  const rows = await Promise.all(endpoints.map(async (ep) => ({ ep, h: await api("/v2/" + encodeURIComponent(ep.id) + "/health").catch(() => null) })));
  $("#endpoints tbody").innerHTML = rows.map(({ ep, h }) => {
    const j = h ? h.jobs : {}; const w = h ? h.workers : {};
    const workers = h ? (w.idle + w.running + w.initializing + w.throttled) : 0;
    return '<tr class="pick' + (ep.id === selected ? " sel" : "") + '" data-ep="' + esc(ep.id) + '"><td><a>' + esc(ep.id) + '</a></td><td>' + esc(ep.mode) +
      '</td><td class="num">' + (j.inQueue ?? "") + '</td><td class="num">' + (j.inProgress ?? "") + '</td><td class="num">' + (j.completed ?? "") +
      '</td><td class="num">' + (j.failed ?? "") + '</td><td class="num hide-sm">' + (j.retried ?? "") + '</td><td class="num">' + workers +
      (w.unhealthy ? ' <span class="pill unhealthy">' + w.unhealthy + ' unhealthy</span>' : "") + '</td><td class="hide-sm">' + (ep.paused ? pill("paused") : pill("active")) + '</td></tr>';
  }).join("") || '<tr><td colspan="9" class="muted">No endpoints yet: create one with PUT /admin/endpoints/{id}.</td></tr>';
  document.querySelectorAll("#endpoints tr.pick").forEach((tr) => tr.addEventListener("click", () => { selected = tr.dataset.ep; selectedJob = null; $("#job").hidden = true; refresh(); }));
}

const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2"];
/** The charts shown, by position: uPlot instances kept across refreshes (a zoomed chart keeps its zoom). */
const charts = [];
window.__charts = charts;
/** One chart of the metrics buckets: x is each bucket's start (seconds), a series per metric. */
function chartData(buckets, series) {
  return [buckets.map((b) => Date.parse(b.start) / 1000), ...series.map((s) => buckets.map((b) => { const v = s.get(b); return v === undefined ? null : v; }))];
}
function drawCharts(specs, buckets) {
  const box = $("#charts");
  if (box.children.length !== specs.length) {
    charts.splice(0).forEach((c) => c.plot.destroy());
    box.innerHTML = specs.map((_, i) => '<div class="chart"><h3></h3><div class="plot" data-chart="' + i + '"></div></div>').join("");
  }
  specs.forEach((spec, i) => {
    const el = box.children[i];
    el.querySelector("h3").textContent = spec.title;
    const data = chartData(buckets, spec.series);
    const c = charts[i];
    if (c && c.key === spec.key) {
      c.plot.setData(data, !c.zoomed);
      return;
    }
    if (c) c.plot.destroy();
    const target = el.querySelector(".plot");
    const entry = { key: spec.key, zoomed: false, plot: null };
    entry.plot = new uPlot({
      width: Math.max(200, target.clientWidth), height: 150,
      cursor: { drag: { x: true, y: false } },
      scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ stroke: "#6b7686", grid: { stroke: "#eef1f5" }, size: 48 }, { stroke: "#6b7686", grid: { stroke: "#eef1f5" }, size: 64, values: (u, vals) => vals.map((v) => (+v.toFixed(2)) + (spec.unit || "")) }],
      // Times are sparse (a bucket without jobs has none): their points are drawn, lines join neighbours only.
      series: [{ label: "time" }, ...spec.series.map((s, k) => ({ label: s.name, stroke: COLORS[k % COLORS.length], width: 1.8, points: spec.unit ? { show: true, size: 5, fill: COLORS[k % COLORS.length] } : { size: 5 }, spanGaps: false }))],
      hooks: { setSelect: [(u) => { if (u.select.width > 0) entry.zoomed = true; }] },
    }, data, target);
    // Double-click resets the zoom (uPlot's own), and the next refresh follows the window again.
    target.addEventListener("dblclick", () => { entry.zoomed = false; });
    charts[i] = entry;
  });
}
window.addEventListener("resize", () => charts.forEach((c) => { const w = c.plot.root.parentElement.clientWidth; if (w > 0) c.plot.setSize({ width: w, height: 150 }); }));

const pct = (field, p) => (b) => b[field][p];
async function refreshDetail() {
  const ep = encodeURIComponent(selected);
  $("#detail").hidden = false; $("#ep-title").textContent = "Endpoint " + selected;
  const [m, w, j, l] = await Promise.all([
    api("/v2/" + ep + "/metrics?window=" + $("#window").value),
    api("/admin/endpoints/" + ep + "/workers"),
    api("/admin/endpoints/" + ep + "/jobs?limit=50"),
    api("/admin/endpoints/" + ep + "/load").catch(() => null),
  ]);
  const b = m.buckets;
  const t = m.total;
  const win = $("#window").value;
  const ms = (field) => ["p70", "p90", "p98"].map((p) => ({ name: p, get: pct(field, p) }));
  drawCharts([
    { key: win + ":requests", title: "Requests (" + t.requests.total + " in window)", series: [
      { name: "submitted", get: (x) => x.requests.total }, { name: "completed", get: (x) => x.requests.completed },
      { name: "with errors", get: (x) => x.requests.errored }, { name: "failed", get: (x) => x.requests.failed },
      { name: "timed out", get: (x) => x.requests.timedOut }] },
    { key: win + ":execution", title: "Execution time (p70 " + (t.executionTime.p70 ?? "–") + " ms)", unit: " ms", series: ms("executionTime") },
    { key: win + ":delay", title: "Delay time (p70 " + (t.delayTime.p70 ?? "–") + " ms)", unit: " ms", series: ms("delayTime") },
    { key: win + ":coldStart", title: "Cold starts (" + t.coldStarts + ", p70 " + (t.coldStartTime.p70 ?? "–") + " ms)", unit: " ms", series: ms("coldStartTime") },
    { key: win + ":webhooks", title: "Webhooks (" + t.webhooks.sent + " sent)", series: [
      { name: "sent", get: (x) => x.webhooks.sent }, { name: "succeeded", get: (x) => x.webhooks.succeeded }, { name: "failed", get: (x) => x.webhooks.failed }] },
    { key: win + ":workers", title: "Workers by state", series: ["idle", "running", "unhealthy", "throttled", "initializing"].map((s) => ({ name: s, get: (x) => (x.workers ? x.workers[s] : null) })) },
  ], b);
  showLoad(l);
  showSchedules(ep);
  $("#workers tbody").innerHTML = w.workers.map((x) => '<tr><td>' + esc(x.workerId) + (x.recycle ? ' <span class="pill">recycle</span>' : "") + '</td><td>' + pill(x.state) +
    '</td><td>' + ago(x.lastSeen) + '</td><td class="tags">' + (x.tags || []).map((t) => '<span class="pill">' + esc(t) + '</span>').join(" ") + '</td><td class="num">' + x.jobsTaken + '</td><td>' + x.currentJobs.map((id) => '<a data-job="' + esc(id) + '">' + esc(id.slice(0, 10)) + '…</a>').join(" ") +
    '</td><td class="hide-sm">' + x.recentFailures.map((f) => esc(f.reason)).join(", ") + '</td></tr>').join("") || '<tr><td colspan="7" class="muted">No workers seen.</td></tr>';
  $("#jobs tbody").innerHTML = j.jobs.map((x) => '<tr class="pick' + (x.jobId === selectedJob ? " sel" : "") + '" data-job="' + esc(x.jobId) + '"><td><a>' + esc(x.jobId.slice(0, 16)) + '…</a></td><td>' + pill(x.state) +
    '</td><td>' + ago(x.updatedAt) + '</td><td class="hide-sm">' + esc(x.workerId || "") + '</td><td>' +
    (x.queue ? esc(x.queue.reason) + (x.queue.position ? " (#" + x.queue.position + (x.queue.positionAtLeast ? "+" : "") + ")" : "") + (x.queue.ahead ? " behind " + esc(x.queue.ahead.slice(0, 10)) + "…" : "") : "") + '</td></tr>').join("")
    || '<tr><td colspan="5" class="muted">No jobs yet.</td></tr>';
  document.querySelectorAll("[data-job]").forEach((el) => el.addEventListener("click", () => { selectedJob = el.dataset.job; showJob(); }));
  if (selectedJob) await showJob();
}

/** The five objects serving the endpoint with the most calls per second since the load reset. */
function showLoad(l) {
  $("#load-since").textContent = l && l.since ? "since " + ago(new Date(l.since).toISOString()) : "";
  const top = l ? [...l.objects].sort((a, b) => b.callsPerSecond - a.callsPerSecond).slice(0, 5) : [];
  const methods = (o) => Object.entries(o.calls.byMethod).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => esc(k) + " " + n).join(", ");
  $("#load tbody").innerHTML = top.map((o) => '<tr data-object="' + esc(o.kind + ":" + o.name) + '"><td>' + esc(o.name) + '</td><td>' + esc(o.kind) +
    '</td><td class="num">' + o.callsPerSecond + '</td><td class="num">' + o.calls.total + '</td><td class="num hide-sm">' + o.rowsWritten +
    '</td><td class="hide-sm">' + methods(o) + '</td></tr>').join("") || '<tr><td colspan="6" class="muted">' + (l ? "No objects." : "Load not available.") + '</td></tr>';
}

/** The endpoint's cron schedules: next fire, and the newest fire with its job's status now. */
async function showSchedules(ep) {
  const r = await api("/admin/endpoints/" + ep + "/schedules").catch(() => null);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  $("#schedules tbody").innerHTML = !r ? '<tr><td colspan="6" class="muted">Schedules not available.</td></tr>' : r.schedules.map((x) => '<tr><td>' + esc(x.name) +
    (x.paused ? " " + pill("paused") : "") + '</td><td><code>' + esc(x.cron) + '</code> <span class="muted">' + esc(x.timezone) + '</span></td><td>' + when(x.nextFire) +
    '</td><td>' + (x.lastFire ? when(x.lastFire.fireTime) + (x.lastFire.manual ? " (manual)" : "") : "") + '</td><td>' + (x.lastFire ? pill(x.lastFire.outcome) +
    (x.lastFire.jobId ? ' <a data-job="' + esc(x.lastFire.jobId) + '">' + esc(x.lastFire.jobId.slice(0, 10)) + '…</a>' : "") : "") +
    '</td><td class="hide-sm">' + esc(x.overlap) + " / " + esc(x.catchUp) + '</td></tr>').join("") || '<tr><td colspan="6" class="muted">No schedules: PUT /admin/endpoints/{id}/schedules/{name}.</td></tr>';
  document.querySelectorAll("#schedules [data-job]").forEach((el) => el.addEventListener("click", () => { selectedJob = el.dataset.job; showJob(); }));
}

/** A job of tasks: its tasks by stage (a stage is how many dependencies deep a task is), colored by state; what does not complete, listed. */
async function showTasks(ep, id, s) {
  const page = await api("/v2/" + ep + "/tasks/" + id + "?limit=1000").catch(() => ({ tasks: [], total: 0 }));
  const depth = new Map();
  const byName = new Map(page.tasks.map((t) => [t.name, t]));
  const depthOf = (t, seen = 0) => {
    if (depth.has(t.name)) return depth.get(t.name);
    const d = seen > 10000 ? 0 : t.dependsOn.reduce((m, n) => Math.max(m, byName.has(n) ? depthOf(byName.get(n), seen + 1) + 1 : 1), 0);
    depth.set(t.name, d);
    return d;
  };
  const stages = [];
  for (const t of page.tasks) (stages[depthOf(t)] ||= []).push(t);
  const title = (t) => t.name + ": " + t.state + (t.attempts ? ", " + t.attempts + " attempt(s)" : "") + (t.workerId ? ", " + t.workerId : "") +
    (t.waiting_for ? ", waits for " + t.waiting_for.join(", ") : "") + (t.error ? ", " + t.error : "");
  const open = page.tasks.filter((t) => t.state !== "completed").sort((a, b) => (a.state === "failed" ? 0 : 1) - (b.state === "failed" ? 0 : 1)).slice(0, 100);
  return '<h2 style="margin-top:12px">Tasks</h2><div class="row">' + Object.entries(s.tasks).filter(([k, n]) => k !== "total" && n > 0).map(([k, n]) => '<span class="task t-' + esc(k) + '">' + esc(k) + " " + n + '</span>').join(" ") +
    '<span class="muted">' + s.tasks.total + ' in all</span>' +
    (s.replicas ? '<span class="replicas">replicas: ' + s.replicas.started + ' of ' + s.replicas.requested + ' started, ' + s.replicas.completed + ' completed</span>' : "") + (s.blocklisted ? '<span class="blocklisted">blocklisted: ' + s.blocklisted.map((b) => esc(b.workerId) + " (" + (b.failedTasks ?? b.failures) + " tasks)").join(", ") + '</span>' : "") + '</div>' +
    '<div id="dag">' + stages.map((ts, i) => '<div class="stage"><span class="label">stage ' + (i + 1) + ' (' + (ts ? ts.length : 0) + ')</span>' + (ts || []).map((t) =>
      '<span class="task t-' + esc(t.state) + '"' + (t.jobId ? ' data-job="' + esc(t.jobId) + '"' : "") + ' title="' + esc(title(t)) + '">' + esc(t.name) + '</span>').join("") + '</div>').join("") + '</div>' +
    (page.total > page.tasks.length ? '<p class="muted">The first ' + page.tasks.length + ' of ' + page.total + ' tasks: GET /v2/{endpoint}/tasks/{id}?offset=…</p>' : "") +
    (open.length ? '<div class="scroll"><table id="open-tasks"><thead><tr><th>Task</th><th>State</th><th class="num">Attempts</th><th>Worker</th><th>Waits for</th><th>Error</th></tr></thead><tbody>' +
      open.map((t) => '<tr><td>' + esc(t.name) + '</td><td><span class="task t-' + esc(t.state) + '">' + esc(t.state) + '</span></td><td class="num">' + t.attempts + '</td><td>' + esc(t.workerId || "") +
        '</td><td>' + esc((t.waiting_for || []).join(", ")) + '</td><td class="err">' + esc(t.error || "") + '</td></tr>').join("") + '</tbody></table></div>' : "");
}

async function showJob() {
  const ep = encodeURIComponent(selected), id = encodeURIComponent(selectedJob);
  const [s, h, wh, lg] = await Promise.all([
    api("/v2/" + ep + "/status/" + id).catch((e) => ({ error: e.message })),
    api("/v2/" + ep + "/history/" + id).catch(() => ({ history: [] })),
    api("/v2/" + ep + "/webhooks/" + id).catch(() => ({ events: [] })),
    api("/v2/" + ep + "/logs/" + id + "?limit=500").catch(() => null),
  ]);
  $("#job").hidden = false; $("#job-id").textContent = selectedJob;
  $("#job-body").innerHTML = '<div class="row">' + pill(s.outcome === "error" ? "ERROR" : s.status || "gone") + (s.queue ? '<span>waits: ' + esc(s.queue.reason) + '</span>' : "") +
    (s.tags ? '<span class="tags">needs ' + s.tags.map((t) => '<span class="pill">' + esc(t) + '</span>').join(" ") + '</span>' : "") +
    (s.blocklisted ? '<span class="blocklisted">blocklisted: ' + s.blocklisted.map((b) => esc(b.workerId) + " (" + b.failures + ")").join(", ") + '</span>' : "") +
    (s.delayTime !== undefined ? '<span>delay ' + s.delayTime + ' ms</span>' : "") + (s.executionTime !== undefined ? '<span>execution ' + s.executionTime + ' ms</span>' : "") +
    (s.attempt !== undefined ? '<span>attempt ' + s.attempt + '</span>' : "") +
    (s.parentJobId ? '<span>task <b>' + esc(s.taskName) + '</b> of <a data-job="' + esc(s.parentJobId) + '">' + esc(s.parentJobId.slice(0, 16)) + '…</a></span>' : "") +
    '</div>' + (s.tasks ? await showTasks(ep, id, s) : "") + '<pre>' + esc(JSON.stringify({ ...s, output: s.tasks && s.output ? "(by task name, " + Object.keys(s.output).length + ")" : s.output }, null, 2)) + '</pre>' +
    '<h2>History</h2><div class="scroll"><table><thead><tr><th>When</th><th>Command</th><th>From → to</th><th>Attempt</th><th>Worker</th><th>Detail</th></tr></thead><tbody>' +
    h.history.map((e) => '<tr><td>' + esc(new Date(e.at).toLocaleTimeString()) + '</td><td>' + esc(e.command) + '</td><td>' + esc(e.from) + ' → ' + esc(e.to) +
      '</td><td class="num">' + e.attempt + '</td><td>' + esc(e.workerId || "") + '</td><td>' + esc(e.detail || "") + '</td></tr>').join("") + '</tbody></table></div>' +
    '<h2 style="margin-top:12px">Log</h2>' + (!lg || lg.lines.length === 0 ? '<p class="muted">No log lines.</p>' : '<pre id="job-log">' +
      lg.lines.map((x) => esc(new Date(x.at).toLocaleTimeString()) + " " + esc(x.level.padEnd(5)) + " [" + esc(x.workerId || "edge-jobs") + " #" + x.attempt + "] " + esc(x.message)).join("\\n") + '</pre>' +
      (lg.next !== null ? '<p class="muted">The first 500 lines; the rest: GET /v2/{endpoint}/logs/{id}?after=' + lg.next + '</p>' : "") +
      (lg.truncated ? '<p class="muted">The log reached its cap: later lines were dropped.</p>' : "")) +
    '<h2 style="margin-top:12px">Webhook deliveries</h2>' + (wh.events.length === 0 ? '<p class="muted">None.</p>' : wh.events.map((ev) =>
      '<p>' + pill(ev.state) + ' event ' + ev.seq + ' (' + esc(ev.status) + '), ' + ev.attempts + ' attempt(s)</p><table><tbody>' +
      ev.log.map((a) => '<tr><td>' + esc(new Date(a.at).toLocaleTimeString()) + '</td><td>' + esc(a.status ?? "no answer") + '</td><td class="num">' + a.latencyMs + ' ms</td><td>' + esc(a.error || "") + '</td></tr>').join("") +
      '</tbody></table>').join(""));
  document.querySelectorAll("#job-body [data-job]").forEach((el) => el.addEventListener("click", () => { selectedJob = el.dataset.job; showJob(); }));
}

$("#open-job-form").addEventListener("submit", (e) => { e.preventDefault(); const v = $("#open-job").value.trim(); if (v && selected) { selectedJob = v; showJob(); } });
if (key) start(); else $("#login").hidden = false;
</script>
</body>
</html>`;
