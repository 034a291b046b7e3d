import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
// The Worker's static assets (wrangler.toml [assets]) must exist before it is loaded.
import { vendorAssets } from "./scripts/lib/vendor-assets.mjs";

vendorAssets();

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ADMIN_KEY: "test-admin-key",
                LOCAL_DEV: "true",
                // Where push workers report: the origin test requests use (test/workerd/helpers.ts).
                PUBLIC_URL: "http://edge.test",
                TAKE_WAIT_MS: "300",
                // Seeds to replay a failing property run: FUZZ_SEED=… / MODEL_SEED=… npm test
                FUZZ_SEED: process.env.FUZZ_SEED ?? "",
                MODEL_SEED: process.env.MODEL_SEED ?? "",
                FAULT_SEED: process.env.FAULT_SEED ?? "",
                // Prints the queue-depth measurement (test/workerd/depth-measure.test.ts).
                SCALE_MEASURE: process.env.SCALE_MEASURE ?? "",
              },
            },
          }),
        ],
        test: { name: "workerd", include: ["test/workerd/**/*.test.ts"] },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
