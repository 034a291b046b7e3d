#!/usr/bin/env node
// The edge-jobs CLI. Its source is TypeScript run as is, which needs Node's type stripping.
if (!process.features.typescript) {
  process.stderr.write(`edge-jobs: needs Node >= 22.18 (type stripping); this is Node ${process.versions.node}\n`);
  process.exit(1);
}
try {
  await import("../src/cli/main.ts");
} catch (e) {
  // Node strips types only outside node_modules: an installed (not linked) copy cannot run.
  if (e?.code !== "ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING") throw e;
  process.stderr.write("edge-jobs: Node does not strip TypeScript types under node_modules; run the CLI from a checkout or an npm workspace link\n");
  process.exit(1);
}
