/**
 * The OpenAPI description of the cron schedule routes (routes/schedules.ts). Admin key only.
 */
import { z } from "zod";
import { ScheduleSpec } from "../../schedules/spec";
import { SCHEDULES } from "../../shared/limits";
import { IsoTime, JobState } from "./common";
import type { OperationDoc } from "./operation";

const TAGS = ["Admin"] as const;

export const ScheduleBody = ScheduleSpec.meta({
  id: "ScheduleInput",
  description:
    `A cron schedule: every field but cron and job optional; unknown fields are a 400. At most ${SCHEDULES.perEndpoint} schedules per endpoint, ` +
    `${SCHEDULES.bodyBytes} bytes of body and ${SCHEDULES.inputBytes} bytes of job input (JSON).`,
});

const Outcome = z
  .union([JobState, z.enum(["skipped", "missed", "failed", "gone"])])
  .describe("The fire's job's current state (its own name: SCHEDULED, ERROR … as GET /v2/{ep}/states lists them); or skipped (overlap \"skip\": the previous job was unfinished), missed (catch-up), failed (the submit was refused; see detail), gone (the job's retention is over).");

export const FireView = z.object({
  fireTime: IsoTime.describe("The scheduled time (a manual fire: when it was triggered)."),
  manual: z.boolean().describe("A \"trigger now\" fire."),
  jobId: z.string().nullable(),
  outcome: Outcome,
  detail: z.string().nullable().describe("Why a fire was skipped or failed."),
  firedAt: IsoTime.describe("When the fire ran (its submit started); firedAt - fireTime is the alarm's drift. For a missed fire: when it was found missed."),
});

export const ScheduleView = z
  .object({
    name: z.string(),
    endpointId: z.string(),
    cron: z.string(),
    timezone: z.string(),
    job: z.record(z.string(), z.unknown()).describe("The job each fire submits (an s3Config is shown as \"(set; not shown)\")."),
    overlap: z.enum(["skip", "queue", "allow"]),
    catchUp: z.enum(["none", "latest", "all"]),
    paused: z.boolean(),
    createdAt: IsoTime,
    updatedAt: IsoTime,
    nextFires: z.array(IsoTime).describe(`The next ${SCHEDULES.nextFires} fire times (empty while paused).`),
    lastFires: z.array(FireView).describe(`The newest ${SCHEDULES.lastFires} fires, newest first.`),
    missedUnlisted: z.number().int().describe("Missed fires not listed one by one (at least this many)."),
  })
  .meta({ id: "Schedule" });

export const ScheduleList = z.object({
  schedules: z.array(
    z.object({
      name: z.string(),
      cron: z.string(),
      timezone: z.string(),
      overlap: z.enum(["skip", "queue", "allow"]),
      catchUp: z.enum(["none", "latest", "all"]),
      paused: z.boolean(),
      nextFire: IsoTime.nullable().describe("Null while paused."),
      lastFire: FireView.nullable(),
    }),
  ),
});

export const ScheduleDeleted = z.object({ name: z.string(), deleted: z.literal(true) });
export const ScheduleTriggered = z.object({ name: z.string(), fire: FireView });

const unknown = { 404: { description: "Unknown endpoint or schedule." } };
const answer = (description: string) => ({ description, schema: ScheduleView });

export const listSchedulesDoc: OperationDoc = {
  operationId: "listSchedules",
  summary: "List an endpoint's cron schedules",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Each schedule with its next fire and its newest fire.", schema: ScheduleList }, ...unknown },
};

export const putScheduleDoc: OperationDoc = {
  operationId: "putSchedule",
  summary: "Create or replace a cron schedule",
  description:
    "Each fire submits the job once (idempotently: a fire that runs twice creates one job). A replace keeps the fire log; with the same cron and time zone it also keeps where the schedule had got to, otherwise it starts from now. " +
    `Names: 1-64 letters, digits, '-' or '_'. At most ${SCHEDULES.perEndpoint} schedules per endpoint (409 past it).`,
  tags: TAGS,
  auth: "admin",
  body: { schema: ScheduleBody },
  responses: {
    200: answer("The stored schedule."),
    400: { description: "An invalid body: a bad cron or time zone, a cron that never fires, an unknown field, too large an input, a bad name." },
    409: { description: `The endpoint has ${SCHEDULES.perEndpoint} schedules already.` },
    ...unknown,
  },
};

export const getScheduleDoc: OperationDoc = {
  operationId: "getSchedule",
  summary: "Read a cron schedule",
  description: `Its config, its next ${SCHEDULES.nextFires} fire times and its newest ${SCHEDULES.lastFires} fires with their jobs' current status.`,
  tags: TAGS,
  auth: "admin",
  responses: { 200: answer("The schedule."), ...unknown },
};

export const deleteScheduleDoc: OperationDoc = {
  operationId: "deleteSchedule",
  summary: "Delete a cron schedule",
  description: "It fires no more; jobs it created are not touched.",
  tags: TAGS,
  auth: "admin",
  responses: { 200: { description: "Deleted.", schema: ScheduleDeleted }, ...unknown },
};

export const scheduleActionDocs = {
  pause: {
    operationId: "pauseSchedule",
    summary: "Pause a cron schedule",
    description: "No fires until resumed; the fires missed meanwhile follow the schedule's catchUp on resume.",
    tags: TAGS,
    auth: "admin",
    responses: { 200: answer("The paused schedule."), ...unknown },
  },
  resume: {
    operationId: "resumeSchedule",
    summary: "Resume a cron schedule",
    description: "Fires again; the fires missed while paused follow catchUp (none: missed; latest: the newest fires late; all: each fires, the newest 100).",
    tags: TAGS,
    auth: "admin",
    responses: { 200: answer("The resumed schedule."), ...unknown },
  },
  trigger: {
    operationId: "triggerSchedule",
    summary: "Fire a cron schedule now",
    description:
      "Submits the schedule's job once now, outside the cron, paused or not, with its own idempotency key. Overlap \"queue\" still queues it behind the schedule's unfinished jobs; \"skip\" does not apply.",
    tags: TAGS,
    auth: "admin",
    responses: { 200: { description: "The fire and its job (or why it failed).", schema: ScheduleTriggered }, ...unknown },
  },
} satisfies Record<string, OperationDoc>;
