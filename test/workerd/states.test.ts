/** Issue 15, item 6: GET /v2/{ep}/states, the seed systems' names for every state. */
import { describe, expect, it } from "vitest";
import { JOB_STATES } from "../../src/jobs/states";
import { call, createEndpoint, createKey, json } from "./helpers";

type Row = { state: string; shownAs: string; runpod: string | null; ucloud: string | null; actian: string | null; flamenco: string | null; meaning: string };

describe("GET /v2/{ep}/states", () => {
  it("lists every state with what clients read and each seed's name, to a client key", async () => {
    const ep = await createEndpoint();
    const key = await createKey(ep, "client");
    const res = await call("GET", `/v2/${ep}/states`, { key });
    expect(res.status).toBe(200);
    const { states } = await json<{ states: Row[] }>(res);
    expect(states.map((s) => s.state)).toEqual([...JOB_STATES]);
    const by = new Map(states.map((s) => [s.state, s]));
    // RunPod's clients never read the internal waiting states.
    expect(by.get("SCHEDULED")).toMatchObject({ shownAs: "IN_QUEUE", runpod: null });
    expect(by.get("PAUSED")).toMatchObject({ shownAs: "IN_QUEUE", flamenco: "paused" });
    expect(by.get("IN_PROGRESS")).toMatchObject({ shownAs: "IN_PROGRESS", runpod: "IN_PROGRESS", ucloud: "RUNNING", flamenco: "active" });
    expect(by.get("TIMED_OUT")).toMatchObject({ ucloud: "EXPIRED" });
    for (const s of states) expect(s.meaning.length).toBeGreaterThan(10);
  });

  it("needs a key of the endpoint; an unknown endpoint is a 404", async () => {
    const ep = await createEndpoint();
    expect((await call("GET", `/v2/${ep}/states`, { key: null })).status).toBe(401);
    expect((await call("GET", `/v2/${ep}/states`, { key: await createKey(ep, "worker") })).status).toBe(403);
    expect((await call("GET", `/v2/no-such-endpoint-xyz/states`)).status).toBe(404);
  });
});
