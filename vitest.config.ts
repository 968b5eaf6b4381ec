import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "client/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Many suites wait on I/O (RGW notifications, an outage under load, child workers): two files
    // at a time halve the wall time on a 2-core CI machine (the default would be one).
    maxWorkers: 2,
  },
});
