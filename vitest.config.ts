import { defineConfig } from "vitest/config";
import { LongestFirstSequencer } from "./test/support/sequencer.ts";

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
    // at a time halve the wall time on a 2-core CI machine (the default would be one); three took
    // as long as two (1189 s against 1191 s for the whole suite).
    maxWorkers: 2,
    // A worker process runs file after file with its module cache kept: loading the app's module
    // graph anew for each of ~150 files cost a quarter of the suite's CPU. Every file still builds
    // its own instances (databases, KV prefixes, servers); nothing in src/ keeps state in a module.
    isolate: false,
    sequence: { sequencer: LongestFirstSequencer },
  },
});
