import { CliError, UsageError } from "./cli/errors.ts";
import {
  type Progress,
  purgeProgressLine,
  reconcileProgressLine,
  startProgress,
  sweepProgressLine,
} from "./cli/progress.ts";
import { doctorExitCode, printDoctorReport } from "./services/doctor.ts";
import type { Maintenance } from "./services/maintenance.ts";
import type { SweepReport } from "./services/orphan-sweep.ts";
import { OwnerPurgeIncompleteError } from "./services/owner-purge.ts";
import type { ReconcileReport } from "./services/reconciler.ts";
import type { UnclaimedExpiryReport } from "./services/unclaimed-expiry.ts";

export type Print = (line: string) => void;

export type MaintenanceCommand = "reconcile" | "sweep" | "expire-unclaimed" | "doctor" | "purge";

export interface MaintenanceOptions {
  dryRun?: boolean;
  owner?: string;
  yes?: boolean;
  json?: boolean;
  /** doctor: repair the usage record from the storage. */
  fixUsage?: boolean;
}

/** A wired Maintenance and how to let go of what it holds (the CLI opens one imgup per command). */
export interface MaintenanceHandle {
  maintenance: Maintenance;
  close(): Promise<void>;
}

/**
 * The maintenance commands need the adapters and nothing running: role "scheduler" builds no HTTP
 * server and no worker, and start() is never called, so its scheduler stays idle.
 */
async function openMaintenance(): Promise<MaintenanceHandle> {
  const [{ createImgup }, { loadConfig }, { checkBackends, checkUrls }] = await Promise.all([
    import("./app.ts"),
    import("./config.ts"),
    import("./cli/backend-checks.ts"),
  ]);
  const config = loadConfig(process.env, { role: "scheduler" });
  checkUrls(config);
  // The report goes to stdout; only warnings of the machinery join it unless LOG_LEVEL says more.
  const imgup = await createImgup({ ...config, logLevel: process.env.LOG_LEVEL ? config.logLevel : "warn" });
  try {
    await checkBackends(imgup);
  } catch (err) {
    await imgup.stop().catch(() => undefined);
    throw err;
  }
  return { maintenance: imgup.maintenance, close: () => imgup.stop() };
}

/** A terminal to ask on: both ends of the conversation. */
const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY);

/** Runs one maintenance command (arguments parsed by the CLI); the exit code. */
export async function runMaintenanceCommand(
  command: MaintenanceCommand,
  opts: MaintenanceOptions,
  open: () => Promise<MaintenanceHandle> = openMaintenance,
): Promise<number> {
  const dryRun = opts.dryRun === true;
  if (command === "purge" && !dryRun && !opts.yes && !interactive()) {
    throw new UsageError(
      `purge deletes every image of owner ${opts.owner} and cannot be undone: add --yes to confirm ` +
        "(there is no terminal to ask on)",
    );
  }
  const handle = await open();
  // Scripts read --json; only a person at a terminal gets the status line (startProgress checks that).
  const progress = startProgress({ enabled: !opts.json });
  const json: Print = (line) => void line;
  const quiet: Print = opts.json ? json : console.log;
  // The report replaces the status line.
  const print: Print = (line) => {
    progress.stop();
    quiet(line);
  };
  try {
    const m = handle.maintenance;
    let result: { code: number; report: unknown };
    switch (command) {
      case "reconcile":
        m.progress.reconcile = (p) => progress.update(reconcileProgressLine(p, dryRun));
        result = await reconcileReport(m, { dryRun }, print);
        break;
      case "sweep":
        m.progress.sweep = (p) => progress.update(sweepProgressLine(p, dryRun));
        result = await sweepReport(m, { dryRun }, print);
        break;
      case "expire-unclaimed":
        result = await expireUnclaimedReport(m, { dryRun }, print);
        break;
      case "doctor": {
        progress.update("doctor: comparing the database with the storage…");
        const report = await m.doctor.run({ fixUsage: opts.fixUsage === true });
        progress.stop();
        if (!opts.json) printDoctorReport(report, print);
        result = { code: doctorExitCode(report), report };
        break;
      }
      case "purge": {
        const ownerId = opts.owner as string;
        if (!dryRun && !opts.yes) await confirmPurge(m, ownerId);
        result = await purgeReport(m, { ownerId, dryRun }, print, progress);
        break;
      }
    }
    progress.stop();
    if (opts.json)
      console.log(JSON.stringify({ command, exitCode: result.code, report: result.report }, null, 2));
    return result.code;
  } finally {
    progress.stop();
    await handle.close();
  }
}

