import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { AuthService } from "./auth.ts";

const FILE = "local-admin.json";

interface LocalAdminFile {
  pid: number;
  url: string;
  token: string;
}

/**
 * Embedded mode: the running server holds the database (one writer per PGlite directory), so the
 * `imgup keys …` commands on the same machine go through it. The server writes its URL and a fresh
 * admin token to a 0600 file under the data dir; whoever can read the file may manage keys, as
 * whoever can read the database files could anyway.
 */
export function publishLocalAdmin(dataDir: string, url: string, auth: AuthService): { withdraw(): void } {
  const token = `imgup_local_${randomBytes(32).toString("base64url")}`;
  auth.enableLocalAdmin(token);
  const file = path.join(dataDir, FILE);
  const content: LocalAdminFile = { pid: process.pid, url, token };
  writeFileSync(file, JSON.stringify(content), { mode: 0o600 });
  return {
    withdraw() {
      if (readLocalAdmin(dataDir)?.token === token) rmSync(file, { force: true });
    },
  };
}

/** The running embedded server's address and token, or null when none is running. */
export function readLocalAdmin(dataDir: string): { url: string; token: string } | null {
  let parsed: Partial<LocalAdminFile>;
  try {
    parsed = JSON.parse(readFileSync(path.join(dataDir, FILE), "utf8")) as Partial<LocalAdminFile>;
  } catch {
    return null;
  }
  if (typeof parsed.url !== "string" || typeof parsed.token !== "string" || typeof parsed.pid !== "number") {
    return null;
  }
  try {
    process.kill(parsed.pid, 0);
  } catch {
    return null; // left behind by a server that crashed
  }
  return { url: parsed.url, token: parsed.token };
}
