/**
 * `GET /v2/{ep}/states` (issue 15, item 6): every job state, what clients read for it, and what
 * each seed system (RunPod, UCloud, Actian, Flamenco) calls it.
 */
import type { Hono } from "hono";
import { STATE_NAMES } from "../../jobs/state-names";
import { requireEndpoint } from "../auth";
import { STATES_DOC } from "../openapi/docs-states";
import { endpointParam } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

export function stateRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/states", {
    GET: async (c) => {
      await requireEndpoint(c, endpointParam(c), "client");
      return c.json({ states: STATE_NAMES });
    },
  }, { GET: STATES_DOC });
}
