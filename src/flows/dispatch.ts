/**
 * The dispatch flow: a push job's message claims the job's attempt under the message's token and
 * POSTs the job to a worker URL, signed like a webhook. A 2xx accepts (a 200 carrying `output` or
 * `error` finishes the job at once); anything else releases the attempt and has the message
 * retried with growing, jittered delays. After the queue's last retry, the dead letter fails the
 * job with the reason, so no job is dropped silently. Duplicate deliveries change nothing: the
 * job object accepts each token's claim once; a copy arriving while that claim's push may still
 * be under way is retried after PUSH_IN_FLIGHT_MS, and is acked then if the push was accepted.
 */
import type { EndpointConfig } from "../endpoints/config";
import { isDispatchMessage, pushWorkerId, type DispatchMessage } from "../endpoints/dispatch-message";
import { carriesReport, readReport, ReportBodyError } from "../jobs/report-body";
import { handedJobPieces, handedOf } from "../jobs/handed";
import type { WorkerReport } from "../jobs/job-object";
import { PUSH_IN_FLIGHT_MS, PUSH_TIMEOUT_MS } from "../jobs/push-commands";
import { PAYLOAD, PUSH_ANSWER } from "../shared/limits";
import type { Piece } from "../shared/pieces";
import { postSigned } from "../shared/signed-post";
import { reportToken, signingSecrets } from "../shared/signing";
import { checkOutboundUrl, publicOrigin, redactUrl, redactUrls } from "../shared/urls";
import { jobAt } from "./stubs";

/** Seconds before retry n (1-based): 2^(n-1) up to 5 min, plus up to 50 % jitter. */
export function retryDelaySeconds(attempts: number, random = Math.random): number {
  const base = Math.min(300, 2 ** Math.max(0, attempts - 1));
  return Math.ceil(base * (1 + random() * 0.5));
}

const jobOf = jobAt;

/** A report in a worker's 2xx answer: a result (`{"output": …}`, `{"error": "…"}`, an exit code) or progress. */
function resultOf(text: string): { report: WorkerReport; output: Uint8Array | null } | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null; // not JSON: a plain acceptance
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  // Read as the same body posted to urls.done would be (progress included); one reporting nothing is a plain acceptance.
  if (!carriesReport(b)) return null;
  const output = "output" in b ? new TextEncoder().encode(JSON.stringify(b.output)) : null;
  try {
    return { report: readReport(b), output };
  } catch (e) {
    // A malformed exit code fails the attempt, saying why (the answer cannot be taken as a result).
    if (e instanceof ReportBodyError) return { report: { kind: "fail", error: `the push answer: ${e.message}` }, output };
    throw e;
  }
}

type Outcome = { kind: "accepted"; text: string } | { kind: "refused"; error: string };

/**
 * Errors name the worker URL as scheme://host/path only (redactUrls): they reach client-key
 * holders as `queue.lastError` and the job's `error`, and a URL's query may hold its secret.
 */
async function push(url: string, body: readonly Piece[], messageId: string, secrets: readonly string[]): Promise<Outcome> {
  const r = await postSigned(url, body, messageId, secrets, { timeoutMs: PUSH_TIMEOUT_MS, userAgent: "edge-jobs-dispatch", readBody: PUSH_ANSWER });
  if (!r.answered) return { kind: "refused", error: `could not reach ${redactUrl(url)}: ${redactUrls(r.error)}` };
  if (r.over) {
    return { kind: "refused", error: `the HTTP ${r.status} answer from ${redactUrl(url)} is larger than ${PUSH_ANSWER.maxBytes} bytes (the ${PAYLOAD.outputBytes}-byte output limit plus ${PAYLOAD.envelopeBytes} of envelope); it was not read past that` };
  }
  const text = r.text ?? "";
  if (r.status >= 200 && r.status < 300) return { kind: "accepted", text };
  return { kind: "refused", error: `HTTP ${r.status} from ${redactUrl(url)}${text ? `: ${redactUrls(text.slice(0, 200))}` : ""}` };
}

export type ConfigOf = (endpointId: string) => Promise<EndpointConfig | null>;

/** What the consumer does with a message: acknowledge it, or have the queue deliver it again later. */
export type Decision = { ack: true } | { ack: false; retryAfterSeconds: number };

const ACK: Decision = { ack: true };
const retryAfter = (seconds: number): Decision => ({ ack: false, retryAfterSeconds: seconds });

/**
 * One delivery of a dispatch message (its `attempts`-th): claims the job's attempt under the
 * message's token, pushes it to a worker URL (round-robin by attempt), and records the outcome in
 * the job. Returns what the queue should do with the message.
 */
export async function dispatchOne(env: Env, message: unknown, attempts: number, configOf: ConfigOf): Promise<Decision> {
  if (!isDispatchMessage(message)) {
    console.warn("dispatch: dropping a message that is not a dispatch");
    return ACK;
  }
  const { endpointId, jobId, token }: DispatchMessage = message;
  const config = await configOf(endpointId);
  // The endpoint is gone or has no URLs: the job's own deadlines end it.
  if (!config || config.workerUrls.length === 0) return ACK;
  const index = (attempts - 1) % config.workerUrls.length;
  const url = config.workerUrls[index]!;
  const workerId = pushWorkerId(index);
  const job = jobOf(env, jobId);
  const claim = await job.pushClaim(endpointId, token, workerId);
  if (!claim.ok && claim.code === "PUSH_IN_FLIGHT") {
    // A duplicate of a message whose push may still be under way: look again once it cannot be.
    return retryAfter(Math.ceil(PUSH_IN_FLIGHT_MS / 1000));
  }
  // A duplicate delivery, or the job moved on (cancelled, expired): nothing to do.
  if (!claim.ok) return ACK;
  const check = checkOutboundUrl(url, config.allowPrivateUrls);
  if (!check.ok) {
    await job.pushFailed(endpointId, token, redactUrls(check.reason));
    await job.deadLetter(endpointId, token);
    return ACK;
  }
  // Report URLs are built from configuration, never from the submitter's Host header.
  const pub = publicOrigin(env);
  if (!pub.ok) {
    await job.pushFailed(endpointId, token, pub.reason);
    return retryAfter(retryDelaySeconds(attempts));
  }
  const { attempt } = claim.job;
  const reportQuery = `?attempt=${attempt}&token=${await reportToken(config.webhookSecret, jobId, attempt, workerId)}`;
  const base = `${pub.origin}/v2/${encodeURIComponent(endpointId)}`;
  const urls = {
    done: `${base}/job-done/${workerId}/${jobId}${reportQuery}`,
    stream: `${base}/job-stream/${workerId}/${jobId}${reportQuery}`,
    log: `${base}/job-log/${workerId}/${jobId}${reportQuery}`,
  };
  const body = handedJobPieces({ id: jobId, attempt, urls }, claim.input, handedOf(claim.job));
  const outcome = await push(check.url.toString(), body, `push_${token}`, signingSecrets(config, Date.now()));
  if (outcome.kind === "accepted") {
    await job.pushAccepted(endpointId, token, resultOf(outcome.text));
    return ACK;
  }
  await job.pushFailed(endpointId, token, outcome.error);
  return retryAfter(retryDelaySeconds(attempts));
}

/** A dead letter: the dispatch ran out of retries; the job fails with the last error. */
export async function deadLetterOne(env: Env, message: unknown): Promise<Decision> {
  if (!isDispatchMessage(message)) return ACK;
  await jobOf(env, message.jobId).deadLetter(message.endpointId, message.token);
  return ACK;
}

