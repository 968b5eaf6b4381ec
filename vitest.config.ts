import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "client/**/*.test.ts", "test/**/*.test.ts"],
    // Only hangs should hit these: on a loaded 2-core CI machine starting an instance (migrations
    // included) or processing a few images takes minutes where an idle one takes seconds.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Compiles the server and migrates a PGlite template once per run (see the file).
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Many suites wait on I/O (RGW notifications, an outage under load, child workers): two files
    // at a time halve the wall time on a 2-core CI machine (the default would be one).
    maxWorkers: 2,
  },
});
