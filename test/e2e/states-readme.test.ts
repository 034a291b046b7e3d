/**
 * Issue 15, item 6: the README's table of states is the one GET /v2/{ep}/states serves
 * (src/jobs/state-names.ts), row for row, so the two cannot drift apart.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { STATE_NAMES } from "../../src/jobs/state-names";
import { JOB_STATES } from "../../src/jobs/states";
import { ROOT } from "./harness";

const cell = (v: string | null) => (v === null ? "–" : v);

describe("the README's table of states", () => {
  it("has every state once, as served, in lifecycle order", () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const rows = STATE_NAMES.map((r) => `| \`${r.state}\` | ${r.shownAs} | ${cell(r.runpod)} | ${cell(r.ucloud)} | ${cell(r.actian)} | ${cell(r.flamenco)} | ${r.meaning} |`);
    expect(STATE_NAMES.map((r) => r.state)).toEqual([...JOB_STATES]);
    const at = rows.map((row) => readme.indexOf(row));
    expect(at.every((i) => i >= 0), rows.filter((_, i) => at[i]! < 0).join("\n")).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });
});
