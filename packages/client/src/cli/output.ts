/**
 * What the CLI prints: JSON documents, aligned tables, `key  value` blocks, times, and a
 * progress spinner on stderr (only when stderr is a terminal).
 */

/** Writes a line to stdout, clearing the spinner's line first so the two do not mix. */
export function line(text = ""): void {
  activeSpinner?.clear();
  process.stdout.write(`${text}\n`);
  activeSpinner?.draw();
}

export function warn(text: string): void {
  activeSpinner?.clear();
  process.stderr.write(`${text}\n`);
  activeSpinner?.draw();
}

/** One JSON document on stdout. */
export function printJson(value: unknown): void {
  line(JSON.stringify(value, null, 2));
}

/** A value as one short piece of text: strings as they are, null/undefined as "-", the rest as JSON. */
export function text(value: unknown): string {
  if (value === undefined || value === null) return "-";
  if (typeof value === "string") return value === "" ? '""' : value;
  return JSON.stringify(value);
}

/** An aligned table with a header row; `empty` is printed instead when there are no rows. */
export function table(headers: string[], rows: string[][], empty: string): void {
  if (rows.length === 0) {
    line(empty);
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  line(fmt(headers));
  for (const r of rows) line(fmt(r));
}

/** `key  value` lines, keys aligned; undefined values are skipped. Long JSON goes below its key. */
export function block(pairs: Array<[string, unknown]>): void {
  const shown = pairs.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  for (const [k, v] of shown) {
    const one = text(v);
    if (typeof v === "object" && v !== null && one.length > 100) {
      line(`${k}:`);
      for (const l of JSON.stringify(v, null, 2).split("\n")) line(`  ${l}`);
    } else line(`${k.padEnd(width)}  ${one}`);
  }
}

/** Milliseconds as "830 ms", "4.2 s", "3m 05s" or "2h 07m"; null as "-". */
export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
  const s = Math.round(value / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** An ISO time as how long ago it was ("12s ago"). */
export function ago(iso: string | null | undefined): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = Math.max(0, Date.now() - t);
  return d < 1000 ? "just now" : `${ms(d).replace(/\.\d+ s$/, "s")} ago`;
}

let activeSpinner: Spinner | undefined;

/** A one-line progress indicator on stderr; does nothing unless stderr is a terminal. */
export class Spinner {
  private readonly enabled = process.stderr.isTTY === true;
  private readonly frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  private frame = 0;
  private message = "";
  private readonly started = Date.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly onInterrupt = () => {
    this.stop();
    process.exit(130);
  };

  start(message: string): this {
    this.message = message;
    if (!this.enabled) return this;
    activeSpinner = this;
    process.once("SIGINT", this.onInterrupt);
    this.timer = setInterval(() => {
      this.frame = (this.frame + 1) % this.frames.length;
      this.draw();
    }, 100);
    this.timer.unref();
    this.draw();
    return this;
  }

  update(message: string): void {
    this.message = message;
  }

  draw(): void {
    if (!this.enabled || !this.timer) return;
    const secs = Math.floor((Date.now() - this.started) / 1000);
    const columns = process.stderr.columns || 80;
    const text = `${this.frames[this.frame]} ${this.message} (${secs}s)`;
    process.stderr.write(`\r\x1b[K${text.slice(0, columns - 1)}`);
  }

  clear(): void {
    if (this.enabled && this.timer) process.stderr.write("\r\x1b[K");
  }

  stop(): void {
    if (!this.timer) return;
    this.clear();
    clearInterval(this.timer);
    this.timer = undefined;
    process.removeListener("SIGINT", this.onInterrupt);
    if (activeSpinner === this) activeSpinner = undefined;
  }
}
