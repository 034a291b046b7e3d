/**
 * The minimal pull path of RunPod's worker protocol (RUNPOD-WIRE §2): job-take (long-poll) and
 * job-done. Worker requests carry the raw key; job-done bodies are JSON whatever the content type.
 */
import type { Context, Hono } from "hono";
import type { WorkerReport } from "../../jobs/job-object";
import { ID_PATTERN, PAYLOAD } from "../../shared/limits";
import { requireEndpoint } from "../auth";
import { jsonBytes, readJson } from "../body";
import { badRequest, conflict } from "../errors";
import { jsonResponse } from "../render";
import { checkEndpointId, endpointStub, jobNotFound, jobStub } from "../stubs";
import type { AppEnv } from "../types";
import { route } from "./route";

function workerIdParam(c: Context<AppEnv>): string {
  const id = c.req.param("w")!;
  if (!ID_PATTERN.test(id)) throw badRequest(`'${id}' is not a valid worker id: use 1-64 letters, digits, '-' or '_'`);
  return id;
}

/** Reads a job-done body into a report and the output bytes it carries. */
function toReport(body: unknown): { report: WorkerReport; output: Uint8Array | null } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest("job-done body must be a JSON object such as {\"output\": ...} or {\"error\": \"...\"}");
  }
  const b = body as Record<string, unknown>;
  const output = "output" in b ? jsonBytes(b.output, "output") : null;
  if (output !== null && output.byteLength > PAYLOAD.outputBytes) {
    throw badRequest(`output is ${output.byteLength} bytes; the limit is ${PAYLOAD.outputBytes}`);
  }
  if (b.status === "IN_PROGRESS") return { report: { kind: "progress" }, output };
  if ("error" in b && b.error !== undefined && b.error !== null) {
    const error = typeof b.error === "string" ? b.error : JSON.stringify(b.error);
    return { report: { kind: "fail", error }, output };
  }
  return { report: { kind: "complete" }, output };
}

export function workerRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/job-take/:w", {
    GET: async (c) => {
      const endpointId = checkEndpointId(c.req.param("ep")!);
      const workerId = workerIdParam(c);
      await requireEndpoint(c, endpointId, "worker");
      const endpoint = endpointStub(c.env, endpointId);
      const deadline = Date.now() + Number(c.env.TAKE_WAIT_MS);
      for (;;) {
        const ids = await endpoint.take(workerId, 1, Math.max(0, deadline - Date.now()));
        if (ids.length === 0) return c.body(null, 204);
        for (const id of ids) {
          const r = await c.env.JOB.get(c.env.JOB.idFromString(id)).claim(endpointId, workerId);
          if (r.ok) {
            const head = new TextEncoder().encode(`{"id":${JSON.stringify(r.job.id)},"attempt":${r.job.attempt},"input":`);
            const body = new Uint8Array(head.byteLength + r.input.byteLength + 1);
            body.set(head, 0);
            body.set(r.input, head.byteLength);
            body[body.byteLength - 1] = 0x7d;
            return jsonResponse(body);
          }
          // The index was behind the job (cancelled, expired, taken): repair it and try the next.
          if (r.code !== "NOT_FOUND") await endpoint.sync(r.entry);
        }
        if (Date.now() >= deadline) return c.body(null, 204);
      }
    },
  });

  route(app, "/v2/:ep/job-done/:w/:id", {
    POST: async (c) => {
      const endpointId = checkEndpointId(c.req.param("ep")!);
      const workerId = workerIdParam(c);
      await requireEndpoint(c, endpointId, "worker");
      const id = c.req.param("id")!;
      const stub = jobStub(c.env, id);
      if (!stub) throw jobNotFound(id);
      const { report, output } = toReport(await readJson(c.req.raw, PAYLOAD.outputBytes + PAYLOAD.envelopeBytes));
      const r = await stub.report(endpointId, workerId, report, output);
      if (r.ok) return c.json({});
      if (r.code === "NOT_FOUND") throw jobNotFound(id);
      throw conflict(r.message, { id, status: r.job.state, code: r.code });
    },
  });
}
