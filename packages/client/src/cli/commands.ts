/** The CLI's commands: their arguments, flags, key, help text and handler. */
import * as admin from "./admin.ts";
import type { Handler } from "./context.ts";
import * as endpoint from "./endpoint.ts";
import * as jobs from "./jobs.ts";

export type OptionSpec = { type: "string" | "boolean"; short?: string };

export interface Command {
  /** One or two words, e.g. "status" or "endpoints create". */
  name: string;
  /** Required positional arguments, by name. */
  args: string[];
  /** Optional positional arguments after those. */
  optional?: string[];
  options?: Record<string, OptionSpec>;
  /** Takes the admin key (EDGE_JOBS_ADMIN_KEY) rather than an endpoint key. */
  admin?: boolean;
  /** Its flags as shown in the help, after the arguments. */
  synopsis?: string;
  summary: string;
  run: Handler;
}

const str: OptionSpec = { type: "string" };
const bool: OptionSpec = { type: "boolean" };

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: str,
  key: str,
  json: bool,
  help: { type: "boolean", short: "h" },
  version: bool,
};

export const COMMANDS: Command[] = [
  { name: "endpoints create", args: ["id"], options: { config: str, file: str }, admin: true, synopsis: "[--config JSON | --file f]", summary: "create an endpoint, or replace its config", run: admin.endpointsCreate },
  { name: "endpoints list", args: [], admin: true, summary: "every endpoint", run: admin.endpointsList },
  { name: "endpoints get", args: ["id"], admin: true, summary: "an endpoint's config and state", run: admin.endpointsGet },
  { name: "endpoints pause", args: ["id"], admin: true, summary: "stop handing out jobs (submits are still accepted)", run: admin.endpointsPause },
  { name: "endpoints resume", args: ["id"], admin: true, summary: "hand out jobs again", run: admin.endpointsResume },
  { name: "keys create", args: ["ep"], options: { scope: str }, admin: true, synopsis: "--scope client|worker", summary: "a new key (shown once)", run: admin.keysCreate },
  { name: "keys list", args: ["ep"], admin: true, summary: "an endpoint's key ids, scopes and prefixes", run: admin.keysList },
  { name: "keys revoke", args: ["ep", "keyId"], admin: true, summary: "revoke a key", run: admin.keysRevoke },
  {
    name: "submit",
    args: ["ep"],
    optional: ["-"],
    options: { input: str, file: str, webhook: str, "idempotency-key": str, "sequence-key": str, priority: str, wait: bool },
    synopsis: "[--input JSON | --file f | -] [--webhook url] [--idempotency-key k] [--sequence-key k] [--priority n] [--wait]",
    summary: "submit a job (input JSON from --input, a file or stdin; {} when none); --wait: until it ends",
    run: jobs.submit,
  },
  { name: "status", args: ["ep", "jobId"], summary: "a job's status", run: jobs.status },
  { name: "watch", args: ["ep", "jobId"], summary: "follow a job's stream live, then print its final status", run: jobs.watch },
  { name: "cancel", args: ["ep", "jobId"], summary: "cancel a job", run: jobs.cancel },
  { name: "retry", args: ["ep", "jobId"], summary: "queue a FAILED or TIMED_OUT job again", run: jobs.retry },
  { name: "requeue", args: ["ep", "jobId"], summary: "queue a finished job again for a new attempt", run: jobs.requeue },
  { name: "purge", args: ["ep"], summary: "remove every waiting job (they end CANCELLED)", run: endpoint.purge },
  { name: "health", args: ["ep"], summary: "jobs and workers by state", run: endpoint.health },
  { name: "metrics", args: ["ep"], options: { window: str }, synopsis: "[--window 1h|6h|24h|7d]", summary: "execution, delay and cold start percentiles, and requests", run: endpoint.metrics },
  { name: "workers", args: ["ep"], admin: true, summary: "every worker heard from", run: admin.workers },
];

/** The command groups that take a subcommand. */
export const GROUPS = ["endpoints", "keys"];

export function findCommand(words: string[]): { command: Command; used: number } | undefined {
  const [first, second] = words;
  if (first === undefined) return undefined;
  if (GROUPS.includes(first)) {
    const command = COMMANDS.find((c) => c.name === `${first} ${second}`);
    return command ? { command, used: 2 } : undefined;
  }
  const command = COMMANDS.find((c) => c.name === first);
  return command ? { command, used: 1 } : undefined;
}

export function usageLine(c: Command): string {
  const args = [...c.args.map((a) => `<${a}>`), ...(c.optional ?? []).filter((a) => a !== "-").map((a) => `[${a}]`)];
  return ["edge-jobs", c.name, ...args, c.synopsis ?? ""].filter(Boolean).join(" ");
}

const GLOBAL_HELP = `Flags for every command:
  --url URL    the server (EDGE_JOBS_URL; default http://127.0.0.1:8787)
  --key KEY    the key (EDGE_JOBS_KEY; admin commands: EDGE_JOBS_ADMIN_KEY)
  --json       print the server's JSON answer: one JSON document on stdout
  -h, --help   help`;

export function commandHelp(c: Command): string {
  return `Usage: ${usageLine(c)}\n  ${c.summary}${c.admin ? " (admin key)" : ""}\n\n${GLOBAL_HELP}\n`;
}

/** The commands, one a line, aligned. */
export function commandList(): string {
  const lines = COMMANDS.map((c) => [usageLine(c).replace(/^edge-jobs /, ""), c.summary + (c.admin ? " (admin)" : "")] as const);
  const width = Math.min(40, Math.max(...lines.map(([u]) => u.length)));
  return lines.map(([u, s]) => (u.length > width ? `  ${u}\n  ${"".padEnd(width)}  ${s}` : `  ${u.padEnd(width)}  ${s}`)).join("\n");
}

/** What a usage error without a command prints. */
export function shortUsage(): string {
  return `Usage: edge-jobs <command> [arguments] [flags]\n\nCommands:\n${commandList()}\n\nRun "edge-jobs help" for the flags, configuration and exit codes.\n`;
}

export function generalHelp(): string {
  return `edge-jobs: the command line of edge-jobs, a RunPod-compatible job coordinator

Usage: edge-jobs <command> [arguments] [flags]

Commands:
${commandList()}

${GLOBAL_HELP}

Configuration: flags, then EDGE_JOBS_URL, EDGE_JOBS_KEY and EDGE_JOBS_ADMIN_KEY, then the file
~/.config/edge-jobs/config.json (or EDGE_JOBS_CONFIG): {"url": "…", "key": "…", "adminKey": "…"}.
Non-admin commands fall back to the admin key when no endpoint key is set.

Exit codes: 0 ok; 1 refused by the server, or the job did not complete (submit --wait, watch);
2 usage error; 3 the server could not be reached.
`;
}
