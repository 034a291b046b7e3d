/**
 * The `edge-jobs` command line: parses the arguments (node:util parseArgs), finds the server and
 * the key, runs the command, and exits 0 (ok), 1 (a refusal, or a job that did not complete),
 * 2 (a usage error) or 3 (the server could not be reached).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createClient } from "../client.ts";
import { EdgeJobsError } from "../errors.ts";
import { apiOf, type Connection } from "../http.ts";
import { COMMANDS, commandHelp, findCommand, GLOBAL_OPTIONS, generalHelp, GROUPS, shortUsage, type OptionSpec } from "./commands.ts";
import { resolveSettings } from "./config.ts";
import type { Ctx, Flags } from "./context.ts";
import { EXIT, reachingFetch, UnreachableError, UsageError } from "./failures.ts";

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Every flag of every command, so that a first loose pass finds the command words. */
function everyOption(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  for (const c of COMMANDS) Object.assign(all, c.options);
  return all;
}

/** parseArgs' complaint, shortened ("Unknown option '--x'. To specify a positional…" → "unknown flag --x"). */
function flagProblem(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  return (message.split("\n")[0] ?? message).replace(/^Option /, "flag ");
}

async function run(argv: string[]): Promise<number> {
  let words: string[];
  let looseValues: Flags;
  try {
    const loose = parseArgs({ args: argv, options: everyOption(), strict: false, allowPositionals: true });
    words = loose.positionals;
    looseValues = loose.values as Flags;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  if (words[0] === "help" || (words.length === 0 && looseValues.help === true)) {
    const found = findCommand(words.slice(1));
    process.stdout.write(found ? commandHelp(found.command) : generalHelp());
    return EXIT.ok;
  }
  if (words.length === 0 && looseValues.version === true) {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  if (words.length === 0) throw new UsageError("no command given");

  const found = findCommand(words);
  if (!found) {
    const [first, second] = words as [string, ...string[]];
    if (GROUPS.includes(first)) {
      const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(" ")[1]);
      throw new UsageError(second === undefined ? `${first} needs a subcommand: ${subs.join(", ")}` : `unknown command: ${first} ${second} (one of: ${subs.join(", ")})`);
    }
    throw new UsageError(`unknown command: ${first}`);
  }
  const { command, used } = found;

  let values: Flags;
  let positionals: string[];
  try {
    const strict = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...command.options }, strict: true, allowPositionals: true });
    values = strict.values as Flags;
    positionals = strict.positionals;
  } catch (e) {
    throw new UsageError(flagProblem(e), command.name);
  }
  if (values.help === true) {
    process.stdout.write(commandHelp(command));
    return EXIT.ok;
  }

  const args = positionals.slice(used);
  const max = command.args.length + (command.optional?.length ?? 0);
  if (args.length < command.args.length) throw new UsageError(`missing argument <${command.args[args.length]}>`, command.name);
  if (args.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(args[max])}`, command.name);

  const settings = resolveSettings({ url: values.url as string | undefined, key: values.key as string | undefined }, command.admin === true);
  const connection: Connection = { baseUrl: settings.url, apiKey: settings.key, endpointId: args[0] ?? "", fetch: reachingFetch(settings.url) };
  const ctx: Ctx = {
    command: command.name,
    args,
    flags: values,
    json: values.json === true,
    url: settings.url,
    ep: args[0] ?? "",
    api: apiOf(connection),
    client: createClient(connection),
  };
  return command.run(ctx);
}

/** Prints a failure on stderr and answers its exit code. */
function report(e: unknown): number {
  const say = (text: string) => process.stderr.write(`edge-jobs: ${text}\n`);
  if (e instanceof UsageError) {
    const command = COMMANDS.find((c) => c.name === e.command);
    say(e.message);
    if (e.command !== null) process.stderr.write(`\n${command ? commandHelp(command) : shortUsage()}`);
    return EXIT.usage;
  }
  if (e instanceof UnreachableError) {
    say(`${e.message}: is the server running? (set EDGE_JOBS_URL or --url)`);
    return EXIT.unreachable;
  }
  if (e instanceof EdgeJobsError) {
    say(e.message);
    const missing = e.status === 404 ? /^endpoint '([^']+)' does not exist/.exec(e.body.error) : null;
    if (missing) process.stderr.write(`  (with this CLI: edge-jobs endpoints create ${missing[1]})\n`);
    const issues = e.body.issues;
    if (Array.isArray(issues)) {
      for (const i of issues as Array<{ path?: unknown; message?: unknown }>) {
        const issue = `${String(i.path ?? "") || "(body)"}: ${String(i.message ?? "")}`;
        if (!e.message.includes(issue)) process.stderr.write(`  ${issue}\n`);
      }
    }
    return EXIT.refused;
  }
  say(e instanceof Error ? e.message : String(e));
  return EXIT.refused;
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    return report(e);
  }
}

// A closed stdout (e.g. `| head`) ends the command quietly.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Exit once stdout is flushed: an idle keep-alive socket must not hold the process.
process.stdout.write("", () => process.exit(code));
