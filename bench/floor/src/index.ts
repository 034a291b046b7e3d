/**
 * Floors for `npm run bench`: what submit → take → done → status costs on this platform with
 * nothing else in the way (no auth, no validation, no metrics, no webhooks).
 *
 * The platform floor (`/run`, `/take/{id}`, `/done/{id}`, `/status/{id}`): each call reaches the
 * job's own Durable Object and makes one SQLite write there (status too: reads = reads + 1). The
 * worker is handed the id, as there is no queue to take from.
 *
 * The queue floor (`/q/run`, `/q/take`, `/q/done/{id}`, `/q/status/{id}`): the least a pull
 * queue built from Durable Objects needs. Submit writes the job object, which enqueues its id in
 * one queue object before answering; take pops the oldest id from the queue object and claims
 * that job in its object; done and status touch the job object only. Six object calls per
 * lifecycle instead of four.
 */
import { DurableObject } from "cloudflare:workers";

interface FloorEnv {
  FLOOR_JOB: DurableObjectNamespace<FloorJob>;
  FLOOR_QUEUE: DurableObjectNamespace<FloorQueue>;
}

type Row = {
  id: string;
  status: string;
  input: string;
  output: string | null;
};

export class FloorJob extends DurableObject<FloorEnv> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: FloorEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS job (id TEXT PRIMARY KEY, status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, reads INTEGER NOT NULL DEFAULT 0)",
    );
  }

  async submit(id: string, input: string, enqueue: boolean): Promise<void> {
    this.sql.exec("INSERT INTO job (id, status, input) VALUES (?, 'IN_QUEUE', ?)", id, input);
    if (enqueue) await queueOf(this.env).push(id);
  }

  take(): Row | null {
    return this.first(this.sql.exec<Row>("UPDATE job SET status = 'IN_PROGRESS' WHERE status = 'IN_QUEUE' RETURNING id, status, input, output"));
  }

  done(output: string): Row | null {
    return this.first(this.sql.exec<Row>("UPDATE job SET status = 'COMPLETED', output = ? WHERE status = 'IN_PROGRESS' RETURNING id, status, input, output", output));
  }

  status(): Row | null {
    return this.first(this.sql.exec<Row>("UPDATE job SET reads = reads + 1 RETURNING id, status, input, output"));
  }

  private first(cursor: SqlStorageCursor<Row>): Row | null {
    return cursor.toArray()[0] ?? null;
  }
}

/** The queue floor's one queue: ids in submit order. */
export class FloorQueue extends DurableObject<FloorEnv> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: FloorEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS ready (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)");
  }

  push(id: string): void {
    this.sql.exec("INSERT INTO ready (id) VALUES (?)", id);
  }

  pop(): string | null {
    const rows = this.sql.exec<{ id: string }>("DELETE FROM ready WHERE seq = (SELECT MIN(seq) FROM ready) RETURNING id").toArray();
    return rows[0]?.id ?? null;
  }
}

function queueOf(env: FloorEnv) {
  return env.FLOOR_QUEUE.get(env.FLOOR_QUEUE.idFromName("queue"));
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function answer(verb: string, row: Row | null): Response {
  if (!row) return json({ error: "conflict" }, 409);
  return verb === "take"
    ? json({ id: row.id, input: JSON.parse(row.input) as unknown })
    : json({ id: row.id, status: row.status, output: row.output === null ? null : (JSON.parse(row.output) as unknown) });
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/") return json({ floor: true });
    const parts = url.pathname.split("/").slice(1);
    const queued = parts[0] === "q";
    const [verb, given] = queued ? parts.slice(1) : parts;
    if (verb === "run" && request.method === "POST") {
      const objectId = env.FLOOR_JOB.newUniqueId();
      await env.FLOOR_JOB.get(objectId).submit(objectId.toString(), await request.text(), queued);
      return json({ id: objectId.toString() });
    }
    const id = queued && verb === "take" ? await queueOf(env).pop() : given;
    if (!id) return json({ error: queued ? "the queue is empty" : "not found" }, 404);
    const job = env.FLOOR_JOB.get(env.FLOOR_JOB.idFromString(id));
    if (verb === "take" && request.method === "GET") return answer(verb, await job.take());
    if (verb === "done" && request.method === "POST") return answer(verb, await job.done(await request.text()));
    if (verb === "status" && request.method === "GET") return answer(verb, await job.status());
    return json({ error: "not found" }, 404);
  },
} satisfies ExportedHandler<FloorEnv>;
