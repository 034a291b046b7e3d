/**
 * The dispatch queue's consumer: it only acknowledges or retries messages, as the dispatch flow
 * (flows/dispatch) decides for each: push jobs to worker URLs, and dead letters that fail them.
 */
import type { EndpointConfig } from "../endpoints/config";
import { deadLetterOne, dispatchOne, retryDelaySeconds, type ConfigOf, type Decision } from "../flows/dispatch";
import { endpointConfig } from "../flows/endpoint-configs";

export { retryDelaySeconds };

function settle(msg: Message<unknown>, d: Decision): void {
  if (d.ack) msg.ack();
  else msg.retry({ delaySeconds: d.retryAfterSeconds });
}

export async function handleDispatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // A batch mostly carries one endpoint's jobs: its config is looked up once (in this isolate's
  // config cache, so batches of one message do not each ask the endpoint object).
  const configs = new Map<string, Promise<EndpointConfig | null>>();
  const configOf: ConfigOf = (endpointId) => {
    let config = configs.get(endpointId);
    if (!config) configs.set(endpointId, (config = endpointConfig(env, endpointId)));
    return config;
  };
  await Promise.all(
    batch.messages.map((msg) =>
      dispatchOne(env, msg.body, msg.attempts, configOf).then((d) => settle(msg, d)).catch((e: unknown) => {
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
      try {
        settle(msg, await deadLetterOne(env, msg.body));
      } catch (e) {
        console.error(`dead letter ${msg.id} failed`, e);
        msg.retry({ delaySeconds: 5 });
      }
    }),
  );
}
