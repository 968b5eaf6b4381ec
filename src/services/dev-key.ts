import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { AuthService } from "./auth.ts";

/**
 * Embedded mode: a first start gets a key for owner "dev" (an owner's scope, not admin: a key that is
 * printed must not be able to purge anyone), saved under the data dir and printed this once.
 */
export async function createDevKey(auth: AuthService, config: Config): Promise<string> {
  const { key } = await auth.createKey({ ownerId: "dev", name: "development key", scopes: [] });
  const file = devKeyFile(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** The demo page link the startup banner prints, and where the development key is kept. */
export interface DemoLink {
  url: string;
  /** Said on later starts instead of the key itself. */
  keyFile: string | null;
}

/**
 * The demo page reads the key from the URL fragment, which browsers never send to a server. The
 * key is in the link only right after it was created; later starts point at the file instead.
 */
export function demoPageLink(config: Config, logger: Logger, createdKey: string | null): DemoLink | null {
  const file = devKeyFile(config);
  if (createdKey) {
    logger.warn({ file }, `created a development API key for owner "dev" (shown once; kept in ${file})`);
    if (config.demoPage.enabled)
      return { url: `${config.publicUrl}/#key=${encodeURIComponent(createdKey)}`, keyFile: null };
    logger.info(`development API key: ${createdKey}`);
    return null;
  }
  if (!config.demoPage.enabled) return null;
  return { url: `${config.publicUrl}/`, keyFile: config.auth.devKey && existsSync(file) ? file : null };
}

function devKeyFile(config: Config): string {
  return path.join(config.dataDir, "dev-api-key");
}
