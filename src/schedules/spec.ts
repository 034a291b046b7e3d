/**
 * A schedule's body (`PUT /admin/endpoints/{ep}/schedules/{name}`): the cron and its time zone,
 * the job each fire submits, and what happens on overlap and after missed fires. Checked whole at
 * the edge; the cron and zone are compiled here once more, so a bad one never reaches an object.
 */
import { z } from "zod";
import { SubmitBody } from "../jobs/policy";
import { SCHEDULES } from "../shared/limits";
import { compileCron } from "./fires";

/** The job a fire submits: a /run body without idempotencyKey (each fire has its own key). */
export const ScheduleJob = SubmitBody.omit({ idempotencyKey: true, delay: true, runAt: true })
  .strict()
  .meta({
    description:
      "The job each fire submits: a /run body (input, policy, webhook, priority, sequenceKey or a flow key, s3Config, webhookV2); no idempotencyKey (each fire has its own), no delay or runAt (the fire time is the job's time).",
  });

export const OVERLAP = ["skip", "queue", "allow"] as const;
export const CATCH_UP = ["none", "latest", "all"] as const;

/**
 * An IANA zone name (`Europe/Berlin`, `UTC`) the runtime knows. Offsets (`+05:00`) are refused:
 * a zone has DST rules, an offset does not, and the name is what the README promises.
 */
export function checkTimezone(tz: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz)) return `'${tz.slice(0, 64)}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)`;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return null;
  } catch {
    return `unknown time zone '${tz}' (use an IANA name, e.g. Europe/Berlin, America/New_York, UTC)`;
  }
}

export const ScheduleSpec = z
  .object({
    cron: z
      .string()
      .min(1)
      .max(SCHEDULES.cronChars)
      .meta({ description: "5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first); names (MON, JAN), L, W, # and @hourly/@daily/… as the croner parser reads them." }),
    timezone: z.string().min(1).max(SCHEDULES.timezoneChars).default("UTC").meta({ description: "The IANA time zone the cron is read in (default UTC)." }),
    job: ScheduleJob,
    overlap: z
      .enum(OVERLAP)
      .default("skip")
      .meta({ description: '"skip" (default): a fire while the previous fire\'s job is unfinished is skipped; "queue": jobs run one at a time in fire order (a sequenceKey); "allow": every fire submits.' }),
    catchUp: z
      .enum(CATCH_UP)
      .default("none")
      .meta({ description: 'Fires missed while paused or unreachable: "none" (default) records them missed; "latest" fires the newest one late; "all" fires each (the newest 100).' }),
    paused: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    const tz = checkTimezone(s.timezone);
    if (tz !== null) {
      ctx.addIssue({ code: "custom", path: ["timezone"], message: tz });
      return;
    }
    const c = compileCron(s.cron, s.timezone);
    if (!c.ok) ctx.addIssue({ code: "custom", path: ["cron"], message: c.message });
  });
export type ScheduleSpec = z.output<typeof ScheduleSpec>;
