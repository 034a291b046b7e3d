/**
 * Endpoints and keys through the admin API.
 */
import { describe, expect, it } from "vitest";
import { call, createEndpoint, json, uniqueEndpointId } from "./helpers";

describe("endpoints", () => {
  it("PUT creates with defaults and returns the stored config", async () => {
    const id = uniqueEndpointId();
    const res = await call("PUT", `/admin/endpoints/${id}`, { body: { executionTimeout: 60_000 } });
    expect(res.status).toBe(200);
    const config = await json(res);
    expect(config).toMatchObject({
      id,
      mode: "pull",
      workerUrls: [],
      executionTimeout: 60_000,
      ttl: 86_400_000,
      maxAttempts: 3,
      retentionMs: 1_800_000,
      syncRetentionMs: 60_000,
      concurrency: null,
      allowPrivateUrls: true, // the local-dev default (LOCAL_DEV=true in tests)
      webhookSecret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]+=*$/),
    });
    expect(await json(await call("GET", `/admin/endpoints/${id}`))).toEqual(config);
  });

  it("an empty PUT body takes every default", async () => {
    const id = uniqueEndpointId();
    const res = await call("PUT", `/admin/endpoints/${id}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ id, mode: "pull", ttl: 86_400_000 });
  });

  it("PUT again replaces the config but keeps the secret and creation time", async () => {
    const id = await createEndpoint({ ttl: 20_000 });
    const first = await json(await call("GET", `/admin/endpoints/${id}`));
    const second = await json(await call("PUT", `/admin/endpoints/${id}`, { body: { concurrency: 4 } }));
    expect(second).toMatchObject({ ttl: 86_400_000, concurrency: 4, webhookSecret: first.webhookSecret, createdAt: first.createdAt });
  });

  it("lists endpoints and deletes them; a deleted endpoint answers 404 saying how to create it", async () => {
    const id = await createEndpoint();
    const list = await json<{ endpoints: Array<{ id: string }> }>(await call("GET", "/admin/endpoints"));
    expect(list.endpoints.map((e) => e.id)).toContain(id);
    expect(await json(await call("DELETE", `/admin/endpoints/${id}`))).toEqual({ id, deleted: true, jobsEnded: 0 });
    const gone = await call("GET", `/v2/${id}/health`);
    expect(gone.status).toBe(404);
    expect((await json(gone)).error).toContain(`PUT /admin/endpoints/${id}`);
    expect((await call("DELETE", `/admin/endpoints/${id}`)).status).toBe(404);
    const after = await json<{ endpoints: Array<{ id: string }> }>(await call("GET", "/admin/endpoints"));
    expect(after.endpoints.map((e) => e.id)).not.toContain(id);
  });

  it("push mode needs worker URLs", async () => {
    const res = await call("PUT", `/admin/endpoints/${uniqueEndpointId()}`, { body: { mode: "push" } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(/workerUrls/);
    const ok = await call("PUT", `/admin/endpoints/${uniqueEndpointId()}`, {
      body: { mode: "push", workerUrls: ["https://worker.example.com/jobs"] },
    });
    expect(await json(ok)).toMatchObject({ mode: "push", workerUrls: ["https://worker.example.com/jobs"] });
  });

  it("keys are shown once, listed without their secret, and scoped", async () => {
    const id = await createEndpoint();
    const created = await json(await call("POST", `/admin/endpoints/${id}/keys`, { body: { scope: "worker" } }));
    expect(created).toMatchObject({ id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^ej_w_/), scope: "worker" });
    const listed = await json<{ keys: Array<Record<string, unknown>> }>(await call("GET", `/admin/endpoints/${id}/keys`));
    expect(listed.keys).toHaveLength(1);
    expect(listed.keys[0]).toMatchObject({ id: created.id, scope: "worker" });
    expect(JSON.stringify(listed)).not.toContain(created.key as string);
    expect(listed.keys[0]!.digest).toBeUndefined();
  });
});
