/**
 * Cron schedules under the real Worker (`npm start`): a schedule firing every second creates
 * jobs that a real worker process (examples/worker.mjs) completes, and the alarm drift of its
 * fires (when each fire ran − its scheduled time) is measured and printed.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import sparticuz from "@sparticuz/chromium";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { ROOT, spawnNode, useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "2000" });

interface Fire {
  fireTime: string;
  firedAt: string;
  jobId: string | null;
  outcome: string;
  manual: boolean;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

describe("cron schedules under npm start", () => {
  it("an every-second schedule creates jobs a worker completes; its alarm drift is measured", async () => {
    const ep = "e2e-cron";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const log: string[] = [];
    server.procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "cron-worker", RUNPOD_PING_INTERVAL: "1000" }, log));

    const put = await api(server.base, "PUT", `/admin/endpoints/${ep}/schedules/every-second`, server.adminKey, {
      cron: "*/1 * * * * *",
      job: { input: { from: "cron" } },
      overlap: "allow",
    });
    expect(put.status).toBe(200);
    expect(put.body.nextFires).toHaveLength(5);

    // 20 fires have happened and a worker completed every job the newest 20 created.
    const done = await eventually("20 fires", 90_000, async () => {
      const s = await api(server.base, "GET", `/admin/endpoints/${ep}/schedules/every-second`, server.adminKey);
      const fires = s.body.lastFires as Fire[];
      return fires.length === 20 ? fires : undefined;
    });
    const paused = await api(server.base, "POST", `/admin/endpoints/${ep}/schedules/every-second/pause`, server.adminKey);
    expect(paused.body).toMatchObject({ paused: true, nextFires: [] });

    let seen: Fire[] = [];
    const final = await eventually("the 20 newest fires' jobs COMPLETED", 90_000, async () => {
      const s = await api(server.base, "GET", `/admin/endpoints/${ep}/schedules/every-second`, server.adminKey);
      seen = s.body.lastFires as Fire[];
      return seen.every((f) => f.outcome === "COMPLETED") ? seen : undefined;
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}\nfires: ${JSON.stringify(seen.map((f) => [f.fireTime, f.outcome, f.jobId]))}\nworker: ${log.join("").slice(-3000)}`);
    });
    expect(final.every((f) => f.jobId !== null && !f.manual)).toBe(true);
    // One fire per second, none missed, none twice.
    const times = final.map((f) => Date.parse(f.fireTime)).reverse();
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
    expect(new Set(final.map((f) => f.jobId)).size).toBe(20);
    const status = await api(server.base, "GET", `/v2/${ep}/status/${final[0]!.jobId}`, keys.client);
    expect(status.body).toMatchObject({ status: "COMPLETED", output: { echo: { from: "cron" }, worker: "cron-worker" } });

    // Paused: no new fire after a while.
    const newest = final[0]!.fireTime;
    await new Promise((r) => setTimeout(r, 2500));
    const still = await api(server.base, "GET", `/admin/endpoints/${ep}/schedules/every-second`, server.adminKey);
    expect((still.body.lastFires as Fire[])[0]!.fireTime).toBe(newest);

    const drift = done.map((f) => Date.parse(f.firedAt) - Date.parse(f.fireTime)).sort((a, b) => a - b);
    const line = `schedule alarm drift over ${drift.length} fires (ms): median ${quantile(drift, 0.5)}, p90 ${quantile(drift, 0.9)}, max ${drift.at(-1)}, min ${drift[0]}`;
    console.log(line);
    expect(drift[0]).toBeGreaterThanOrEqual(0);

    // Trigger now, while paused: one more job, completed by the worker.
    const trig = await api(server.base, "POST", `/admin/endpoints/${ep}/schedules/every-second/trigger`, server.adminKey);
    expect(trig.status).toBe(200);
    const jobId = (trig.body.fire as Fire).jobId!;
    await eventually("the triggered job to complete", 30_000, async () => {
      const s = await api(server.base, "GET", `/v2/${ep}/status/${jobId}`, keys.client);
      return s.body.status === "COMPLETED" ? s : undefined;
    });
    const list = await api(server.base, "GET", `/admin/endpoints/${ep}/schedules`, server.adminKey);
    expect(list.body.schedules).toEqual([expect.objectContaining({ name: "every-second", paused: true, nextFire: null, lastFire: expect.objectContaining({ jobId, manual: true, outcome: "COMPLETED" }) })]);

    // The dashboard lists the schedule with its next fire and its newest fire's outcome.
    const own = process.env.CHROMIUM_PATH;
    const browser = await chromium.launch({
      executablePath: own ?? (await sparticuz.executablePath()),
      args: [...(own ? ["--no-sandbox", "--disable-gpu"] : sparticuz.args), "--disable-quic", "--no-first-run", "--disable-background-networking"],
      headless: true,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(e.message));
      await page.goto(`${server.base}/dashboard`);
      await page.fill("#key", server.adminKey);
      await page.click("button[type=submit]");
      await page.locator(`#endpoints tr[data-ep="${ep}"]`).click({ timeout: 15_000 });
      const row = page.locator('#schedules tr:has-text("every-second")');
      await row.waitFor({ timeout: 15_000 });
      const cells = await row.locator("td").allTextContents();
      expect(cells[0]).toBe("every-second paused");
      expect(cells[1]).toBe("*/1 * * * * * UTC");
      expect(cells[3]).toContain("(manual)");
      expect(cells[4]).toContain("COMPLETED");
      expect(cells[5]).toBe("allow / none");
      expect(pageErrors).toEqual([]);
      const out = path.join(ROOT, "test-output");
      mkdirSync(out, { recursive: true });
      await page.screenshot({ path: path.join(out, "dashboard-schedules.png"), fullPage: true });
    } finally {
      await browser.close();
    }

    expect((await api(server.base, "DELETE", `/admin/endpoints/${ep}/schedules/every-second`, server.adminKey)).status).toBe(200);
    expect((await api(server.base, "GET", `/admin/endpoints/${ep}/schedules`, server.adminKey)).body).toEqual({ schedules: [] });
  });
});
