/** What a command's handler is given: its arguments, its flags, and clients for the server. */
import type { EdgeJobsClient } from "../client.ts";
import type { Api } from "../http.ts";
import { UsageError } from "./failures.ts";

export type Flags = Record<string, string | boolean | undefined>;

export interface Ctx {
  /** The command's name, e.g. "endpoints create". */
  command: string;
  /** The positional arguments after the command's words (the endpoint first, where it takes one). */
  args: string[];
  flags: Flags;
  json: boolean;
  url: string;
  /** The endpoint the command is about ("" for commands about none). */
  ep: string;
  /** The typed openapi-fetch client, with the command's key. */
  api: Api;
  /** The SDK's client of `ep`, with the command's key. */
  client: EdgeJobsClient;
}

/** A command's handler: prints its answer and returns the exit code. */
export type Handler = (ctx: Ctx) => Promise<number>;

export function stringFlag(ctx: Ctx, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A whole number from a flag, or a usage error. */
export function intFlag(ctx: Ctx, name: string): number | undefined {
  const v = stringFlag(ctx, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(v)}`, ctx.command);
  return Number(v);
}

/** A flag that must be one of `choices`. */
export function choiceFlag<T extends string>(ctx: Ctx, name: string, choices: readonly T[]): T | undefined {
  const v = stringFlag(ctx, name);
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${choices.join(", ")}, not ${JSON.stringify(v)}`, ctx.command);
  return v as T;
}
