/**
 * Reading a job's stream: RunPod's /stream (chunks handed out once, `stream` always an array),
 * and, with `Accept: text/event-stream`, a live SSE stream that consumes nothing, resumes after
 * `Last-Event-ID`, and ends with the final status.
 */
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { clientStatus, isTerminal } from "../../jobs/states";
import { LIMITS } from "../../shared/limits";
import { badRequest } from "../errors";
import { arrayOf, objectWith } from "../../shared/json-bytes";
import { jsonResponse, renderWithOutput, statusFields } from "../render";
import { jobNotFound } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";
import { GET_STREAM_DOC, POST_STREAM_DOC } from "../openapi/docs-client";
import { jobFor, waitParam } from "../params";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SSE_POLL_MS = 15_000;

/** `{"status":…,"stream":[chunk,…]}` with the stored chunks spliced in as bytes. */
function streamBody(status: string, chunks: Uint8Array[]): Uint8Array {
  return objectWith({ status }, "stream", arrayOf(chunks));
}

export function streamRoutes(app: Hono<AppEnv>): void {
  const handler = async (c: Context<AppEnv>) => {
    const { ref, id, stub } = await jobFor(c);

    if (!(c.req.header("accept") ?? "").includes("text/event-stream")) {
      const r = await stub.takeStream(ref, waitParam(c, LIMITS.streamWait));
      if (!r.ok) throw jobNotFound(id);
      return jsonResponse(streamBody(clientStatus(r.job.state), r.chunks.map((ch) => ch.data)));
    }

    const first = await stub.read(ref);
    if (!first.ok) throw jobNotFound(id);
    const resumeFrom = c.req.header("last-event-id") ?? c.req.query("lastEventId") ?? "0";
    if (!/^\d+$/.test(resumeFrom)) throw badRequest(`Last-Event-ID must be a chunk number, got '${resumeFrom}'`);
    let after = Number(resumeFrom);
    return streamSSE(c, async (sse) => {
      while (!sse.aborted) {
        const r = await stub.streamFrom(ref, after, SSE_POLL_MS);
        if (!r.ok) {
          await sse.writeSSE({ event: "error", data: JSON.stringify({ error: "job not found (deleted after its retention?)" }) });
          return;
        }
        for (const ch of r.chunks) {
          await sse.writeSSE({ id: String(ch.seq), event: "chunk", data: dec.decode(ch.data) });
          after = ch.seq;
        }
        if (r.chunks.length > 0) continue;
        if (isTerminal(r.job.state)) {
          const final = await stub.read(ref);
          const body = final.ok ? renderWithOutput(statusFields(final.job, Date.now()), final.output) : enc.encode("{}");
          await sse.writeSSE({ event: "status", data: dec.decode(body) });
          return;
        }
        await sse.write(": keep-alive\n\n");
      }
    });
  };
  route(app, "/v2/:ep/stream/:id", { GET: handler, POST: handler }, { GET: GET_STREAM_DOC, POST: POST_STREAM_DOC });
}
