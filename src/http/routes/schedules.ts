/**
 * Cron schedules of an endpoint (issue 16): `/admin/endpoints/{ep}/schedules[/{name}[/action]]`.
 * Admin key only (adminRoutes' /admin/* middleware checks it: register after adminRoutes).
 */
import type { Context, Hono } from "hono";
import type { EndpointConfig } from "../../endpoints/config";
import { refOf } from "../../flows/stubs";
import { flowKeyRefusal, submitTagsRefusal } from "../../flows/submit";
import { scheduleIndexStub, scheduleStub } from "../../schedules/schedule-object";
import { ScheduleSpec } from "../../schedules/spec";
import { scheduleSummary, scheduleView, fireView } from "../../schedules/view";
import { ID_PATTERN, PAYLOAD, SCHEDULES } from "../../shared/limits";
import { checkOutboundUrl, publicOrigin } from "../../shared/urls";
import { foundOn } from "../auth";
import { jsonBytes, readJson, validate } from "../body";
import { ApiError, badRequest, conflict, notFound } from "../errors";
import {
  deleteScheduleDoc,
  getScheduleDoc,
  listSchedulesDoc,
  putScheduleDoc,
  scheduleActionDocs,
} from "../openapi/docs-schedules";
import { endpointParam, endpointStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

type C = Context<AppEnv>;

/** The endpoint as it is now (its incarnation names its schedules). */
async function endpointOf(c: C): Promise<EndpointConfig> {
  const id = endpointParam(c);
  return foundOn(id, await endpointStub(c.env, id).getConfig());
}

function nameParam(c: C): string {
  const name = c.req.param("name") ?? "";
  if (!ID_PATTERN.test(name)) {
    throw badRequest(`'${name.slice(0, 80)}' is not a valid schedule name: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`);
  }
  return name;
}

const noSchedule = (ep: string, name: string) => notFound(`no schedule '${name}' on endpoint '${ep}'`);

/** Reads and checks a schedule body against the endpoint it is for. */
async function specOf(c: C, config: EndpointConfig): Promise<ScheduleSpec> {
  const spec = validate(ScheduleSpec, await readJson(c.req.raw, SCHEDULES.bodyBytes));
  const input = jsonBytes(spec.job.input, "job.input").byteLength;
  if (input > SCHEDULES.inputBytes) throw badRequest(`job.input is ${input} bytes of JSON; the limit for a schedule is ${SCHEDULES.inputBytes}`);
  if (spec.job.s3Config !== undefined) {
    const bytes = jsonBytes(spec.job.s3Config, "job.s3Config").byteLength;
    if (bytes > PAYLOAD.s3ConfigBytes) throw badRequest(`job.s3Config is ${bytes} bytes of JSON; the limit is ${PAYLOAD.s3ConfigBytes}`);
  }
  if (spec.job.webhook !== undefined) {
    const check = checkOutboundUrl(spec.job.webhook, config.allowPrivateUrls);
    if (!check.ok) throw badRequest(`job.webhook: ${check.reason}`, { issues: [{ path: "job.webhook", message: check.reason }] });
  }
  const flowKey = flowKeyRefusal(spec.job, "job.");
  if (flowKey !== null) throw badRequest(flowKey);
  const tags = submitTagsRefusal(spec.job, config, "job.");
  if (tags !== null) throw badRequest(tags);
  if (spec.overlap === "queue" && (spec.job.concurrencyKey ?? spec.job.rateLimitKey) !== undefined) {
    throw badRequest('overlap "queue" runs the fires\' jobs as a sequence: it cannot go with job.concurrencyKey or job.rateLimitKey (use overlap "allow" with keyConcurrency 1 for the key)');
  }
  const pub = publicOrigin(c.env);
  if (config.mode === "push" && !pub.ok) throw new ApiError(503, pub.reason);
  return spec;
}

export function scheduleRoutes(app: Hono<AppEnv>): void {
  route(app, "/admin/endpoints/:ep/schedules", {
    GET: async (c) => {
      const config = await endpointOf(c);
      const names = await scheduleIndexStub(c.env, config.id, config.generation).indexList();
      const states = await Promise.all(names.map((name) => scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).get()));
      const ref = refOf(config);
      const schedules = await Promise.all(states.filter((s) => s !== null).map((s) => scheduleSummary(c.env, ref, s)));
      return c.json({ schedules });
    },
  }, { GET: listSchedulesDoc });

  route(app, "/admin/endpoints/:ep/schedules/:name", {
    PUT: async (c) => {
      const config = await endpointOf(c);
      const name = nameParam(c);
      const spec = await specOf(c, config);
      const added = await scheduleIndexStub(c.env, config.id, config.generation).indexAdd(name);
      if (!added.ok) throw conflict(`endpoint '${config.id}' has ${added.count} schedules, the limit: delete one first`, { limit: SCHEDULES.perEndpoint });
      const { state } = await scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).put({ endpointId: config.id, generation: config.generation, name }, spec);
      return c.json(await scheduleView(c.env, refOf(config), state));
    },
    GET: async (c) => {
      const config = await endpointOf(c);
      const name = nameParam(c);
      const state = await scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).get();
      if (state === null) throw noSchedule(config.id, name);
      return c.json(await scheduleView(c.env, refOf(config), state));
    },
    DELETE: async (c) => {
      const config = await endpointOf(c);
      const name = nameParam(c);
      const existed = await scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).remove();
      const listed = await scheduleIndexStub(c.env, config.id, config.generation).indexRemove(name);
      if (!existed && !listed) throw noSchedule(config.id, name);
      return c.json({ name, deleted: true });
    },
  }, { PUT: putScheduleDoc, GET: getScheduleDoc, DELETE: deleteScheduleDoc });

  for (const action of ["pause", "resume"] as const) {
    route(app, `/admin/endpoints/:ep/schedules/:name/${action}`, {
      POST: async (c) => {
        const config = await endpointOf(c);
        const name = nameParam(c);
        const state = await scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).setPaused(action === "pause");
        if (state === null) throw noSchedule(config.id, name);
        return c.json(await scheduleView(c.env, refOf(config), state));
      },
    }, { POST: scheduleActionDocs[action] });
  }

  route(app, "/admin/endpoints/:ep/schedules/:name/trigger", {
    POST: async (c) => {
      const config = await endpointOf(c);
      const name = nameParam(c);
      const fire = await scheduleStub(c.env, { endpointId: config.id, generation: config.generation, name }).trigger();
      if (fire === null) throw noSchedule(config.id, name);
      return c.json({ name, fire: await fireView(c.env, refOf(config), fire) });
    },
  }, { POST: scheduleActionDocs.trigger });
}
