import { createImgup, type Imgup } from "../app.ts";
import { assertDeployable, loadConfig, type Role } from "../config.ts";
import { installCrashGuard } from "../http/plugins/errors.ts";
import { startupBanner } from "../logging.ts";
import { checkBackends, checkUrls } from "./backend-checks.ts";

export async function serve(role: Role | undefined): Promise<number> {
  const config = loadConfig(process.env, { role });
  assertDeployable(config, process.env);
  checkUrls(config);
  const imgup = await createImgup(config);
  try {
    await checkBackends(imgup);
  } catch (err) {
    await imgup.stop().catch(() => undefined);
    throw err;
  }
  installCrashGuard(imgup.logger);
  const url = await imgup.start();
  const publicUrl = url ? imgup.config.publicUrl : null;
  startupBanner(imgup.logger, {
    role: imgup.config.role,
    url: publicUrl,
    listen: url,
    demo: imgup.demoLink,
    admin: imgup.adminUrl,
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    let received: NodeJS.Signals | null = null;
    const onSignal = (s: NodeJS.Signals) => {
      // A second signal means "now": the operator gave up waiting.
      if (received) {
        imgup.logger.warn({ signal: s }, "second signal during shutdown: exiting at once");
        process.exit(1);
      }
      received = s;
      resolve(s);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  return shutDown(imgup, signal);
}

/** Below this, closing the pools and releasing jobs would be cut short by the last-resort exit. */
const MIN_SHUTDOWN_BOUND_MS = 1000;

/**
 * Stops accepting requests, lets those in flight and the running jobs finish (or releases the jobs),
 * closes the pools, and exits within IMGUP_SHUTDOWN_TIMEOUT_MS whatever hangs.
 */
async function shutDown(imgup: Imgup, signal: NodeJS.Signals): Promise<number> {
  const boundMs = Math.max(imgup.config.http.shutdownTimeoutMs, MIN_SHUTDOWN_BOUND_MS);
  const started = performance.now();
  imgup.logger.info({ signal, boundMs }, "shutting down");
  const lastResort = setTimeout(() => {
    imgup.logger.error({ boundMs }, "shutdown did not finish within IMGUP_SHUTDOWN_TIMEOUT_MS; exiting");
    process.exit(1);
  }, boundMs);
  await imgup.stop();
  clearTimeout(lastResort);
  imgup.logger.info({ ms: Math.round(performance.now() - started) }, "shut down");
  return 0;
}
