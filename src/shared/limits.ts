/** Product limits and defaults (SPEC §10, RUNPOD-WIRE §4), in one place. */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MB = 1024 * 1024;

export const LIMITS = {
  executionTimeout: { min: 5 * SECOND, max: 7 * DAY, default: 10 * MINUTE },
  ttl: { min: 10 * SECOND, max: 7 * DAY, default: DAY },
  maxAttempts: { min: 1, max: 20, default: 3 },
  heartbeatTimeout: { min: 5 * SECOND, max: HOUR, default: 45 * SECOND },
  retentionMs: { min: 0, max: 7 * DAY, default: 30 * MINUTE },
  syncRetentionMs: { min: 0, max: 7 * DAY, default: MINUTE },
  cancelGraceMs: { min: 0, max: HOUR, default: 30 * SECOND },
  concurrency: { min: 1, max: 100_000 },
  priority: { min: -1_000_000, max: 1_000_000 },
  /** /runsync and /status-sync `wait` (RunPod: default 90 s, 1–300 s). */
  syncWait: { min: 1 * SECOND, max: 300 * SECOND, default: 90 * SECOND },
  /** /stream `wait`: how long a poll that finds nothing new holds (RunPod's JS client polls with no pause). */
  streamWait: { min: 0, max: 90 * SECOND, default: 1 * SECOND },
} as const;

/** Payload limits: inputs and outputs (RunPod: 10 MB on /run, 20 MB on /runsync). */
export const PAYLOAD = {
  runInputBytes: 10 * MB,
  syncInputBytes: 20 * MB,
  outputBytes: 20 * MB,
  /** One job-stream chunk (RunPod: 1 MB). */
  streamChunkBytes: 1 * MB,
  /** Room for the envelope around the payload (`{"input": …, "policy": …}`). */
  envelopeBytes: 64 * 1024,
  /** Small bodies: admin requests, reports without output. */
  smallBodyBytes: 64 * 1024,
} as const;

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * A push worker's answer, read by bytes as it streams in: a 2xx is read up to the output limit
 * plus the envelope (a larger or endless one fails the attempt, and nothing past the limit is
 * held); any other answer only up to its first KiB, for the error message.
 */
export const PUSH_ANSWER = {
  maxBytes: PAYLOAD.outputBytes + PAYLOAD.envelopeBytes,
  errorBytes: 1024,
} as const;

/**
 * `POST /v2/{ep}/webhooks/{id}/redeliver`, per job: refused (429, Retry-After) while a send of the
 * event is due within this interval or one was made less than this interval ago, so one job's
 * webhook is redelivered at most once per interval and never more than one is pending.
 */
export const WEBHOOK_REDELIVERY = {
  minIntervalMs: 10_000,
} as const;
