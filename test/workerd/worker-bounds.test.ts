/**
 * Bounds on what workers send (issue 11, defect 7): the worker registry's rows, the strings a ping
 * carries, refused-report history lines, and a handler's error.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LivenessObject } from "../../src/endpoints/liveness-object";
import { LIVENESS, WORKER_BOUNDS } from "../../src/shared/limits";
import { livenessShard, type LivenessRef } from "../../src/shared/liveness";
import { appendHistory } from "../../src/jobs/store";
import { cutToBytes } from "../../src/shared/text";
import { call, createEndpoint, done, json, jobStubOf, status, submit, take, freezeEndpoint, livenessRefOf, livenessStubAt } from "./helpers";


async function workers(ep: string): Promise<Array<Record<string, unknown>>> {
  return (await json<{ workers: Array<Record<string, unknown>> }>(await call("GET", `/admin/endpoints/${ep}/workers`))).workers;
}

async function registryRows(ref: LivenessRef): Promise<number> {
  return runInDurableObject(livenessStubAt(ref), (_i: LivenessObject, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM worker").one().n);
}

type HistoryLine = { command: string; detail: string | null; from: string; to: string };

async function history(ep: string, id: string): Promise<HistoryLine[]> {
  return (await json<{ history: HistoryLine[] }>(await call("GET", `/v2/${ep}/history/${id}`))).history;
}

describe("defect 7: worker-supplied rows and strings are bounded", { timeout: 60_000 }, () => {
  it("defect 7: the worker registry keeps at most 10,000 workers per endpoint (625 per liveness shard), forgetting the longest-silent", async () => {
    const ep = await createEndpoint();
    const t0 = Date.now();
    const perShard = Math.ceil(WORKER_BOUNDS.registryRows / LIVENESS.shards);
    expect(perShard * LIVENESS.shards).toBeLessThanOrEqual(WORKER_BOUNDS.registryRows);
    // Workers of one shard, each pinging once a millisecond apart: the first is the longest silent.
    const ref = await livenessRefOf(ep, "w0");
    const ids: string[] = [];
    for (let n = 0; ids.length < perShard + 5; n++) if (livenessShard(`w${n}`) === ref.shard) ids.push(`w${n}`);
    await runInDurableObject(livenessStubAt(ref), async (i: LivenessObject) => {
      for (const [k, id] of ids.entries()) {
        i.clock.freeze(t0 + k);
        await i.ping(ref, 45_000, id, { jobIds: null, sdkVersion: null, unhealthy: null });
      }
      i.clock.thaw();
    });
    expect(await registryRows(ref)).toBe(perShard);
    const listed = new Set((await workers(ep)).map((w) => w.workerId));
    for (const id of ids.slice(0, 5)) expect(listed.has(id)).toBe(false);
    expect(listed.has(ids.at(-1)!)).toBe(true);
    expect(listed.has(ids[100]!)).toBe(true);
  });

  it("defect 7: a worker that never took a job is forgotten an hour after it went silent, not after 24 h", async () => {
    const ep = await createEndpoint();
    const t0 = Date.now();
    await freezeEndpoint(ep, t0);
    expect((await call("GET", `/v2/${ep}/ping/ghost?runpod_version=1.0`)).status).toBe(200);
    const id = await submit(ep);
    expect((await take(ep, "worker")).status).toBe(200); // took a job: kept for 24 h
    expect((await done(ep, "worker", id, { output: 1 })).status).toBe(200);
    await freezeEndpoint(ep, t0 + WORKER_BOUNDS.forgetNeverTookMs + 1);
    expect((await workers(ep)).map((w) => w.workerId)).toEqual(["worker"]);
    await freezeEndpoint(ep, null);
  });

  it("defect 7: a ghost worker (seen once) counts for queue.reason only until its heartbeat timeout", async () => {
    const ep = await createEndpoint({ heartbeatTimeout: 5_000 });
    const t0 = Date.now();
    await freezeEndpoint(ep, t0);
    const reason = async (id: string) => (await json<{ queue: { reason: string } }>(await status(ep, id))).queue.reason;
    const id = await submit(ep);
    expect(await reason(id)).toBe("no_workers");
    await call("GET", `/v2/${ep}/ping/ghost-${t0}`);
    expect(await reason(id)).toBe("all_workers_busy");
    await freezeEndpoint(ep, t0 + 5_001);
    expect(await reason(id)).toBe("no_workers");
    await freezeEndpoint(ep, null);
  });

  it("defect 7: runpod_version is kept to 64 characters, an unhealthy check and reason to 256 each", async () => {
    const ep = await createEndpoint();
    const version = "v".repeat(10_000);
    const res = await call("GET", `/v2/${ep}/ping/w1?runpod_version=${version}&status=unhealthy&check=${"c".repeat(5_000)}&reason=${"r".repeat(5_000)}`);
    expect(res.status).toBe(200); // the heartbeat still counts: a label must not cost a worker its leases
    const [w] = await workers(ep);
    expect(w!.sdkVersion).toBe("v".repeat(WORKER_BOUNDS.sdkVersionChars));
    expect(w!.unhealthyReason).toBe(`${"c".repeat(WORKER_BOUNDS.unhealthyTextChars)}: ${"r".repeat(WORKER_BOUNDS.unhealthyTextChars)}`);
  });

  it("defect 7: refused reports keep the first 50 lines and a count of the rest; /history shows every transition", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect((await take(ep, "w1")).status).toBe(200);
    const refusals = 300;
    for (let n = 0; n < refusals; n++) {
      expect((await done(ep, "intruder", id, { output: n })).status).toBe(409);
    }
    expect((await done(ep, "w1", id, { output: "mine" })).status).toBe(200);
    const lines = await history(ep, id);
    // Every transition is there: submitted, taken, completed.
    expect(lines.filter((l) => !l.command.startsWith("refused")).map((l) => l.to)).toEqual(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);
    const refused = lines.filter((l) => l.command.startsWith("refused"));
    expect(refused.filter((l) => l.command === "refused report:complete")).toHaveLength(WORKER_BOUNDS.refusalLinesPerJob);
    const summary = refused.filter((l) => l.command !== "refused report:complete");
    expect(summary).toHaveLength(1);
    expect(summary[0]!.detail).toMatch(new RegExp(`^${refusals - WORKER_BOUNDS.refusalLinesPerJob} more refused reports`));
  });

  it("defect 7: a handler error is stored up to 64 KiB, cut with a marker", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    expect((await take(ep, "w1")).status).toBe(200);
    const huge = "é".repeat(3 * 1024 * 1024); // 6 MiB of UTF-8: over the 2 MB value cap in production
    expect((await done(ep, "w1", id, { error: huge })).status).toBe(200);
    const body = await json<{ status: string; error: string }>(await status(ep, id));
    expect(body.status).toBe("FAILED");
    const bytes = new TextEncoder().encode(body.error).byteLength;
    expect(bytes).toBeLessThanOrEqual(WORKER_BOUNDS.errorBytes);
    expect(bytes).toBeGreaterThan(WORKER_BOUNDS.errorBytes - 64);
    expect(body.error.startsWith("éé")).toBe(true);
    expect(body.error.endsWith(WORKER_BOUNDS.errorCutMarker)).toBe(true);
    expect(body.error).not.toContain("\uFFFD"); // never cut inside a character
    // A short error is kept as it is.
    const other = await submit(ep);
    expect((await take(ep, "w1")).status).toBe(200);
    await done(ep, "w1", other, { error: "boom" });
    expect((await json<{ error: string }>(await status(ep, other))).error).toBe("boom");
  });
});

describe("history reads are bounded", () => {
  it("a job with more than 1,000 history lines (requeued without end) answers its latest 1,000, oldest first", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep);
    await runInDurableObject(jobStubOf(id), (_i, state) => {
      for (let n = 0; n < 1500; n++) {
        appendHistory(state.storage.sql, { at: n, command: "requeue", from: "CANCELLED", to: "IN_QUEUE", attempt: 0, workerId: null, detail: `line ${n}` });
      }
    });
    const body = await json<{ history: Array<{ detail: string | null }> }>(await call("GET", `/v2/${ep}/history/${id}`));
    expect(body.history).toHaveLength(1000);
    expect(body.history.at(0)?.detail).toBe("line 500"); // 1,501 lines: the submit and 1,500 more
    expect(body.history.at(-1)?.detail).toBe("line 1499");
  });
});

describe("cutToBytes", () => {
  it("defect 7: cuts by UTF-8 bytes, never inside a character, and keeps text that fits", () => {
    const marker = "…[cut]";
    const markerBytes = new TextEncoder().encode(marker).byteLength;
    for (const unit of ["a", "é", "€", "😀"]) {
      for (const max of [16, 17, 18, 19, 64]) {
        const text = unit.repeat(100);
        const cut = cutToBytes(text, max, marker);
        const bytes = new TextEncoder().encode(cut).byteLength;
        expect(bytes).toBeLessThanOrEqual(max);
        expect(bytes).toBeGreaterThan(max - markerBytes - 4);
        expect(cut.endsWith(marker)).toBe(true);
        expect(text.startsWith(cut.slice(0, -marker.length))).toBe(true);
        expect(cut).not.toContain("\uFFFD");
      }
      expect(cutToBytes(unit.repeat(4), 16, marker)).toBe(unit.repeat(4));
    }
  });
});
