import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { AuthService } from "./auth.ts";

/** Embedded mode: a first start gets an admin key for owner "dev", saved under the data dir. */
export async function createDevKey(auth: AuthService, config: Config, logger: Logger): Promise<void> {
  const { key } = await auth.createKey({ ownerId: "dev", name: "development key", scopes: ["admin"] });
  const file = path.join(config.dataDir, "dev-api-key");
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  logger.warn({ file }, `created a development API key for owner "dev": ${key}`);
}

/** The demo page reads the key from the URL fragment, which browsers never send to a server. */
export function logDemoPageUrl(config: Config, logger: Logger): void {
  const file = path.join(config.dataDir, "dev-api-key");
  if (!config.demoPage.enabled || !config.auth.devKey || !existsSync(file)) return;
  const key = readFileSync(file, "utf8").trim();
  logger.info(`demo page: ${config.publicUrl}/#key=${encodeURIComponent(key)}`);
}
