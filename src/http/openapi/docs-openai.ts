/**
 * The description of the OpenAI-compatible route `/v2/{ep}/openai/*` (RUNPOD-WIRE-2 §2). OpenAPI
 * has no wildcard paths: the `*` stands for any route, such as `v1/chat/completions`.
 */
import { z } from "zod";
import { OPENAI_ROUTE } from "../../shared/limits";
import { ErrorBody } from "./common";
import type { OperationDoc, ResponseDoc } from "./operation";

const MB = 1024 * 1024;

/** OpenAI's error body: every refusal of this route, and a job that did not complete. */
export const OpenAiError = z
  .object({
    error: z.object({
      message: z.string().describe("What went wrong: ours, or the worker's error message."),
      type: z
        .string()
        .describe(
          "invalid_request_error, authentication_error, permission_error, not_found_error, server_error; for a job: the worker's type (else worker_error), timeout or cancelled.",
        ),
      param: z.null(),
      code: z.union([z.string(), z.number(), z.null()]).describe("The worker's code, the job's end reason (timeout, cancelled), or null."),
    }),
  })
  .meta({ id: "OpenAiError" });

const OpenAiRequest = z
  .record(z.string(), z.unknown())
  .describe(
    "The OpenAI request (e.g. `{model, messages, stream}`), passed to the worker unchanged as `input.openai_input`; " +
      `a JSON object of at most ${OPENAI_ROUTE.bodyBytes / MB} MB (an empty body is \`{}\`). \`"stream": true\` asks for a streaming answer.`,
  );

const DESCRIPTION =
  "RunPod's OpenAI-compatible passthrough: point an OpenAI SDK at `/v2/{ep}/openai/v1` with the endpoint's client key. " +
  "`*` is any route (`v1/chat/completions`, `v1/completions`, `v1/models`, `v1/embeddings`, …); it becomes a job (kept as /runsync's) " +
  'whose input is `{"openai_route": "/v1/…", "openai_input": <the body, or {} for GET or an empty body>}` (the query string is not passed on). ' +
  "The call waits for the job, at most the job's execution timeout after submission (then the job is cancelled and the call answers 504). " +
  "Without `stream`: 200 with the worker's output unwrapped (a list of strings → their concatenation; a list of one object → that object; " +
  "anything else as is). With `\"stream\": true`: once the first chunk comes, 200 text/event-stream, each stream chunk's `output` string written " +
  "as is, in order (a non-string item as `data: <json>`), closed when the job ends; an error after that is a last `data: {\"error\": …}` event. " +
  "A job that fails answers its OpenAI error (status 500, or the worker's 4xx code), TIMED_OUT 504, CANCELLED 409. " +
  "A client that disconnects cancels the job. `x-request-id` is the job's id (GET /v2/{ep}/status/{id} reads it for its retention).";

const RESPONSES: Record<number, ResponseDoc> = {
  200: {
    description: "The worker's output unwrapped (any JSON, normally an OpenAI object); with `\"stream\": true` a text/event-stream of the worker's chunks.",
    schema: z.unknown(),
    alsoAs: ["text/event-stream"],
  },
  400: { description: "The body is not a JSON object (or not JSON), the route is too long, or the worker reported a 400.", schema: OpenAiError },
  401: { description: "Missing or invalid key.", schema: OpenAiError },
  403: { description: "A worker key, which may not use the client API.", schema: OpenAiError },
  404: { description: "No such endpoint, no route after /openai, or the worker reported a 404.", schema: OpenAiError },
  409: { description: "The job was cancelled (by /cancel, a queue purge or its endpoint's deletion).", schema: OpenAiError },
  413: { description: `The body is larger than ${OPENAI_ROUTE.bodyBytes / MB} MB.`, schema: OpenAiError },
  429: { description: "Over the rate limit of /openai/* (RunPod's: 2000 requests per 10 s per key and endpoint), with Retry-After.", schema: OpenAiError },
  500: { description: "The worker failed the job (its error, as an OpenAI error object).", schema: OpenAiError },
  502: { description: "The job completed without an output, or with a non-streaming answer too large to assemble from its stream.", schema: OpenAiError },
  503: { description: "A push endpoint while PUBLIC_URL is unset, or not configured.", schema: z.union([OpenAiError, ErrorBody]) },
  504: { description: "The job timed out, or did not end within its execution timeout after submission (it was cancelled).", schema: OpenAiError },
};

export const OPENAI_POST_DOC: OperationDoc = {
  operationId: "openAiPost",
  summary: "OpenAI-compatible request (RunPod /openai/*): chat completions, completions, embeddings, …",
  description: DESCRIPTION,
  tags: ["Jobs"],
  auth: "client",
  body: { schema: OpenAiRequest, required: false },
  responses: RESPONSES,
};

export const OPENAI_GET_DOC: OperationDoc = {
  operationId: "openAiGet",
  summary: "OpenAI-compatible GET (RunPod /openai/*), e.g. v1/models",
  description: DESCRIPTION,
  tags: ["Jobs"],
  auth: "client",
  responses: RESPONSES,
};
