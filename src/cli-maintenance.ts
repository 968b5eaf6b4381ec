import { parseArgs } from "node:util";
import { doctorExitCode, printDoctorReport } from "./services/doctor.ts";
import type { Maintenance } from "./services/maintenance.ts";
import type { SweepReport } from "./services/orphan-sweep.ts";
import type { ReconcileReport } from "./services/reconciler.ts";

export type Print = (line: string) => void;

export const MAINTENANCE_COMMANDS = ["reconcile", "sweep", "doctor", "purge"] as const;
export type MaintenanceCommand = (typeof MAINTENANCE_COMMANDS)[number];

export const MAINTENANCE_USAGE = `  reconcile [--dry-run]                     repair lost events, expire abandoned uploads, re-queue stuck jobs
  sweep [--dry-run]                         delete storage objects no live image owns (past the grace period)
  doctor                                    compare database and storage; exit 1 on any disagreement
  purge --owner ID [--dry-run]              delete every image of an owner, objects and rows`;

/** A wired Maintenance and how to let go of what it holds (the CLI opens one imgup per command). */
export interface MaintenanceHandle {
  maintenance: Maintenance;
  close(): Promise<void>;
}

export function isMaintenanceCommand(command: string | undefined): command is MaintenanceCommand {
  return MAINTENANCE_COMMANDS.includes(command as MaintenanceCommand);
}

/** Parses the arguments first (a usage error opens nothing), then runs the command; the exit code. */
export async function runMaintenanceCommand(
  command: MaintenanceCommand,
  args: string[],
  open: () => Promise<MaintenanceHandle>,
  print: Print = console.log,
  printError: Print = console.error,
): Promise<number> {
  let values: { "dry-run"?: boolean; owner?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: { "dry-run": { type: "boolean" }, owner: { type: "string" } },
      strict: true,
    }));
  } catch (err) {
    printError(`${(err as Error).message}\nusage:\n${MAINTENANCE_USAGE}`);
    return 2;
  }
  const dryRun = values["dry-run"] === true;
  if (command === "purge" && !values.owner) {
    printError("purge needs --owner ID");
    return 2;
  }
  const handle = await open();
  try {
    const m = handle.maintenance;
    switch (command) {
      case "reconcile":
        return await reconcile(m, { dryRun }, print);
      case "sweep":
        return await sweep(m, { dryRun }, print);
      case "doctor":
        return await doctor(m, print);
      case "purge":
        return await purge(m, { ownerId: values.owner as string, dryRun }, print);
    }
  } finally {
    await handle.close();
  }
}

/** One reconciler pass under the scheduler's lock (a dry run takes none). */
export async function reconcile(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<number> {
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
  return r.errors > 0 ? 1 : 0;
}

/** One full sweep under the scheduler's lock (a dry run takes none). */
export async function sweep(m: Maintenance, opts: { dryRun: boolean }, print: Print): Promise<number> {
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
  return r.errors > 0 ? 1 : 0;
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
  const result = await m.ownerPurge.purge(opts.ownerId, { dryRun: opts.dryRun });
  if (opts.dryRun) {
    print(`purge (dry run): would delete ${result.images} images of owner ${opts.ownerId}, objects and rows`);
    return 0;
  }
  print(`purge: owner ${opts.ownerId} has ${result.images} images; ${result.markedDeleted} hidden now`);
  const { removed } = await m.ownerPurge.purgeObjects(opts.ownerId, new AbortController().signal);
  print(`purge: ${removed} images removed with their objects`);
  return 0;
}

function busy(task: string, print: Print): number {
  print(`${task} is running on another instance right now; try again when it is done`);
  return 75; // EX_TEMPFAIL
}
