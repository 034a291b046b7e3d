/**
 * GET /v2/{ep}/metrics?window=1h|6h|24h|7d&bucket=1m|5m|15m|1h|2h|6h|1d — RunPod's metrics tab as
 * an API: requests by outcome, execution, delay and cold start time at p70/p90/p98 (relative error
 * stated in the answer), cold starts, webhook deliveries and workers by state, per time bucket and
 * for the whole window. Admin and the endpoint's client keys may read.
 */
import type { Hono } from "hono";
import { RELATIVE_ERROR } from "../../metrics/sketch";
import { requireEndpoint } from "../auth";
import { badRequest } from "../errors";
import { endpointParam, endpointStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import { METRICS_DOC } from "../openapi/docs-client";
import { mergedWorkerCounts } from "../../flows/liveness";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
// Maps, not object literals: a query value such as `constructor` or `__proto__` must not find an
// inherited property (it did, and answered 500).
const DURATIONS = new Map<string, number>([
  ["1m", MINUTE], ["5m", 5 * MINUTE], ["15m", 15 * MINUTE], ["1h", HOUR], ["2h", 2 * HOUR], ["6h", 6 * HOUR], ["1d", 24 * HOUR],
]);
/** Each window and its default bucket. */
const WINDOWS = new Map<string, { ms: number; bucket: string }>([
  ["1h", { ms: HOUR, bucket: "1m" }], ["6h", { ms: 6 * HOUR, bucket: "5m" }], ["24h", { ms: 24 * HOUR, bucket: "15m" }], ["7d", { ms: 7 * 24 * HOUR, bucket: "2h" }],
]);
const MAX_BUCKETS = 500;

export function metricsRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/metrics", {
    GET: async (c) => {
      const endpointId = endpointParam(c);
      const config = await requireEndpoint(c, endpointId, "client");
      const window = c.req.query("window") ?? "1h";
      const w = WINDOWS.get(window);
      if (!w) throw badRequest(`window must be one of ${[...WINDOWS.keys()].join(", ")}; got '${window}'`);
      const bucket = c.req.query("bucket") ?? w.bucket;
      const bucketMs = DURATIONS.get(bucket);
      if (bucketMs === undefined) throw badRequest(`bucket must be one of ${[...DURATIONS.keys()].join(", ")}; got '${bucket}'`);
      const windowMs = w.ms;
      if (windowMs / bucketMs > MAX_BUCKETS) throw badRequest(`a ${window} window in ${bucket} buckets is more than ${MAX_BUCKETS} buckets`);
      const to = Date.now();
      const metrics = await endpointStub(c.env, endpointId).metrics(to - windowMs, to, bucketMs, await mergedWorkerCounts(c.env, config));
      return c.json({
        endpointId,
        window,
        bucket,
        from: new Date(to - windowMs).toISOString(),
        to: new Date(to).toISOString(),
        percentileRelativeError: RELATIVE_ERROR,
        ...metrics,
      });
    },
  }, { GET: METRICS_DOC });
}
