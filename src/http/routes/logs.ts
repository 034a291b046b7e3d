/**
 * Job logs (issue 14): workers append lines to the job they hold (`POST job-log`, fenced by the
 * lease like every report; push workers post to `urls.log` with their report token), and clients
 * read them in pages or follow them live as Server-Sent Events (`GET logs`).
 */
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { LogLine } from "../../jobs/logs";
import { clientStatus, isTerminal } from "../../jobs/states";
import { reportLog } from "../../flows/report";
import { JOB_LOG } from "../../shared/limits";
import { readJson } from "../body";
import { badRequest, conflict } from "../errors";
import { parseLogBody } from "../log-body";
import { intParam, jobFor } from "../params";
import { isoTime, jobNotFound } from "../stubs";
import type { AppEnv } from "../types";
import { GET_LOGS_DOC, JOB_LOG_DOC } from "../openapi/docs-logs";
import { route } from "./route";
import { reportTarget } from "./worker";

/** How long one SSE read round waits for a line before the stream sends a keep-alive. */
const SSE_POLL_MS = 15_000;

/** A line as clients read it. */
function lineView(l: LogLine) {
  return { seq: l.seq, at: isoTime(l.at), ts: isoTime(l.ts), attempt: l.attempt, workerId: l.workerId, level: l.level, message: l.message };
}

/** `?follow=1`, or an Accept of text/event-stream: answer a live SSE stream. */
function followParam(c: Context<AppEnv>): boolean {
  const raw = c.req.query("follow");
  if (raw !== undefined && raw !== "0" && raw !== "1") throw badRequest(`follow must be 0 or 1, got '${raw}'`);
  return raw === "1" || (raw === undefined && (c.req.header("accept") ?? "").includes("text/event-stream"));
}

/** Where to start: after `Last-Event-ID` (SSE resume, wins), else after `?after=`, else from the start. */
function afterParam(c: Context<AppEnv>): number {
  const raw = c.req.header("last-event-id") ?? c.req.query("after") ?? "0";
  if (!/^\d{1,15}$/.test(raw)) throw badRequest(`after (or Last-Event-ID) must be a line number (seq), got '${raw.slice(0, 40)}'`);
  return Number(raw);
}

export function logRoutes(app: Hono<AppEnv>): void {
  route(app, "/v2/:ep/job-log/:w/:id", {
    POST: async (c) => {
      const { target } = await reportTarget(c);
      const lines = parseLogBody(await readJson(c.req.raw, JOB_LOG.postBytes));
      const r = await reportLog(c.env, target, lines);
      if (r.ok) return c.json({ accepted: r.accepted, dropped: r.dropped, truncated: r.truncated });
      if (r.code === "NOT_FOUND") throw jobNotFound(target.jobId);
      throw conflict(r.message, { id: target.jobId, status: clientStatus(r.job.state), code: r.code, stop: true });
    },
  }, { POST: JOB_LOG_DOC });

  route(app, "/v2/:ep/logs/:id", {
    GET: async (c) => {
      const { ref, id, stub } = await jobFor(c);
      const follow = followParam(c);
      let after = afterParam(c);
      const limit = intParam(c, "limit", 1, JOB_LOG.page.max) ?? JOB_LOG.page.default;
      const first = await stub.readLog(ref, after, follow ? JOB_LOG.page.max : limit, 0);
      if (!first.ok) throw jobNotFound(id);
      if (!follow) {
        const next = first.more ? first.lines.at(-1)!.seq : null;
        return c.json({ id, status: clientStatus(first.job.state), lines: first.lines.map(lineView), next, truncated: first.truncated });
      }
      return streamSSE(c, async (sse) => {
        let r = first;
        while (!sse.aborted) {
          for (const l of r.lines) {
            await sse.writeSSE({ id: String(l.seq), event: "log", data: JSON.stringify(lineView(l)) });
            after = l.seq;
          }
          // Every line is sent once the job has ended: none can follow (a report after the end is refused).
          if (!r.more && isTerminal(r.job.state)) {
            await sse.writeSSE({ event: "end", data: JSON.stringify({ id, status: clientStatus(r.job.state), truncated: r.truncated }) });
            return;
          }
          if (r.lines.length === 0) await sse.write(": keep-alive\n\n");
          const nextRead = await stub.readLog(ref, after, JOB_LOG.page.max, r.more ? 0 : SSE_POLL_MS);
          if (!nextRead.ok) {
            await sse.writeSSE({ event: "error", data: JSON.stringify({ error: "job not found (deleted after its retention?)" }) });
            return;
          }
          r = nextRead;
        }
      });
    },
  }, { GET: GET_LOGS_DOC });
}
