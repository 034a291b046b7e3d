/**
 * When a webhook delivery is tried again: growing from seconds to hours, about a day in all, so a
 * receiver that is down for hours still gets every completion.
 */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** The wait before retry n (index n-1), after the first attempt at once. */
export const RETRY_DELAYS_MS = [2 * SECOND, 10 * SECOND, MINUTE, 5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 8 * HOUR] as const;

/** Attempts in all: the first plus one per delay. */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;

/** The longest a receiver's Retry-After may push the next attempt out. */
const MAX_RETRY_AFTER_MS = 12 * HOUR;

/**
 * The delay before the next attempt after `attempts` failed ones, or null when none is left. A
 * Retry-After from the receiver is honoured when it asks for longer than the schedule.
 */
export function nextDelayMs(attempts: number, retryAfterMs: number | null): number | null {
  const scheduled = RETRY_DELAYS_MS[attempts - 1];
  if (scheduled === undefined) return null;
  return retryAfterMs === null ? scheduled : Math.max(scheduled, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Reads a Retry-After header (seconds or an HTTP date) as ms from `now`. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * SECOND;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
