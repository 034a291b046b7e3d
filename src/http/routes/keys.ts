/**
 * Per-key flow-control overrides of an endpoint (issue 16, item 4):
 * `/admin/endpoints/{ep}/flow-keys[/{flowKey}]`. Admin key only (adminRoutes' /admin/* middleware
 * checks it: register after adminRoutes). Not under `…/keys`, which are the endpoint's API keys.
 */
import type { Context, Hono } from "hono";
import type { EndpointConfig } from "../../endpoints/config";
import { effectiveLimits, FlowKeyOverride, type FlowKeyRule } from "../../endpoints/flow-rules";
import { FLOW_KEYS, PAYLOAD } from "../../shared/limits";
import { foundOn, unknownEndpoint } from "../auth";
import { readJson, validate } from "../body";
import { badRequest, conflict, notFound } from "../errors";
import { deleteFlowKeyDoc, getFlowKeyDoc, listFlowKeysDoc, putFlowKeyDoc } from "../openapi/docs-keys";
import { endpointParam, endpointStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

type C = Context<AppEnv>;

/** The key from the path: 1-255 characters once decoded (any characters; `/` as %2F). */
function keyParam(c: C): string {
  const key = c.req.param("flowKey") ?? "";
  if (key.length < 1 || key.length > FLOW_KEYS.keyChars) {
    throw badRequest(`a flow key is 1-${FLOW_KEYS.keyChars} characters (as concurrencyKey and rateLimitKey on submit), got ${key.length}`);
  }
  return key;
}

/** An override as the API shows it: what was set, and the limits that apply with the endpoint's defaults. */
function view(rule: FlowKeyRule, config: EndpointConfig) {
  const { updatedAt, ...set } = rule;
  return { ...set, effective: effectiveLimits(rule, config), updatedAt: new Date(updatedAt).toISOString() };
}

const noOverride = (ep: string, key: string) =>
  notFound(`endpoint '${ep}' has no override for flow key '${key.slice(0, 80)}': the key takes the endpoint's keyConcurrency and keyRateLimit`);

export function flowKeyRoutes(app: Hono<AppEnv>): void {
  route(app, "/admin/endpoints/:ep/flow-keys", {
    GET: async (c) => {
      const id = endpointParam(c);
      const stub = endpointStub(c.env, id);
      const [config, rules] = await Promise.all([stub.getConfig(), stub.flowKeys()]);
      const found = foundOn(id, config);
      return c.json({ flowKeys: (rules ?? []).map((r) => view(r, found)), limit: FLOW_KEYS.overridesPerEndpoint });
    },
  }, { GET: listFlowKeysDoc });

  route(app, "/admin/endpoints/:ep/flow-keys/:flowKey", {
    PUT: async (c) => {
      const id = endpointParam(c);
      const key = keyParam(c);
      const override = validate(FlowKeyOverride, (await readJson(c.req.raw, PAYLOAD.smallBodyBytes, false)) ?? {});
      const stub = endpointStub(c.env, id);
      const r = await stub.putFlowKey(key, override);
      if (!r.ok && r.code === "NO_ENDPOINT") throw unknownEndpoint(id);
      if (!r.ok) throw conflict(`endpoint '${id}' has ${FLOW_KEYS.overridesPerEndpoint} flow-key overrides, the limit: delete one first`, { limit: FLOW_KEYS.overridesPerEndpoint });
      return c.json(view(r.rule, foundOn(id, await stub.getConfig())));
    },
    GET: async (c) => {
      const id = endpointParam(c);
      const key = keyParam(c);
      const stub = endpointStub(c.env, id);
      const [config, one] = await Promise.all([stub.getConfig(), stub.flowKey(key)]);
      const found = foundOn(id, config);
      if (!one?.rule) throw noOverride(id, key);
      return c.json(view(one.rule, found));
    },
    DELETE: async (c) => {
      const id = endpointParam(c);
      const key = keyParam(c);
      const gone = await endpointStub(c.env, id).deleteFlowKey(key);
      if (gone === null) throw unknownEndpoint(id);
      if (!gone) throw noOverride(id, key);
      return c.json({ key, deleted: true });
    },
  }, { PUT: putFlowKeyDoc, GET: getFlowKeyDoc, DELETE: deleteFlowKeyDoc });
}
