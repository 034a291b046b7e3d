/** Endpoint commands (its client key, or the admin key): purge, health and metrics. */
import { must } from "../http.ts";
import type { components } from "../schema.ts";
import { choiceFlag, type Handler } from "./context.ts";
import { block, line, ms, printJson, table } from "./output.ts";

type Percentiles = components["schemas"]["LatencyPercentiles"];

export const METRIC_WINDOWS = ["1h", "6h", "24h", "7d"] as const;

export const purge: Handler = async (ctx) => {
  const answer = await must(ctx.api.POST("/v2/{ep}/purge-queue", { params: { path: { ep: ctx.ep } } }), `purge ${ctx.ep}`);
  if (ctx.json) printJson(answer);
  else line(`removed ${answer.removed} waiting job${answer.removed === 1 ? "" : "s"} from ${ctx.ep}${answer.removed >= 1000 ? " (at most 1000 per call: run it again for more)" : ""}`);
  return 0;
};

const counts = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`)} ${v}`)
    .join(", ");

export const health: Handler = async (ctx) => {
  const answer = await ctx.client.health();
  if (ctx.json) printJson(answer);
  else
    block([
      ["jobs", counts(answer.jobs)],
      ["workers", counts(answer.workers)],
    ]);
  return 0;
};

export const metrics: Handler = async (ctx) => {
  const window = choiceFlag(ctx, "window", METRIC_WINDOWS);
  const answer = await must(
    ctx.api.GET("/v2/{ep}/metrics", { params: { path: { ep: ctx.ep }, query: window === undefined ? {} : { window } } }),
    `metrics of ${ctx.ep}`,
  );
  if (ctx.json) {
    printJson(answer);
    return 0;
  }
  const t = answer.total;
  line(`${answer.endpointId}, the last ${answer.window} (${answer.from} → ${answer.to}); percentiles within ${Math.round(answer.percentileRelativeError * 100)} %`);
  line();
  const row = (name: string, p: Percentiles) => [name, ms(p.p70), ms(p.p90), ms(p.p98), String(p.count)];
  table(["", "p70", "p90", "p98", "count"], [row("execution", t.executionTime), row("delay", t.delayTime), row("cold start", t.coldStartTime)], "");
  line();
  block([
    ["requests", counts(t.requests)],
    ["cold starts", String(t.coldStarts)],
    ["webhooks", counts(t.webhooks)],
    ["workers", t.workers ? counts(t.workers) : "-"],
  ]);
  return 0;
};
