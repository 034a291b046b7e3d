/**
 * A running job's log, as the worker loop gives it to the handler (`ctx.log`): lines are batched
 * and posted to job-log (fenced with the attempt) every FLUSH_MS, as soon as a batch is full, and
 * before the job's result. Best effort: a refused post (the job was stopped) or a full log
 * (`truncated`) drops later lines; other failures are told to onError, not to the handler.
 */
import { EdgeJobsError } from "./errors.ts";

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

/** The server's cut of a message, in characters (RunPod's SDK cuts at the same length), and the room it leaves for a cut note. */
const MAX_CHARS = 4096;
const NOTE_ROOM = 64;
/** A batch is posted at most this long after its first line. */
const FLUSH_MS = 500;
/**
 * A batch is posted at once at this many lines or this many characters of messages: even escaped
 * six-fold as JSON it stays under the server's 256 KiB a post (and 1,000 lines).
 */
const BATCH_LINES = 200;
const BATCH_CHARS = 32 * 1024;

/** A line as job-log takes it. */
export type LogLine = {
  level: LogLevel;
  message: string;
  ts: number;
};

/** Cut in the middle like the server and RunPod's SDK, so a long message never makes a post too large. */
function cut(message: string): string {
  if (message.length <= MAX_CHARS + NOTE_ROOM) return message;
  const chars = Array.from(message);
  if (chars.length <= MAX_CHARS + NOTE_ROOM) return message;
  const half = MAX_CHARS / 2;
  return `${chars.slice(0, half).join("")}\n...TRUNCATED ${chars.length - MAX_CHARS} CHARACTERS...\n${chars.slice(-half).join("")}`;
}

/** What a handler logged, as text: strings as they are, errors with their stack, other values as JSON. */
function textOf(message: unknown): string {
  if (typeof message === "string") return message;
  if (message instanceof Error) return message.stack ?? message.message;
  try {
    return JSON.stringify(message) ?? String(message);
  } catch {
    return String(message); // a BigInt, a cycle
  }
}

export interface JobLog {
  log(message: unknown, level?: LogLevel): void;
  /** Posts what is pending; resolves when every post so far has ended (it never rejects). */
  flush(): Promise<void>;
}

/**
 * A job's log over `send`, which posts lines to the job's job-log URL and answers whether the log
 * is full; an EdgeJobsError 409 from it closes the log.
 */
export function jobLog(send: (lines: LogLine[]) => Promise<{ truncated: boolean }>, onError: (e: unknown) => void): JobLog {
  let pending: LogLine[] = [];
  let chars = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let chain: Promise<void> = Promise.resolve();

  async function post(lines: LogLine[]): Promise<void> {
    if (closed) return;
    try {
      if ((await send(lines)).truncated) closed = true;
    } catch (e) {
      if (e instanceof EdgeJobsError && e.status === 409) closed = true; // the job was stopped: its log is closed
      else onError(e);
    }
  }

  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length > 0) {
      const lines = pending;
      pending = [];
      chars = 0;
      chain = chain.then(() => post(lines));
    }
    return chain;
  }

  function log(message: unknown, level: LogLevel = "INFO"): void {
    if (closed) return;
    const text = cut(textOf(message));
    pending.push({ level, message: text, ts: Date.now() });
    chars += text.length;
    if (pending.length >= BATCH_LINES || chars >= BATCH_CHARS) void flush();
    else timer ??= setTimeout(() => void flush(), FLUSH_MS);
  }

  return { log, flush };
}
