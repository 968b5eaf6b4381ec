import { defineConfig } from "tsdown";

/**
 * @imgup/client's build: ESM and CJS with their own .d.ts/.d.cts (attw "node16" clean), for every
 * runtime (platform neutral: no Node built-ins). hash-wasm is bundled in, so the package has no
 * runtime dependencies; rolldown's output keeps unused exports removable (sideEffects: false).
 */
export default defineConfig({
  entry: { index: "index.ts" },
  format: ["esm", "cjs"],
  platform: "neutral",
  target: "es2022",
  dts: true,
  outDir: "dist",
  clean: true,
  tsconfig: "tsconfig.build.json",
  sourcemap: false,
  // "neutral" reads no main fields by default; hash-wasm's ESM build lets its other hashes drop out.
  inputOptions: { resolve: { mainFields: ["module", "main"] } },
  deps: { onlyBundle: ["hash-wasm"] },
});
