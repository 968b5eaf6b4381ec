import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that take minutes, longest first. Started first, they run beside the many short files and
 * both workers finish together; started last (a fresh clone has no timing cache, so Vitest orders by
 * file size) one of them runs alone at the end. Measured on 2 cores; a file missing here only
 * loses its head start.
 */
const LONG_FIRST = [
  "test/integration/db-outage.test.ts",
  "test/integration/events-amqp.test.ts",
  "test/integration/consistency-crash.test.ts",
  "test/integration/cli-backends.test.ts",
  "test/e2e/client-sdk.browser.test.ts",
  "test/integration/proxy-upload.test.ts",
  "test/integration/spike-protection.test.ts",
  "test/integration/fairness.test.ts",
  "test/docs/quickstart.test.ts",
  "test/e2e/uppy-dashboard.test.ts",
];

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const i = LONG_FIRST.findIndex((name) => spec.moduleId.endsWith(name));
      return i === -1 ? LONG_FIRST.length : i;
    };
    return sorted
      .map((spec, i) => ({ spec, i }))
      .sort((a, b) => rank(a.spec) - rank(b.spec) || a.i - b.i)
      .map(({ spec }) => spec);
  }
}
