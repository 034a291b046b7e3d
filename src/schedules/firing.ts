/**
 * One fire: applies the overlap policy and submits the schedule's job through the submit flow,
 * with an idempotency key made of the schedule (name and incarnation) and the fire time, so a
 * fire that runs twice (an alarm retried after a crash between submit and record) creates one job.
 */
import type { EndpointConfig } from "../endpoints/config";
import { jobAt, refOf } from "../flows/stubs";
import { submitJob } from "../flows/submit";
import { isTerminal } from "../jobs/states";
import { checkOutboundUrl, publicOrigin } from "../shared/urls";
import type { FireOutcome, ScheduleRow } from "./store";

export interface FireResult {
  jobId: string | null;
  outcome: FireOutcome;
  detail: string | null;
}

/** The idempotency key of a fire: `schedule:<name>:<incarnation>:<fire ms>` (a manual one adds `manual:`). */
export function fireKey(s: Pick<ScheduleRow, "name" | "incarnation">, fireTime: number, manual: boolean): string {
  return `schedule:${s.name}:${s.incarnation}:${manual ? "manual:" : ""}${fireTime}`;
}

/** The sequence key under overlap "queue": the job body's own, else one per schedule. */
export function queueKey(s: Pick<ScheduleRow, "name" | "spec">): string {
  return s.spec.job.sequenceKey ?? `schedule:${s.name}`;
}

/**
 * Fires once at `fireTime`. `previous`: the job of the newest earlier fire (overlap "skip" reads
 * its state; a manual fire never skips). Never throws for a refusal: it is the fire's outcome.
 */
export async function fireOnce(env: Env, s: ScheduleRow, config: EndpointConfig, fireTime: number, manual: boolean, previous: string | null): Promise<FireResult> {
  const ref = refOf(config);
  if (s.spec.overlap === "skip" && !manual && previous !== null) {
    const state = await jobAt(env, previous).state(ref);
    if (state !== null && !isTerminal(state)) return { jobId: null, outcome: "skipped", detail: `job ${previous} is ${state}` };
  }
  const pub = publicOrigin(env);
  if (config.mode === "push" && !pub.ok) return { jobId: null, outcome: "failed", detail: pub.reason };
  const job = s.spec.job;
  if (job.webhook !== undefined) {
    const check = checkOutboundUrl(job.webhook, config.allowPrivateUrls);
    if (!check.ok) return { jobId: null, outcome: "failed", detail: `webhook: ${check.reason}` };
  }
  const body = s.spec.overlap === "queue" ? { ...job, sequenceKey: queueKey(s) } : job;
  const input = new TextEncoder().encode(JSON.stringify(body.input));
  const r = await submitJob(env, config, { kind: "run", body, input, key: fireKey(s, fireTime, manual), origin: pub.ok ? pub.origin : null });
  if (!r.ok) return { jobId: null, outcome: "failed", detail: `idempotency key '${r.key}' was used before with another body` };
  return { jobId: r.job.id, outcome: "submitted", detail: null };
}
