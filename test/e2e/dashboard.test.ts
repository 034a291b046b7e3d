/**
 * The dashboard in real headless Chromium (driven by playwright-core) against the real Worker:
 * log in, see the counts of jobs this test just ran, open the endpoint's charts and a job's
 * detail, and save screenshots under test-output/.
 *
 * The browser comes from npm, so `npm install` is all the set-up: @sparticuz/chromium ships a
 * headless Chromium for Linux x64 inside the package and unpacks it on first use (to the OS temp
 * directory). CHROMIUM_PATH points at another Chromium instead (e.g. on a machine where that
 * build does not run).
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import sparticuz from "@sparticuz/chromium";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { ROOT, type Server, spawnNode, startServer, stopProcess } from "./harness";

const OUT = path.join(ROOT, "test-output");

let server: Server;
let browser: Browser | undefined;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer({ TAKE_WAIT_MS: "2000" });
  browser = await launchBrowser();
});

/** Headless Chromium from @sparticuz/chromium (or CHROMIUM_PATH), with a message that says which failed. */
async function launchBrowser(): Promise<Browser> {
  const own = process.env.CHROMIUM_PATH;
  const executablePath = own ?? (await sparticuz.executablePath());
  // Its own flags (no sandbox, software GL, …) and no calls home: the test reaches loopback only.
  const args = [...(own ? ["--no-sandbox", "--disable-gpu"] : sparticuz.args), "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
  try {
    return await chromium.launch({ executablePath, args, headless: true });
  } catch (e) {
    const from = own ? "CHROMIUM_PATH" : "@sparticuz/chromium (a Linux x64 build; elsewhere set CHROMIUM_PATH to a local Chromium)";
    throw new Error(`headless Chromium at ${executablePath}, from ${from}, did not launch: ${e instanceof Error ? e.message : String(e)}`);
  }
}

afterAll(async () => {
  await browser?.close();
  await Promise.all(procs.map(stopProcess));
  await server?.stop();
});

describe("dashboard", () => {
  it("logs in, shows the jobs just run, their metrics, workers and a job's detail", async () => {
    const ep = "dash-demo";
    // One shard: the endpoint object serves every index call, so its load row counts them all.
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { shards: 1 });
    // The worker declares tags in its URL templates (as a RunPod worker would): the first job needs one.
    procs.push(spawnNode("examples/worker.mjs", {
      EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "dash-worker", RUNPOD_PING_INTERVAL: "1000",
      RUNPOD_WEBHOOK_GET_JOB: `${server.base}/v2/${ep}/job-take/$ID?gpu=none&tags=gpu,a100`,
      RUNPOD_WEBHOOK_PING: `${server.base}/v2/${ep}/ping/$RUNPOD_POD_ID?gpu=none&tags=gpu,a100`,
    }));
    // Three complete, one fails, one runs a program that exits 3 (ERROR: completed with errors).
    const inputs = [{ n: 1, sleepMs: 30 }, { n: 2, sleepMs: 80 }, { n: 3, sleepMs: 150, log: ["hello from the handler <b>as text</b>"] }, { fail: "bad input" }, { exitCode: 3 }];
    const ids: string[] = [];
    for (const [i, input] of inputs.entries()) ids.push((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input, ...(i === 0 ? { tags: ["gpu"] } : {}) })).body.id as string);
    await eventually("all jobs to finish", 30_000, async () => {
      const h = await api(server.base, "GET", `/v2/${ep}/health`, keys.client);
      const jobs = h.body.jobs as { completed: number; failed: number };
      return jobs.completed === 4 && jobs.failed === 1 ? true : undefined;
    });

    // A browser's language (this headless build says "en-US@posix", which Intl, and so uPlot, refuses).
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
    await page.goto(`${server.base}/dashboard`);
    await page.fill("#key", "wrong-key");
    await page.click("button[type=submit]");
    await expect.poll(async () => page.textContent("#login-error"), { timeout: 10_000 }).toMatch(/not accepted/);
    await page.fill("#key", server.adminKey);
    await page.click("button[type=submit]");

    const row = page.locator(`#endpoints tr[data-ep="${ep}"]`);
    await row.waitFor({ timeout: 15_000 });
    const cells = await row.locator("td").allTextContents();
    expect(cells.slice(0, 6)).toEqual([ep, "pull", "0", "0", "4", "1"]);
    await page.screenshot({ path: path.join(OUT, "dashboard-endpoints.png") });

    await row.click();
    await page.locator("#charts canvas").first().waitFor({ timeout: 15_000 }).catch((e: unknown) => {
      throw new Error(`no chart drawn (page errors: ${pageErrors.join("; ") || "none"})`, { cause: e });
    });
    expect(await page.locator("#charts .chart").count()).toBe(6);
    await expect.poll(async () => page.textContent("#charts"), { timeout: 10_000 }).toMatch(/Requests \(5 in window\)/);
    // The charts are uPlot's (time axis, a legend per series), drawn from the metrics API's buckets:
    // the points of the requests and execution charts are the API's numbers.
    expect(await page.locator("#charts .u-legend").count()).toBe(6);
    const metrics = (await api(server.base, "GET", `/v2/${ep}/metrics?window=1h`, keys.client)).body as {
      buckets: Array<{ start: string; requests: { total: number; completed: number; errored: number; failed: number }; executionTime: { p70: number | null; p98: number | null } }>;
    };
    const drawn = await page.evaluate(() => (window as unknown as { __charts: Array<{ plot: { data: Array<Array<number | null>>; series: Array<{ label: string }> } }> }).__charts.map((c) => ({ data: c.plot.data, labels: c.plot.series.map((x) => x.label) })));
    expect(drawn).toHaveLength(6);
    expect(drawn[0]!.labels).toEqual(["time", "submitted", "completed", "with errors", "failed", "timed out"]);
    expect(drawn[0]!.data[0]).toEqual(metrics.buckets.map((b) => Date.parse(b.start) / 1000));
    expect(drawn[0]!.data[1]).toEqual(metrics.buckets.map((b) => b.requests.total));
    expect(drawn[0]!.data[2]).toEqual(metrics.buckets.map((b) => b.requests.completed));
    expect(drawn[0]!.data[3]).toEqual(metrics.buckets.map((b) => b.requests.errored));
    expect(drawn[0]!.data[1]!.reduce((a, v) => a! + (v ?? 0), 0)).toBe(5);
    expect(drawn[0]!.data[3]!.reduce((a, v) => a! + (v ?? 0), 0)).toBe(1);
    expect(drawn[1]!.data[1]).toEqual(metrics.buckets.map((b) => b.executionTime.p70));
    expect(drawn[1]!.data[3]).toEqual(metrics.buckets.map((b) => b.executionTime.p98));
    // Hovering a chart reads its values out in the legend (uPlot's cursor), e.g. the submitted count.
    const plot = page.locator("#charts .chart").first().locator(".u-over");
    const box = (await plot.boundingBox())!;
    await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
    await expect.poll(async () => (await page.locator("#charts .chart").first().locator(".u-legend .u-value").allTextContents()).join(" "), { timeout: 5_000 }).toMatch(/\d/);
    // Dragging across a chart zooms its time axis in.
    const before = await page.evaluate(() => { const u = (window as unknown as { __charts: Array<{ plot: { scales: { x: { min: number; max: number } } } }> }).__charts[0]!.plot; return u.scales.x.max - u.scales.x.min; });
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const after = await page.evaluate(() => { const u = (window as unknown as { __charts: Array<{ plot: { scales: { x: { min: number; max: number } } } }> }).__charts[0]!.plot; return u.scales.x.max - u.scales.x.min; });
    expect(after).toBeLessThan(before * 0.5);
    // Double-click shows the whole window again.
    await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await expect.poll(() => page.evaluate(() => { const u = (window as unknown as { __charts: Array<{ plot: { scales: { x: { min: number; max: number } } } }> }).__charts[0]!.plot; return u.scales.x.max - u.scales.x.min; })).toBeGreaterThanOrEqual(before * 0.99);
    // The busiest objects serving the endpoint: today the endpoint object, which served the jobs above.
    const busiest = page.locator(`#load tr[data-object="endpoint:${ep}"]`);
    await busiest.waitFor({ timeout: 10_000 });
    const loadCells = await busiest.locator("td").allTextContents();
    expect(loadCells.slice(0, 2)).toEqual([ep, "endpoint"]);
    expect(Number(loadCells[2])).toBeGreaterThan(0);
    expect(Number(loadCells[3])).toBeGreaterThanOrEqual(4 * 3); // at least sync ×3 and a take per job
    expect(loadCells[5]).toMatch(/sync \d+/);
    await page.locator('#workers td:has-text("dash-worker")').waitFor({ timeout: 10_000 });
    // Its tags, as it declared them (sorted).
    expect(await page.locator('#workers tr:has-text("dash-worker") td.tags .pill').allTextContents()).toEqual(["a100", "gpu"]);
    await page.locator(`#jobs tr[data-job="${ids[2]}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`#jobs tr[data-job="${ids[4]}"] .pill`).first().textContent()).toBe("ERROR");
    await page.screenshot({ path: path.join(OUT, "dashboard-endpoint.png"), fullPage: true });

    await page.locator(`#jobs tr[data-job="${ids[2]}"]`).click();
    await page.locator("#job:not([hidden])").waitFor({ timeout: 10_000 });
    await expect.poll(async () => page.textContent("#job-body"), { timeout: 10_000 }).toMatch(/COMPLETED/);
    const detail = (await page.textContent("#job-body")) ?? "";
    expect(detail).toMatch(/claim/);
    expect(detail).toMatch(/"n": 3/);
    // The job's log lines, as text (markup in a line is not markup).
    expect(await page.textContent("#job-log")).toMatch(/INFO  \[dash-worker #1\] hello from the handler <b>as text<\/b>/);
    expect(await page.locator("#job-log b").count()).toBe(0);
    await page.screenshot({ path: path.join(OUT, "dashboard-job.png"), fullPage: true });

    // The same page on a phone.
    const phone = await browser!.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, locale: "en-US" });
    await phone.goto(`${server.base}/dashboard`);
    await phone.evaluate((k) => sessionStorage.setItem("edge-jobs-admin-key", k), server.adminKey);
    await phone.reload();
    await phone.locator(`#endpoints tr[data-ep="${ep}"]`).click({ timeout: 15_000 });
    await phone.locator("#charts canvas").first().waitFor({ timeout: 15_000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await phone.screenshot({ path: path.join(OUT, "dashboard-phone.png"), fullPage: true });
  });

  it("a job of tasks: its tasks by stage, colored by state, what did not complete, and a task's job linking back", async () => {
    const ep = "dash-tasks";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep, { shards: 1 });
    procs.push(spawnNode("examples/worker.mjs", { EDGE_JOBS_URL: server.base, ENDPOINT_ID: ep, API_KEY: keys.worker, WORKER_ID: "dash-tasks-worker", RUNPOD_PING_INTERVAL: "1000" }));
    const parts = ["p1", "p2", "p3"].map((name) => ({ name, input: name === "p2" ? { fail: "p2 <b>broke</b>" } : { name }, dependsOn: ["split"] }));
    const body = { tasks: [{ name: "split", input: {} }, ...parts, { name: "merge", input: {}, dependsOn: ["p1", "p2", "p3"] }], policy: { maxAttempts: 1 } };
    const id = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, body)).body.id as string;
    await eventually("the job of tasks to fail", 30_000, async () => ((await api(server.base, "GET", `/v2/${ep}/status/${id}`, keys.client)).body.status === "FAILED" ? true : undefined));

    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${server.base}/dashboard`);
    await page.evaluate((k) => sessionStorage.setItem("edge-jobs-admin-key", k), server.adminKey);
    await page.reload();
    await page.locator(`#endpoints tr[data-ep="${ep}"]`).click({ timeout: 15_000 });
    await page.fill("#open-job", id);
    await page.click("#open-job-form button");
    await page.locator("#dag .stage").first().waitFor({ timeout: 10_000 });
    // Three stages: split; p1-p3; merge (waiting on the failed p2).
    expect(await page.locator("#dag .stage .label").allTextContents()).toEqual(["stage 1 (1)", "stage 2 (3)", "stage 3 (1)"]);
    const cls = async (name: string) => page.locator(`#dag .task:text-is("${name}")`).getAttribute("class");
    expect(await cls("split")).toContain("t-completed");
    expect(await cls("p2")).toContain("t-failed");
    expect(await cls("merge")).toContain("t-queued");
    const open = await page.locator("#open-tasks tbody tr").allTextContents();
    expect(open[0]).toContain("p2");
    expect(open[0]).toContain("p2 <b>broke</b>"); // markup in an error is text
    expect(open[1]).toMatch(/merge.*queued.*p2/);
    expect(await page.locator("#open-tasks b").count()).toBe(0);
    await page.screenshot({ path: path.join(OUT, "dashboard-tasks.png"), fullPage: true });
    // A task's job: its detail names its job of tasks, and links back to it.
    await page.locator('#dag .task:text-is("p1")').click();
    await expect.poll(async () => page.textContent("#job-body"), { timeout: 10_000 }).toMatch(/task p1 of/);
    await page.locator('#job-body a[data-job^="tasks_"]').click();
    await page.locator("#dag .stage").first().waitFor({ timeout: 10_000 });
    expect(await page.textContent("#job-id")).toBe(id);
    expect(pageErrors).toEqual([]);
  });

  it("the API reference at /docs renders every operation of /openapi.json, from the Worker's own files only", async () => {
    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const elsewhere: string[] = [];
    // Offline: anything not served by this Worker is refused and recorded.
    await page.route("**/*", (r) => (r.request().url().startsWith(server.base) ? r.continue() : (elsewhere.push(r.request().url()), r.abort())));
    await page.goto(`${server.base}/docs`);
    await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator(".opblock").count(), { timeout: 20_000 }).toBe(operations);
    expect(await page.locator(".opblock-summary-path").allTextContents()).toContain("/v2/{ep}/run");
    expect(await page.locator(".errors-wrapper").count()).toBe(0);
    await page.screenshot({ path: path.join(OUT, "api-reference.png"), fullPage: false });
    expect(elsewhere).toEqual([]);
  });
});
