/**
 * The CLI's own failures, each with its exit code: a usage error (2) and a server that could not
 * be reached (3). Refusals from the server are the SDK's EdgeJobsError (1).
 */

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

/** A command line the CLI cannot run: an unknown command or flag, a missing or bad argument. */
export class UsageError extends Error {
  override name = "UsageError";
  /** The command whose usage to print with it ("" for the general usage; null for none, e.g. a bad config file). */
  readonly command: string | null;

  constructor(message: string, command: string | null = "") {
    super(message);
    this.command = command;
  }
}

/** The server did not answer at all (refused connection, unknown host, reset, …). */
export class UnreachableError extends Error {
  override name = "UnreachableError";
  readonly url: string;

  constructor(url: string, cause: unknown) {
    const detail = causeText(cause);
    super(`cannot reach ${url}${detail ? ` (${detail})` : ""}`, { cause });
    this.url = url;
  }
}

function causeText(e: unknown): string {
  const inner = (e as { cause?: unknown })?.cause ?? e;
  const code = (inner as { code?: unknown })?.code;
  if (typeof code === "string") return code;
  return inner instanceof Error ? inner.message : String(inner ?? "");
}

/**
 * A fetch that tells a server that could not be reached (an UnreachableError) apart from one
 * that answered; an abort stays an abort.
 */
export function reachingFetch(baseUrl: string): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    try {
      return await fetch(input, init);
    } catch (e) {
      const name = (e as { name?: unknown })?.name;
      if (name === "AbortError" || name === "TimeoutError") throw e;
      throw new UnreachableError(baseUrl, e);
    }
  };
}
