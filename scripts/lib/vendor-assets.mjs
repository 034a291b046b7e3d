// The static files the Worker serves from its assets directory (public/, not in git): the API
// reference page's viewer (swagger-ui-dist, under /docs/) and the dashboard's chart library (uPlot,
// under /dashboard/), so both pages work offline. Copied from
// node_modules before wrangler runs: by `npm start`, the test config and `npm run deploy`.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");
export const ASSETS_DIR = path.join(ROOT, "public");

const FILES = [
  ["swagger-ui-dist", ["swagger-ui-bundle.js", "swagger-ui.css"], "docs"],
  ["uplot", ["dist/uPlot.iife.min.js", "dist/uPlot.min.css"], "dashboard"],
];

export function vendorAssets() {
  for (const [pkg, names, under] of FILES) {
    const from = path.dirname(require.resolve(`${pkg}/package.json`));
    const to = path.join(ASSETS_DIR, under);
    mkdirSync(to, { recursive: true });
    for (const name of names) {
      // Without their source-map comments: the maps are not served (a browser would ask for them in vain).
      const text = readFileSync(path.join(from, name), "utf8").replace(/\n?\/[/*]# sourceMappingURL=\S+( \*\/)?\s*$/, "\n");
      const target = path.join(to, path.basename(name));
      // Unchanged files are not rewritten: a running `wrangler dev` would reload for nothing.
      let current = null;
      try {
        current = readFileSync(target, "utf8");
      } catch {
        // not there yet
      }
      if (current !== text) writeFileSync(target, text);
    }
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) vendorAssets();
