/**
 * The body of a worker's job-log post: `{"lines": [line, …]}` with 1 to JOB_LOG.linesPerPost
 * lines, each `{"level"?, "message" | "line", "ts" | "at"?}` or a plain string (an INFO line).
 * Levels are DEBUG, INFO, WARN, ERROR, or RunPod's and Python's names for them, in any case
 * (absent: INFO); anything else is a 400. A time is ms since the epoch or an RFC 3339 string.
 * Messages over JOB_LOG.lineChars (+ cutNoteRoom) characters are cut in the middle as RunPod's SDK
 * cuts them.
 */
import { cutMessage, type LogLevel, type LogLineIn } from "../jobs/logs";
import { JOB_LOG } from "../shared/limits";
import { badRequest } from "./errors";

/** Level names accepted (upper-cased), and the level each is kept as. */
const LEVELS = new Map<string, LogLevel>([
  ["DEBUG", "DEBUG"],
  ["TRACE", "DEBUG"],
  ["NOTSET", "DEBUG"],
  ["INFO", "INFO"],
  ["TIP", "INFO"],
  ["WARN", "WARN"],
  ["WARNING", "WARN"],
  ["ERROR", "ERROR"],
  ["CRITICAL", "ERROR"],
  ["FATAL", "ERROR"],
]);

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** The latest time a JavaScript Date holds (±8.64e15 ms). */
const MAX_MS = 8.64e15;

/** A field the object itself holds (never one inherited from its prototype). */
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function levelOf(raw: unknown, where: string): LogLevel {
  if (raw === undefined || raw === null) return "INFO";
  const level = typeof raw === "string" ? LEVELS.get(raw.toUpperCase()) : undefined;
  if (level === undefined) {
    const shown = typeof raw === "string" ? `'${raw.slice(0, 40)}'` : typeof raw;
    throw badRequest(`${where}.level: unknown level ${shown}; use DEBUG, INFO, WARN or ERROR (RunPod's TRACE, TIP, NOTSET and WARNING, CRITICAL, FATAL are accepted too)`);
  }
  return level;
}

function timeOf(raw: unknown, where: string): number | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === "number" && Number.isFinite(raw) && raw >= 0 && raw <= MAX_MS) return Math.floor(raw);
  if (typeof raw === "string" && RFC3339.test(raw)) {
    const ms = Date.parse(raw.replace(" ", "T"));
    if (!Number.isNaN(ms) && ms >= 0) return ms;
  }
  throw badRequest(`${where}.ts: a time must be milliseconds since the epoch or an RFC 3339 string such as 2026-06-01T12:05:04.123Z`);
}

function lineOf(raw: unknown, i: number): LogLineIn {
  const where = `lines[${i}]`;
  if (typeof raw === "string") return { level: "INFO", message: cutMessage(raw), ts: null };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw badRequest(`${where} must be an object such as {"level": "INFO", "message": "..."} or a string`);
  }
  const o = raw as Record<string, unknown>;
  const message = own(o, "message") ?? own(o, "line");
  if (typeof message !== "string") throw badRequest(`${where}.message must be a string (or send it as "line")`);
  return { level: levelOf(own(o, "level"), where), message: cutMessage(message), ts: timeOf(own(o, "ts") ?? own(o, "at"), where) };
}

/** The lines of a job-log body, checked and cut; a 400 names the first bad one. */
export function parseLogBody(body: unknown): LogLineIn[] {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest('job-log body must be a JSON object such as {"lines": [{"level": "INFO", "message": "..."}]}');
  }
  const lines = own(body as Record<string, unknown>, "lines");
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > JOB_LOG.linesPerPost) {
    throw badRequest(`job-log body must hold "lines": an array of 1 to ${JOB_LOG.linesPerPost} lines`);
  }
  return lines.map(lineOf);
}
