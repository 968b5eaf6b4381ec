/**
 * One readiness check: resolves when the dependency answers (whatever with), or with a "degraded: …"
 * note when it does not but the process still serves (the database breaker is open and intents are
 * buffered); throws when the dependency is down.
 */
export type ReadinessCheck = (signal: AbortSignal) => Promise<unknown>;

/** "ok", "degraded: …", or why the dependency is not ready. */
export type CheckOutcome = string;

export function isDegraded(outcome: CheckOutcome): boolean {
  return outcome.startsWith("degraded");
}

/**
 * Runs every check at once, each bounded by timeoutMs: a dependency that hangs reads as "timed out"
 * instead of hanging the probe (a probe that times out says nothing about which one failed).
 */
export async function checkReadiness(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<Record<string, CheckOutcome>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await bounded(check, timeoutMs)] as const),
  );
  return Object.fromEntries(entries);
}

async function bounded(check: ReadinessCheck, timeoutMs: number): Promise<CheckOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error("readiness check timed out"));
      resolve(`timed out after ${timeoutMs} ms`);
    }, timeoutMs);
  });
  const run = check(controller.signal).then(
    (note) => (typeof note === "string" && isDegraded(note) ? note : "ok"),
    (err: unknown) => (err instanceof Error && err.message ? err.message : String(err) || "failed"),
  );
  try {
    return await Promise.race([run, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
