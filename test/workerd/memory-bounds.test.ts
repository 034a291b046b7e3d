/**
 * Memory bounds (issue 11, defect 8): a batch take answers at most MEMORY_BOUNDS.batchInputBytes of
 * inputs (at least one job), and jobs left out stay queued for the next take, none lost.
 */
import { describe, expect, it } from "vitest";
import { MEMORY_BOUNDS } from "../../src/shared/limits";
import { call, createEndpoint, json, status, submit } from "./helpers";

const MB = 1024 * 1024;

describe("defect 8: memory bounds", () => {
  it("defect 8: a batch take answers at most 16 MiB of inputs; the rest stay queued for the next take, none lost", async () => {
    const ep = await createEndpoint();
    const ids: string[] = [];
    // 5 inputs of ~6 MiB: two fit in one answer (12 MiB), a third would not.
    for (let n = 0; n < 5; n++) ids.push(await submit(ep, { input: { n, pad: "x".repeat(6 * MB) } }));
    const answers: Array<Array<{ id: string; input: { n: number; pad: string } }>> = [];
    for (let round = 0; round < 5; round++) {
      const res = await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=100`);
      if (res.status === 204) break;
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.length).toBeLessThanOrEqual(MEMORY_BOUNDS.batchInputBytes + 64 * 1024);
      answers.push(JSON.parse(text) as Array<{ id: string; input: { n: number; pad: string } }>);
    }
    expect(answers.map((a) => a.length)).toEqual([2, 2, 1]);
    expect(answers.flat().map((j) => j.id)).toEqual(ids);
    for (const j of answers.flat()) expect(j.input.pad).toHaveLength(6 * MB);
    for (const id of ids) expect((await json(await status(ep, id))).status).toBe("IN_PROGRESS");
  });

  it("defect 8: a batch take still hands out one job whose input alone is over the budget", async () => {
    const ep = await createEndpoint();
    const big = await submit(ep, { input: { pad: "y".repeat(9 * MB) } });
    const next = await submit(ep, { input: { pad: "z".repeat(9 * MB) } });
    const first = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w1?batch_size=10`));
    expect(first.map((j) => j.id)).toEqual([big]);
    const second = await json<Array<{ id: string }>>(await call("GET", `/v2/${ep}/job-take-batch/w2?batch_size=10`));
    expect(second.map((j) => j.id)).toEqual([next]);
  });
});
