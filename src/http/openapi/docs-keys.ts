/**
 * The OpenAPI description of the flow-key override routes (routes/keys.ts). Admin key only.
 */
import { z } from "zod";
import { FlowKeyOverride, KeyRateLimit } from "../../endpoints/flow-rules";
import { FLOW_KEYS } from "../../shared/limits";
import { IsoTime } from "./common";
import type { OperationDoc } from "./operation";

const TAGS = ["Admin"] as const;

export const FlowKeyBody = FlowKeyOverride.meta({
  id: "FlowKeyOverrideInput",
  description: "A flow key's own limits; an omitted field takes the endpoint's default, null means none for this key. Unknown fields are a 400.",
});

export const FlowKeyView = z
  .object({
    key: z.string(),
    concurrency: z.number().int().nullable().optional().describe("As set (absent: the endpoint's keyConcurrency; null: no cap)."),
    rateLimit: KeyRateLimit.nullable().optional().describe("As set (absent: the endpoint's keyRateLimit; null: no rate limit)."),
    effective: z
      .object({ concurrency: z.number().int().nullable(), rateLimit: KeyRateLimit.nullable() })
      .describe("The limits that apply to the key's jobs, with the endpoint's defaults (null: none)."),
    updatedAt: IsoTime,
  })
  .meta({ id: "FlowKeyOverride" });

export const FlowKeyList = z.object({
  flowKeys: z.array(FlowKeyView).describe("Every override, by key."),
  limit: z.number().int().describe("Most overrides an endpoint keeps."),
});

const unknown = { 404: { description: "Unknown endpoint, or no override for the key." } };
const badKey = { 400: { description: `A key of 0 or more than ${FLOW_KEYS.keyChars} characters, or an invalid body.` } };

export const listFlowKeysDoc: OperationDoc = {
  operationId: "listFlowKeys",
  summary: "List an endpoint's flow-key overrides",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Every override.", schema: FlowKeyList }, 404: { description: "Unknown endpoint." } },
};

export const putFlowKeyDoc: OperationDoc = {
  operationId: "putFlowKey",
  summary: "Set a flow key's own concurrency and rate limit",
  description:
    "Overrides the endpoint's keyConcurrency and keyRateLimit for the jobs whose concurrencyKey or rateLimitKey is this key; takes effect at once on every shard. " +
    `Keys are 1-${FLOW_KEYS.keyChars} characters (escape '/' as %2F). At most ${FLOW_KEYS.overridesPerEndpoint} overrides per endpoint (409 past it). ` +
    "A changed rate limit starts a new window.",
  tags: TAGS,
  auth: "admin",
  body: { schema: FlowKeyBody },
  responses: {
    200: { description: "The stored override.", schema: FlowKeyView },
    ...badKey,
    409: { description: `The endpoint has ${FLOW_KEYS.overridesPerEndpoint} overrides already.` },
    404: { description: "Unknown endpoint." },
  },
};

export const getFlowKeyDoc: OperationDoc = {
  operationId: "getFlowKey",
  summary: "Read a flow key's override",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "The override.", schema: FlowKeyView }, ...badKey, ...unknown },
};

export const deleteFlowKeyDoc: OperationDoc = {
  operationId: "deleteFlowKey",
  summary: "Delete a flow key's override",
  description: "The key takes the endpoint's defaults again.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Deleted.", schema: z.object({ key: z.string(), deleted: z.literal(true) }) }, ...badKey, ...unknown },
};
