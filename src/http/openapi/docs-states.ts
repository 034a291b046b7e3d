/** The OpenAPI description of GET /v2/{ep}/states (routes/states.ts). */
import { z } from "zod";
import { JOB_STATES } from "../../jobs/states";
import type { OperationDoc } from "./operation";

const name = (system: string) => z.string().nullable().describe(`What ${system} calls it (null: no such state there).`);

export const StatesAnswer = z
  .object({
    states: z.array(
      z.object({
        state: z.enum(JOB_STATES).describe("The state inside edge-jobs (admin views, metrics, GET /requests?status=)."),
        shownAs: z.string().describe("What /status shows a client: RunPod's vocabulary (SCHEDULED and PAUSED read IN_QUEUE)."),
        meaning: z.string(),
        runpod: name("RunPod Serverless"),
        ucloud: name("UCloud"),
        actian: name("Actian's jobconfig system (DataConnect Integration Manager)"),
        flamenco: name("Flamenco (a job)"),
      }),
    ),
  })
  .meta({ id: "JobStates" });

export const STATES_DOC: OperationDoc = {
  operationId: "getStates",
  summary: "Every job state, and what RunPod, UCloud, Actian and Flamenco call it",
  description: "One row per state edge-jobs keeps, in lifecycle order, with what a client reads for it and each seed system's name, so users of each can read their words. The same table is in the README.",
  tags: ["Jobs"],
  auth: "client",
  responses: { 200: { description: "The states.", schema: StatesAnswer } },
};
