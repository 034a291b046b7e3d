/**
 * The platform floor: what submit → take → done → status costs on this platform when each call
 * does nothing but reach the job's own Durable Object and make one SQLite write there.
 *
 *   POST /run           a new object (unique id, as edge-jobs), INSERT          → {"id"}
 *   GET  /take/{id}     UPDATE state = running RETURNING input → {"id","input"}
 *   POST /done/{id}     UPDATE state = completed, output       → {"id","status"}
 *   GET  /status/{id}   UPDATE reads = reads + 1 RETURNING row → {"id","status","output"}
 *
 * The pull worker is handed the id (there is no queue to take from): the floor has no index,
 * no endpoint object, no auth and no validation. Status makes a write like the other calls so
 * that each call is exactly one round trip to one object with one write.
 */
import { DurableObject } from "cloudflare:workers";

interface FloorEnv {
  FLOOR_JOB: DurableObjectNamespace<FloorJob>;
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

  submit(id: string, input: string): void {
    this.sql.exec("INSERT INTO job (id, status, input) VALUES (?, 'IN_QUEUE', ?)", id, input);
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
    const rows = cursor.toArray();
    return rows[0] ?? null;
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/") return json({ floor: true });
    const [, verb, id] = url.pathname.split("/");
    if (verb === "run" && request.method === "POST") {
      const objectId = env.FLOOR_JOB.newUniqueId();
      const newId = objectId.toString();
      await env.FLOOR_JOB.get(objectId).submit(newId, await request.text());
      return json({ id: newId });
    }
    if (!id) return json({ error: "not found" }, 404);
    const job = env.FLOOR_JOB.get(env.FLOOR_JOB.idFromString(id));
    let row: Row | null = null;
    if (verb === "take" && request.method === "GET") row = await job.take();
    else if (verb === "done" && request.method === "POST") row = await job.done(await request.text());
    else if (verb === "status" && request.method === "GET") row = await job.status();
    else return json({ error: "not found" }, 404);
    if (!row) return json({ error: "conflict" }, 409);
    return verb === "take"
      ? json({ id: row.id, input: JSON.parse(row.input) as unknown })
      : json({ id: row.id, status: row.status, output: row.output === null ? null : (JSON.parse(row.output) as unknown) });
  },
} satisfies ExportedHandler<FloorEnv>;
