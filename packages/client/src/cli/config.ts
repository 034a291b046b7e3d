/**
 * Where the CLI finds the server and its key: flags (--url, --key), then the environment
 * (EDGE_JOBS_URL, EDGE_JOBS_KEY, EDGE_JOBS_ADMIN_KEY), then the config file
 * (~/.config/edge-jobs/config.json, or EDGE_JOBS_CONFIG: {"url", "key", "adminKey"}).
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { UsageError } from "./failures.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";

export interface FileConfig {
  url?: string;
  key?: string;
  adminKey?: string;
}

export interface Settings {
  url: string;
  key: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.EDGE_JOBS_CONFIG || path.join(homedir(), ".config", "edge-jobs", "config.json");
}

/** The config file's settings: none when the default file does not exist; a usage error when it is not valid. */
export function readConfigFile(env: NodeJS.ProcessEnv = process.env): FileConfig {
  const file = configPath(env);
  if (!existsSync(file)) {
    if (env.EDGE_JOBS_CONFIG) throw new UsageError(`EDGE_JOBS_CONFIG names ${file}, which does not exist`, null);
    return {};
  }
  let parsed: unknown;
  try {
    const source = readFileSync(file, "utf8");
    parsed = source.trim() === "" ? {} : JSON.parse(source);
  } catch (e) {
    throw new UsageError(`the config file ${file} is not valid JSON: ${(e as Error).message}`, null);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`the config file ${file} must hold a JSON object`, null);
  const out: FileConfig = {};
  for (const field of ["url", "key", "adminKey"] as const) {
    const v = (parsed as Record<string, unknown>)[field];
    if (v === undefined) continue;
    if (typeof v !== "string") throw new UsageError(`"${field}" in the config file ${file} must be a string`, null);
    out[field] = v;
  }
  return out;
}

/**
 * The URL and the key a command uses. Admin commands take the admin key; the others an
 * endpoint (client) key, else the admin key, which the server accepts wherever an endpoint key is.
 */
export function resolveSettings(flags: { url?: string; key?: string }, admin: boolean, env: NodeJS.ProcessEnv = process.env): Settings {
  const file = readConfigFile(env);
  const url = flags.url || env.EDGE_JOBS_URL || file.url || DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a URL: ${url}`, null);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`the URL must be http(s): ${url}`, null);

  const adminKey = env.EDGE_JOBS_ADMIN_KEY || file.adminKey;
  const key = flags.key || (admin ? adminKey : env.EDGE_JOBS_KEY || file.key || adminKey);
  if (!key) {
    const hint = admin
      ? `pass --key, or set EDGE_JOBS_ADMIN_KEY or "adminKey" in ${configPath(env)}`
      : `pass --key, or set EDGE_JOBS_KEY (or EDGE_JOBS_ADMIN_KEY) or "key" in ${configPath(env)}`;
    throw new UsageError(`no ${admin ? "admin " : ""}key: ${hint}`, null);
  }
  return { url: url.replace(/\/+$/, ""), key };
}
