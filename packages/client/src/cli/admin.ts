/**
 * Admin commands (the admin key): endpoints create/list/get/pause/resume, keys
 * create/list/revoke, and an endpoint's workers. Every call goes through the typed client.
 */
import { readFileSync } from "node:fs";
import { must } from "../http.ts";
import type { components } from "../schema.ts";
import { stringFlag, type Ctx, type Handler } from "./context.ts";
import { UsageError } from "./failures.ts";
import { ago, block, line, ms, printJson, table, text, warn } from "./output.ts";

type EndpointConfig = components["schemas"]["EndpointConfig"];
type ConfigInput = components["schemas"]["EndpointConfigInput"];

/** The config of `endpoints create`: --config JSON or --file f (a JSON object), else `{}` (every default). */
function configOf(ctx: Ctx): ConfigInput {
  const inline = stringFlag(ctx, "config");
  const file = stringFlag(ctx, "file");
  if (inline !== undefined && file !== undefined) throw new UsageError("give the config once: --config or --file", ctx.command);
  if (inline === undefined && file === undefined) return {};
  let source: string;
  if (file !== undefined) {
    try {
      source = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`, ctx.command);
    }
  } else source = inline as string;
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (e) {
    throw new UsageError(`${file ?? "--config"} is not JSON: ${(e as Error).message}`, ctx.command);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError("the config must be a JSON object", ctx.command);
  return parsed as ConfigInput;
}

const ep = (ctx: Ctx) => ({ params: { path: { ep: ctx.ep } } });

function showEndpoint(config: EndpointConfig): void {
  const { id, mode, paused, ...rest } = config;
  block([
    ["id", id],
    ["mode", mode],
    ["paused", paused],
    ...Object.entries(rest).map(([k, v]): [string, unknown] => [k, k.endsWith("Timeout") || k.endsWith("Ms") || k === "ttl" ? `${v} (${ms(v as number)})` : v]),
  ]);
}

const endpointAnswer = async (ctx: Ctx, call: Promise<{ data?: EndpointConfig; error?: unknown; response: Response }>, what: string, done?: string) => {
  const config = await must(call, what);
  if (ctx.json) printJson(config);
  else if (done) line(done);
  else showEndpoint(config);
  return 0;
};

export const endpointsCreate: Handler = (ctx) =>
  endpointAnswer(ctx, ctx.api.PUT("/admin/endpoints/{ep}", { ...ep(ctx), body: configOf(ctx) }), `create endpoint ${ctx.ep}`);

export const endpointsGet: Handler = (ctx) => endpointAnswer(ctx, ctx.api.GET("/admin/endpoints/{ep}", ep(ctx)), `endpoint ${ctx.ep}`);

export const endpointsPause: Handler = (ctx) =>
  endpointAnswer(ctx, ctx.api.POST("/admin/endpoints/{ep}/pause", ep(ctx)), `pause ${ctx.ep}`, `endpoint ${ctx.ep} paused: no jobs are handed out (submits are still accepted)`);

export const endpointsResume: Handler = (ctx) =>
  endpointAnswer(ctx, ctx.api.POST("/admin/endpoints/{ep}/resume", ep(ctx)), `resume ${ctx.ep}`, `endpoint ${ctx.ep} resumed`);

export const endpointsList: Handler = async (ctx) => {
  const answer = await must(ctx.api.GET("/admin/endpoints"), "list endpoints");
  if (ctx.json) {
    printJson(answer);
    return 0;
  }
  table(
    ["ID", "MODE", "STATE", "CONCURRENCY", "SHARDS", "EXEC TIMEOUT", "CREATED"],
    answer.endpoints.map((e) => [e.id, e.mode, e.paused ? "paused" : "active", text(e.concurrency), String(e.shards), ms(e.executionTimeout), e.createdAt]),
    "no endpoints (create one with: edge-jobs endpoints create <id>)",
  );
  return 0;
};

export const keysCreate: Handler = async (ctx) => {
  const scope = stringFlag(ctx, "scope");
  if (scope === undefined) throw new UsageError("keys create needs --scope client|worker", ctx.command);
  if (scope !== "client" && scope !== "worker") throw new UsageError(`--scope must be client or worker, not ${JSON.stringify(scope)}`, ctx.command);
  const key = await must(ctx.api.POST("/admin/endpoints/{ep}/keys", { ...ep(ctx), body: { scope } }), `create a ${scope} key for ${ctx.ep}`);
  if (ctx.json) {
    printJson(key);
    return 0;
  }
  block([
    ["id", key.id],
    ["scope", key.scope],
    ["key", key.key],
    ["createdAt", key.createdAt],
  ]);
  warn(key.note || "the key is shown this once: store it now");
  return 0;
};

export const keysList: Handler = async (ctx) => {
  const answer = await must(ctx.api.GET("/admin/endpoints/{ep}/keys", ep(ctx)), `keys of ${ctx.ep}`);
  if (ctx.json) {
    printJson(answer);
    return 0;
  }
  table(
    ["ID", "SCOPE", "PREFIX", "CREATED"],
    answer.keys.map((k) => [k.id, k.scope, `${k.prefix}…`, k.createdAt]),
    `no keys (create one with: edge-jobs keys create ${ctx.ep} --scope client)`,
  );
  return 0;
};

export const keysRevoke: Handler = async (ctx) => {
  const keyId = ctx.args[1] as string;
  const answer = await must(ctx.api.DELETE("/admin/endpoints/{ep}/keys/{keyId}", { params: { path: { ep: ctx.ep, keyId } } }), `revoke ${keyId}`);
  if (ctx.json) printJson(answer);
  else line(`revoked ${answer.id}`);
  return 0;
};

export const workers: Handler = async (ctx) => {
  const answer = await must(ctx.api.GET("/admin/endpoints/{ep}/workers", ep(ctx)), `workers of ${ctx.ep}`);
  if (ctx.json) {
    printJson(answer);
    return 0;
  }
  table(
    ["WORKER", "STATE", "TAKEN", "CURRENT JOBS", "LAST SEEN", "FIRST SEEN", "SDK", "NOTE"],
    answer.workers.map((w) => [
      w.workerId,
      w.state,
      String(w.jobsTaken),
      w.currentJobs.length === 0 ? "-" : w.currentJobs.join(","),
      ago(w.lastSeen),
      ago(w.firstSeen),
      w.sdkVersion ?? "-",
      [w.recycle ? "recycling" : "", w.unhealthyReason ?? "", w.recentFailures.length > 0 ? `${w.recentFailures.length} recent failure(s)` : ""].filter(Boolean).join("; "),
    ]),
    "no workers heard from",
  );
  return 0;
};
