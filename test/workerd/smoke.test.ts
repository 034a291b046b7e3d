import { describe, expect, it } from "vitest";
import { call, createEndpoint, done, json, status, submit, take } from "./helpers";

describe("lifecycle smoke", () => {
  it("submits, takes, completes and reads the result", async () => {
    const ep = await createEndpoint();
    const id = await submit(ep, { input: { prompt: "hi" } });
    const t = await take(ep, "w1");
    expect(t.status).toBe(200);
    expect(await json(t)).toMatchObject({ id, input: { prompt: "hi" }, attempt: 1 });
    const d = await done(ep, "w1", id, { output: { text: "hello" } });
    expect(d.status).toBe(200);
    const s = await json(await status(ep, id));
    expect(s).toMatchObject({ id, status: "COMPLETED", output: { text: "hello" }, workerId: "w1", retries: 0 });
    expect(typeof s.delayTime).toBe("number");
    expect(typeof s.executionTime).toBe("number");
    const h = await json(await call("GET", `/v2/${ep}/health`));
    expect(h).toMatchObject({ jobs: { completed: 1, inQueue: 0, inProgress: 0 } });
  });
});
