/**
 * The list of endpoint ids, for `GET /admin/endpoints`. Admin traffic only: it is never on a
 * job's path. Each endpoint object stays the truth about its own config.
 */
import { DurableObject } from "cloudflare:workers";

export class DirectoryObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS endpoint (id TEXT PRIMARY KEY)");
  }

  add(id: string): void {
    this.sql.exec("INSERT OR IGNORE INTO endpoint (id) VALUES (?)", id);
  }

  remove(id: string): void {
    this.sql.exec("DELETE FROM endpoint WHERE id = ?", id);
  }

  list(): string[] {
    return this.sql.exec<{ id: string }>("SELECT id FROM endpoint ORDER BY id").toArray().map((r) => r.id);
  }
}
