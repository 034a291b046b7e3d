// Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
interface Env {
  /** The admin key (`wrangler secret put ADMIN_KEY`); `dev-admin-key` under `npm start`. */
  ADMIN_KEY?: string;
}
