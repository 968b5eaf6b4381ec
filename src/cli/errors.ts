/**
 * How the CLI words an error: one line for what an operator can fix (configuration, a backend, the
 * schema, the arguments); anything else is a bug or an outage, and --debug shows its stack.
 * Loaded before any command: it imports nothing of the app, so errors are recognised by name.
 */

/** A mistake in the command line that commander cannot see (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure the operator can fix, worded for them (exit 1, no stack hint). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** The operator's to fix, already worded for them: no hint about stack traces. */
const FRIENDLY = new Set([
  "ConfigError",
  "BackendError",
  "SchemaVersionError",
  "EmbeddedDatabaseLockedError",
  "UsageError",
  "CliError",
]);

export function describeError(err: unknown): { message: string; usage: boolean; friendly: boolean } {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === "ConfigError")
    return { message: `configuration error: ${e.message}`, usage: false, friendly: true };
  return { message: e.message, usage: e.name === "UsageError", friendly: FRIENDLY.has(e.name) };
}
