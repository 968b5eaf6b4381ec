import { it } from "vitest";

const announced = new Set<string>();

/**
 * A backend whose variable is unset must show, never vanish: the target helpers still leave it out
 * of their lists (callers index and filter them), but a skipped test named after it appears in the
 * file's report, once per file. In CI (CI=true) every backend is configured, so a missing one
 * fails the file instead of quietly shrinking the suite.
 */
export function missingBackend(name: string, variable: string): string {
  const reason = `${name} (${variable} not set)`;
  if (process.env.CI === "true") throw new Error(`${reason}: CI runs every backend; set ${variable}`);
  if (!announced.has(reason)) {
    announced.add(reason);
    try {
      it.skip(reason, () => {});
    } catch {
      // Asked from inside a running test or hook, where no test can be registered.
    }
  }
  return reason;
}
