/**
 * The dispatch queue's consumer: claims the job's attempt under the message's token and POSTs
 * the job to a worker URL, signed like a webhook. A 2xx accepts (a 200 carrying `output` or
 * `error` finishes the job at once); anything else releases the attempt and retries the message
 * with growing, jittered delays. After the queue's last retry, the dead-letter consumer fails the
 * job with the reason, so no job is dropped silently. Duplicate deliveries change nothing: the
 * job object accepts each token's claim once; a copy arriving while that claim's push may still
 * be under way is retried after PUSH_IN_FLIGHT_MS, and is acked then if the push was accepted.
 */
import type { WorkerReport } from "../jobs/job-object";
import { PUSH_IN_FLIGHT_MS, PUSH_TIMEOUT_MS } from "../jobs/push-commands";
import { handlerError } from "../jobs/errors";
import { isDispatchMessage, pushWorkerId, type DispatchMessage } from "./message";
import { objectPieces, type Piece } from "../shared/pieces";
import type { EndpointConfig } from "../endpoints/config";
import { postSigned } from "../shared/signed-post";
import { PAYLOAD, PUSH_ANSWER } from "../shared/limits";
import { reportToken, signingSecrets } from "../shared/signing";
import { checkOutboundUrl, publicOrigin, redactUrl, redactUrls } from "../shared/urls";


/** Seconds before retry n (1-based): 2^(n-1) up to 5 min, plus up to 50 % jitter. */
export function retryDelaySeconds(attempts: number, random = Math.random): number {
  const base = Math.min(300, 2 ** Math.max(0, attempts - 1));
  return Math.ceil(base * (1 + random() * 0.5));
}

const jobOf = (env: Env, id: string) => env.JOB.get(env.JOB.idFromString(id));
const endpointOf = (env: Env, id: string) => env.ENDPOINT.get(env.ENDPOINT.idFromName(id));

/** A result in a worker's 2xx answer: `{"output": …}` or `{"error": "…"}`. */
function resultOf(text: string): { report: WorkerReport; output: Uint8Array | null } | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null; // not JSON: a plain acceptance
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  const output = "output" in b ? new TextEncoder().encode(JSON.stringify(b.output)) : null;
  if (b.error !== undefined && b.error !== null) {
    return { report: { kind: "fail", error: handlerError(b.error) }, output };
  }
  return output !== null ? { report: { kind: "complete" }, output } : null;
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

type ConfigOf = (endpointId: string) => Promise<EndpointConfig | null>;

async function dispatchOne(msg: Message<unknown>, env: Env, configOf: ConfigOf): Promise<void> {
  if (!isDispatchMessage(msg.body)) {
    console.warn("dispatch: dropping a message that is not a dispatch", msg.id);
    msg.ack();
    return;
  }
  const { endpointId, jobId, token }: DispatchMessage = msg.body;
  const config = await configOf(endpointId);
  if (!config || config.workerUrls.length === 0) {
    msg.ack(); // the endpoint is gone or has no URLs: the job's own deadlines end it
    return;
  }
  const index = (msg.attempts - 1) % config.workerUrls.length;
  const url = config.workerUrls[index]!;
  const workerId = pushWorkerId(index);
  const job = jobOf(env, jobId);
  const claim = await job.pushClaim(endpointId, token, workerId);
  if (!claim.ok && claim.code === "PUSH_IN_FLIGHT") {
    // A duplicate of a message whose push may still be under way: look again once it cannot be.
    msg.retry({ delaySeconds: Math.ceil(PUSH_IN_FLIGHT_MS / 1000) });
    return;
  }
  if (!claim.ok) {
    msg.ack(); // a duplicate delivery, or the job moved on (cancelled, expired): nothing to do
    return;
  }
  const check = checkOutboundUrl(url, config.allowPrivateUrls);
  if (!check.ok) {
    await job.pushFailed(endpointId, token, redactUrls(check.reason));
    await job.deadLetter(endpointId, token);
    msg.ack();
    return;
  }
  // Report URLs are built from configuration, never from the submitter's Host header.
  const pub = publicOrigin(env);
  if (!pub.ok) {
    await job.pushFailed(endpointId, token, pub.reason);
    msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    return;
  }
  const { attempt } = claim.job;
  const reportQuery = `?attempt=${attempt}&token=${await reportToken(config.webhookSecret, jobId, attempt, workerId)}`;
  const base = `${pub.origin}/v2/${encodeURIComponent(endpointId)}`;
  const urls = {
    done: `${base}/job-done/${workerId}/${jobId}${reportQuery}`,
    stream: `${base}/job-stream/${workerId}/${jobId}${reportQuery}`,
  };
  const body = objectPieces({ id: jobId, attempt, urls }, [["input", claim.input]]);
  const outcome = await push(check.url.toString(), body, `push_${token}`, signingSecrets(config, Date.now()));
  if (outcome.kind === "accepted") {
    await job.pushAccepted(endpointId, token, resultOf(outcome.text));
    msg.ack();
    return;
  }
  await job.pushFailed(endpointId, token, outcome.error);
  msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
}

export async function handleDispatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // A batch mostly carries one endpoint's jobs: its config is asked for once.
  const configs = new Map<string, Promise<EndpointConfig | null>>();
  const configOf: ConfigOf = (endpointId) => {
    let config = configs.get(endpointId);
    if (!config) configs.set(endpointId, (config = endpointOf(env, endpointId).getConfig()));
    return config;
  };
  await Promise.all(
    batch.messages.map((msg) =>
      dispatchOne(msg, env, configOf).catch((e: unknown) => {
        // One message's failure never holds up the others; this one is tried again.
        console.error(`dispatch of message ${msg.id} failed`, e);
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
      }),
    ),
  );
}

/** Dead letters: the dispatch ran out of retries; the job fails with the last error. */
export async function handleDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (msg) => {
      if (!isDispatchMessage(msg.body)) {
        msg.ack();
        return;
      }
      try {
        await jobOf(env, msg.body.jobId).deadLetter(msg.body.endpointId, msg.body.token);
        msg.ack();
      } catch (e) {
        console.error(`dead letter ${msg.id} failed`, e);
        msg.retry({ delaySeconds: 5 });
      }
    }),
  );
}
