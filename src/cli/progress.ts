import type { SweepProgress } from "../services/orphan-sweep.ts";
import type { PurgeProgress } from "../services/owner-purge.ts";
import type { ReconcileProgress } from "../services/reconciler.ts";

/**
 * One status line on stderr while a long command runs, redrawn with its counts, only when stderr
 * is a terminal: the report (or --json) on stdout stays clean for scripts, and a pipe or log file
 * gets no carriage returns.
 */
export interface Progress {
  /** Shows `line` (at once the first time, then at most once per interval; the newest wins). */
  update(line: string): void;
  /** Clears the line; safe to call more than once. */
  stop(): void;
}

/** What the renderer needs of a stream: process.stderr, or a test's recorder. */
export type ProgressStream = Pick<NodeJS.WriteStream, "write"> & { isTTY?: boolean };

const NONE: Progress = { update: () => undefined, stop: () => undefined };

export function startProgress(
  opts: { stream?: ProgressStream; enabled?: boolean; intervalMs?: number; now?: () => number } = {},
): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.enabled === false || stream.isTTY !== true) return NONE;
  const intervalMs = opts.intervalMs ?? 100;
  const now = opts.now ?? Date.now;
  let drawnAt = Number.NEGATIVE_INFINITY;
  let pending: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let shown = false;
  let stopped = false;
  const draw = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stopped || pending === null) return;
    stream.write(`\r${pending}\x1b[K`);
    shown = true;
    pending = null;
    drawnAt = now();
  };
  return {
    update(line) {
      if (stopped) return;
      pending = line;
      const wait = drawnAt + intervalMs - now();
      if (wait <= 0) draw();
      // The last counts of a burst still show when the burst ends.
      else if (!timer) {
        timer = setTimeout(draw, wait);
        timer.unref();
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      if (shown) stream.write("\r\x1b[K");
    },
  };
}

const n = (value: number) => value.toLocaleString("en-US");

export function sweepProgressLine(p: SweepProgress, dryRun: boolean): string {
  const deleted = dryRun ? `${n(p.orphans)} would be deleted` : `${n(p.deleted)} deleted`;
  return `sweep: ${n(p.listed)} objects listed, ${deleted}${p.errors ? `, ${n(p.errors)} failed` : ""}`;
}

export function reconcileProgressLine(p: ReconcileProgress, dryRun: boolean): string {
  const verb = dryRun ? "would be " : "";
  return (
    `reconcile: ${n(p.checked)} images checked, ${n(p.queued)} ${verb}queued, ${n(p.expired)} ${verb}expired` +
    (p.errors ? `, ${n(p.errors)} errors` : "")
  );
}

export function purgeProgressLine(p: PurgeProgress, images: number): string {
  return (
    `purge: ${n(p.objectsRemoved)} of ${n(images)} images removed` +
    (p.failed ? `, ${n(p.failed)} failed` : "")
  );
}