async function confirmPurge(m: Maintenance, ownerId: string): Promise<void> {
  const { images } = await m.ownerPurge.purge(ownerId, { dryRun: true });
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Delete ${images} images of owner ${ownerId}, with their objects? This cannot be undone. [y/N] `,
    );
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("purge cancelled: nothing was deleted");
  } finally {
    rl.close();
  }
}

type Outcome = { code: number; report: unknown };

/** One reconciler pass under the scheduler's lock (a dry run takes none). */
export async function reconcile(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<number> {
  return (await reconcileReport(m, opts, print)).code;
}

async function reconcileReport(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<Outcome> {
  const outcome = await m.scheduler.runNow("reconcile", opts);
  if (!outcome.ran) return busy("reconcile", print);
  const r = outcome.report as ReconcileReport;
  const verb = r.dryRun ? "would be" : "were";
  print(`reconcile${r.dryRun ? " (dry run)" : ""}: ${r.pendingChecked} lapsed pending images checked`);
  print(`  ${r.processingQueued} ${verb} queued for processing (object present, event lost)`);
  print(`  ${r.expired} ${verb} expired, ${r.multipartAborted} multipart uploads ${verb} aborted`);
  print(`  ${r.stuckRequeued} stuck processing jobs ${verb} re-queued`);
  if (r.unclaimed > 0)
    print(`  ${r.unclaimed} processing jobs lapsed with no worker taking them: is a worker running?`);
  if (r.gaveUp > 0) print(`  ${r.gaveUp} images given up on after repeated repairs (see imgup doctor)`);
  if (r.errors > 0) print(`  ${r.errors} errors (see the log); the next run retries`);
  if (r.truncated) print("  more remain: the per-run limit was reached");
  for (const line of r.details) print(`    ${line}`);
  return { code: r.errors > 0 ? 1 : 0, report: r };
}

/** One full sweep under the scheduler's lock (a dry run takes none). */
export async function sweep(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<number> {
  return (await sweepReport(m, opts, print)).code;
}

async function sweepReport(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<Outcome> {
  const outcome = await m.scheduler.runNow("sweep", opts);
  if (!outcome.ran) return busy("sweep", print);
  const r = outcome.report as SweepReport;
  const orphans = r.withoutRow + r.ofDeadImage + r.leftoverUploads;
  print(`sweep${r.dryRun ? " (dry run)" : ""}: ${r.listed} objects listed${r.complete ? "" : " (partial)"}`);
  print(`  ${r.live} belong to live images, ${r.young} orphans are inside the grace period`);
  print(
    `  ${orphans} orphans (${r.withoutRow} without a row, ${r.ofDeadImage} of expired/rejected/deleted images, ` +
      `${r.leftoverUploads} uploads left over by ready images)` +
      (r.dryRun ? " would be deleted" : `, ${r.deleted} deleted`),
  );
  if (r.foreign > 0) print(`  ${r.foreign} objects outside imgup's key layout, left alone`);
  if (r.errors > 0) print(`  ${r.errors} deletes failed (see the log); the next sweep retries`);
  for (const line of r.details) print(`    ${line}`);
  return { code: r.errors > 0 ? 1 : 0, report: r };
}

/** One pass of the unclaimed expiry under the scheduler's lock (a dry run takes none). */
async function expireUnclaimedReport(
  m: Maintenance,
  opts: { dryRun: boolean },
  print: Print,
): Promise<Outcome> {
  const outcome = await m.scheduler.runNow("expire-unclaimed", opts);
  if (!outcome.ran) return busy("expire-unclaimed", print);
  const r = outcome.report as UnclaimedExpiryReport;
  const verb = r.dryRun ? "would be" : "were";
  print(
    `expire-unclaimed${r.dryRun ? " (dry run)" : ""}: ${r.expired} unclaimed images past their deadline ${verb} deleted`,
  );
  if (r.deferred > 0) print(`  ${r.deferred} of them keep objects for now: the delete job removes them`);
  if (r.errors > 0) print(`  ${r.errors} errors (see the log); the sweep removes what is left`);
  if (r.truncated) print("  more remain: the per-run limit was reached");
  for (const line of r.details) print(`    ${line}`);
  return { code: r.errors > 0 ? 1 : 0, report: r };
}

export async function doctor(m: Maintenance, print: Print): Promise<number> {
  const report = await m.doctor.run();
  printDoctorReport(report, print);
  return doctorExitCode(report);
}

/**
 * Hides the owner's images, queues the purge job, and also runs it here so the command returns
 * when it is done; a worker taking the queued job meanwhile only finds less to do.
 */
export async function purge(
  m: Maintenance,
  opts: { ownerId: string; dryRun: boolean },
  print: Print,
): Promise<number> {
  return (await purgeReport(m, opts, print)).code;
}

async function purgeReport(
  m: Maintenance,
  opts: { ownerId: string; dryRun: boolean },
  print: Print,
  progress?: Progress,
): Promise<Outcome> {
  const result = await m.ownerPurge.purge(opts.ownerId, { dryRun: opts.dryRun });
  if (opts.dryRun) {
    print(`purge (dry run): would delete ${result.images} images of owner ${opts.ownerId}, objects and rows`);
    return { code: 0, report: { ownerId: opts.ownerId, dryRun: true, images: result.images } };
  }
  const { removed, failed } = await m.ownerPurge
    .purgeObjects(
      opts.ownerId,
      new AbortController().signal,
      progress && ((p) => progress.update(purgeProgressLine(p, result.images))),
    )
    // Failures are the report's to tell (and the exit code's), not a stack trace's.
    .catch((err: unknown) => {
      if (err instanceof OwnerPurgeIncompleteError) return err;
      throw err;
    });
  print(`purge: owner ${opts.ownerId} had ${result.images} images; ${result.markedDeleted} hidden at once`);
  print(`purge: ${removed} images removed with their objects`);
  if (failed > 0) print(`purge: ${failed} could not be removed (see the log); run purge again`);
  return {
    code: failed > 0 ? 1 : 0,
    report: {
      ownerId: opts.ownerId,
      dryRun: false,
      images: result.images,
      hidden: result.markedDeleted,
      removed,
      failed,
    },
  };
}

function busy(task: string, print: Print): Outcome {
  print(`${task} is running on another instance right now; try again when it is done`);
  return { code: 75, report: { busy: true } }; // EX_TEMPFAIL
}
