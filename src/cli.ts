import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { describeError } from "./cli/errors.ts";

// Only commander and these few lines load before a command runs: help, --version and argument errors
// answer without the app (sharp, the AWS SDK, PGlite…), which each command imports when it runs.

const EXIT_USAGE = 2;

function version(): string {
  // ../package.json from src/cli.ts and from dist/cli.js alike.
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** What the command that ran asked to exit with (commander discards an action's return value). */
let exitCode = 0;
const act =
  <A extends unknown[]>(run: (...args: A) => Promise<number>) =>
  async (...args: A): Promise<void> => {
    exitCode = await run(...args);
  };

function buildProgram(): Command {
  const program = new Command("imgup")
    .description("Self-hostable image upload and delivery service.")
    .version(version(), "-V, --version", "print the version")
    .option("--debug", "print stack traces of errors")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .addHelpText(
      "after",
      `
Commands in full:
  serve [--role all|api|worker|scheduler]
  migrate [--status]
  keys create --owner ID [--name NAME] [--scope admin]
  keys list [--owner ID] [--json]
  keys revoke KEY_ID
  sign-url --image ID --spec w_400,h_300,fit_cover,f_auto
  events ceph-amqp [--exchange NAME] [--topic NAME] [--push-endpoint amqp://HOST:PORT/VHOST]
  events ceph-webhook --push-endpoint URL [--topic NAME]
  reconcile [--dry-run] [--json]
  sweep [--dry-run] [--json]
  expire-unclaimed [--dry-run] [--json]
  doctor [--fix-usage] [--json]
  purge --owner ID [--dry-run] [--yes] [--json]

Configuration comes from environment variables; see docs/configuration.md.`,
    );

  program
    .command("serve")
    .description("run imgup (default: every role in one process)")
    .addOption(
      new Option("--role <role>", "the role(s) this process runs").choices([
        "all",
        "api",
        "worker",
        "scheduler",
      ]),
    )
    .action(
      act(async (opts: { role?: "all" | "api" | "worker" | "scheduler" }) => {
        const { serve } = await import("./cli/serve.ts");
        return serve(opts.role);
      }),
    );

  program
    .command("migrate")
    .description(
      "apply pending database migrations and exit (the explicit step before starting a new version)",
    )
    .option("--status", "only show applied and pending migrations")
    .action(
      act(async (opts: { status?: boolean }) => {
        const { migrate } = await import("./cli/commands.ts");
        return migrate(opts);
      }),
    );

  const keys = program.command("keys").description("create, list and revoke API keys");
  keys
    .command("create")
    .description("create an API key (printed once)")
    .requiredOption("--owner <id>", "the owner the key acts for")
    .option("--name <name>", "a label for the key")
    .option("--scope <scope>", "a scope (admin); repeatable", collect)
    .action(
      act(async (opts: { owner: string; name?: string; scope?: string[] }) => {
        const { keysCommand } = await import("./cli-keys.ts");
        return keysCommand({ sub: "create", ...opts });
      }),
    );
  keys
    .command("list")
    .description("list active API keys (never the keys themselves)")
    .option("--owner <id>", "only this owner's keys")
    .option("--json", "print JSON")
    .action(
      act(async (opts: { owner?: string; json?: boolean }) => {
        const { keysCommand } = await import("./cli-keys.ts");
        return keysCommand({ sub: "list", ...opts });
      }),
    );
  keys
    .command("revoke")
    .description("revoke an API key")
    .argument("<keyId>", "the key's id (key_…)")
    .action(
      act(async (keyId: string) => {
        const { keysCommand } = await import("./cli-keys.ts");
        return keysCommand({ sub: "revoke", keyId });
      }),
    );

  program
    .command("sign-url")
    .description("print a signed on-the-fly variant URL")
    .requiredOption("--image <id>", "the image id")
    .requiredOption("--spec <spec>", "the transform, e.g. w_400,h_300,fit_cover,f_auto")
    .action(
      act(async (opts: { image: string; spec: string }) => {
        const { signUrl } = await import("./cli/commands.ts");
        return signUrl(opts);
      }),
    );

  const events = program.command("events").description("set up storage event notifications");
  events
    .command("ceph-amqp")
    .description("make a Ceph RGW bucket publish upload events to RabbitMQ (IMGUP_EVENTS_AMQP_URL)")
    .option("--exchange <name>", "the topic exchange RGW publishes to", "imgup.storage")
    .option("--topic <name>", "the RGW topic, also the routing key", "imgup-object-created")
    .option(
      "--push-endpoint <url>",
      "the broker as RGW reaches it (default: IMGUP_EVENTS_AMQP_URL without credentials)",
    )
    .action(
      act(async (opts: { exchange: string; topic: string; pushEndpoint?: string }) => {
        const { cephAmqp } = await import("./events/amqp-setup.ts");
        return cephAmqp(opts);
      }),
    );
  events
    .command("ceph-webhook")
    .description("point a Ceph RGW bucket's notifications at imgup")
    .requiredOption(
      "--push-endpoint <url>",
      "imgup's /v1/events/storage URL with its token, through the load balancer (always answering)",
    )
    .option("--topic <name>", "the SNS-style topic to create", "imgup-object-created")
    .action(
      act(async (opts: { pushEndpoint: string; topic: string }) => {
        const { cephWebhook } = await import("./cli/commands.ts");
        return cephWebhook(opts);
      }),
    );

  const maintenance = (
    name: "reconcile" | "sweep" | "expire-unclaimed" | "doctor" | "purge",
    description: string,
  ) =>
    program
      .command(name)
      .description(description)
      .option("--json", "print the report as JSON")
      .action(
        act(
          async (opts: {
            dryRun?: boolean;
            owner?: string;
            yes?: boolean;
            json?: boolean;
            fixUsage?: boolean;
          }) => {
            const { runMaintenanceCommand } = await import("./cli-maintenance.ts");
            return runMaintenanceCommand(name, opts);
          },
        ),
      );
  maintenance("reconcile", "repair lost events, expire abandoned uploads, re-queue stuck jobs").option(
    "--dry-run",
    "report what would be done, change nothing",
  );
  maintenance("sweep", "delete storage objects no live image owns (past the grace period)").option(
    "--dry-run",
    "report what would be deleted, delete nothing",
  );
  maintenance("expire-unclaimed", "delete images that required a claim and were not claimed in time").option(
    "--dry-run",
    "report what would be deleted, delete nothing",
  );
  maintenance("doctor", "compare database and storage; exit 1 on any disagreement").option(
    "--fix-usage",
    "rebuild the usage record (variant rows, public copy sizes, counters) of owners that differ from the storage",
  );
  maintenance("purge", "delete every image of an owner, objects and rows")
    .requiredOption("--owner <id>", "the owner whose images go")
    .option("--dry-run", "count what would be deleted, delete nothing")
    .option("-y, --yes", "do not ask for confirmation (required when not on a terminal)");
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT_USAGE;
  }
  await program.parseAsync(argv, { from: "user" });
  return exitCode;
}

const argv = process.argv.slice(2);
const debug = argv.includes("--debug");
main(argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CommanderError) {
      // Help and --version are "errors" to commander; what it printed is the answer.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0)
        process.exit(0);
      process.exit(EXIT_USAGE);
    }
    const { message, usage, friendly } = describeError(err);
    process.stderr.write(`imgup: ${message}\n`);
    if (debug) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    else if (!friendly) process.stderr.write("(run with --debug for the stack trace)\n");
    process.exit(usage ? EXIT_USAGE : 1);
  },
);
