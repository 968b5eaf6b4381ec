import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const FILE = "signing-secret";

/** The embedded mode's generated secret, for commands that must sign like the server does. */
export function readEmbeddedSecret(dataDir: string): string {
  const file = path.join(dataDir, FILE);
  if (!existsSync(file))
    throw new Error(`no IMGUP_SIGNING_SECRET and no ${file}: start imgup once or set it`);
  return readFileSync(file, "utf8").trim();
}

/** Embedded mode only needs a stable secret across restarts; production sets IMGUP_SIGNING_SECRET. */
export function loadOrCreateSecret(dataDir: string, onCreate: (file: string) => void): string {
  const file = path.join(dataDir, FILE);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(file, secret, { mode: 0o600 });
  onCreate(file);
  return secret;
}
