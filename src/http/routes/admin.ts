/**
 * The admin API: endpoints and their keys. Admin key only.
 */
import type { Hono } from "hono";
import { EndpointConfigInput } from "../../endpoints/config";
import { PAYLOAD } from "../../shared/limits";
import { foundOn, requireAdmin, unknownEndpoint } from "../auth";
import { forgetEndpoint } from "../auth-cache";
import { readJson, validate } from "../body";
import { badRequest, notFound } from "../errors";
import { directoryStub, endpointParam, endpointStub, isoTime } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import { dropLiveness, mergedWorkers } from "../../flows/liveness";
import {
  createEndpointDoc,
  createKeyDoc,
  deleteEndpointDoc,
  endpointActionDocs,
  endpointCountersDoc,
  endpointJobsDoc,
  endpointWorkersDoc,
  getEndpointDoc,
  listEndpointsDoc,
  listKeysDoc,
  NewKeyBody,
  revokeKeyDoc,
  rotateSecretDoc,
} from "../openapi/docs-admin";

const DELETE_PARALLEL = 16;

export function adminRoutes(app: Hono<AppEnv>): void {
  app.use("/admin/*", async (c, next) => {
    await requireAdmin(c);
    await next();
    // Any change to an endpoint or its keys takes effect at once in this isolate.
    // The path decodes: malformed escapes were refused before any route (app.ts).
    const ep = /^\/admin\/endpoints\/([^/]+)/.exec(new URL(c.req.url).pathname)?.[1];
    // A load reset changes neither, so it keeps the cached authorizations (no re-authorize counted).
    if (ep && c.req.method !== "GET" && !c.req.path.endsWith("/load/reset")) forgetEndpoint(decodeURIComponent(ep));
  });

  route(app, "/admin/endpoints", {
    GET: async (c) => {
      const ids = await directoryStub(c.env).list();
      const configs = await Promise.all(ids.map((id) => endpointStub(c.env, id).getConfig()));
      return c.json({ endpoints: configs.filter((x) => x !== null) });
    },
  }, { GET: listEndpointsDoc });

  route(app, "/admin/endpoints/:ep", {
    PUT: async (c) => {
      const id = endpointParam(c);
      const input = validate(EndpointConfigInput, (await readJson(c.req.raw, PAYLOAD.smallBodyBytes, false)) ?? {});
      const r = await endpointStub(c.env, id).putConfig(id, input, c.env.LOCAL_DEV === "true");
      if (!r.ok) throw badRequest(`invalid body: ${r.message}`);
      await directoryStub(c.env).add(id);
      return c.json(r.config);
    },
    GET: async (c) => {
      const id = endpointParam(c);
      return c.json(foundOn(id, await endpointStub(c.env, id).getConfig()));
    },
    DELETE: async (c) => {
      const id = endpointParam(c);
      const { existed, jobs, generation } = await endpointStub(c.env, id).deleteEndpoint();
      await directoryStub(c.env).remove(id);
      if (!existed) throw unknownEndpoint(id);
      // Its worker shards go too: their job-stop polls end now, and they answer nothing more.
      if (generation !== null) await dropLiveness(c.env, id, generation);
      // Its unfinished jobs end now (waiting ones CANCELLED, running ones cancelled); any job the
      // index did not list ends when it next reaches the endpoint.
      let ended = 0;
      for (let i = 0; i < jobs.length; i += DELETE_PARALLEL) {
        const results = await Promise.all(
          jobs.slice(i, i + DELETE_PARALLEL).map((j) => c.env.JOB.get(c.env.JOB.idFromString(j)).endpointDeleted(id)),
        );
        ended += results.filter((r) => r.ok).length;
      }
      return c.json({ id, deleted: true, jobsEnded: ended });
    },
  }, { PUT: createEndpointDoc, GET: getEndpointDoc, DELETE: deleteEndpointDoc });

  for (const action of ["pause", "resume"] as const) {
    route(app, `/admin/endpoints/:ep/${action}`, {
      POST: async (c) => {
        const id = endpointParam(c);
        return c.json(foundOn(id, await endpointStub(c.env, id).setPaused(action === "pause")));
      },
    }, { POST: endpointActionDocs[action] });
  }

  route(app, "/admin/endpoints/:ep/rotate-secret", {
    POST: async (c) => {
      const id = endpointParam(c);
      return c.json(foundOn(id, await endpointStub(c.env, id).rotateSecret()));
    },
  }, { POST: rotateSecretDoc });

  route(app, "/admin/endpoints/:ep/counters", {
    GET: async (c) => {
      const id = endpointParam(c);
      return c.json({ id, counters: foundOn(id, await endpointStub(c.env, id).counters()) });
    },
  }, { GET: endpointCountersDoc });

  route(app, "/admin/endpoints/:ep/jobs", {
    GET: async (c) => {
      const id = endpointParam(c);
      const raw = c.req.query("limit") ?? "50";
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 500) throw badRequest("limit must be a whole number from 1 to 500");
      const jobs = foundOn(id, await endpointStub(c.env, id).jobs(Number(raw)));
      return c.json({ jobs: jobs.map((j) => ({ ...j, updatedAt: isoTime(j.updatedAt), createdAt: isoTime(j.createdAt) })) });
    },
  }, { GET: endpointJobsDoc });

  route(app, "/admin/endpoints/:ep/workers", {
    GET: async (c) => {
      const id = endpointParam(c);
      const workers = await mergedWorkers(c.env, foundOn(id, await endpointStub(c.env, id).getConfig()));
      return c.json({
        workers: workers.map((w) => ({
          ...w,
          firstSeen: isoTime(w.firstSeen),
          lastSeen: isoTime(w.lastSeen),
          firstTakeAt: isoTime(w.firstTakeAt),
          recentFailures: w.recentFailures.map((f) => ({ ...f, at: isoTime(f.at) })),
        })),
      });
    },
  }, { GET: endpointWorkersDoc });

  route(app, "/admin/endpoints/:ep/keys", {
    POST: async (c) => {
      const id = endpointParam(c);
      const body = validate(NewKeyBody, await readJson(c.req.raw, PAYLOAD.smallBodyBytes));
      const key = foundOn(id, await endpointStub(c.env, id).createKey(body.scope));
      return c.json({ ...key, note: "this key is shown once; store it now" });
    },
    GET: async (c) => {
      const id = endpointParam(c);
      const stub = endpointStub(c.env, id);
      if (!(await stub.getConfig())) throw unknownEndpoint(id);
      return c.json({ keys: await stub.listKeys() });
    },
  }, { POST: createKeyDoc, GET: listKeysDoc });

  route(app, "/admin/endpoints/:ep/keys/:keyId", {
    DELETE: async (c) => {
      const id = endpointParam(c);
      const keyId = c.req.param("keyId")!;
      if (!(await endpointStub(c.env, id).deleteKey(keyId))) {
        throw notFound(`key '${keyId}' not found on endpoint '${id}'`);
      }
      return c.json({ id: keyId, deleted: true });
    },
  }, { DELETE: revokeKeyDoc });
}
