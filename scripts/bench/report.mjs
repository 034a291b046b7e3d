// Printing the benchmark's runs and the ratios of edge-jobs to the floors and to BullMQ.

const ms = (s) => (s.p50 === null ? "-" : `${s.p50.toFixed(1)}/${s.p99.toFixed(1)}`);

export function printRun(run) {
  const steps = Object.entries(run.steps).map(([name, s]) => `${name} ${ms(s)}`).join("  ");
  const flag = run.truncated ? "  (stopped at --max-seconds)" : "";
  const cpu = run.cpuMsPerJob;
  const cpuText = `cpu/job server ${cpu.server === null ? `- (${cpu.serverNote ?? "no /proc"})` : `${cpu.server} ms`}, client ${cpu.client} ms`;
  const oc = run.objectCalls;
  const callsText = oc
    ? `   calls/job endpoint objects ${oc.perJob} (${Object.entries(oc.byKind).map(([k, n]) => `${k} ${n}`).join(", ")}; busiest ${oc.busiest ? `${oc.busiest.kind} ${oc.busiest.perJob}` : "-"})`
    : "";
  console.log(
    `${run.system.padEnd(11)} ${run.mode.padEnd(9)} c=${String(run.concurrency).padEnd(3)} ${String(run.jobs).padStart(5)} jobs ${run.jobsPerSecond.toFixed(1).padStart(8)} jobs/s   lifecycle p50/p99 ${ms(run.lifecycle)} ms   ${steps}   ${cpuText}${callsText}${flag}`,
  );
}

/** For each concurrency: each edge-jobs run against the floors and BullMQ (jobs/s and p50s). */
export function ratios(runs) {
  const find = (system, mode, c) => runs.find((r) => r.system === system && r.mode === mode && r.concurrency === c);
  const out = [];
  for (const edge of runs.filter((r) => r.system === "edge-jobs")) {
    for (const peer of ["floor", "queue-floor", "bullmq"]) {
      const other = find(peer, "pull", edge.concurrency);
      if (!other) continue;
      const stepP50 = {};
      for (const [name, s] of Object.entries(edge.steps)) {
        const o = other.steps[name];
        if (o && o.p50) stepP50[name] = round(s.p50 / o.p50);
      }
      out.push({
        edge: `edge-jobs ${edge.mode}`,
        peer,
        concurrency: edge.concurrency,
        throughput: round(edge.jobsPerSecond / other.jobsPerSecond),
        lifecycleP50: round(edge.lifecycle.p50 / other.lifecycle.p50),
        lifecycleP99: round(edge.lifecycle.p99 / other.lifecycle.p99),
        serverCpuPerJob: edge.cpuMsPerJob.server && other.cpuMsPerJob.server ? round(edge.cpuMsPerJob.server / other.cpuMsPerJob.server) : null,
        stepP50,
      });
    }
  }
  return out;
}

export function printRatios(compared) {
  if (compared.length === 0) return;
  console.log("\nratios (edge-jobs / other): throughput (jobs/s; below 1 = slower), latency (above 1 = slower)");
  for (const r of compared) {
    const steps = Object.entries(r.stepP50).map(([name, x]) => `${name} ${x}×`).join("  ") || "(no step in common)";
    console.log(
      `${r.edge.padEnd(19)} / ${r.peer.padEnd(11)} c=${String(r.concurrency).padEnd(3)} throughput ${r.throughput}×   lifecycle p50 ${r.lifecycleP50}×  p99 ${r.lifecycleP99}×   server cpu/job ${r.serverCpuPerJob ?? "-"}×   step p50: ${steps}`,
    );
  }
}

function round(x) {
  return Math.round(x * 100) / 100;
}
