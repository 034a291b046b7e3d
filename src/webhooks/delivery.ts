/**
 * A job's webhook deliveries, from its outbox: each due event is signed with the endpoint's
 * secret(s), its URL checked again before the send; 2xx delivers, 410 stops, anything else is
 * tried again on the schedule (Retry-After honoured) until it runs out. The job object calls
 * `deliverDue` from its alarm and reads the summaries for its status and delivery log.
 */
import { signingSecrets, type SigningSecrets } from "../shared/signing";
import { blobPiece } from "../shared/blobs";
import type { Clock } from "../shared/clock";
import type { Faults } from "../shared/faults";
import { objectPieces } from "../shared/pieces";
import { checkOutboundUrl } from "../shared/urls";
import { deliverOnce } from "./deliver";
import { dueEvents, eventOutput, failEvent, latestEvent, listEvents, postpone, recordAttempt, type WebhookAttempt, type WebhookEvent, type WebhookState } from "./outbox";
import { nextDelayMs } from "./schedule";

/** How long a webhook receiver has to answer one attempt (WEBHOOK_TIMEOUT_MS overrides it). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Most webhook events one alarm delivers; the rest follow on the next. */
const WEBHOOKS_PER_ALARM = 5;

/** The delivery state of a job's latest webhook event, as its status shows it. */
export interface WebhookSummary {
  state: WebhookState;
  attempts: number;
  lastStatus: number | null;
  nextAttemptAt: string | null;
}

/** A webhook event and its attempts, as the delivery log shows them. */
export type WebhookLogEntry = Omit<WebhookEvent, "fields"> & { jobStatus: string; log: WebhookAttempt[] };

export function webhookSummary(sql: SqlStorage): WebhookSummary | null {
  const e = latestEvent(sql);
  if (!e) return null;
  const next = e.nextAttemptAt === null ? null : new Date(e.nextAttemptAt).toISOString();
  return { state: e.state, attempts: e.attempts, lastStatus: e.lastStatus, nextAttemptAt: next };
}

export function webhookLog(sql: SqlStorage): WebhookLogEntry[] {
  return listEvents(sql).map(({ fields, ...e }) => ({ ...e, jobStatus: String(fields.status) }));
}

/** What delivery needs of the endpoint's config: its signing secrets and its URL rule. */
type WebhookConfig = SigningSecrets & { allowPrivateUrls: boolean };

/** What delivery needs from the job's endpoint. */
interface WebhookEndpoint {
  getConfig(): Promise<WebhookConfig | null>;
  webhookOutcome(succeeded: boolean): Promise<void>;
}

export class WebhookDelivery {
  /** A delivery loop is running: the platform never overlaps alarms, but a direct call may. */
  private running = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly clock: Clock,
    private readonly faults: Faults,
    private readonly timeoutMs: number,
    /** How long to wait before trying again when the endpoint cannot be reached. */
    private readonly retryMs: number,
  ) {}

  /** Delivers the job's due events to `url`, one loop at a time. */
  async deliverDue(url: string, endpoint: WebhookEndpoint): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.deliver(url, endpoint);
    } finally {
      this.running = false;
    }
  }

  private async deliver(url: string, endpoint: WebhookEndpoint): Promise<void> {
    const due = dueEvents(this.sql, this.clock.now(), WEBHOOKS_PER_ALARM);
    if (due.length === 0) return;
    let config: WebhookConfig | null;
    try {
      config = await endpoint.getConfig();
    } catch (e) {
      console.warn("webhook delivery could not reach the endpoint; retrying", e);
      postpone(this.sql, due.map((ev) => ev.seq), this.clock.now() + this.retryMs);
      return;
    }
    // What does not depend on the event is settled once for all of them.
    if (!config) {
      for (const ev of due) failEvent(this.sql, ev.seq, "the endpoint was deleted");
      return;
    }
    const check = checkOutboundUrl(url, config.allowPrivateUrls);
    if (!check.ok) {
      for (const ev of due) failEvent(this.sql, ev.seq, check.reason);
      return;
    }
    for (const ev of due) {
      // Input and output are read row by row straight into the signed body (see signBody).
      const body = objectPieces(ev.fields, [
        ["input", blobPiece(this.sql, "input")],
        ["output", eventOutput(this.sql, ev.seq)],
      ]);
      const result = await deliverOnce(check.url.toString(), body, ev.eventId, signingSecrets(config, Date.now()), this.timeoutMs);
      this.faults.hit("webhook:after-send");
      const now = this.clock.now();
      const ok = result.status !== null && result.status >= 200 && result.status < 300;
      const delay = ok || result.status === 410 ? null : nextDelayMs(ev.attempts + 1, result.retryAfterMs);
      const next = ok
        ? { state: "delivered" as const, nextAttemptAt: null }
        : result.status === 410
          ? { state: "gone" as const, nextAttemptAt: null }
          : delay === null
            ? { state: "failed" as const, nextAttemptAt: null }
            : { state: "pending" as const, nextAttemptAt: now + delay };
      recordAttempt(this.sql, ev.seq, ev.attempts, result, now, next);
      await endpoint.webhookOutcome(ok).catch((e: unknown) => console.warn("webhook counter not updated", e)); // counters only; the delivery is recorded
    }
  }
}
